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
``backoff`` (how long to wait), ``writer.RouterWriter`` (encoding, pacing,
counting what we write), ``closing.Closing`` (the bounded close at stop),
``stats.LinkStats`` (counters), ``persistence`` (passwords and lists,
observers of received packets).
"""

import dataclasses

from twisted.application.service import Service
from twisted.internet.defer import fail
from twisted.internet.interfaces import IReactorTCP
from twisted.logger import Logger

from intermud3.endofturn import EndOfTurn
from intermud3.link.backoff import configured_policy
from intermud3.link.closing import Closing
from intermud3.link.protocol import RouterFactory, router_endpoint, startup_packet
from intermud3.link.rotation import RouterRotation, parse_router_list
from intermud3.link.stats import LinkStats
from intermud3.link.writer import RouterWriter
from intermud3.packets import make

__all__ = ["RouterLink", "STATES"]

# One log component, `link`, for the whole package (logging.components).
_log = Logger(namespace="intermud3.link")

STATES = ("connecting", "handshaking", "ready", "backoff", "stopped")


class RouterLink(Service):
    """The gateway's link to the I3 router network (docs/ARCHITECTURE.md).

    ``config`` is the whole configuration (`config.Config`; ``mud`` and the
    ``router`` section are read live, after ``reconfigure``); ``store``
    gives the stored record (password, list ids) sent in startup-req-3.
    Injectable: ``connector(router) -> IStreamClientEndpoint`` and
    ``backoff(failures) -> seconds`` (default: ``router.backoff``).
    """

    name = "router-link"
    # How long stopService waits for the socket to close before aborting it.
    close_timeout = 5.0

    def __init__(self, config, store, *, clock=None, connector=None, metrics=None, backoff=None,
                 end_of_turn=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.clock = clock
        # Sends frames at the end of the turn that wrote them (endofturn.py).
        self.end_of_turn = end_of_turn if end_of_turn is not None else EndOfTurn(clock)
        self._connector = connector if connector is not None else self._endpoint
        self._config = config
        self.store = store
        self.metrics = metrics
        self.stats = LinkStats(metrics)
        self.rotation = RouterRotation(_entries(config.routers))
        self.backoff = backoff if backoff is not None else configured_policy(
            lambda: self._config.router.backoff)

        self.state = "stopped"
        self.router = None             # the router tried or used, while not in backoff
        self.connected_since = None
        # router name -> True (answers our probes) / False (never does).
        self.answers_probes = {}
        # Observers of every packet received: on_packet_from(router name,
        # packet) first (persistence), then the link itself, then on_packet(packet).
        self.on_packet_from = []
        self.on_packet = []
        self.on_state = []
        self.on_ready = []
        self.writer = RouterWriter(clock, lambda: self._config.router, lambda: self.ready, metrics)
        self.pacer, self.lane = self.writer.pacer, self.writer.lane
        self.on_writable = self.lane.on_writable
        # The send path, the writer's own methods (RouterWriter's docstrings).
        self.encode, self.send, self.try_send = self.writer.encode, self.writer.send, self.writer.try_send
        self.reserve, self.write_reserved = self.writer.reserve, self.writer.write_reserved
        self.write_frame = self.writer.write

        self._failures = 0           # failed attempts since the last startup-reply
        self._attempts = 0           # connection attempts since startService
        self._attempt = 0            # the attempt whose results count; older ones are stale
        self._connecting = None      # its Deferred, until TCP is up
        self._backoff_call = None
        self._closing = Closing(clock, self.close_timeout)

    @property
    def mud_name(self):
        return self._config.mud.name

    @property
    def ready(self):
        return self.state == "ready"

    @property
    def connection(self):
        """The connection in use, or None (its identity changes on reconnect)."""
        return self.writer.connection

    # Counters, read by `stats`, `/health` and `intermud3 doctor`.
    packets_sent = property(lambda self: self.writer.packets_sent)
    packets_received = property(lambda self: self.stats.packets_received)
    decode_errors = property(lambda self: self.stats.decode_errors)
    quote_repairs = property(lambda self: self.stats.quote_repairs)
    reconnects = property(lambda self: self.stats.reconnects)
    recent_failures = property(lambda self: self.stats.recent_failures)

    def reconfigure(self, config):
        """Take a new configuration: timings at once; a new ``mud.name`` or
        router list re-opens the link (on the first router of the new list)."""
        old, self._config = self._config, config
        self.pacer.set_rate(config.router.send_rate)
        protocol = self.writer.connection
        if protocol is not None:
            protocol.settings = config.router
            protocol.max_frame_bytes = config.router.max_frame_bytes
            if protocol.heartbeating:
                protocol.startHeartbeat()
        if old.mud.name != config.mud.name or old.routers != config.routers:
            self.rotation.reset(_entries(config.routers))
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
        protocol = self.writer.connection
        if protocol is not None and self.ready:
            try:
                self.write_frame(self.encode(make("shutdown", self.mud_name, 0,
                                                  protocol.router["name"], 0, 0)))
            except Exception:
                _log.failure("Could not send shutdown to the router")
        self.writer.connection = None
        self._teardown("service stopped")
        self.router = None
        if protocol is not None:
            protocol.abandon()
        done = self._closing.close(protocol)
        self._set_state("stopped", "service stopped")
        return done

    def reconnect(self, reason):
        """Drop the connection (if any) and open a new one at once, to the
        router in use (or about to be tried) first."""
        if not self.running:
            return
        in_use = self.rotation.named(self.router["name"]) if self.router is not None else None
        self._reopen(in_use or self.rotation.current(), reason)

    def _reopen(self, router, reason):
        target = self.rotation.choose(router)
        if self.writer.connection is not None:
            self.writer.connection.drop(reason, then=target)   # connection_lost connects there
            return
        self._cancel_backoff()
        self._cancel_connecting()
        self._connect(target, reason)

    # -- connecting -------------------------------------------------------------

    def _endpoint(self, router):
        reactor = self.clock
        if not IReactorTCP.providedBy(reactor):
            from twisted.internet import reactor
        return router_endpoint(reactor, router, self._config.router.connect_timeout)

    def _connect(self, router, reason):
        self._cancel_backoff()
        self._attempt += 1
        self._attempts += 1
        if self._attempts > 1:
            self.stats.reconnecting(router["name"])
        self.router = router
        factory = RouterFactory(self, router, self._attempt, self._config.router, self.answers_probes)
        try:
            connecting = self._connector(router).connect(factory)
        except Exception as error:
            connecting = fail(error)
        connecting.addTimeout(self._config.router.connect_timeout, self.clock)
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
        if (protocol.factory.attempt != self._attempt or not self.running
                or self.writer.connection is not None):
            return False
        self.writer.connection = protocol
        return True

    def handshaking(self, protocol):
        self._set_state("handshaking", "connected")

    def startup_frame(self, router):
        """startup-req-3 for ``router`` with what we stored for it under our
        MUD name (password, list ids; 0 when none)."""
        try:
            record = self.store.router_record(router["name"], self.mud_name)
        except Exception:
            _log.failure("Could not read the stored record of router {router}", router=router["name"])
            record = {}
        return self.encode(startup_packet(self._config.mud, router["name"], record))

    def packet_received(self, protocol, packet):
        _notify(self.on_packet_from, "on_packet_from", protocol.router["name"], packet)
        if packet.type == "startup-reply":
            self._startup_reply(protocol, packet)
        _notify(self.on_packet, "on_packet", packet)

    def _startup_reply(self, protocol, packet):
        self._failures = 0   # the only proof a router works: the backoff starts over
        listed = parse_router_list(packet.get("router_list"))
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
        _notify(self.on_ready, "on_ready")
        self.lane.release()

    def connection_lost(self, protocol, reason):
        if self._closing.lost(protocol):
            return
        if protocol is not self.writer.connection:
            return  # never accepted, or one whose close was given up on
        self.writer.connection = None
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
        _notify(self.on_state, "on_state", state, reason)


def _notify(observers, name, *args):
    """Call each observer in turn; one that raises is logged and the others
    still run."""
    for observer in list(observers):
        try:
            observer(*args)
        except Exception:
            _log.failure("{observers} observer failed", observers=name)


def _entries(routers):
    """config.routers (RouterEntry objects) as the mappings the rotation keeps:
    it adds routers learned from the network in the same shape."""
    return [dataclasses.asdict(router) for router in routers]
