"""`intermud3 session URL`: talk to the API by hand, over WebSocket or TCP.

Each line typed (or piped) on standard input is sent as one JSON-RPC
message; each message from the gateway (welcome, replies, events) is
printed as one line. With `--key`, an `authenticate` call goes first. When
standard input ends, the session waits `--wait` seconds for the last
replies and events, then closes. URL is `ws://HOST:PORT/ws` (or `wss://`)
or `tcp://HOST:PORT`.
"""

import json
import sys
from urllib.parse import urlsplit

from twisted.internet import defer, protocol, stdio, task
from twisted.protocols.basic import LineReceiver


class _Input(LineReceiver):
    """Standard input: each line goes to `send`; its end to `ended`."""

    delimiter = b"\n"

    def __init__(self, send, ended):
        self.send, self.ended = send, ended

    def lineReceived(self, line):
        line = line.strip()
        if line:
            self.send(line)

    def connectionLost(self, reason):
        self.ended()


class _TCPPeer(LineReceiver):
    delimiter = b"\n"

    def __init__(self, session):
        self.session = session

    def connectionMade(self):
        self.session.connected(lambda data: self.sendLine(data), self.transport.loseConnection)

    def lineReceived(self, line):
        self.session.show(line.rstrip(b"\r"))

    def connectionLost(self, reason):
        self.session.lost()


class Session:
    def __init__(self, reactor, out, key=None, wait=1.0):
        self.reactor = reactor
        self.out = out
        self.key = key
        self.wait = wait
        self.send = self.close = None
        self.done = defer.Deferred()

    def connected(self, send, close):
        self.send, self.close = send, close
        if self.key:
            send(json.dumps({"jsonrpc": "2.0", "id": "auth", "method": "authenticate",
                             "params": {"api_key": self.key}}).encode())
        stdio.StandardIO(_Input(send, self.input_ended), reactor=self.reactor)

    def show(self, data):
        self.out.write(data.decode("utf-8", "replace") + "\n")
        self.out.flush()

    def input_ended(self):
        task.deferLater(self.reactor, self.wait, lambda: self.close())

    def lost(self):
        if not self.done.called:
            self.done.callback(0)

    def failed(self, reason):
        print(f"cannot connect: {reason.getErrorMessage()}", file=sys.stderr)
        if not self.done.called:
            self.done.callback(1)


class _TCPFactory(protocol.ClientFactory):
    def __init__(self, session):
        self.session = session

    def buildProtocol(self, addr):
        return _TCPPeer(self.session)

    def clientConnectionFailed(self, connector, reason):
        self.session.failed(reason)


def _websocket_factory(session, url):
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol

    class Peer(WebSocketClientProtocol):
        def onOpen(self):
            session.connected(lambda data: self.sendMessage(data, isBinary=False),
                              lambda: self.sendClose(1000))

        def onMessage(self, payload, is_binary):
            session.show(payload)

        def onClose(self, clean, code, reason):
            session.lost()

    class Factory(WebSocketClientFactory):
        def clientConnectionFailed(self, connector, reason):
            session.failed(reason)

    factory = Factory(url)
    factory.protocol = Peer
    return factory


def run(reactor, url, key=None, wait=1.0, out=None):
    """Deferred fired with an exit code when the session has closed."""
    session = Session(reactor, out or sys.stdout, key, wait)
    parts = urlsplit(url)
    if parts.scheme == "tcp":
        reactor.connectTCP(parts.hostname, parts.port, _TCPFactory(session), timeout=5)
    elif parts.scheme in ("ws", "wss"):
        from autobahn.twisted.websocket import connectWS
        connectWS(_websocket_factory(session, url), timeout=5)
    else:
        raise ValueError(f"{url}: use ws://HOST:PORT/ws, wss://... or tcp://HOST:PORT")
    return session.done
