"""The JSON-RPC API over WebSocket: one message (or batch) per text frame.

Framing only; dispatch, the send buffer and counting are in connection.py.
Served at /ws on the API port, which HTTP shares (web.py): the common
upgrade request is handed to this protocol before twisted.web parses it
(wshandover.py), any other through the /ws resource of the twisted.web site.

* `X-API-Key` on the upgrade request: a bad key is refused during the
  handshake with HTTP 401 (no upgrade); a good one authenticates the
  session as soon as the connection opens, before any message of the client
  is dispatched. Without the header the client calls `authenticate`.
* `Origin`, when sent, must be in `api.websocket.allowed_origins` (default
  none: no web page may use the gateway; `"*"` allows any, with a warning at
  start), or be the gateway's own origin while the web console is on
  (`console_origins`); else HTTP 403. Clients that send no Origin are not
  browsers and are never refused for it.
* Over `api.max_connections` (shared with TCP and HTTP) or
  `api.max_connections_per_ip`: HTTP 503.
* A text message that is not valid UTF-8 fails the connection with close
  code 1007 (RFC 6455 section 8.1) and nothing else is sent on it. Autobahn
  validates incrementally, frame by frame, so a fragmented message fails as
  soon as its bad bytes arrive and is never dispatched. -32700 for bad UTF-8
  is for TCP lines only.
* A whole, final, masked text frame of up to 64 KiB is read by
  `wsframes.WholeFrameReader` (Autobahn's per-frame path cost more than the
  request's dispatch); every other frame is Autobahn's.
* Binary frames close the connection with 1003. A message over
  `api.websocket.max_message_bytes` closes it with 1009 (Autobahn does this
  itself; `failByDrop` is off so the close frame is really sent).
* The server pings every `ping_interval` seconds and drops a peer whose pong
  does not come within `ping_timeout` (any frame from the peer will do as
  well). The timers run on the gateway's clock: Autobahn's own auto-ping
  rounds its timers down to whole seconds, so it could drop a healthy peer
  before `ping_timeout` had passed.

Autobahn uses `self.log` and `factory.server` itself: our logger is `_log`
and the factory keeps the API's parts (connection.APIContext) as
`factory.context`.
"""

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import defer
from twisted.logger import Logger

from intermud3.api import autobahn_tuning
from intermud3.api.connection import APIConnection, format_peer, peer_host
from intermud3.api.wsframes import WholeFrameReader
from intermud3.config import is_loopback

_log = Logger()

TRANSPORT = "websocket"

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011


def text_frame_header(length):
    """RFC 6455 section 5.2: FIN + text opcode, then the payload length in 7,
    7+16 or 7+64 bits; a server's frames are not masked."""
    if length < 126:
        return bytes((0x81, length))
    if length < 0x10000:
        return bytes((0x81, 126)) + length.to_bytes(2, "big")
    return bytes((0x81, 127)) + length.to_bytes(8, "big")


def origin_allowed(origin, allowed):
    """True when a browser's Origin may connect (no Origin: not a browser)."""
    if not origin or (origin == "null" and "null" in allowed):
        return True
    if "*" in allowed:
        return True
    wanted = origin.rstrip("/").lower()
    return any(wanted == entry.rstrip("/").lower() for entry in allowed)


def console_origins(api, port):
    """The origins the web console is loaded from: scheme://api.host:port,
    every loopback form of it when bound to loopback. Empty while the
    console is off, and for a wildcard bind (0.0.0.0, ::), which has no
    single own origin: the operator lists the public one in allowed_origins."""
    if not api.console.enabled or api.host in ("0.0.0.0", "::"):
        return []
    scheme = "https" if api.tls.cert else "http"
    host = api.host
    if is_loopback(host):
        hosts = ["127.0.0.1", "localhost", "[::1]"]
    else:
        hosts = [f"[{host}]" if ":" in host else host]
    return [f"{scheme}://{name}:{port}" for name in hosts]


# The protocol options a connection takes from the factory when it opens
# (reconfigure changes them for later connections); the others are fixed
# when the factory is made and read from its protocol class.
PER_CONNECTION_OPTIONS = ("maxFramePayloadSize", "maxMessagePayloadSize")


