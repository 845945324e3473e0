"""One MudMode connection to one router: the handshake and the heartbeat.

``RouterProtocol`` owns its connection's timers: the wait for the pacer
before ``startup-req-3``, the handshake timeout, and the heartbeat. They
all stop in ``connectionLost`` (or ``abandon``), so nothing of an old
connection ever runs against a new one.

Heartbeat (half-open links: the router's process frozen, TCP still up):
after ``keepalive_interval`` seconds with nothing from the router we probe
it with an ``auth-mud-req`` addressed to ourselves. Routers differ: the
Dead Souls router sends it back, CoffeeMud's only logs it. So we learn, per
router (``answers_probes``, kept by the link across connections), whether
probes are answered: an answer marks the router "answers probes", and from
then on a probe unanswered for ``keepalive_timeout`` seconds, with nothing
else heard, drops the link. A probe that goes unanswered while the router
says nothing else proves nothing on a router not known to answer: it is
marked "does not answer" and no longer probed (no log noise there, no false
alarm on an idle link); such a link relies on any inbound traffic and on
TCP keepalive, which the kernel runs on the same timings.
"""

import secrets
import socket

from twisted.internet.protocol import Factory
from twisted.logger import Logger

from intermud3 import lpc, lpc_repair
from intermud3.logsetup import debug_wanted
from intermud3.mudmode import MudModeProtocol, foreign_protocol
from intermud3.packets import PacketError, make, parse
from intermud3.trace import PacketSummary

__all__ = ["RouterProtocol", "RouterFactory", "router_endpoint", "startup_packet"]

# One log component, `link`, for the whole package (logging.components).
_log = Logger(namespace="intermud3.link")


def router_endpoint(reactor, router, timeout):
    """A client endpoint for ``router`` (``{"host","port","tls"}``): TCP,
    wrapped in TLS when ``router["tls"]``."""
    from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
    endpoint = HostnameEndpoint(reactor, str(router["host"]), int(router["port"]), timeout=timeout)
    if router.get("tls"):
        from twisted.internet.ssl import optionsForClientTLS
        endpoint = wrapClientTLS(optionsForClientTLS(str(router["host"])), endpoint)
    return endpoint


def startup_packet(mud, router, record):
    """startup-req-3 to ``router`` (a name) for the ``mud`` configuration
    section, with the stored ``record`` (password, list ids): a value LPC
    cannot write back, or none, counts as 0."""
    return make(
        "startup-req-3", mud.name, 0, router, 0,
        lpc.int_or_zero(record.get("password")), lpc.int_or_zero(record.get("mudlist_id")),
        lpc.int_or_zero(record.get("chanlist_id")),
        mud.port, 0, 0,
        mud.mudlib, mud.base_mudlib, mud.driver, mud.mud_type,
        mud.open_status, mud.admin_email, dict(mud.services), 0)


