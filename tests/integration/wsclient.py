"""A WebSocket API client for the integration tests.

Built on Autobahn's Twisted client protocol (a real WebSocket library, as
MUD client libraries use) and shaped like the harness's JSONLineClient:
`call(method, params)` -> Deferred of the result (or RPCFailure),
`event(name, predicate)`, `.events`, `send_raw(...)`; plus what only
WebSocket has: the close code, and `unmatched` replies (those no call is
waiting for: errors with id null, batches, replies to raw requests).
"""

import itertools
import json

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint

from tests.integration.harness import EventInbox, RPCFailure


class WSClosed(ConnectionError):
    """The handshake failed or the connection closed before an answer."""


class WSJSONClient(WebSocketClientProtocol):
    """One client connection. `opened` fires once the upgrade succeeded;
    `closed` with (was_clean, code, reason); `lost` once the socket is gone."""

    def __init__(self):
        super().__init__()
        self._ids = itertools.count(1)
        self._pending = {}
        self.inbox = EventInbox()
        self.events = self.inbox.events
        self.payloads = []       # every received payload, bytes as sent
        self.unmatched = []      # parsed replies no call was waiting for
        self._unmatched_waiters = []
        self.opened = defer.Deferred()
        self.closed = defer.Deferred()
        self.lost = defer.Deferred()
        self.close_code = None

    # -- receiving --------------------------------------------------------

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.payloads.append(payload)
        message = json.loads(payload)
        if isinstance(message, dict) and "method" in message:
            self.inbox.add(message)
            return
        if isinstance(message, dict) and message.get("id") in self._pending:
            d = self._pending.pop(message["id"])
            if "error" in message:
                d.errback(RPCFailure(message["error"]))
            else:
                d.callback(message["result"])
            return
        self.unmatched.append(message)
        self._wake_unmatched()

    def onClose(self, wasClean, code, reason):
        self.close_code = code
        if not self.opened.called:
            self.opened.errback(WSClosed(f"handshake failed: {reason}"))
        if not self.closed.called:
            self.closed.callback((wasClean, code, reason))

    def connectionLost(self, reason):
        super().connectionLost(reason)
        for d in self._pending.values():
            d.errback(WSClosed(f"connection closed ({self.close_code})"))
        self._pending.clear()
        for d in self._unmatched_waiters:
            d.errback(WSClosed(f"connection closed ({self.close_code})"))
        self._unmatched_waiters = []
        if not self.lost.called:
            self.lost.callback(None)

    # -- sending ----------------------------------------------------------

    def call(self, method, params=None, request_id=None):
        """Send one request; the Deferred fires with its result or RPCFailure."""
        if request_id is None:
            request_id = next(self._ids)
        d = self._pending[request_id] = defer.Deferred()
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sendMessage(json.dumps(request).encode("utf-8"))
        return d

    def send_raw(self, data, binary=False):
        """One frame holding `data` exactly (text frame unless binary)."""
        self.sendMessage(data if isinstance(data, bytes) else data.encode("utf-8"), isBinary=binary)

    def next_unmatched(self, timeout=5.0):
        """The next reply no call was waiting for."""
        d = defer.Deferred()
        self._unmatched_waiters.append(d)
        self._wake_unmatched()
        return _with_timeout(d, timeout, "no unmatched reply")

    def _wake_unmatched(self):
        while self._unmatched_waiters and self.unmatched:
            self._unmatched_waiters.pop(0).callback(self.unmatched.pop(0))

    # -- events -----------------------------------------------------------

    def event(self, name, predicate=lambda params: True, timeout=5.0):
        """Fire with the params of the first event `name` matching predicate."""
        return self.inbox.wait(name, predicate, timeout)

    def event_names(self):
        return self.inbox.names()

    # -- closing ----------------------------------------------------------

    def disconnect(self):
        """Close politely and fire once the socket is gone (both sides:
        the server drops TCP after the closing handshake)."""
        if self.state == self.STATE_OPEN:
            self.sendClose(1000)
        elif self.state not in (self.STATE_CLOSED,) and self.transport is not None:
            self.transport.loseConnection()
        return self.lost


def _with_timeout(d, timeout, what):
    def expire():
        if not d.called:
            d.errback(AssertionError(f"{what} within {timeout}s"))

    call = reactor.callLater(timeout, expire)

    def done(result):
        if call.active():
            call.cancel()
        return result

    return d.addBoth(done)


@defer.inlineCallbacks
def connect_ws(port, headers=None, path="/ws", wait_open=True):
    """A WSJSONClient connected to ws://127.0.0.1:port/path.

    With wait_open the Deferred fires once the upgrade succeeded (and fails
    with WSClosed when it did not); else right after TCP connect.
    """
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}{path}", headers=headers or {})
    factory.protocol = WSJSONClient
    factory.setProtocolOptions(tcpNoDelay=True)
    client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
    if wait_open:
        yield client.opened
    return client
