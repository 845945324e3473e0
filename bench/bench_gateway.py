"""The whole gateway over loopback: router, two gateways, TCP API clients.

The in-repo router (intermud3.testing.router.I3Router) and two real
GatewayService instances, MudA and MudB (send_rate 0: unpaced), on
127.0.0.1 ports chosen by the OS; one TCP API client on each gateway.

* tell latency: A's client calls `tell` to bob@MudB; the clock runs from
  writing the request line to B's client reading the `tell_received`
  event. `tells` tells, one after the other: median and p99.
* tell throughput: `window_tells` tells with `window` in flight at once
  (a new one leaves as each event arrives at B): tells/s.
* channel fan-out: `subscribers` clients on B join `dchat`; A's client
  sends `channel_send`; time until the last of them reads its
  `channel_message`. `rounds` rounds: median and p99 of the last arrival.
* memory: RSS of this process before and after `sessions` detached
  sessions each holding `events` queued `tell_received` events (a real
  SessionManager and EventHub; the hub serialises an event once, so the
  payload bytes are shared and the figure is mostly per-entry overhead).

Every wait is bounded (WAIT seconds), every loop by count and by
`max_seconds`. When the gateway cannot be built yet (a service module
missing) the loopback part prints "skipped: <reason>".
"""

import shutil
import sys
import tempfile
import time

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

import yaml
from prometheus_client import CollectorRegistry
from twisted.internet import defer, protocol
from twisted.internet.task import Clock

from intermud3 import config as configuration
from intermud3.testing.client import JSONLineClient

BENCH = "gateway"
API_KEY = "bench-key-0123456789"
CHANNEL = "dchat"  # one of the router's default channels, open to all
WAIT = 10.0        # seconds any one step may take before the run fails

FULL = {"tells": 500, "window_tells": 1000, "window": 50, "subscribers": 20, "rounds": 200,
        "sessions": 1000, "events": 100, "max_seconds": 15}
QUICK = {"tells": 100, "window_tells": 200, "window": 50, "subscribers": 20, "rounds": 30,
         "sessions": 1000, "events": 100, "max_seconds": 5}




def gateway_config(mud_name, router, state_dir):
    raw = {
        "mud": {"name": mud_name, "port": 4000},
        "routers": [{"name": router.name, "host": "127.0.0.1", "port": router.port}],
        "router": {
            "connect_timeout": 2, "handshake_timeout": 2,
            "backoff": {"initial": 0.05, "max": 0.2, "factor": 2, "jitter": False},
            "send_rate": 0,
        },
        "api": {
            "host": "127.0.0.1", "port": 0, "tcp": {"port": 0},
            "auth": {"api_keys": [{"key": API_KEY, "mud_name": mud_name, "permissions": ["*"]}]},
            # Limits far above what the benchmark sends: it measures speed, not limits.
            "rate_limits": {"default": {"per_minute": 6_000_000, "burst": 100_000},
                            "by_method": {"tell": {"per_minute": 6_000_000, "burst": 100_000}}},
        },
        "state": {"directory": state_dir},
        "logging": {"level": "warn"},
    }
    return configuration.load_text(yaml.safe_dump(raw), environ={})




def wait_until(reactor, predicate, what, seconds=WAIT, interval=0.01):
    d = defer.Deferred()
    deadline = reactor.seconds() + seconds

    def check():
        if predicate():
            d.callback(None)
        elif reactor.seconds() > deadline:
            d.errback(common.Timeout(f"{what}: not within {seconds} s"))
        else:
            reactor.callLater(interval, check)
    check()
    return d


class Waiters:
    """Deferreds keyed by a message text, fired by the event carrying it."""

    def __init__(self):
        self._by_key = {}

    def expect(self, key, count=1):
        d = defer.Deferred()
        self._by_key[key] = [count, d]
        return d

    def arrived(self, key):
        entry = self._by_key.get(key)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] <= 0:
            del self._by_key[key]
            entry[1].callback(common.now())


