"""The router link: one MudMode connection to an I3 router, kept alive.

A small reconnect loop of our own rather than ``ClientService`` (DESIGN.md,
"Twisted facts that bite"): each attempt picks its router (failover walks
the list, a ``startup-reply`` may redirect), the handshake lives inside the
protocol with its own timeout, and the backoff resets only on a
``startup-reply``, never on a bare TCP connect.

States: ``connecting`` (TCP) -> ``handshaking`` (startup-req-3 sent) ->
``ready`` (startup-reply received); any failure -> ``backoff`` -> the next
router; ``stopped`` before start and after stop.

Outbound packets go through the link's PacedLane (outbound.py) so the
router's flood control never blocks us; see ``send`` and ``try_send``.

Half-open links (the router's process frozen, TCP still up): after
``keepalive_interval`` seconds with nothing from the router we probe it
with an ``auth-mud-req`` addressed to ourselves. Routers differ: the Dead
Souls router sends it back, CoffeeMud's only logs it. So the link learns,
per router, whether probes are answered: an answer marks the router
"answers probes", and from then on a probe unanswered for
``keepalive_timeout`` seconds, with nothing else heard, drops the link. A
probe that goes unanswered while the router says nothing else proves
nothing on a router not known to answer: it is marked "does not answer"
and no longer probed (no log noise there, no false alarm on an idle link);
such a link relies on any inbound traffic and on TCP keepalive, which the
kernel runs on the same timings.
"""

import collections
import math
import random as _random
import secrets
import socket

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from intermud3 import lpc, lpc_repair
from intermud3.logsetup import debug_wanted
from intermud3.mudmode import MudModeProtocol, foreign_protocol
from intermud3.outbound import OutFrame, PacedLane, encode
from intermud3.packets import FIELDS, PacketError, make, parse
from intermud3.pacer import Pacer
from intermud3.trace import PacketSummary

__all__ = ["RouterLink", "STATES"]

_log = Logger()

STATES = ("connecting", "handshaking", "ready", "backoff", "stopped")

# Routers learned from startup-reply router lists join the failover rotation;
# a hostile router must not grow it without bound.
MAX_LEARNED_ROUTERS = 16
# Link failures kept for /health's router.last_errors.
RECENT_FAILURES = 5

# Packet types outside FIELDS are counted under one label: metric label
# values must not be chosen by whoever talks to the router.
_OTHER_TYPE = "other"


def _type_label(ptype):
    return ptype if ptype in FIELDS else _OTHER_TYPE


def parse_router_list(value):
    """``({({"*name","ip port",}),...})`` -> [{"name","host","port","tls"}].

    Entries that do not read as a name and an "address port" pair are
    skipped: the list is advice from the network, not a command.
    """
    routers = []
    if not isinstance(value, (list, tuple)):
        return routers
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            continue
        name, address = entry[0], entry[1]
        if not isinstance(name, str) or not name or not isinstance(address, str):
            continue
        parts = address.split()
        if len(parts) != 2:
            continue
        try:
            port = int(parts[1])
        except ValueError:
            continue
        if not 0 < port < 65536:
            continue
        routers.append({"name": name, "host": parts[0], "port": port, "tls": False})
    return routers


