"""The TCP line transport over real loopback sockets.

The helpers at the top (a small gateway around the real dispatcher and
session manager, a line client, tracked server protocols) are shared with
test_api_ws.py and test_web.py.
"""

import json
import types

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.trial import unittest

from intermud3.config import with_overrides
from intermud3 import config as configuration
from intermud3.api.authguard import AuthGuard
from intermud3.api.connection import APIConnection, APIContext, ConnectionRegistry
from intermud3.api.methods import MethodTable, housekeeping
from intermud3.api.rpc import Dispatcher
from intermud3.api.sessions import SessionManager
from intermud3.api.tcp import APILineFactory
from intermud3.api.web import make_site
from intermud3.events import EventHub
from intermud3.metrics import Metrics

API_KEY = "test-key-0123456789"


# -- shared helpers -------------------------------------------------------

class FakeLink:
    """The router link as /health and `status` read it."""

    def __init__(self):
        self.state = "connecting"
        self.ready = False
        self.router = {"name": "*test", "host": "127.0.0.1", "port": 9999}
        self.connected_since = None


class LoopGateway:
    """The parts of service.Gateway the transports use, with the real
    dispatcher, session manager and event hub. `slow` is the Deferred the
    `who` method returns, so tests can hold one request back."""

    def __init__(self, overrides=None, clock=None):
        text = f"mud: {{name: TestMud}}\napi:\n  auth:\n    api_keys:\n      - {{key: {API_KEY}, mud_name: TestMud, permissions: ['*']}}\n"
        self.config = configuration.with_overrides(configuration.load_text(text, environ={}), overrides or {})
        self.clock = clock if clock is not None else Clock()
        self.started_at = self.clock.seconds()
        self.metrics = Metrics()
        self.link = FakeLink()
        # The store as /health/ready sees it: the kinds of write failing now.
        self.store = types.SimpleNamespace(failing=set())
        self.sessions = SessionManager(self.config, self.clock, metrics=self.metrics)
        self.hub = EventHub(self.sessions, metrics=self.metrics, clock=self.clock)
        self.slow = []
        # Built as intermud3.service.Gateway builds them.
        self.api_connections = ConnectionRegistry(
            lambda: self.config.api.max_connections, self.metrics,
            max_per_ip=lambda: self.config.api.max_connections_per_ip)
        self.auth_guard = AuthGuard(
            lambda: self.config.api.auth.failures,
            self.clock, self.metrics)
        table = MethodTable(housekeeping.handlers(
            sessions=self.sessions, link=self.link, lists=None, outbox=None,
            auth_guard=self.auth_guard, started_at=self.started_at, reload=None))

        def who(call, params):
            d = defer.Deferred()
            self.slow.append(d)
            return d

        table.add("who", who)
        dispatcher = Dispatcher(table, self.sessions, max_batch=50,
                                metrics=self.metrics, clock=self.clock)
        # What the transports are handed (set `api.dispatcher` to replace it).
        self.api = APIContext(config=lambda: self.config, clock=self.clock, sessions=self.sessions,
                              dispatcher=dispatcher, connections=self.api_connections,
                              auth_guard=self.auth_guard)

    def site(self):
        """The HTTP side, as service.GatewayService builds it."""
        return make_site(self.api, link=self.link, store=self.store, metrics=self.metrics)


def request(method, request_id=1, **params):
    message = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params:
        message["params"] = params
    return json.dumps(message, ensure_ascii=False).encode("utf-8")


class LineClient(Protocol):
    """Collects newline-terminated lines; `next_line()` waits for one."""

    def __init__(self):
        self.buffer = b""
        self.lines = []
        self._waiters = []
        self.closed = defer.Deferred()

    def dataReceived(self, data):
        self.buffer += data
        while b"\n" in self.buffer:
            line, self.buffer = self.buffer.split(b"\n", 1)
            self.lines.append(line)
        self._wake()

    def _wake(self):
        while self._waiters and self.lines:
            self._waiters.pop(0).callback(self.lines.pop(0))

    def next_line(self):
        d = defer.Deferred()
        self._waiters.append(d)
        self._wake()
        return d

    @defer.inlineCallbacks
    def next_json(self):
        line = yield self.next_line()
        return json.loads(line)

    def send(self, data):
        self.transport.write(data)

    def connectionLost(self, reason):
        for waiter in self._waiters:
            waiter.errback(reason)
        self._waiters = []
        self.closed.callback(None)