class Loopback:
    """Router, gateways and clients of one run; `stop` closes them all."""

    def __init__(self, reactor):
        self.reactor = reactor
        self._stoppers = []

    def router(self):
        from intermud3.testing.router import I3Router
        router = I3Router("*bench")
        router.listen(self.reactor, 0, "127.0.0.1")
        self._stoppers.append(router.shutdown)
        return router

    @defer.inlineCallbacks
    def gateway(self, mud_name, router):
        from intermud3.service import GatewayService
        state_dir = tempfile.mkdtemp(prefix="i3gw-bench-")
        # Pushed first, so it runs after the gateway's stop has closed the store.
        self._stoppers.append(lambda: shutil.rmtree(state_dir, ignore_errors=True))
        svc = GatewayService(gateway_config(mud_name, router, state_dir), reactor=self.reactor)
        svc.startService()
        self._stoppers.append(lambda: svc.stopService() if svc.running else None)
        yield wait_until(self.reactor, lambda: svc.gateway.link.ready, f"{mud_name} link ready")
        return svc

    @defer.inlineCallbacks
    def client(self, svc):
        port = svc.tcp_listener.getHost().port
        creator = protocol.ClientCreator(self.reactor, JSONLineClient)
        client = yield common.with_timeout(self.reactor, creator.connectTCP("127.0.0.1", port), WAIT, "connect")
        self._stoppers.append(lambda: client.transport.loseConnection() or client.closed)
        yield common.with_timeout(self.reactor, client.welcomed, WAIT, "welcome")
        yield common.with_timeout(self.reactor, client.call("authenticate", {"api_key": API_KEY}), WAIT,
                           "authenticate")
        return client

    @defer.inlineCallbacks
    def stop(self):
        while self._stoppers:
            stop = self._stoppers.pop()
            try:
                yield common.with_timeout(self.reactor, defer.maybeDeferred(stop), WAIT, "stop")
            except Exception as error:  # teardown goes on whatever one part says
                print(f"bench teardown: {error}", file=sys.stderr)


def _latency_rows(name, durations, detail):
    return [
        common.row(BENCH, f"{name} median", common.median(durations) * 1e3, "ms", detail),
        common.row(BENCH, f"{name} p99", common.percentile(durations, 0.99) * 1e3, "ms", detail),
    ]


def tell_params(i):
    return {"target_mud": "MudB", "target_user": "bob", "from_user": "alice", "message": f"bench {i}"}


@defer.inlineCallbacks
def tell_latency(reactor, a, waiters, s):
    durations = []
    deadline = common.now() + s["max_seconds"]
    for i in range(s["tells"]):
        arrived = waiters.expect(f"bench {i}")
        started = common.now()
        reply = a.call("tell", tell_params(i))
        received = yield common.with_timeout(reactor, arrived, WAIT, f"tell {i} at MudB")
        result = yield common.with_timeout(reactor, reply, WAIT, f"tell {i} reply")
        if result.get("status") not in ("sent", "queued"):
            raise RuntimeError(f"tell answered {result}")
        durations.append(received - started)
        if common.now() > deadline:
            break
    return _latency_rows("tell latency", durations, f"{len(durations)} sequential tells, A call -> B event")


@defer.inlineCallbacks
def tell_throughput(reactor, a, waiters, s, first):
    window = defer.DeferredSemaphore(s["window"])
    deadline = common.now() + s["max_seconds"]
    sent = []

    @defer.inlineCallbacks
    def one(i):
        if common.now() > deadline:
            return  # out of time: the rest are not sent
        arrived = waiters.expect(f"bench {i}")
        reply = a.call("tell", tell_params(i))
        sent.append(i)
        yield common.with_timeout(reactor, defer.gatherResults([arrived, reply], consumeErrors=True),
                           WAIT, f"tell {i}")

    stalls = StallWatch(reactor)
    started = common.now()
    yield defer.gatherResults([window.run(one, i) for i in range(first, first + s["window_tells"])],
                              consumeErrors=True)
    elapsed = common.now() - started
    stalls.stop()
    return [common.row(BENCH, "tell throughput", len(sent) / elapsed, "tells/s",
                       f"{len(sent)} tells, {s['window']} in flight"),
            common.row(BENCH, "longest reactor stall under tells", stalls.longest * 1e3, "ms",
                       "router, both gateways and clients share the reactor")]


class StallWatch:
    """The longest time the reactor kept a short timer waiting past its due
    time: how long one turn held everything else up."""

    INTERVAL = 0.002

    def __init__(self, reactor):
        self.reactor = reactor
        self.longest = 0.0
        self._due = common.now() + self.INTERVAL
        self._call = reactor.callLater(self.INTERVAL, self._tick)

    def _tick(self):
        now = common.now()
        self.longest = max(self.longest, now - self._due)
        self._due = now + self.INTERVAL
        self._call = self.reactor.callLater(self.INTERVAL, self._tick)

    def stop(self):
        if self._call.active():
            self._call.cancel()