class _RouterProtocol(MudModeProtocol):
    """One connection to one router; everything it hears goes to the link."""

    def __init__(self, link, router, attempt):
        self.link = link
        self.router = router
        self.attempt = attempt
        # Set by the link before it closes this connection on purpose:
        # ("connect", router) to go straight there, "stop", or None (a failure).
        self.close_action = None
        self.close_reason = None

    def connectionMade(self):
        super().connectionMade()
        self.link._connected(self)

    def dataReceived(self, data):
        self.link._bytes_in(self, len(data))
        super().dataReceived(data)

    def lengthLimitExceeded(self, length):
        if self.close_reason is None:
            self.close_reason = (foreign_protocol(length)
                                 or f"router announced a frame of {length} bytes, over max_frame_bytes")
        super().lengthLimitExceeded(length)

    def stringReceived(self, string):
        self.last_frame_size = len(string)  # for the debug trace
        super().stringReceived(string)

    def packetReceived(self, value):
        self.link._received(self, value)

    def decodeFailed(self, error, raw):
        # Some routers (CoffeeMud's) write a quote inside a string unescaped.
        value = lpc_repair.recover(raw, max_depth=self.max_depth)
        if value is None:
            self.link._decode_failed(self, error, len(raw))
        else:
            self.link._repaired(self, error)
            try:
                self.packetReceived(value)
            except Exception:
                _log.failure("Handling a repaired packet failed")

    def connectionLost(self, reason):
        super().connectionLost(reason)   # stops a sliced decode under way
        self.link._lost(self, reason)


class _RouterFactory(Factory):
    def __init__(self, link, router, attempt):
        self.link = link
        self.router = router
        self.attempt = attempt

    def buildProtocol(self, addr):
        protocol = _RouterProtocol(self.link, self.router, self.attempt)
        protocol.factory = self
        protocol.clock = self.link._clock   # big frames are decoded in slices on it
        protocol.max_frame_bytes = int(self.link._timing("max_frame_bytes"))
        return protocol


