"""The router link: one MudMode connection to an I3 router, kept alive.

States: ``connecting`` (TCP) -> ``handshaking`` (startup-req-3 sent) ->
``ready`` (startup-reply received); any failure -> ``backoff`` -> the next
router; ``stopped`` before start and after stop. The state lives here and
nowhere else; each transition settles the link first and tells the
observers last, so an observer that stops or re-opens the link finds
nothing half done.

Why a loop of our own and not ``ClientService`` (Twisted 26.10 checked):
its retry counter now resets only once ``prepareConnection`` succeeds, so
the handshake could count as connecting, but it holds one endpoint for
good (failover walks the router list, and a ``startup-reply`` may send us
to another router at once, which is no failure and must not wait out a
backoff), it cannot reconnect on demand short of a stop that fails its
waiters, it leaves the socket open when ``prepareConnection`` fails (and
has no transition for that socket's later close while waiting), its stop
waits for the close without bound, and it does not tell ``connecting``
from ``backoff`` (both are on ``/health``). What it does we keep: an
injected clock, endpoint factory (``connector``) and retry policy
(``backoff``, failures -> seconds).

The pieces: ``protocol.RouterProtocol`` (one connection: handshake,
heartbeat), ``rotation.RouterRotation`` (which router next),
``backoff`` (how long to wait), ``stats.LinkStats`` (counters),
``persistence`` (passwords and lists, observers of ``on_packet``).
"""

import secrets

from twisted.application.service import Service
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTCP
from twisted.logger import Logger

from intermud3 import lpc
from intermud3.link.backoff import configured_policy
from intermud3.link.protocol import RouterFactory, router_endpoint
from intermud3.link.rotation import RouterRotation, parse_router_list
from intermud3.link.stats import LinkStats, type_label
from intermud3.outbound import OutFrame, PacedLane, encode
from intermud3.packets import make
from intermud3.pacer import Pacer

__all__ = ["RouterLink", "STATES"]

# One log component, `link`, for the whole package (logging.components).
_log = Logger(namespace="intermud3.link")

STATES = ("connecting", "handshaking", "ready", "backoff", "stopped")