@defer.inlineCallbacks
def channel_fanout(reactor, loop, router, svc_b, a, s):
    subscribers = []
    waiters = Waiters()
    for _ in range(s["subscribers"]):
        client = yield loop.client(svc_b)
        client.on_event = lambda method, params: (
            method == "channel_message" and waiters.arrived(params.get("message")))
        yield common.with_timeout(reactor, client.call("channel_join", {"channel": CHANNEL}), WAIT, "join")
        subscribers.append(client)
    yield common.with_timeout(reactor, a.call("channel_join", {"channel": CHANNEL}), WAIT, "join")
    yield wait_until(reactor, lambda: {"MudA", "MudB"} <= router.listening.get(CHANNEL, set()),
                     "router listening")
    durations = []
    deadline = common.now() + s["max_seconds"]
    for i in range(s["rounds"]):
        text = f"fan {i}"
        everyone = waiters.expect(text, count=len(subscribers))
        started = common.now()
        reply = a.call("channel_send", {"channel": CHANNEL, "message": text, "from_user": "alice"})
        last = yield common.with_timeout(reactor, everyone, WAIT, f"channel message {i} at MudB")
        yield common.with_timeout(reactor, reply, WAIT, f"channel_send {i} reply")
        durations.append(last - started)
        if common.now() > deadline:
            break
    return _latency_rows(f"channel fan-out to {len(subscribers)}", durations,
                         f"{len(durations)} messages, A call -> last B client event")


@defer.inlineCallbacks
def loopback_rows(reactor, s):
    try:
        import intermud3.service  # noqa: F401  (every service module must be there)
        from intermud3.testing import router as _router  # noqa: F401
    except ImportError as error:
        return [common.skipped(BENCH, "loopback", f"gateway not buildable yet ({error})")]
    loop = Loopback(reactor)
    try:
        router = loop.router()
        svc_a = yield loop.gateway("MudA", router)
        svc_b = yield loop.gateway("MudB", router)
        a = yield loop.client(svc_a)
        b = yield loop.client(svc_b)
        tells = Waiters()
        b.on_event = lambda method, params: method == "tell_received" and tells.arrived(params.get("message"))
        rows = yield tell_latency(reactor, a, tells, s)
        rows += yield tell_throughput(reactor, a, tells, s, first=s["tells"])
        rows += yield channel_fanout(reactor, loop, router, svc_b, a, s)
        return rows
    finally:
        yield loop.stop()


def memory_rows(s):
    """RSS around `sessions` detached sessions holding `events` events each."""
    from intermud3.api.sessions import SessionManager
    from intermud3.events import EventHub
    from intermud3.metrics import Metrics

    class Gone:
        """A connection that is closed at once: only its session remains."""
        transport_name, peer, session = "tcp", "127.0.0.1:1", None

        def send_message(self, data):
            pass

        def close(self, reason):
            pass

    config = gateway_config("MudB", type("R", (), {"name": "*bench", "port": 1})(), tempfile.gettempdir())
    clock = Clock()
    clock.advance(time.time())
    metrics = Metrics(CollectorRegistry())
    sessions = SessionManager(config, clock, metrics=metrics)
    hub = EventHub(sessions, clock=clock, metrics=metrics)
    before = common.rss_bytes()
    if before is None:
        return [common.skipped(BENCH, "memory", "no /proc/self/statm")]
    for _ in range(s["sessions"]):
        connection = Gone()
        sessions.authenticate(connection, API_KEY)
        sessions.detach(connection)
    for i in range(s["events"]):
        hub.publish("tell_received", {"from_mud": "MudA", "from_user": "alice", "to_mud": "MudB",
                                      "to_user": "bob", "visname": "Alice",
                                      "message": f"queued message number {i} for a detached session"},
                    permission="tell")
    after = common.rss_bytes()
    held = sum(len(session.queue) for session in sessions.sessions())
    if sessions.detached_count() != s["sessions"] or held != s["sessions"] * s["events"]:
        raise RuntimeError(f"expected {s['sessions']} sessions holding {s['events']} events, "
                           f"got {sessions.detached_count()} holding {held}")
    detail = f"{s['sessions']} detached sessions x {s['events']} events"
    mib = 1024 * 1024
    return [
        common.row(BENCH, "RSS before sessions", before / mib, "MiB", "whole process"),
        common.row(BENCH, "RSS after sessions", after / mib, "MiB", detail),
        common.row(BENCH, "RSS per session", (after - before) / s["sessions"] / 1024, "KiB", detail),
    ]


@defer.inlineCallbacks
def measure(reactor, quick=False, **sizes):
    """Deferred[rows]: the loopback figures, then the memory figures."""
    s = {**(QUICK if quick else FULL), **sizes}
    rows = yield loopback_rows(reactor, s)
    rows += memory_rows(s)
    return rows


def run(quick=False, **sizes):
    """Run the reactor once around `measure` (so: once per process)."""
    return common.run_reactor_once(measure, quick, sizes)


def _log_warnings_to_stderr():
    from twisted.logger import FilteringLogObserver, LogLevel, LogLevelFilterPredicate
    from twisted.logger import globalLogBeginner, textFileLogObserver
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.warn)
    globalLogBeginner.beginLoggingTo(
        [FilteringLogObserver(textFileLogObserver(sys.stderr), [predicate])],
        redirectStandardIO=False)


if __name__ == "__main__":
    _log_warnings_to_stderr()
    raise SystemExit(common.main(run))