class RawClient(Protocol):
    """Sends bytes, collects everything until the server closes."""

    def __init__(self, data, close_after=None):
        self.data = data
        self.close_after = close_after
        self.received = b""
        self.closed = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.received += data
        if self.close_after is not None and self.close_after in self.received:
            self.transport.loseConnection()

    def connectionLost(self, reason):
        self.closed.callback(self.received)


def track_protocols(factory):
    """Record every protocol the factory builds, each with a `lost` Deferred
    fired after its connectionLost, so tests wait for the server side too."""
    built = []
    original = factory.buildProtocol

    def buildProtocol(addr):
        protocol = original(addr)
        protocol.lost = defer.Deferred()
        connection_lost = protocol.connectionLost

        def lost(reason):
            connection_lost(reason)
            protocol.lost.callback(None)

        protocol.connectionLost = lost
        # received_bytes(n): a Deferred firing once n more bytes arrived.
        data_received = protocol.dataReceived
        waiters = []

        def counted(data):
            data_received(data)
            for waiter in list(waiters):
                waiter[0] -= len(data)
                if waiter[0] <= 0:
                    waiters.remove(waiter)
                    waiter[1].callback(None)

        def received_bytes(count):
            d = defer.Deferred()
            waiters.append([count, d])
            return d

        protocol.dataReceived = counted
        protocol.received_bytes = received_bytes
        built.append(protocol)
        return protocol

    factory.buildProtocol = buildProtocol
    return built


class LoopbackMixin:
    """Listening and connecting on 127.0.0.1, cleaned up both sides."""

    def listen(self, factory):
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def connect_lines(self, port):
        client = LineClient()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        self.addCleanup(self.disconnect, client)
        return client

    @defer.inlineCallbacks
    def raw_exchange(self, port, data, close_after=None):
        """Write `data`, return every byte the server sent before closing
        (or before we close, once `close_after` was received)."""
        client = RawClient(data, close_after)
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), client)
        self.addCleanup(self.disconnect, client)
        received = yield client.closed
        return received

    def disconnect(self, client):
        if client.transport.connected:
            client.transport.loseConnection()
        return client.closed

    def wait_server_side(self, protocols):
        return defer.gatherResults([p.lost for p in protocols])


# -- TCP tests --------------------------------------------------------------