class RouterLink(Service):
    """The gateway's link to the I3 router network (docs/ARCHITECTURE.md).

    ``config`` is the whole configuration (CONFIG.md; ``mud`` and the
    ``router`` section are read live, after ``reconfigure``); ``store``
    gives the stored record (password, list ids) sent in startup-req-3.
    Injectable: ``connector(router) -> IStreamClientEndpoint`` and
    ``backoff(failures) -> seconds`` (default: ``router.backoff``).
    """

    name = "router-link"
    # How long stopService waits for the socket to close before aborting it.
    close_timeout = 5.0

    def __init__(self, config, store, *, clock=None, connector=None, metrics=None, backoff=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        self._connector = connector if connector is not None else self._endpoint
        self._config = config
        self.store = store
        self.metrics = metrics
        self.stats = LinkStats(metrics)
        self.rotation = RouterRotation(config["routers"])
        self.backoff = backoff if backoff is not None else configured_policy(
            lambda: self._config["router"]["backoff"])

        self.state = "stopped"
        self.router = None             # the router tried or used, while not in backoff
        self.connected_since = None
        self.router_list = []          # the last startup-reply's list, parsed
        self.packets_sent = 0
        # router name -> True (answers our probes) / False (never does).
        self.answers_probes = {}
        # Observers of every packet received: on_packet_from(router name,
        # packet) first (persistence), then the link itself, then on_packet(packet).
        self.on_packet_from = []
        self.on_packet = []
        self.on_state = []
        self.on_ready = []
        self.pacer = Pacer(clock, config["router"]["send_rate"])
        # The in-memory hold is an outbound queue too: same bound as the outbox.
        self.lane = PacedLane(self.pacer, clock, write=self.write_frame, is_ready=lambda: self.ready,
                              max_held=lambda: self._config["router"]["queue"]["max_messages"])
        self.on_writable = self.lane.on_writable

        self._failures = 0           # failed attempts since the last startup-reply
        self._attempts = 0           # connection attempts since startService
        self._attempt = 0            # the attempt whose results count; older ones are stale
        self._connecting = None      # its Deferred, until TCP is up
        self._protocol = None        # the connection in use
        self._closing = None         # the connection stopService is closing
        self._backoff_call = None
        self._close_call = None
        self._close_waiters = []
        self._sent_counters = {}     # packet type -> bound metric counter

    @property
    def mud_name(self):
        return self._config["mud"]["name"]

    @property
    def ready(self):
        return self.state == "ready"

    @property
    def connection(self):
        """The current connection (its identity changes on reconnect)."""
        return self._protocol

    # Counters kept by LinkStats, read by `stats`, `/health` and doctor.
    packets_received = property(lambda self: self.stats.packets_received)
    decode_errors = property(lambda self: self.stats.decode_errors)
    quote_repairs = property(lambda self: self.stats.quote_repairs)
    reconnects = property(lambda self: self.stats.reconnects)
    recent_failures = property(lambda self: self.stats.recent_failures)

    def reconfigure(self, config):
        """Take a new configuration: timings at once; a new ``mud.name`` or
        router list re-opens the link (on the first router of the new list)."""
        old, self._config = self._config, config
        self.pacer.set_rate(config["router"]["send_rate"])
        protocol = self._protocol
        if protocol is not None:
            protocol.settings = config["router"]
            protocol.max_frame_bytes = int(config["router"]["max_frame_bytes"])
            if protocol.heartbeating:
                protocol.startHeartbeat()
        if old["mud"]["name"] != config["mud"]["name"] or old["routers"] != config["routers"]:
            self.rotation.reset(config["routers"])
            if self.running:
                self._reopen(self.rotation.first(), "configuration changed")

    # -- service --------------------------------------------------------------

    def startService(self):
        Service.startService(self)
        self._failures = 0
        self._attempts = 0
        if not len(self.rotation):
            _log.error("No router configured: the router link stays down")
            return
        self._connect(self.rotation.first(), "service started")

    def stopService(self):
        """Send ``shutdown`` (restart_delay 0) when ready, close the socket and
        stop every timer. The Deferred fires once the connection is closed, or
        after ``close_timeout`` seconds, when the socket is aborted instead."""
        Service.stopService(self)
        self._cancel_backoff()
        self._cancel_connecting()
        protocol = self._protocol
        if protocol is not None and self.ready:
            try:
                self.write_frame(self.encode(make("shutdown", self.mud_name, 0,
                                                  protocol.router["name"], 0, 0)))
            except Exception:
                _log.failure("Could not send shutdown to the router")
        self._protocol = None
        self._teardown("service stopped")
        self.router = None
        done = succeed(None)
        if protocol is not None or self._closing is not None:
            done = Deferred()
            self._close_waiters.append(done)
        if protocol is not None:
            protocol.abandon()
            if self._closing is not None:   # still closing from an earlier stop
                self._closing.transport.abortConnection()
            self._closing = protocol
            if self._close_call is not None and self._close_call.active():
                self._close_call.cancel()
            self._close_call = self.clock.callLater(self.close_timeout, self._force_close, protocol)
            protocol.transport.loseConnection()
        self._set_state("stopped", "service stopped")
        return done

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
        in_use = self.rotation.named(self.router["name"]) if self.router is not None else None
        self._reopen(in_use or self.rotation.current(), reason)

    def _reopen(self, router, reason):
        target = self.rotation.choose(router)
        if self._protocol is not None:
            self._protocol.drop(reason, then=target)   # connection_lost connects there
            return
        self._cancel_backoff()
        self._cancel_connecting()
        self._connect(target, reason)

    # -- connecting -------------------------------------------------------------

    def _endpoint(self, router):
        reactor = self.clock
        if not IReactorTCP.providedBy(reactor):
            from twisted.internet import reactor
        return router_endpoint(reactor, router, float(self._config["router"]["connect_timeout"]))

    def _connect(self, router, reason):
        self._cancel_backoff()
        self._attempt += 1
        self._attempts += 1
        if self._attempts > 1:
            self.stats.reconnecting(router["name"])
        self.router = router
        factory = RouterFactory(self, router, self._attempt, self._config["router"], self.answers_probes)
        try:
            connecting = self._connector(router).connect(factory)
        except Exception as error:
            connecting = fail(error)
        connecting.addTimeout(float(self._config["router"]["connect_timeout"]), self.clock)
        self._connecting = connecting
        # An observer that stops or re-opens the link cancels `connecting`
        # (a new attempt number): its outcome is then ignored.
        self._set_state("connecting", reason)
        connecting.addCallbacks(self._connect_done, self._connect_failed,
                                callbackArgs=(factory.attempt,), errbackArgs=(factory.attempt,))

    def _connect_done(self, protocol, attempt):
        if attempt == self._attempt:
            self._connecting = None

    def _connect_failed(self, failure, attempt):
        if attempt != self._attempt:
            return None  # cancelled by us: stop, reconnect or reconfigure
        self._connecting = None
        self._failed(f"connect failed: {failure.getErrorMessage() or failure.type.__name__}")
        return None

    def _cancel_connecting(self):
        connecting, self._connecting = self._connecting, None
        self._attempt += 1
        if connecting is not None:
            connecting.cancel()

    def _failed(self, reason):
        self._failures += 1
        delay = self.backoff(self._failures)
        next_router = self.rotation.failed()
        failed = self.router["name"] if self.router is not None else "-"
        self.stats.failed(self.clock.seconds(), failed, reason)
        self.router = None
        # A warning, so `level: warn` still shows why the link is down.
        _log.warn("Router link to {router} failed: {reason}; next try {next_router} in {delay:.2f}s "
                  "(failure {count} in a row)", router=failed, reason=reason,
                  next_router=next_router["name"], delay=delay, count=self._failures)
        self._backoff_call = self.clock.callLater(delay, self._retry)
        self._set_state("backoff", reason, router=failed)

    def _retry(self):
        self._backoff_call = None
        self._connect(self.rotation.current(), "retrying")

    def _cancel_backoff(self):
        call, self._backoff_call = self._backoff_call, None
        if call is not None and call.active():
            call.cancel()

    # -- what the connection tells (RouterProtocol) --------------------------------

    def accept(self, protocol):
        """True when ``protocol`` is the connection the link waits for; it
        is then the one in use. A stale attempt gets False."""
        if protocol.factory.attempt != self._attempt or not self.running or self._protocol is not None:
            return False
        self._protocol = protocol
        return True

    def handshaking(self, protocol):
        self._set_state("handshaking", "connected")

    def startup_frame(self, router):
        """startup-req-3 for ``router`` with what we stored for it under our
        MUD name (password, list ids; 0 when none)."""
        mud = self._config["mud"]
        try:
            record = self.store.router_record(router["name"], self.mud_name)
        except Exception:
            _log.failure("Could not read the stored record of router {router}", router=router["name"])
            record = {"password": 0, "mudlist_id": 0, "chanlist_id": 0}
        return self.encode(make(
            "startup-req-3", self.mud_name, 0, router["name"], 0,
            lpc.int_or_zero(record["password"]), lpc.int_or_zero(record["mudlist_id"]),
            lpc.int_or_zero(record["chanlist_id"]),
            int(mud["port"]), 0, 0,
            mud["mudlib"], mud["base_mudlib"], mud["driver"], mud["mud_type"],
            mud["open_status"], mud["admin_email"], dict(mud["services"]), 0))

    def packet_received(self, protocol, packet):
        for observer in list(self.on_packet_from):
            try:
                observer(protocol.router["name"], packet)
            except Exception:
                _log.failure("on_packet_from observer failed on a {type} packet", type=packet.type)
        if packet.type == "startup-reply":
            self._startup_reply(protocol, packet)
        elif (packet.type == "auth-mud-req" and packet.t_mud == self.mud_name
                and isinstance(packet.o_mud, str) and packet.o_mud):
            # (an originator that is no name has no answer)
            self._answer_auth(packet)
        for observer in list(self.on_packet):
            try:
                observer(packet)
            except Exception:
                _log.failure("on_packet observer failed on a {type} packet", type=packet.type)

    def _startup_reply(self, protocol, packet):
        self._failures = 0   # the only proof a router works: the backoff starts over
        listed = parse_router_list(packet.get("router_list"))
        self.router_list = listed
        self.rotation.learn(listed)
        target = self.rotation.redirect(protocol.router["name"], listed)
        if target is not None:
            _log.info("Router {router} prefers {preferred}; reconnecting there",
                      router=protocol.router["name"], preferred=target["name"])
            protocol.drop(f"redirected to {target['name']}", then=target)
            return
        if self.connected_since is None:
            self.connected_since = self.clock.seconds()
        self.stats.connected(protocol.router["name"], True)
        protocol.startHeartbeat()
        self._set_state("ready", "startup-reply")
        for observer in list(self.on_ready):
            try:
                observer()
            except Exception:
                _log.failure("on_ready observer failed")
        self.lane.release()

    def _answer_auth(self, packet):
        reply = make("auth-mud-reply", self.mud_name, 0, packet.o_mud, 0, secrets.randbelow(2 ** 31))
        try:
            self.send(reply)
        except Exception:
            _log.failure("Could not answer auth-mud-req from {mud}", mud=packet.o_mud)

    def connection_lost(self, protocol, reason):
        if protocol is self._closing:
            self._closing = None
            self._release_close_waiters()
            return
        if protocol is not self._protocol:
            return  # never accepted, or one _force_close already gave up on
        self._protocol = None
        why = protocol.close_reason or reason.getErrorMessage() or "connection lost"
        self._teardown(why)
        if protocol.close_action is not None:
            self._connect(protocol.close_action, why)
        else:
            self._failed(why)

    def _teardown(self, why):
        """Forget the connection's held packets and ready state."""
        self.lane.drop(f"the router link went down ({why})")
        if self.connected_since is not None:
            self.connected_since = None
            if self.router is not None:
                self.stats.connected(self.router["name"], False)

    # -- outbound -----------------------------------------------------------------

    def encode(self, packet):
        """The packet as an OutFrame, encoded once (outbound.encode);
        Unsendable over ``router.max_send_bytes`` or with no LPC form."""
        if isinstance(packet, OutFrame):
            return packet
        return encode(packet, int(self._config["router"]["max_send_bytes"]))

    def send(self, packet):
        """Send a packet (a list, a Packet or an OutFrame), paced; a
        ``outbound.SendResult``:

        SENT: written now. HELD: held in memory, in order, until the pacer
        allows (only while the link is ready). DROPPED: the link is not
        ready or the hold is full (``router.queue.max_messages``).
        Held packets are dropped when the link drops: callers that must
        not lose a message use the durable outbox. Raises Unsendable before
        anything is held, whatever the link's state. Only SENT is true.
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
        self.write_frame(out, charge=False)

    def write_frame(self, out, charge=True):
        """Write an OutFrame to the connection in use now, unpaced (the
        lane and the handshake ask the pacer first) and count it."""
        self._protocol.sendFrame(out)
        if charge:
            self.pacer.charge(out.type)
        self.packets_sent += 1
        if self.metrics is not None:
            counter = self._sent_counters.get(out.type)
            if counter is None:
                counter = self._sent_counters[out.type] = self.metrics.packets_sent.labels(
                    type=type_label(out.type))
            counter.inc()
            self.metrics.router_bytes_sent.inc(len(out.data))

    # -- state ----------------------------------------------------------------------

    def _set_state(self, state, reason, router=None):
        """Tell the observers, last thing of a transition. `router`: the
        router's name when self.router no longer says it."""
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