class RouterLink(Service):
    """The gateway's link to the I3 router network (docs/ARCHITECTURE.md).

    ``config`` is the whole configuration dict (CONFIG.md); ``store`` the
    StateStore (router passwords and list ids, per router and MUD name);
    ``lists`` the NetworkLists fed by mudlist and chanlist-reply packets.
    ``connector(router) -> IStreamClientEndpoint`` and ``random() -> float
    in [0, 1)`` (backoff jitter) are injectable for tests.
    """

    name = "router-link"
    # How long stopService waits for the socket to close before aborting it.
    close_timeout = 5.0

    def __init__(self, config, store, lists, *, clock=None, connector=None, metrics=None,
                 random=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self._connector = connector if connector is not None else self._default_connector
        self._random = random if random is not None else _random.random
        self._config = config
        self.store = store
        self.lists = lists
        self.metrics = metrics
        if metrics is not None:
            # Read at each scrape, so lists loaded from the store count too.
            metrics.mudlist_size.set_function(lambda: len(self.lists.muds))
            metrics.chanlist_size.set_function(lambda: len(self.lists.channels))

        self.state = "stopped"
        self.router = None
        self.connected_since = None
        self.router_list = []          # the last startup-reply's list, parsed
        self.packets_sent = 0
        self.packets_received = 0
        # The last few failures, for /health and `intermud3 doctor`.
        self.recent_failures = collections.deque(maxlen=RECENT_FAILURES)
        self.reconnects = 0
        self.decode_errors = 0
        self.quote_repairs = 0      # frames read by lpc_repair after failing

        self.on_packet = []
        self.on_state = []
        self.on_ready = []
        self.pacer = Pacer(clock, self._timing("send_rate"))
        self.lane = PacedLane(self.pacer, clock, write=self._write, is_ready=lambda: self.ready,
                              max_held=lambda: self._max_held)
        self.on_writable = self.lane.on_writable
        self._routers = [dict(r) for r in config["routers"]]
        self._learned = 0
        self._index = 0              # the rotation entry being tried or used
        self._failures = 0           # failed attempts since the last startup-reply
        self._attempts = 0           # connection attempts since startService
        self._redirect_allowed = True
        self._generation = 0         # stale connect results and protocols are ignored
        self._protocol = None
        self._closing = None         # the connection stopService is closing
        self._connecting = None
        self._last_inbound = None    # when the router was last heard (any bytes)
        self._probe_sent_at = None   # the unanswered keepalive probe, if any
        # router name -> True (answers our probes) / False (never does).
        self.answers_probes = {}

        self._backoff_call = None
        self._startup_call = None
        self._handshake_call = None
        self._ping_call = None       # the next keepalive check
        self._close_call = None
        self._close_waiters = []
        self._sent_counters = {}      # packet type label -> bound counter


    # -- configuration ----------------------------------------------------

    def _timing(self, key):
        return self._config["router"][key]

    @property
    def mud_name(self):
        return self._config["mud"]["name"]

    @property
    def ready(self):
        return self.state == "ready"

    @property
    def _max_held(self):
        # The in-memory hold is an outbound queue too: same bound as the outbox.
        queue = self._config["router"].get("queue") or {}
        return int(queue.get("max_messages", 1000))

    def reconfigure(self, config):
        """Take a new configuration: timings at once; a new ``mud.name`` or
        router list re-opens the link (on the first router of the new list)."""
        old = self._config
        self._config = config
        self.pacer.set_rate(self._timing("send_rate"))
        if self._ping_call is not None and self._ping_call.active():
            # Due from the last traffic, not from now: reloads must not
            # keep putting the check off.
            self._ping_call.cancel()
            self._ping_call = None
            self._schedule_keepalive(self._protocol)
        if self._protocol is not None:
            self._protocol.max_frame_bytes = int(self._timing("max_frame_bytes"))
        if (old["mud"]["name"] != config["mud"]["name"]
                or old["routers"] != config["routers"]):
            self._routers = [dict(r) for r in config["routers"]]
            self._learned = 0
            self._index = 0
            if self.running:
                self._reopen(self._routers[0], "configuration changed")

    # -- service ----------------------------------------------------------

    def startService(self):
        Service.startService(self)
        self._failures = 0
        self._attempts = 0
        self._redirect_allowed = True
        self._index = 0
        if not self._routers:
            _log.error("No router configured: the router link stays down")
            return
        self._connect(self._routers[0], "service started")

    def stopService(self):
        """Send ``shutdown`` (restart_delay 0) when ready, close the socket and
        stop every timer. The Deferred fires once the connection is closed, or
        after ``close_timeout`` seconds, when the socket is aborted instead."""
        Service.stopService(self)
        self._generation += 1
        self._cancel_backoff()
        self._cancel_connecting()
        protocol, self._protocol = self._protocol, None
        if protocol is not None and self.ready:
            shutdown = make("shutdown", self.mud_name, 0, protocol.router["name"], 0, 0)
            try:
                self._write_to(protocol, self.encode(shutdown))
            except Exception:
                _log.failure("Could not send shutdown to the router")
        self._teardown("service stopped")
        self.router = None
        self._set_state("stopped", "service stopped")
        if protocol is None and self._closing is None:
            return succeed(None)
        waiter = Deferred()
        self._close_waiters.append(waiter)
        if protocol is not None:
            # A connection still closing from an earlier stop is left to its timer.
            if self._closing is not None:
                self._closing.transport.abortConnection()
            protocol.close_action = "stop"
            self._closing = protocol
            if self._close_call is not None and self._close_call.active():
                self._close_call.cancel()
            self._close_call = self._clock.callLater(self.close_timeout, self._force_close, protocol)
            protocol.transport.loseConnection()
        return waiter

    def _force_close(self, protocol):
        self._close_call = None
        _log.warn("The router connection did not close in {seconds}s; aborting it",
                  seconds=self.close_timeout)
        protocol.transport.abortConnection()
        self._closing = None
        self._release_close_waiters()

    def _release_close_waiters(self):
        if self._close_call is not None and self._close_call.active():
            self._close_call.cancel()
        self._close_call = None
        waiters, self._close_waiters = self._close_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def reconnect(self, reason):
        """Drop the connection (if any) and open a new one at once, to the
        router in use (or about to be tried) first."""
        if not self.running:
            return
        self._reopen(self._preferred(), reason)

    def _preferred(self):
        if self.router is not None:
            for entry in self._routers:
                if entry["name"] == self.router["name"]:
                    return entry
        return self._routers[self._index % len(self._routers)]

    def _reopen(self, target, reason):
        self._redirect_allowed = True
        self._index = self._rotation_index(target)
        protocol = self._protocol
        if protocol is not None:
            protocol.close_action = ("connect", target)
            protocol.close_reason = reason
            protocol.transport.abortConnection()
            return
        self._cancel_backoff()
        self._cancel_connecting()
        self._connect(target, reason)

    # -- connecting -------------------------------------------------------

    def _default_connector(self, router):
        from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
        from twisted.internet.interfaces import IReactorTCP
        reactor = self._clock
        if not IReactorTCP.providedBy(reactor):
            from twisted.internet import reactor
        endpoint = HostnameEndpoint(reactor, str(router["host"]), int(router["port"]),
                                    timeout=float(self._timing("connect_timeout")))
        if router.get("tls"):
            from twisted.internet.ssl import optionsForClientTLS
            endpoint = wrapClientTLS(optionsForClientTLS(str(router["host"])), endpoint)
        return endpoint

    def _rotation_index(self, router):
        for index, entry in enumerate(self._routers):
            if entry["name"] == router["name"]:
                return index
        self._routers.append(dict(router))
        return len(self._routers) - 1

    def _connect(self, router, reason):
        self._cancel_backoff()
        self._generation += 1
        attempt = self._generation
        self._attempts += 1
        if self._attempts > 1:
            self.reconnects += 1
            if self.metrics is not None:
                self.metrics.router_reconnects.labels(router=router["name"]).inc()
        self.router = router
        self._set_state("connecting", reason)
        if attempt != self._generation:
            return  # an on_state observer stopped or re-opened the link
        try:
            connecting = self._connector(router).connect(_RouterFactory(self, router, attempt))
        except Exception as error:
            connecting = fail(error)
        connecting.addTimeout(float(self._timing("connect_timeout")), self._clock)
        self._connecting = connecting
        connecting.addCallbacks(self._connect_done, self._connect_failed,
                                callbackArgs=(attempt,), errbackArgs=(attempt,))

    def _connect_done(self, protocol, attempt):
        if attempt == self._generation:
            self._connecting = None

    def _connect_failed(self, failure, attempt):
        if attempt != self._generation:
            return None  # cancelled by us: stop, reconnect or reconfigure
        self._connecting = None
        self._failed(f"connect failed: {failure.getErrorMessage() or failure.type.__name__}")
        return None

    def _cancel_connecting(self):
        connecting, self._connecting = self._connecting, None
        if connecting is not None:
            self._generation += 1
            connecting.cancel()

    def _connected(self, protocol):
        if protocol.attempt != self._generation or not self.running or self._protocol is not None:
            protocol.close_action = "stop"
            protocol.transport.abortConnection()
            return
        self._protocol = protocol
        self._last_inbound = self._clock.seconds()
        self._tune_tcp_keepalive(protocol.transport)
        self._set_state("handshaking", "connected")
        if protocol is not self._protocol:
            return
        self._send_startup(protocol)

    def _send_startup(self, protocol):
        """Write startup-req-3 once the pacer allows it (a router counts it
        as 6 of the 10 packets a MUD may send in one second: reconnecting
        right after a busy second would get us blocked), then time the
        handshake."""
        self._startup_call = None
        if protocol is not self._protocol:
            return
        wait = self.pacer.next_opening("startup-req-3")
        if wait > 0:
            self._startup_call = self._clock.callLater(wait, self._send_startup, protocol)
            return
        startup = self._startup_packet(protocol.router)
        self._write(self.encode(startup))
        self._handshake_call = self._clock.callLater(
            float(self._timing("handshake_timeout")), self._handshake_timed_out, protocol)

    def _startup_packet(self, router):
        mud = self._config["mud"]
        try:
            record = self.store.router_record(router["name"], self.mud_name)
        except Exception:
            _log.failure("Could not read the stored record of router {router}", router=router["name"])
            record = {"password": 0, "mudlist_id": 0, "chanlist_id": 0}
        return make(
            "startup-req-3", self.mud_name, 0, router["name"], 0,
            lpc.int_or_zero(record["password"]), lpc.int_or_zero(record["mudlist_id"]),
            lpc.int_or_zero(record["chanlist_id"]),
            int(mud["port"]), 0, 0,
            mud["mudlib"], mud["base_mudlib"], mud["driver"], mud["mud_type"],
            mud["open_status"], mud["admin_email"], dict(mud["services"]), 0)

    def _handshake_timed_out(self, protocol):
        self._handshake_call = None
        if protocol is not self._protocol:
            return
        protocol.close_reason = "no startup-reply within handshake_timeout"
        protocol.transport.abortConnection()

    def _failed(self, reason):
        self._failures += 1
        delay = self._backoff_delay(self._failures)
        self._index = (self._index + 1) % len(self._routers)
        self._redirect_allowed = True
        failed = self.router["name"] if self.router is not None else "-"
        self.recent_failures.append({"at": self._clock.seconds(), "router": failed, "reason": reason})
        self.router = None
        self._set_state("backoff", reason, router=failed)
        if self.state != "backoff" or not self.running:
            return  # an on_state observer stopped or re-opened the link
        # A warning, so `level: warn` still shows why the link is down.
        _log.warn("Router link to {router} failed: {reason}; next try {next_router} in {delay:.2f}s "
                  "(failure {count} in a row)", router=failed, reason=reason,
                  next_router=self._routers[self._index]["name"], delay=delay, count=self._failures)
        self._backoff_call = self._clock.callLater(delay, self._retry)

    def _retry(self):
        self._backoff_call = None
        if self.running:
            self._connect(self._routers[self._index], "retrying")

    def _backoff_delay(self, failures):
        """Exponential delay for the n-th failure in a row, with jitter.

        ``jitter``: true or "equal" -> between half and all of the delay
        (never near zero: a router that takes TCP and never answers is not
        hammered); "full" -> anywhere from 0 to the delay; false -> none.
        """
        policy = self._timing("backoff")
        initial = float(policy.get("initial", 1))
        ceiling = float(policy.get("max", 300))
        factor = float(policy.get("factor", 2))
        try:
            delay = initial * math.pow(factor, min(failures - 1, 1000))
        except OverflowError:
            delay = ceiling
        delay = min(ceiling, delay)
        jitter = policy.get("jitter", True)
        if jitter == "full":
            delay = delay * self._random()
        elif jitter is True or jitter == "equal":
            delay = delay / 2 + (delay / 2) * self._random()
        return delay

    def _cancel_backoff(self):
        call, self._backoff_call = self._backoff_call, None
        if call is not None and call.active():
            call.cancel()

    # -- the connection ends ------------------------------------------------

    def _lost(self, protocol, reason):
        if protocol is self._closing:
            self._closing = None
            self._release_close_waiters()
            return
        if protocol is not self._protocol:
            return  # a stale attempt, or one _force_close already gave up on
        self._protocol = None
        why = protocol.close_reason or reason.getErrorMessage() or "connection lost"
        action = protocol.close_action
        self._teardown(why)
        if action == "stop" or not self.running:
            return
        if isinstance(action, tuple) and action[0] == "connect":
            self._connect(action[1], why)
        else:
            self._failed(why)

    def _teardown(self, why):
        """Forget the connection's timers, held packets and ready state."""
        for call in (self._startup_call, self._handshake_call, self._ping_call):
            if call is not None and call.active():
                call.cancel()
        self._startup_call = self._handshake_call = self._ping_call = None
        self._probe_sent_at = None
        self.lane.drop(f"the router link went down ({why})")
        if self.connected_since is not None:
            self.connected_since = None
            if self.metrics is not None and self.router is not None:
                self.metrics.router_connected.labels(router=self.router["name"]).set(0)

    # -- inbound ------------------------------------------------------------

    def _bytes_in(self, protocol, count):
        if protocol is not self._protocol:
            return
        self._last_inbound = self._clock.seconds()   # any traffic at all shows life
        if self.metrics is not None:
            self.metrics.router_bytes_received.inc(count)

    def _decode_failed(self, protocol, error, size):
        self.decode_errors += 1
        if self.metrics is not None:
            self.metrics.packet_decode_errors.inc()
        _log.warn("Skipped an undecodable frame of {size} bytes from router {router}: {error}",
                  size=size, router=protocol.router["name"], error=str(error))

    def _repaired(self, protocol, error):
        self.quote_repairs += 1
        if self.metrics is not None:
            self.metrics.packet_quote_repairs.inc()
        _log.info("Read a frame from router {router} by escaping its stray quotes ({error})",
                  router=protocol.router["name"], error=str(error))

    def _received(self, protocol, value):
        if protocol is not self._protocol:
            return
        try:
            packet = parse(value)
        except PacketError as error:
            self._decode_failed(protocol, error, len(repr(value)))
            return
        self.packets_received += 1
        if self.metrics is not None:
            self.metrics.packets_received.labels(type=_type_label(packet.type)).inc()
        if debug_wanted():
            _log.debug("Packet in: {type} from router {router}, {size} bytes: {summary}",
                       type=packet.type, router=protocol.router["name"],
                       size=getattr(protocol, "last_frame_size", 0), summary=PacketSummary(value))
        ptype = packet.type
        if ptype == "startup-reply":
            self._startup_reply(protocol, packet)
            if protocol is not self._protocol or protocol.close_action is not None:
                return  # redirected: this connection is on its way out
        elif ptype == "mudlist":
            self._apply_list(self.lists.apply_mudlist, protocol, packet, "mudlist_id", "info_mapping")
        elif ptype == "chanlist-reply":
            self._apply_list(self.lists.apply_chanlist, protocol, packet, "chanlist_id", "channel_list")
        elif ptype == "auth-mud-req":
            if packet.o_mud == self.mud_name:
                self._probe_answered(protocol)
                return  # our own keepalive coming back: life, nothing more
            if packet.t_mud == self.mud_name and isinstance(packet.o_mud, str) and packet.o_mud:
                self._answer_auth(packet)   # (an originator that is no name has no answer)
        for observer in list(self.on_packet):
            try:
                observer(packet)
            except Exception:
                _log.failure("on_packet observer failed on a {type} packet", type=ptype)

    def _apply_list(self, apply, protocol, packet, id_field, delta_field):
        delta = packet.get(delta_field)
        list_id = packet.get(id_field)
        if not isinstance(delta, dict):
            _log.warn("Ignored a {type} packet whose list is not a mapping", type=packet.type)
            return
        try:
            apply(protocol.router["name"], self.mud_name, list_id, delta)
        except Exception:
            _log.failure("Could not apply a {type} packet of {count} entries",
                         type=packet.type, count=len(delta))

    def _answer_auth(self, packet):
        reply = make("auth-mud-reply", self.mud_name, 0, packet.o_mud, 0, secrets.randbelow(2 ** 31))
        try:
            self.send(reply)
        except Exception:
            _log.failure("Could not answer auth-mud-req from {mud}", mud=packet.o_mud)

    def _startup_reply(self, protocol, packet):
        if self._handshake_call is not None and self._handshake_call.active():
            self._handshake_call.cancel()
        self._handshake_call = None
        self._failures = 0   # the only proof a router works: the backoff starts over
        router = protocol.router
        password = packet.get("password")
        if lpc.int_or_zero(password):
            try:
                self.store.save_password(router["name"], self.mud_name, password)
            except Exception:
                _log.failure("Could not save the password of router {router}", router=router["name"])
        listed = parse_router_list(packet.get("router_list"))
        self.router_list = listed
        self._learn(listed)
        if listed and listed[0]["name"] != router["name"] and self._redirect_allowed:
            self._redirect_allowed = False
            self._index = self._rotation_index(listed[0])
            target = self._routers[self._index]
            _log.info("Router {router} prefers {preferred}; reconnecting there",
                      router=router["name"], preferred=target["name"])
            protocol.close_action = ("connect", target)
            protocol.close_reason = f"redirected to {target['name']}"
            protocol.transport.abortConnection()
            return
        if self.connected_since is None:
            self.connected_since = self._clock.seconds()
        if self.metrics is not None:
            self.metrics.router_connected.labels(router=router["name"]).set(1)
        self._set_state("ready", "startup-reply")
        if protocol is not self._protocol:
            return  # an on_state observer stopped or re-opened the link
        if self._ping_call is None:
            self._schedule_keepalive(protocol)
        for observer in list(self.on_ready):
            try:
                observer()
            except Exception:
                _log.failure("on_ready observer failed")
            if protocol is not self._protocol:
                return
        self.lane.release()

    def _learn(self, listed):
        known = {entry["name"] for entry in self._routers}
        for entry in listed:
            if entry["name"] in known:
                continue
            if self._learned >= MAX_LEARNED_ROUTERS:
                break
            self._routers.append(entry)
            known.add(entry["name"])
            self._learned += 1

    # -- keepalive ------------------------------------------------------------

    def _schedule_keepalive(self, protocol):
        """The next check: when the probe times out, else when the router
        will have been silent for keepalive_interval."""
        if self._probe_sent_at is not None:
            due = self._probe_sent_at + float(self._timing("keepalive_timeout"))
        elif self.answers_probes.get(protocol.router["name"]) is False:
            return   # never probed again; TCP keepalive watches this link
        else:
            due = self._last_inbound + float(self._timing("keepalive_interval"))
        delay = max(0.0, due - self._clock.seconds())
        self._ping_call = self._clock.callLater(delay, self._keepalive_check, protocol)

    def _keepalive_check(self, protocol):
        self._ping_call = None
        if protocol is not self._protocol or not self.ready:
            return
        now = self._clock.seconds()
        name = protocol.router["name"]
        if self._probe_sent_at is not None:
            if now - self._probe_sent_at < float(self._timing("keepalive_timeout")):
                self._schedule_keepalive(protocol)
                return
            heard = self._last_inbound >= self._probe_sent_at
            self._probe_sent_at = None
            if not heard and self.answers_probes.get(name):
                _log.warn("Nothing from router {router} for {seconds}s after a probe it always "
                          "answered; the link is dead", router=name,
                          seconds=self._timing("keepalive_timeout"))
                protocol.close_reason = "keepalive timeout"
                # Learned again on the next link: a router that stopped
                # answering probes costs one reconnect, not one an interval.
                del self.answers_probes[name]
                protocol.transport.abortConnection()
                return
            if name not in self.answers_probes:
                self.answers_probes[name] = False
                _log.info("Router {router} does not answer keepalive probes; relying on its "
                          "traffic and TCP keepalive to notice a dead link", router=name)
        elif (now - self._last_inbound >= float(self._timing("keepalive_interval"))
                and self.answers_probes.get(name) is not False):
            self._probe_sent_at = now
            self.send(make("auth-mud-req", self.mud_name, 0, self.mud_name, 0))
        self._schedule_keepalive(protocol)

    def _probe_answered(self, protocol):
        if protocol is not self._protocol:
            return
        name = protocol.router["name"]
        if not self.answers_probes.get(name):
            _log.info("Router {router} answers keepalive probes", router=name)
        self.answers_probes[name] = True
        self._probe_sent_at = None
        if self._ping_call is not None and self._ping_call.active():
            self._ping_call.cancel()
        self._ping_call = None
        if self.ready:   # (also after a late answer on a link left unprobed)
            self._schedule_keepalive(protocol)

    def _tune_tcp_keepalive(self, transport):
        """Let the kernel probe the router's host on our timings (a host
        that vanished) and give up on data it never acknowledges."""
        handle = getattr(transport, "getHandle", lambda: None)()
        if not isinstance(handle, socket.socket):
            return
        idle = max(1, int(self._timing("keepalive_interval")))
        timeout = max(1, int(self._timing("keepalive_timeout")))
        options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
        for name, value in (("TCP_KEEPIDLE", idle), ("TCP_KEEPINTVL", max(1, timeout // 6)),
                            ("TCP_KEEPCNT", 6), ("TCP_USER_TIMEOUT", (idle + timeout) * 1000)):
            if hasattr(socket, name):
                options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
        for level, option, value in options:
            try:
                handle.setsockopt(level, option, value)
            except OSError as error:
                _log.debug("Cannot set socket option {option}: {error}", option=option, error=error)

    # -- outbound -------------------------------------------------------------

    def encode(self, packet):
        """The packet as an OutFrame, encoded once (outbound.encode);
        Unsendable over ``router.max_send_bytes`` or with no LPC form."""
        if isinstance(packet, OutFrame):
            return packet
        return encode(packet, int(self._timing("max_send_bytes")))

    @property
    def connection(self):
        """The current connection (its identity changes on reconnect)."""
        return self._protocol

    def send(self, packet):
        """Send a packet (a list, a Packet or an OutFrame), paced.

        True: written now. False: either held in memory, in order, until the
        pacer allows (only while the link is ready), or discarded because the
        link is not ready or the hold is full (``router.queue.max_messages``).
        Held packets are discarded when the link drops: callers that must
        not lose a message use the durable outbox. Raises Unsendable before
        anything is held, whatever the link's state.
        """
        return self.lane.send(self.encode(packet))

    def try_send(self, packet):
        """Write now only if ready, the pacer has room and nothing is held;
        never holds. True means written. After a False while ready, the
        on_writable observers are called once there is room again."""
        return self.lane.try_send(self.encode(packet))

    def reserve(self, ptype):
        """Charge the pacer now for a packet written later by
        ``write_reserved`` (PacedLane.reserve)."""
        return self.lane.reserve(ptype)

    def write_reserved(self, out):
        """Write an OutFrame the pacer was already charged for."""
        self._write_to(self._protocol, out, charge=False)

    def _write(self, out):
        self._write_to(self._protocol, out)

    def _write_to(self, protocol, out, charge=True):
        protocol.transport.write(out.data)
        if debug_wanted():
            _log.debug("Packet out: {type} to router {router}, {size} bytes: {summary}",
                       type=out.type, router=protocol.router["name"], size=len(out.data),
                       summary=PacketSummary(value=out.packet, frame=out.data))
        protocol.bytes_sent += len(out.data)
        if charge:
            self.pacer.charge(out.type)
        self.packets_sent += 1
        if self.metrics is not None:
            self._sent_counter(out.type).inc()
            self.metrics.router_bytes_sent.inc(len(out.data))

    def _sent_counter(self, ptype):
        label = _type_label(ptype)
        counter = self._sent_counters.get(label)
        if counter is None:
            counter = self._sent_counters[label] = self.metrics.packets_sent.labels(type=label)
        return counter

    # -- state --------------------------------------------------------------

    def _set_state(self, state, reason, router=None):
        """`router`: the router's name when self.router no longer says it."""
        if state == self.state:
            return
        self.state = state
        if router is None:
            router = self.router["name"] if self.router is not None else "-"
        _log.info("Router link {state}: {reason} (router {router})",
                  state=state, reason=reason, router=router)
        for observer in list(self.on_state):
            try:
                observer(state, reason)
            except Exception:
                _log.failure("on_state observer failed")