class APIWebSocketProtocol(WholeFrameReader, WebSocketServerProtocol):

    # Autobahn's per-connection state in slots, not an instance dict
    # (autobahn_tuning: about 2.5 KiB less per connection).
    __slots__ = autobahn_tuning.protocol_slots(
        WholeFrameReader, WebSocketServerProtocol, options=PER_CONNECTION_OPTIONS) + (
        "connection", "_header_key", "_ping_call", "_pong_deadline")

    def __init__(self):
        super().__init__()
        self.connection = None
        self._header_key = None
        self._ping_call = None       # the next ping
        self._pong_deadline = None   # drops the peer unless it answers first

    def _connectionMade(self):
        super()._connectionMade()
        self.send_queue = autobahn_tuning.SendQueue()

    def onConnect(self, request):
        try:
            return self._check_upgrade(request)
        except ConnectionDeny:
            raise
        except Exception:
            # Autobahn would turn this into an HTTP 500 with little trace.
            _log.failure("WebSocket upgrade from {peer} failed", peer=request.peer)
            raise ConnectionDeny(ConnectionDeny.INTERNAL_SERVER_ERROR, "internal error")

    def _check_upgrade(self, request):
        context = self.factory.context
        api = context.config().api
        address = self.transport.getPeer()
        peer = format_peer(address)
        registry = context.connections
        # The HTTP request that carried the upgrade held a slot; the
        # WebSocket connection takes it over (or, refused, frees it).
        registry.release_transport(self.transport)
        # Only a browser sends an Origin: the list is built for those alone.
        if request.origin and not origin_allowed(request.origin, list(api.websocket.allowed_origins)
                                                 + console_origins(api, self.transport.getHost().port)):
            _log.info("Refusing WebSocket from {peer}: origin {origin} not allowed",
                      peer=peer, origin=request.origin)
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "origin not allowed")
        key = request.headers.get("x-api-key")
        if key is not None and api.auth.enabled:
            if context.sessions.keys.match(key) is None:
                # Never log the key itself; the guard logs a summary per source.
                context.auth_guard.failed(None, peer_host(address))
                raise ConnectionDeny(401, "invalid API key")
            self._header_key = key
        connection = APIConnection(
            context, TRANSPORT, peer, host=peer_host(address),
            write_message=self._write_message,
            close_transport=self._close_transport,
            abort_transport=self._abort_transport)
        refusal = registry.admit(connection)
        if refusal is not None:
            _log.warn("Refusing WebSocket from {peer}: {reason}", peer=peer, reason=refusal)
            raise ConnectionDeny(503, refusal)
        self.connection = connection
        return None

    def onOpen(self):
        autobahn_tuning.forget_handshake(self)
        connection = self.connection
        _log.info("WebSocket API connection from {peer}", peer=connection.peer)
        connection.register_with(self.transport)
        try:
            connection.opened()
        except Exception:
            _log.failure("Opening a session for {peer} failed", peer=connection.peer)
            connection.close("internal error", code=CLOSE_INTERNAL_ERROR)
            return
        key, self._header_key = self._header_key, None
        if key is not None and connection.session is None:
            self._authenticate_with_header(key)
        self._schedule_ping()

    # -- keepalive: ping every ping_interval, drop after ping_timeout --------

    @property
    def _clock(self):
        return self.factory.context.clock

    def _schedule_ping(self):
        interval = self.factory.context.config().api.websocket.ping_interval
        self._ping_call = self._clock.callLater(interval, self._send_ping)

    def _send_ping(self):
        self._ping_call = None
        if self.state != WebSocketProtocol.STATE_OPEN:
            return
        timeout = self.factory.context.config().api.websocket.ping_timeout
        self.sendPing()
        self._pong_deadline = self._clock.callLater(timeout, self._ping_timed_out, timeout)

    def _peer_alive(self):
        if self._pong_deadline is not None:
            self._pong_deadline.cancel()
            self._pong_deadline = None
            self._schedule_ping()

    def onPong(self, payload):
        self._peer_alive()

    def _ping_timed_out(self, timeout):
        self._pong_deadline = None
        _log.info("WebSocket client {peer} did not answer a ping within {seconds}s; dropping",
                  peer=self.connection.peer, seconds=timeout)
        self.dropConnection(abort=True)

    def _stop_keepalive(self):
        for call in (self._ping_call, self._pong_deadline):
            if call is not None and call.active():
                call.cancel()
        self._ping_call = self._pong_deadline = None

    def _authenticate_with_header(self, key):
        connection = self.connection
        d = defer.maybeDeferred(self.factory.context.sessions.authenticate, connection, key)

        def failed(failure):
            _log.info("X-API-Key authentication of {peer} failed: {error}",
                      peer=connection.peer, error=failure.getErrorMessage())
            connection.close("authentication failed", code=CLOSE_POLICY_VIOLATION)

        d.addErrback(failed)
        # Messages sent right after the handshake wait for the session.
        if not d.called:
            connection.hold_inbound_until(d)

    def onMessage(self, payload, isBinary):
        if self.connection is None:
            return
        self._peer_alive()
        if isBinary:
            _log.info("WebSocket client {peer} sent a binary frame; closing",
                      peer=self.connection.peer)
            self.connection.close("binary frames are not supported", code=CLOSE_UNSUPPORTED_DATA)
            return
        self.connection.message_received(payload)

    def _write_message(self, data):
        if self.state != WebSocketProtocol.STATE_OPEN:
            return
        # One unmasked, uncompressed text frame (the factory accepts no
        # compression), written as header + the shared bytes: Autobahn's
        # sendFrame copies every payload into a new frame and formats a
        # debug line per call; sendMessage would also apply the *receive*
        # limit to what we send (a mudlist reply may be larger).
        self.transport.writeSequence((text_frame_header(len(data)), data))
        self.factory.context.end_of_turn.written(self.transport)

    def _close_transport(self, reason, code):
        if self.state == WebSocketProtocol.STATE_OPEN:
            # sendClose only accepts 1000 and 3000-4999; 1001/1003/1008 are ours to send.
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8")[:123])
        elif self.state != WebSocketProtocol.STATE_CLOSED:
            self.dropConnection(abort=False)

    def _abort_transport(self):
        self.dropConnection(abort=True)

    def connectionLost(self, reason):
        self._stop_keepalive()
        # Autobahn leaves its close-handshake timer running when the socket
        # goes first (as after a 1007 close); nothing is left to time out.
        timer, self.closeHandshakeTimeoutCall = getattr(self, "closeHandshakeTimeoutCall", None), None
        if timer is not None:
            timer.cancel()
        super().connectionLost(reason)
        if self.connection is not None:
            _log.info("WebSocket API connection from {peer} closed", peer=self.connection.peer)
            self.connection.lost()
        else:
            # Refused before onConnect (a malformed handshake): the HTTP
            # connection's slot was never taken over; free it.
            self.factory.context.connections.release_transport(self.transport)