class RouterProtocol(MudModeProtocol):
    """One connection to ``router``. Set by the factory: ``link`` (the
    RouterLink: ``accept``, ``handshaking``, ``packet_received``,
    ``connection_lost``, ``write_frame``, ``startup_frame``, ``send``,
    ``pacer``, ``stats``, ``mud_name``), ``clock``, ``settings`` (the
    ``router`` configuration section, replaced on reload) and
    ``answers_probes``."""

    # Set when this connection is closed on purpose (drop): why, and the
    # router the link connects to next (None: it counts as a failure).
    close_reason = None
    close_action = None
    last_frame_size = 0      # for the debug trace
    _deaf = False            # abandoned: nothing more is read
    _handshake = None        # the startup's wait for the pacer, then its timeout
    heartbeating = False     # the handshake is done: the link is watched
    _heartbeat = None        # the next keepalive check
    _probe_sent_at = None    # the unanswered keepalive probe, if any

    def __init__(self, router):
        self.router = router

    # -- the connection -----------------------------------------------------

    def connectionMade(self):
        super().connectionMade()
        if not self.link.accept(self):
            self.transport.abortConnection()   # a stale attempt, or the link stopped
            return
        self.last_inbound = self.clock.seconds()
        self._tune_tcp_keepalive()
        self._sendStartup()
        self.link.handshaking(self)

    def dataReceived(self, data):
        if self._deaf:
            return
        self.last_inbound = self.clock.seconds()   # any traffic at all shows life
        self.link.stats.bytes_in(len(data))
        super().dataReceived(data)

    def connectionLost(self, reason):
        super().connectionLost(reason)   # stops a sliced decode under way
        self._stopTimers()
        self.link.connection_lost(self, reason)

    def drop(self, reason, then=None):
        """Close at once; ``then`` is what the link does next."""
        self.close_reason = reason
        self.close_action = then
        self.transport.abortConnection()

    def abandon(self):
        """The link let go of this connection (it is closing it): no timer
        runs and nothing is read from now on."""
        self._deaf = True
        self._stopTimers()

    def _stopTimers(self):
        self.heartbeating = False
        for call in (self._handshake, self._heartbeat):
            if call is not None and call.active():
                call.cancel()
        self._handshake = self._heartbeat = None

    # -- writing -------------------------------------------------------------

    def sendFrame(self, out):
        """``sendPacket`` for an ``outbound.OutFrame``, encoded once by
        ``outbound.encode`` (its bound checked there)."""
        self.transport.write(out.data)
        self.end_of_turn.written(self.transport)
        self.bytes_sent += len(out.data)
        if debug_wanted():
            _log.debug("Packet out: {type} to router {router}, {size} bytes: {summary}",
                       type=out.type, router=self.router["name"], size=len(out.data),
                       summary=PacketSummary(value=out.packet, frame=out.data))

    # -- reading --------------------------------------------------------------

    def lengthLimitExceeded(self, length):
        if self.close_reason is None:
            self.close_reason = (foreign_protocol(length)
                                 or f"router announced a frame of {length} bytes, over max_frame_bytes")
        super().lengthLimitExceeded(length)

    def stringReceived(self, string):
        self.last_frame_size = len(string)
        super().stringReceived(string)

    def decodeFailed(self, error, raw):
        # Some routers (CoffeeMud's) write a quote inside a string unescaped.
        value = lpc_repair.recover(raw, max_depth=self.max_depth)
        if value is None:
            self.link.stats.decode_failed(self.router["name"], error, len(raw))
            return
        self.link.stats.repaired(self.router["name"], error)
        try:
            self.packetReceived(value)
        except Exception:
            _log.failure("Handling a repaired packet failed")

    def packetReceived(self, value):
        if self._deaf:
            return   # frames read before the link let go, or a big one decoded since
        try:
            packet = parse(value)
        except PacketError as error:
            self.link.stats.decode_failed(self.router["name"], error, len(repr(value)))
            return
        self.link.stats.received(packet, self.router["name"], self.last_frame_size)
        if packet.type == "startup-reply":
            self._cancel(self._handshake)
            self._handshake = None
        elif packet.type == "auth-mud-req":
            if packet.o_mud == self.link.mud_name:
                self._probeAnswered()
                return   # our own keepalive coming back: life, nothing more
            if packet.t_mud == self.link.mud_name and isinstance(packet.o_mud, str) and packet.o_mud:
                self._answerAuth(packet.o_mud)   # (an originator that is no name has no answer)
        self.link.packet_received(self, packet)

    def _answerAuth(self, mud):
        """auth-mud-req from another MUD: a session key it may show the
        router; we never check keys, so any number does."""
        reply = make("auth-mud-reply", self.link.mud_name, 0, mud, 0, secrets.randbelow(2 ** 31))
        try:
            self.link.send(reply)
        except Exception:
            _log.failure("Could not answer auth-mud-req from {mud}", mud=mud)

    # -- the handshake ----------------------------------------------------------

    def _sendStartup(self):
        """Write startup-req-3 once the pacer allows it (a router counts it
        as 6 of the 10 packets a MUD may send in one second: reconnecting
        right after a busy second would get us blocked), then time the
        handshake from the write."""
        wait = self.link.pacer.next_opening("startup-req-3")
        if wait > 0:
            self._handshake = self.clock.callLater(wait, self._sendStartup)
            return
        self.link.write_frame(self.link.startup_frame(self.router))
        self._handshake = self.clock.callLater(
            self.settings.handshake_timeout, self.drop,
            "no startup-reply within handshake_timeout")

    # -- the heartbeat ----------------------------------------------------------

    def startHeartbeat(self):
        """Watch the link from now on (the handshake is done); again after a
        reload, due from the last traffic, not from now: reloads must not
        keep putting the check off."""
        self.heartbeating = True
        self._cancel(self._heartbeat)
        self._heartbeat = None
        self._scheduleHeartbeat()

    def _scheduleHeartbeat(self):
        """The next check: when the probe times out, else when the router
        will have been silent for keepalive_interval."""
        if self._probe_sent_at is not None:
            due = self._probe_sent_at + self.settings.keepalive_timeout
        elif self.answers_probes.get(self.router["name"]) is False:
            return   # never probed again; TCP keepalive watches this link
        else:
            due = self.last_inbound + self.settings.keepalive_interval
        delay = max(0.0, due - self.clock.seconds())
        self._heartbeat = self.clock.callLater(delay, self._checkHeartbeat)

    def _checkHeartbeat(self):
        self._heartbeat = None
        now = self.clock.seconds()
        name = self.router["name"]
        timeout = self.settings.keepalive_timeout
        if self._probe_sent_at is not None:
            if now - self._probe_sent_at < timeout:
                self._scheduleHeartbeat()
                return
            heard = self.last_inbound >= self._probe_sent_at
            self._probe_sent_at = None
            if not heard and self.answers_probes.get(name):
                _log.warn("Nothing from router {router} for {seconds}s after a probe it always "
                          "answered; the link is dead", router=name, seconds=self.settings.keepalive_timeout)
                # Learned again on the next link: a router that stopped
                # answering probes costs one reconnect, not one an interval.
                del self.answers_probes[name]
                self.drop("keepalive timeout")
                return
            if name not in self.answers_probes:
                self.answers_probes[name] = False
                _log.info("Router {router} does not answer keepalive probes; relying on its "
                          "traffic and TCP keepalive to notice a dead link", router=name)
        elif (now - self.last_inbound >= self.settings.keepalive_interval
                and self.answers_probes.get(name) is not False):
            self._sendHeartbeat(now)
        self._scheduleHeartbeat()

    def _sendHeartbeat(self, now):
        self._probe_sent_at = now
        mud = self.link.mud_name
        self.link.send(make("auth-mud-req", mud, 0, mud, 0))

    def _probeAnswered(self):
        name = self.router["name"]
        if not self.answers_probes.get(name):
            _log.info("Router {router} answers keepalive probes", router=name)
        self.answers_probes[name] = True
        self._probe_sent_at = None
        if self.heartbeating:   # (also after a late answer on a link left unprobed)
            self.startHeartbeat()

    @staticmethod
    def _cancel(call):
        if call is not None and call.active():
            call.cancel()

    def _tune_tcp_keepalive(self):
        """Let the kernel probe the router's host on our timings (a host
        that vanished) and give up on data it never acknowledges."""
        handle = getattr(self.transport, "getHandle", lambda: None)()
        if not isinstance(handle, socket.socket):
            return
        idle = max(1, int(self.settings.keepalive_interval))
        timeout = max(1, int(self.settings.keepalive_timeout))
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


class RouterFactory(Factory):
    """Builds the one RouterProtocol of one connection attempt."""

    # A factory per attempt: Twisted's "Starting/Stopping factory" lines
    # would log every reconnect twice over (the link logs its own states).
    noisy = False

    def __init__(self, link, router, attempt, settings, answers_probes):
        self.link = link
        self.router = router
        self.attempt = attempt      # which of the link's attempts this is
        self.settings = settings
        self.answers_probes = answers_probes

    def buildProtocol(self, addr):
        protocol = RouterProtocol(self.router)
        protocol.factory = self
        protocol.link = self.link
        protocol.clock = self.link.clock   # big frames are decoded in slices on it
        protocol.end_of_turn = self.link.end_of_turn
        protocol.settings = self.settings
        protocol.answers_probes = self.answers_probes
        protocol.max_frame_bytes = self.settings.max_frame_bytes
        return protocol
