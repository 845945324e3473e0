"""The JSON-RPC API over TCP: one message (or batch) per line.

Framing only; dispatch, the send buffer and counting are in connection.py.

* On accept the server writes one `welcome` notification line (API.md).
  Its `authentication` is `"required"`, or `"none"` when
  `api.auth.enabled` is false (every connection is then authenticated on
  connect).
* Lines end in `\\n`; a trailing `\\r` is stripped. LineReceiver hands over
  whole lines, so UTF-8 is decoded per line (by the dispatcher, which
  answers -32700 for bad UTF-8) and a character split across reads is never
  cut. Blank lines are ignored.
* A line longer than `api.tcp.max_line_bytes` gets -32600 "line too long"
  (id null, `data.max_bytes`) and the connection is closed.
* `api.tcp.idle_timeout` seconds without a whole line closes it (0: never);
  a byte now and then does not keep a connection open.
* Over `api.max_connections` (shared with WebSocket and HTTP) the server writes
  `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"too many connections"}}`
  and closes; over `api.max_connections_per_ip` the same with the message
  "too many connections from this address".
"""

from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin

import intermud3
from intermud3.api.connection import APIConnection, format_peer, peer_host, set_no_delay
from intermud3.api.errors import INVALID_REQUEST, RPCError
from intermud3.events import encode_json

_log = Logger()

TRANSPORT = "tcp"

# JSON-RPC has no code for a refused connection; -32000 is the first of the
# server-defined range (API.md uses it for "not authenticated": a refused
# client is not authenticated either).
TOO_MANY_CONNECTIONS = -32000


def welcome_message(config):
    auth = "required" if config.api.auth.enabled else "none"
    return encode_json({
        "jsonrpc": "2.0",
        "method": "welcome",
        "params": {
            "service": "i3-gateway",
            "version": intermud3.__version__,
            "protocol": "JSON-RPC 2.0",
            "authentication": auth,
        },
    })


def _error_message(code, message, data=None):
    """An error answering no request: id null (before "error", as the refusal
    line in docs/ARCHITECTURE.md reads)."""
    return encode_json({"jsonrpc": "2.0", "id": None, "error": RPCError(code, message, data).to_json()})


class APILineProtocol(LineReceiver, TimeoutMixin):
    delimiter = b"\n"

    def __init__(self, context, max_line_bytes, idle_timeout, clock):
        self.context = context
        self.max_line_bytes = max_line_bytes
        # LineReceiver counts a trailing "\r" as part of the line; allow it
        # here and check the stripped length in lineReceived.
        self.MAX_LENGTH = max_line_bytes + 1
        self.idle_timeout = idle_timeout or None
        if clock is not None:
            self.callLater = clock.callLater
        # Set once the connection is counted (not for a refused one).
        self.connection = None

    def connectionMade(self):
        set_no_delay(self.transport)
        address = self.transport.getPeer()
        peer = format_peer(address)
        connection = APIConnection(
            self.context, TRANSPORT, peer, host=peer_host(address),
            write_message=self._write_message,
            close_transport=self._close_transport,
            abort_transport=self.transport.abortConnection)
        refusal = self.context.connections.admit(connection)
        if refusal is not None:
            _log.warn("Refusing TCP API connection from {peer}: {reason}", peer=peer, reason=refusal)
            self._write_message(_error_message(TOO_MANY_CONNECTIONS, refusal))
            self.transport.loseConnection()
            return
        self.connection = connection
        _log.info("TCP API connection from {peer}", peer=peer)
        self.connection.register_with(self.transport)
        self.setTimeout(self.idle_timeout)
        self.connection.send_message(welcome_message(self.context.config()))
        try:
            self.connection.opened()
        except Exception:
            _log.failure("Opening a session for {peer} failed", peer=peer)
            self.connection.close("internal error")

    def _write_message(self, data):
        # Two writes, no copy: one message's bytes may go to many clients.
        self.transport.writeSequence((data, b"\n"))
        self.context.end_of_turn.written(self.transport)

    def _close_transport(self, reason, code):
        self.transport.loseConnection()

    def dataReceived(self, data):
        if self.connection is None or not self.connection.open:
            return
        super().dataReceived(data)

    def lineReceived(self, line):
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > self.max_line_bytes:
            return self.lineLengthExceeded(line)
        if not line.strip():
            return
        # Only a whole request is activity: a trickle of bytes (or of blank
        # lines) must not hold a connection slot forever.
        self.resetTimeout()
        self.connection.message_received(line)

    def lineLengthExceeded(self, line):
        _log.info("TCP API client {peer} sent a line over {limit} bytes; closing",
                  peer=self.connection.peer, limit=self.max_line_bytes)
        self.clearLineBuffer()
        # Through the send buffer, so it follows any reply still held there;
        # close() writes what is held before closing.
        self.connection.send_message(_error_message(
            INVALID_REQUEST, "line too long", {"max_bytes": self.max_line_bytes}))
        self.connection.close("line too long")

    def timeoutConnection(self):
        _log.info("TCP API client {peer} sent no whole line for {seconds}s; closing",
                  peer=self.connection.peer, seconds=self.idle_timeout)
        self.connection.close("idle timeout")

    def connectionLost(self, reason):
        self.setTimeout(None)
        if self.connection is not None:
            _log.info("TCP API connection from {peer} closed", peer=self.connection.peer)
            self.connection.lost()


class APILineFactory(Factory):
    """Builds one APILineProtocol per accepted TCP connection."""

    def __init__(self, context, clock=None):
        """``context``: the API's parts (connection.APIContext)."""
        self.context = context
        # The idle timeout runs on the gateway's clock unless told otherwise.
        self.clock = clock if clock is not None else context.clock

    def buildProtocol(self, addr):
        tcp = self.context.config().api.tcp
        protocol = APILineProtocol(
            self.context, tcp.max_line_bytes, tcp.idle_timeout, self.clock)
        protocol.factory = self
        return protocol

    def close_all(self, code=1001, reason="server shutting down"):
        self.context.connections.close_all(code, reason, transport_name=TRANSPORT)


def make_tcp_factory(context, clock=None):
    return APILineFactory(context, clock)