class APIWebSocketFactory(WebSocketServerFactory):
    """Options set with `setProtocolOptions` after it is made apply to
    later connections only for PER_CONNECTION_OPTIONS (the message bounds)."""

    def __init__(self, context):
        """``context``: the API's parts (connection.APIContext)."""
        super().__init__()
        self.context = context
        autobahn_tuning.install()
        self.reconfigure(context.config())
        self.setProtocolOptions(
            # Pings are ours (see the protocol): Autobahn's are off.
            autoPingInterval=0,
            autoPingTimeout=0,
            # Send the close frame (1009, ...) instead of dropping the socket.
            failByDrop=False,
            # The request head arrives whole (the HTTP channel's header
            # deadline bounds it), so the opening handshake is over (101 or
            # refused) at once: a timer per connection to bound it would
            # only be made and cancelled.
            openHandshakeTimeout=0,
            # Autobahn turns Nagle off as the connection is made.
            tcpNoDelay=True,
            # A plain GET on /ws gets an HTTP error, not Autobahn's HTML page.
            webStatus=False,
            # Text that is not UTF-8 closes with 1007 (RFC 6455 8.1), checked
            # by Autobahn across fragments before the message reaches us.
            utf8validateIncoming=True,
        )
        self.protocol = autobahn_tuning.with_fixed_options(
            APIWebSocketProtocol, self, PER_CONNECTION_OPTIONS)

    def reconfigure(self, config):
        """The message bound, for connections opened from now on."""
        limit = config.api.websocket.max_message_bytes
        self.setProtocolOptions(maxMessagePayloadSize=limit, maxFramePayloadSize=limit)

    def close_all(self, code=CLOSE_GOING_AWAY, reason="server shutting down"):
        self.context.connections.close_all(code, reason, transport_name=TRANSPORT)


def make_ws_factory(context):
    return APIWebSocketFactory(context)