class TCPTransportTests(LoopbackMixin, unittest.TestCase):

    def setUp(self):
        self.gateway = LoopGateway()
        self.factory = APILineFactory(self.gateway.api)
        self.servers = track_protocols(self.factory)
        self.port = self.listen(self.factory)
        self.addCleanup(lambda: self.wait_server_side(self.servers))

    @defer.inlineCallbacks
    def authenticated_client(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()  # welcome
        client.send(request("authenticate", 0, api_key=API_KEY) + b"\n")
        reply = yield client.next_json()
        self.assertEqual(reply["result"]["status"], "authenticated")
        return client

    @defer.inlineCallbacks
    def test_welcome_line(self):
        client = yield self.connect_lines(self.port)
        welcome = yield client.next_json()
        self.assertEqual(welcome, {
            "jsonrpc": "2.0", "method": "welcome",
            "params": {"service": "i3-gateway", "version": "0.1.0",
                       "protocol": "JSON-RPC 2.0", "authentication": "required"}})

    @defer.inlineCallbacks
    def test_every_line_written_is_sent_at_the_end_of_the_turn(self):
        # The transport is handed to the gateway's EndOfTurn (endofturn.py)
        # with each line written: the welcome and the reply.
        written = []
        self.gateway.api.end_of_turn = types.SimpleNamespace(written=written.append)
        yield self.authenticated_client()
        self.assertEqual(written, [self.servers[0].transport] * 2)

    @defer.inlineCallbacks
    def test_welcome_says_none_when_auth_disabled_and_session_is_open(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.auth.enabled": False})
        self.gateway.sessions.reconfigure(self.gateway.config)
        client = yield self.connect_lines(self.port)
        welcome = yield client.next_json()
        self.assertEqual(welcome["params"]["authentication"], "none")
        # Authenticated on connect: a method needing "info" answers at once.
        client.send(request("heartbeat", 3) + b"\n")
        reply = yield client.next_json()
        self.assertEqual(reply["result"]["status"], "ok")

    @defer.inlineCallbacks
    def test_round_trip(self):
        client = yield self.authenticated_client()
        client.send(request("ping", "abc") + b"\n")
        reply = yield client.next_json()
        self.assertEqual(reply["id"], "abc")
        self.assertIs(reply["result"]["pong"], True)
        self.assertEqual(self.servers[0].connection.transport_name, "tcp")
        self.assertTrue(self.servers[0].connection.peer.startswith("127.0.0.1:"))

    @defer.inlineCallbacks
    def test_crlf_accepted_and_blank_lines_ignored(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(b"\r\n\n   \r\n" + request("ping", 7) + b"\r\n")
        reply = yield client.next_json()
        self.assertEqual(reply["id"], 7)
        self.assertIn("result", reply)
        # The blank lines produced no replies at all.
        client.send(request("ping", 8) + b"\n")
        reply = yield client.next_json()
        self.assertEqual(reply["id"], 8)

    @defer.inlineCallbacks
    def test_utf8_character_split_across_writes(self):
        client = yield self.authenticated_client()
        line = request("ping", "\u00e9\u6f22") + b"\n"
        cut = line.index("\u6f22".encode("utf-8")) + 1  # inside the 3-byte character
        client.send(line[:cut])
        # The server reads the first half before the second is written.
        yield self.servers[0].received_bytes(cut)
        client.send(line[cut:])
        reply = yield client.next_json()
        self.assertEqual(reply["id"], "\u00e9\u6f22")

    @defer.inlineCallbacks
    def test_invalid_utf8_is_parse_error(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(b'{"jsonrpc":"2.0","method":"ping","id":"\xff"}\n')
        reply = yield client.next_json()
        self.assertEqual(reply["error"]["code"], -32700)
        self.assertIsNone(reply["id"])

    @defer.inlineCallbacks
    def test_line_too_long_gets_error_then_close(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.tcp.max_line_bytes": 100})
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(b"x" * 150 + b"\n")
        reply = yield client.next_json()
        self.assertEqual(reply["error"]["code"], -32600)
        self.assertEqual(reply["error"]["message"], "line too long")
        self.assertIsNone(reply["id"])
        yield client.closed
        yield self.servers[0].lost

    @defer.inlineCallbacks
    def test_unterminated_line_too_long_also_closes(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.tcp.max_line_bytes": 100})
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(b"y" * 300)
        reply = yield client.next_json()
        self.assertEqual(reply["error"]["code"], -32600)
        yield client.closed

    @defer.inlineCallbacks
    def test_line_of_exactly_the_limit_with_cr_is_accepted(self):
        line = request("ping", 5)
        self.gateway.config = with_overrides(self.gateway.config, {"api.tcp.max_line_bytes": len(line)})
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(line + b"\r\n")
        reply = yield client.next_json()
        self.assertEqual(reply["id"], 5)

    @defer.inlineCallbacks
    def test_replies_are_written_when_ready_not_in_request_order(self):
        client = yield self.authenticated_client()
        client.send(request("who", "slow", target_mud="X") + b"\n" + request("ping", "fast") + b"\n")
        first = yield client.next_json()
        self.assertEqual(first["id"], "fast")
        self.assertEqual(len(self.gateway.slow), 1)
        self.gateway.slow[0].callback({"status": "success"})
        second = yield client.next_json()
        self.assertEqual(second, {"jsonrpc": "2.0", "result": {"status": "success"}, "id": "slow"})

    @defer.inlineCallbacks
    def test_notification_gets_no_reply(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(b'{"jsonrpc":"2.0","method":"ping"}\n' + request("ping", 2) + b"\n")
        reply = yield client.next_json()
        self.assertEqual(reply["id"], 2)

    @defer.inlineCallbacks
    def test_max_connections_refuses_with_one_error_line(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_connections": 1})
        first = yield self.authenticated_client()
        second = yield self.connect_lines(self.port)
        refusal = yield second.next_json()
        self.assertEqual(refusal, {"jsonrpc": "2.0", "id": None,
                                   "error": {"code": -32000, "message": "too many connections"}})
        yield second.closed
        self.assertEqual(second.lines, [])
        yield self.servers[1].lost
        self.assertEqual(self.gateway.api_connections.count(), 1)
        # The first connection still works.
        first.send(request("ping", 1) + b"\n")
        reply = yield first.next_json()
        self.assertEqual(reply["id"], 1)

    @defer.inlineCallbacks
    def test_connection_gauge_and_count(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        gauge = self.gateway.metrics.registry.get_sample_value(
            "intermud3_api_connections", {"transport": "tcp"})
        self.assertEqual(gauge, 1.0)
        self.assertEqual(self.gateway.api_connections.count("tcp"), 1)
        yield self.disconnect(client)
        yield self.servers[0].lost
        gauge = self.gateway.metrics.registry.get_sample_value(
            "intermud3_api_connections", {"transport": "tcp"})
        self.assertEqual(gauge, 0.0)

    @defer.inlineCallbacks
    def test_disconnect_detaches_session(self):
        client = yield self.authenticated_client()
        session = self.servers[0].connection.session
        self.assertTrue(session.attached)
        yield self.disconnect(client)
        yield self.servers[0].lost
        self.assertFalse(session.attached)
        self.assertTrue(self.gateway.sessions.is_live(session))

    @defer.inlineCallbacks
    def test_tcp_nodelay_is_set(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        self.assertTrue(self.servers[0].transport.getTcpNoDelay())

    @defer.inlineCallbacks
    def test_close_all(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        self.factory.close_all(1001)
        yield client.closed
        yield self.servers[0].lost
        self.assertEqual(self.gateway.api_connections.count(), 0)


class IdleTimeoutTests(LoopbackMixin, unittest.TestCase):

    @defer.inlineCallbacks
    def connect(self):
        """A client past its welcome on a gateway with a 5 s idle timeout
        (and no authentication deadline to get in the way)."""
        clock = Clock()
        gateway = LoopGateway({"api.tcp.idle_timeout": 5.0, "api.auth.timeout": 1000.0})
        factory = APILineFactory(gateway.api, clock=clock)
        servers = track_protocols(factory)
        client = yield self.connect_lines(self.listen(factory))
        yield client.next_json()
        return clock, client, servers[0]

    @defer.inlineCallbacks
    def test_a_trickle_of_bytes_does_not_keep_a_connection_open(self):
        clock, client, server = yield self.connect()
        for _ in range(2):
            client.send(b"{")           # a byte every 3 s, never a whole line
            yield server.received_bytes(1)
            clock.advance(3)
        yield client.closed
        yield server.lost

    @defer.inlineCallbacks
    def test_blank_lines_are_not_activity(self):
        clock, client, server = yield self.connect()
        client.send(b"\n")
        yield server.received_bytes(1)
        clock.advance(5)
        yield client.closed

    @defer.inlineCallbacks
    def test_idle_connection_is_closed_on_the_clock(self):
        clock = Clock()
        gateway = LoopGateway({"api.tcp.idle_timeout": 30.0})
        factory = APILineFactory(gateway.api, clock=clock)
        servers = track_protocols(factory)
        client = yield self.connect_lines(self.listen(factory))
        yield client.next_json()
        clock.advance(20)
        client.send(request("ping", 1) + b"\n")
        yield client.next_json()  # input resets the timer
        clock.advance(20)
        self.assertTrue(client.transport.connected)
        clock.advance(11)
        yield client.closed
        yield servers[0].lost


# -- the send buffer (slow clients) ----------------------------------------

class SlowClientTests(LoopbackMixin, unittest.TestCase):

    def setUp(self):
        self.gateway = LoopGateway({"api.max_send_buffer_bytes": 4096})
        self.factory = APILineFactory(self.gateway.api)
        self.servers = track_protocols(self.factory)
        self.port = self.listen(self.factory)
        self.addCleanup(lambda: self.wait_server_side(self.servers))

    @defer.inlineCallbacks
    def two_sessions(self):
        clients = []
        for _ in range(2):
            client = yield self.connect_lines(self.port)
            yield client.next_json()
            client.send(request("authenticate", 0, api_key=API_KEY) + b"\n")
            yield client.next_json()
            clients.append(client)
        return clients

    def test_connection_is_the_transports_streaming_producer(self):
        d = self.two_sessions()

        def check(clients):
            transport = self.servers[0].transport
            self.assertIs(transport.producer, self.servers[0].connection)
            self.assertTrue(transport.streamingProducer)

        return d.addCallback(check)

    @defer.inlineCallbacks
    def test_paused_client_does_not_delay_others_and_resumes_in_order(self):
        slow, fast = yield self.two_sessions()
        slow_connection = self.servers[0].connection
        # What the transport does when its buffer is full.
        slow_connection.pauseProducing()
        for n in range(3):
            self.gateway.hub.publish("tell_received", {"n": n}, permission="tell")
        for n in range(3):
            event = yield fast.next_json()
            self.assertEqual(event["params"]["n"], n)
        self.assertEqual(slow.lines, [])
        self.assertGreater(slow_connection.buffered_bytes, 0)
        slow_connection.resumeProducing()
        for n in range(3):
            event = yield slow.next_json()
            self.assertEqual(event["method"], "tell_received")
            self.assertEqual(event["params"]["n"], n)
        self.assertEqual(slow_connection.buffered_bytes, 0)

    @defer.inlineCallbacks
    def test_real_transport_backpressure_keeps_order(self):
        # A tiny transport buffer: every write makes the transport pause us,
        # and draining it resumes us (Twisted's own producer machinery).
        (client, _) = yield self.two_sessions()
        self.servers[0].transport.bufferSize = 1
        # 20 events of about 90 bytes: held, but under the 4096-byte bound.
        for n in range(20):
            self.gateway.hub.publish("tell_received", {"n": n}, session=self.servers[0].connection.session)
        self.assertTrue(self.servers[0].connection.paused)
        self.assertTrue(self.servers[0].connection.open)
        received = []
        for _ in range(20):
            event = yield client.next_json()
            received.append(event["params"]["n"])
        self.assertEqual(received, list(range(20)))

    @defer.inlineCallbacks
    def test_client_over_the_buffer_is_disconnected_and_keeps_events(self):
        slow, fast = yield self.two_sessions()
        slow_connection = self.servers[0].connection
        session = slow_connection.session
        slow_connection.pauseProducing()
        big = "x" * 1000
        for n in range(6):  # 6 x ~1.1 KB > 4096 bytes
            self.gateway.hub.publish("tell_received", {"n": n, "message": big}, permission="tell")
        self.assertFalse(slow_connection.open)
        # Detached at once: the next events wait in the session for replay.
        self.assertFalse(session.attached)
        self.gateway.hub.publish("tell_received", {"n": 6}, permission="tell")
        yield slow.closed
        yield self.servers[0].lost
        for n in range(7):
            event = yield fast.next_json()
            self.assertEqual(event["params"]["n"], n)
        self.assertTrue(self.gateway.sessions.is_live(session))
        # Every held event went back to the session, in order, then the new one.
        kept = [json.loads(data)["params"]["n"] for _, _, data in session.queue]
        self.assertEqual(kept, list(range(7)))
        # Restoring the session on a new connection replays them in order.
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        client.send(request("authenticate", 0, api_key=API_KEY, session_id=session.id) + b"\n")
        replayed = []
        for _ in range(7):
            event = yield client.next_json()
            replayed.append(event["params"]["n"])
        self.assertEqual(replayed, list(range(7)))
        reply = yield client.next_json()
        self.assertEqual(reply["result"]["replayed"], 7)
        self.assertTrue(reply["result"]["resumed"])


    @defer.inlineCallbacks
    def test_a_backlog_far_over_the_send_buffer_is_restored(self):
        # 200 events of about 1 KB: 50 times the 4096-byte send buffer. The
        # replay goes out as the transport drains, never over the bound.
        (client, other) = yield self.two_sessions()
        session = self.servers[0].connection.session
        yield self.disconnect(client)
        yield self.servers[0].lost
        for n in range(200):
            self.gateway.hub.publish("tell_received", {"n": n, "message": "x" * 1000}, session=session)
        self.assertEqual(len(session.queue), 200)
        restored = yield self.connect_lines(self.port)
        yield restored.next_json()
        self.servers[2].transport.bufferSize = 2048
        restored.send(request("authenticate", 0, api_key=API_KEY, session_id=session.id) + b"\n")
        self.gateway.hub.publish("tell_received", {"n": 200}, session=session)   # during the replay
        received = []
        for _ in range(201):
            event = yield restored.next_json()
            received.append(event["params"]["n"])
        self.assertEqual(received, list(range(201)))
        reply = yield restored.next_json()
        # The event that arrived during the replay went out with it.
        self.assertEqual((reply["result"]["replayed"], reply["result"]["dropped"]), (201, 0))
        self.assertTrue(self.servers[2].connection.open)


# -- pieces without sockets ------------------------------------------------

class FakeTransportSink:
    def __init__(self):
        self.written = []
        self.aborted = False
        self.closed = None


def make_connection(gateway, sink, limit=100):
    gateway.config = with_overrides(gateway.config, {"api.max_send_buffer_bytes": limit})
    return APIConnection(
        gateway.api, "tcp", "127.0.0.1:1",
        write_message=sink.written.append,
        close_transport=lambda reason, code: setattr(sink, "closed", (reason, code)),
        abort_transport=lambda: setattr(sink, "aborted", True))


class SendBufferUnitTests(unittest.SynchronousTestCase):

    def setUp(self):
        self.gateway = LoopGateway()
        self.sink = FakeTransportSink()
        self.connection = make_connection(self.gateway, self.sink)

    def test_writes_through_while_not_paused(self):
        self.assertTrue(self.connection.send_message(b"a"))
        self.assertEqual(self.sink.written, [b"a"])

    def test_holds_while_paused_and_flushes_on_resume(self):
        self.connection.pauseProducing()
        for data in (b"1", b"22", b"333"):
            self.assertTrue(self.connection.send_message(data))
        self.assertEqual(self.sink.written, [])
        self.assertEqual(self.connection.buffered_bytes, 6)
        self.connection.resumeProducing()
        self.assertEqual(self.sink.written, [b"1", b"22", b"333"])
        self.assertEqual(self.connection.buffered_bytes, 0)

    def test_a_write_that_pauses_again_stops_the_flush(self):
        self.connection.pauseProducing()
        for data in (b"1", b"2", b"3"):
            self.connection.send_message(data)

        def write(data):
            self.sink.written.append(data)
            self.connection.pauseProducing()

        self.connection._write_message = write
        self.connection.resumeProducing()
        self.assertEqual(self.sink.written, [b"1"])
        self.connection.resumeProducing()
        self.assertEqual(self.sink.written, [b"1", b"2"])

    def test_new_messages_queue_behind_held_ones(self):
        self.connection.pauseProducing()
        self.connection.send_message(b"first")
        self.connection._paused = False  # resumed, but not yet flushed
        self.connection.send_message(b"second")
        self.assertEqual(self.sink.written, [])
        self.connection.resumeProducing()
        self.assertEqual(self.sink.written, [b"first", b"second"])

    def test_over_the_bound_aborts_and_refuses_more(self):
        self.connection.pauseProducing()
        self.assertTrue(self.connection.send_message(b"x" * 100))
        self.assertFalse(self.connection.send_message(b"y"))
        self.assertTrue(self.sink.aborted)
        self.assertFalse(self.connection.send_message(b"z"))
        self.assertEqual(self.connection.buffered_bytes, 0)

    def test_every_on_lost_callback_runs_when_one_removes_itself(self):
        called = []

        on_lost = self.connection.on_lost

        def leaving():
            # As the wrong-key answer does: from the list it was added to.
            called.append("leaving")
            on_lost.remove(leaving)

        on_lost.extend([leaving, lambda: called.append("next")])
        self.connection.lost()
        self.assertEqual(called, ["leaving", "next"])

    def test_close_writes_held_messages_first(self):
        self.connection.pauseProducing()
        self.connection.send_message(b"last words")
        self.connection.close("bye", code=1001)
        self.assertEqual(self.sink.written, [b"last words"])
        self.assertEqual(self.sink.closed, ("bye", 1001))
        self.assertFalse(self.connection.send_message(b"more"))

    def test_inbound_waits_for_a_pending_authentication_in_order(self):
        seen = []

        class Recorder:
            def dispatch(self, connection, data):
                seen.append(data)
                return defer.succeed(None)

        self.gateway.api.dispatcher = Recorder()
        gate = defer.Deferred()
        self.connection.hold_inbound_until(gate)
        self.connection.message_received(b"1")
        self.connection.message_received(b"2")
        self.assertEqual(seen, [])
        gate.callback(None)
        self.assertEqual(seen, [b"1", b"2"])
        self.connection.message_received(b"3")
        self.assertEqual(seen, [b"1", b"2", b"3"])

    def test_inbound_held_before_authentication_is_bounded(self):
        # The send buffer's bound (100 bytes here) also bounds held input.
        self.gateway.api.dispatcher = None  # nothing may be dispatched
        self.connection.hold_inbound_until(defer.Deferred())
        self.connection.message_received(b"a" * 60)
        self.assertTrue(self.connection.open)
        self.connection.message_received(b"b" * 41)
        self.assertFalse(self.connection.open)
        self.assertEqual(self.sink.closed, ("too much input before authentication finished", 1000))

    def test_dispatcher_failure_is_logged_and_connection_kept(self):
        class Broken:
            def dispatch(self, connection, data):
                raise RuntimeError("bug")

        self.gateway.api.dispatcher = Broken()
        self.connection.message_received(b"{}")
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertTrue(self.connection.open)


class RegistryTests(unittest.SynchronousTestCase):

    def test_bound_is_read_live_and_remove_is_idempotent(self):
        limit = [1]
        metrics = Metrics()
        registry = ConnectionRegistry(lambda: limit[0], metrics)

        class Conn:
            transport_name = "websocket"
            host = "127.0.0.1"
            authenticated = True

        a, b = Conn(), Conn()
        self.assertTrue(registry.add(a))
        self.assertFalse(registry.add(b))
        limit[0] = 2
        self.assertTrue(registry.add(b))
        self.assertEqual(registry.count("websocket"), 2)
        registry.remove(a)
        registry.remove(a)
        self.assertEqual(registry.count(), 1)
        self.assertEqual(metrics.registry.get_sample_value(
            "intermud3_api_connections", {"transport": "websocket"}), 1.0)


    def test_release_transport_frees_the_slot_that_transport_holds(self):
        # The HTTP request a WebSocket upgrade takes over gives its slot back.
        registry = ConnectionRegistry(lambda: 10)

        class Slot:
            transport_name = "http"
            host = "127.0.0.1"
            authenticated = False

            def __init__(self, transport):
                self.transport = transport

        first, second = object(), object()
        a, b = Slot(first), Slot(second)
        self.assertTrue(registry.add(a))
        self.assertTrue(registry.add(b))
        registry.release_transport(second)
        self.assertEqual(registry.connections(), [a])
        registry.release_transport(second)       # nothing left for it: no effect
        registry.release_transport(object())     # never seen: no effect
        self.assertEqual(registry.connections(), [a])
        registry.remove(a)
        registry.release_transport(first)        # already removed: no effect
        self.assertEqual(registry.count(), 0)
        # A later holder of a released transport is found by it again.
        c = Slot(second)
        self.assertTrue(registry.add(c))
        registry.release_transport(second)
        self.assertEqual(registry.count(), 0)


class ConnectionAbuseTests(LoopbackMixin, unittest.TestCase):
    """Slots under abuse: an authentication deadline, the per-IP cap, and
    room made for the MUD while idle connections hold every slot."""

    def setUp(self):
        self.clock = Clock()
        self.gateway = LoopGateway(clock=self.clock)
        self.factory = APILineFactory(self.gateway.api)
        self.servers = track_protocols(self.factory)
        self.port = self.listen(self.factory)
        self.addCleanup(lambda: self.wait_server_side(self.servers))

    @defer.inlineCallbacks
    def welcomed(self):
        client = yield self.connect_lines(self.port)
        yield client.next_json()
        return client

    @defer.inlineCallbacks
    def test_unauthenticated_connection_is_closed_at_the_auth_timeout(self):
        self.assertEqual(self.gateway.config.api.auth.timeout, 10.0)
        idle = yield self.welcomed()
        mud = yield self.welcomed()
        mud.send(request("authenticate", 1, api_key=API_KEY) + b"\n")
        yield mud.next_json()
        self.clock.advance(9.9)
        self.assertTrue(idle.transport.connected)
        self.clock.advance(0.1)
        yield idle.closed
        self.assertTrue(mud.transport.connected)

    @defer.inlineCallbacks
    def test_per_ip_cap(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_connections_per_ip": 2})
        yield self.welcomed()
        yield self.welcomed()
        third = yield self.connect_lines(self.port)
        refusal = yield third.next_json()
        self.assertEqual(refusal["error"], {"code": -32000, "message": "too many connections from this address"})
        yield third.closed
        self.assertEqual(self.gateway.api_connections.count(), 2)

    @defer.inlineCallbacks
    def test_the_mud_gets_in_while_idle_connections_hold_every_slot(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_connections": 3})
        flood = []
        for _ in range(3):
            flood.append((yield self.welcomed()))
        mud = yield self.welcomed()         # the oldest idle one made room
        yield flood[0].closed
        mud.send(request("authenticate", 1, api_key=API_KEY) + b"\n")
        reply = yield mud.next_json()
        self.assertEqual(reply["result"]["status"], "authenticated")
        # The next newcomer pushes out the next idle one, never the MUD.
        yield self.welcomed()
        yield flood[1].closed
        self.assertTrue(mud.transport.connected)
        self.assertTrue(flood[2].transport.connected)


class _Slot:
    host = "127.0.0.1"
    transport_name = "tcp"
    authenticated = True

    def abort(self):
        pass


class NoPerAddressCapByDefaultTests(LoopbackMixin, unittest.TestCase):
    """Left at 0, api.max_connections_per_ip bounds nothing but
    api.max_connections: a MUD's clients often share one address."""

    def test_default_is_zero_and_means_max_connections(self):
        gateway = LoopGateway()
        self.assertEqual(gateway.config.api.max_connections_per_ip, 0)
        gateway.config = with_overrides(gateway.config, {"api.max_connections": 3})
        registry = gateway.api_connections
        slots = [_Slot() for _ in range(4)]
        self.assertEqual([registry.admit(s) for s in slots[:3]], [None, None, None])
        self.assertEqual(registry.admit(slots[3]), "too many connections")
