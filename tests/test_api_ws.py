"""The WebSocket transport over real loopback sockets, with Autobahn's own
client (a real WebSocket library) on the other end."""

import json
import types

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.trial import unittest

from intermud3.config import with_overrides
from intermud3.api.tcp import APILineFactory

from intermud3.api.ws import console_origins, origin_allowed, text_frame_header
from intermud3.events import encode_json
from tests.test_api_tcp import API_KEY, LoopbackMixin, LoopGateway, request, track_protocols

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")


def next_pong(server):
    """A Deferred firing once the server protocol has handled the next pong."""
    d = defer.Deferred()
    handle = server.onPong

    def onPong(payload):
        del server.onPong       # back to the class's own
        handle(payload)
        d.callback(None)

    server.onPong = onPong
    return d


class WSClient(WebSocketClientProtocol):
    """Autobahn client collecting text messages; `closed` fires with
    (wasClean, code, reason), `lost` after the socket is gone."""

    def __init__(self):
        super().__init__()
        self.opened = defer.Deferred()
        self.closed = defer.Deferred()
        self.lost = defer.Deferred()
        self.messages = []
        self._waiters = []

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.messages.append(json.loads(payload))
        while self._waiters and self.messages:
            self._waiters.pop(0).callback(self.messages.pop(0))

    def next_message(self):
        d = defer.Deferred()
        self._waiters.append(d)
        while self._waiters and self.messages:
            self._waiters.pop(0).callback(self.messages.pop(0))
        return d

    def onClose(self, wasClean, code, reason):
        if not self.opened.called:
            self.opened.errback(ConnectionError(f"handshake failed: {reason}"))
        if not self.closed.called:
            self.closed.callback((wasClean, code, reason))

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.lost.callback(None)


class WSTestBase(LoopbackMixin, unittest.TestCase):

    overrides = {}

    def setUp(self):
        self.gateway = LoopGateway(dict(self.overrides))
        self.site = self.gateway.site()
        self.servers = track_protocols(self.site.ws_factory)
        self.port = self.listen(self.site)
        self.addCleanup(lambda: self.wait_server_side(self.servers))

    @defer.inlineCallbacks
    def connect_ws(self, headers=None, expect_open=True):
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{self.port}/ws", headers=headers or {})
        factory.protocol = WSClient
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        client = yield endpoint.connect(factory)
        self.addCleanup(self.close_ws, client)
        if expect_open:
            yield client.opened
        return client

    def close_ws(self, client):
        if client.state == WSClient.STATE_OPEN:
            client.sendClose(1000)
        elif client.transport.connected and client.state != WSClient.STATE_CLOSED:
            client.transport.loseConnection()
        return client.lost

    @defer.inlineCallbacks
    def call(self, client, method, request_id, **params):
        client.sendMessage(request(method, request_id, **params))
        reply = yield client.next_message()
        return reply


class WebSocketTests(WSTestBase):

    @defer.inlineCallbacks
    def test_api_key_header_authenticates_and_string_ids_echo(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        # No authenticate call: the header did it, before this first message.
        reply = yield self.call(client, "heartbeat", "req-1")
        self.assertEqual(reply["id"], "req-1")
        self.assertEqual(reply["result"]["status"], "ok")
        reply = yield self.call(client, "authenticate", "req-2", api_key=API_KEY)
        self.assertEqual(reply["id"], "req-2")
        self.assertEqual(reply["result"]["status"], "success")
        self.assertEqual(reply["result"]["session_id"], self.servers[0].connection.session.id)
        self.assertEqual(self.servers[0].connection.transport_name, "websocket")
        self.assertTrue(self.servers[0].connection.peer.startswith("127.0.0.1:"))

    @defer.inlineCallbacks
    def test_without_header_authenticate_call_is_needed(self):
        client = yield self.connect_ws()
        reply = yield self.call(client, "heartbeat", 1)
        self.assertEqual(reply["error"]["code"], -32000)
        reply = yield self.call(client, "authenticate", 2, api_key=API_KEY)
        self.assertEqual(reply["result"]["status"], "authenticated")
        reply = yield self.call(client, "heartbeat", 3)
        self.assertEqual(reply["result"]["status"], "ok")

    @defer.inlineCallbacks
    def test_batch_in_one_frame(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        client.sendMessage(b"[" + request("ping", 1) + b"," + request("ping", 2) + b"]")
        reply = yield client.next_message()
        self.assertEqual(sorted(r["id"] for r in reply), [1, 2])

    @defer.inlineCallbacks
    def test_the_upgrade_answer_and_every_message_are_sent_at_the_end_of_the_turn(self):
        written = []
        self.gateway.api.end_of_turn = types.SimpleNamespace(written=written.append)
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        reply = yield self.call(client, "ping", 1)
        self.assertIs(reply["result"]["pong"], True)
        self.assertEqual(written, [self.servers[0].transport] * 2)   # the 101, the reply

    @defer.inlineCallbacks
    def test_bad_api_key_header_is_http_401_without_upgrade(self):
        response = yield self.raw_exchange(self.port, UPGRADE + b"X-API-Key: wrong\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 401"), response[:80])
        self.assertNotIn(b"101", response.split(b"\r\n")[0])
        self.assertEqual(self.gateway.api_connections.count(), 0)
        self.assertEqual(self.gateway.sessions.count(), 0)

    @defer.inlineCallbacks
    def test_bad_api_key_header_fails_the_client_handshake(self):
        client = yield self.connect_ws({"X-API-Key": "wrong"}, expect_open=False)
        yield self.assertFailure(client.opened, ConnectionError)
        yield client.lost
        yield self.servers[0].lost

    @defer.inlineCallbacks
    def test_good_key_raw_upgrade_is_101(self):
        response = yield self.raw_exchange(
            self.port, UPGRADE + b"X-API-Key: " + API_KEY.encode() + b"\r\n\r\n",
            close_after=b"\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 101"), response[:80])
        yield self.servers[0].lost

    @defer.inlineCallbacks
    def test_binary_frame_closes_1003(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        client.sendMessage(b"\x00\x01", isBinary=True)
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1003)

    @defer.inlineCallbacks
    def test_oversized_message_closes_1009(self):
        self.site.ws_factory.setProtocolOptions(maxMessagePayloadSize=1000, maxFramePayloadSize=1000)
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        client.sendMessage(b'{"jsonrpc":"2.0","method":"ping","id":"' + b"x" * 2000 + b'"}')
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1009)

    @defer.inlineCallbacks
    def test_large_outgoing_message_is_not_limited_by_the_receive_bound(self):
        self.site.ws_factory.setProtocolOptions(maxMessagePayloadSize=1000, maxFramePayloadSize=1000)
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        session = self.servers[0].connection.session
        self.gateway.hub.publish("tell_received", {"message": "y" * 5000}, session=session)
        event = yield client.next_message()
        self.assertEqual(len(event["params"]["message"]), 5000)

    @defer.inlineCallbacks
    def test_every_frame_length_encoding_reaches_autobahn_intact(self):
        # Our frames are written without Autobahn's sendFrame: 7-bit, 16-bit
        # and 64-bit lengths at each boundary, read by Autobahn's client.
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        session = self.servers[0].connection.session
        def notification(message):
            return encode_json({"jsonrpc": "2.0", "method": "tell_received", "params": {"message": message}})

        overhead = len(notification(""))
        for size in (125, 126, 65535, 65536, 70000):
            message = "\u00e9" * ((size - overhead) // 2) + "y" * ((size - overhead) % 2)
            data = notification(message)
            self.assertEqual(len(data), size)
            session.connection.send_message(data)
            event = yield client.next_message()
            self.assertEqual(event["params"]["message"], message)

    def test_text_frame_header(self):
        self.assertEqual(text_frame_header(0), b"\x81\x00")
        self.assertEqual(text_frame_header(125), b"\x81\x7d")
        self.assertEqual(text_frame_header(126), b"\x81\x7e\x00\x7e")
        self.assertEqual(text_frame_header(65535), b"\x81\x7e\xff\xff")
        self.assertEqual(text_frame_header(65536), b"\x81\x7f" + (65536).to_bytes(8, "big"))

    @defer.inlineCallbacks
    def test_compression_offer_is_declined(self):
        # Frames are written uncompressed: a client's permessage-deflate
        # offer must never be accepted.
        from autobahn.websocket.compress import PerMessageDeflateOffer
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{self.port}/ws", headers={"X-API-Key": API_KEY})
        factory.protocol = WSClient
        factory.setProtocolOptions(perMessageCompressionOffers=[PerMessageDeflateOffer()])
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", self.port).connect(factory)
        self.addCleanup(self.close_ws, client)
        yield client.opened
        self.assertIsNone(self.servers[0]._perMessageCompress)
        reply = yield self.call(client, "ping", "p")
        self.assertTrue(reply["result"]["pong"])

    @defer.inlineCallbacks
    def test_events_reach_the_client(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        self.gateway.hub.publish("channel_message", {"channel": "chat"}, permission="channel")
        event = yield client.next_message()
        self.assertEqual(event["method"], "channel_message")
        self.assertTrue(event["params"]["timestamp"].endswith("Z"))

    @defer.inlineCallbacks
    def test_disconnect_detaches_session(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        session = self.servers[0].connection.session
        yield self.close_ws(client)
        yield self.servers[0].lost
        self.assertFalse(session.attached)
        self.assertTrue(self.gateway.sessions.is_live(session))
        self.assertEqual(self.gateway.api_connections.count(), 0)

    @defer.inlineCallbacks
    def test_close_all_sends_1001(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        self.site.close_all(1001)
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1001)
        yield self.servers[0].lost

    @defer.inlineCallbacks
    def test_max_connections_is_shared_with_tcp(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_connections": 1})
        tcp_factory = APILineFactory(self.gateway.api)
        tcp_servers = track_protocols(tcp_factory)
        tcp_port = self.listen(tcp_factory)
        line_client = yield self.connect_lines(tcp_port)
        yield line_client.next_line()
        # Authenticated, so no newcomer may take its slot.
        line_client.send(request("authenticate", 0, api_key=API_KEY) + b"\n")
        yield line_client.next_line()
        response = yield self.raw_exchange(self.port, UPGRADE + b"\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 503"), response[:80])
        yield self.disconnect(line_client)
        yield tcp_servers[0].lost

    @defer.inlineCallbacks
    def test_connection_gauge(self):
        yield self.connect_ws()
        self.assertEqual(self.gateway.metrics.registry.get_sample_value(
            "intermud3_api_connections", {"transport": "websocket"}), 1.0)
        # The upgrade's HTTP slot went to the WebSocket connection: one in all.
        self.assertEqual(self.gateway.api_connections.count(), 1)
        self.assertEqual(self.gateway.metrics.registry.get_sample_value(
            "intermud3_api_connections", {"transport": "http"}), 0.0)

    @defer.inlineCallbacks
    def test_tcp_nodelay_and_producer(self):
        yield self.connect_ws()
        server = self.servers[0]
        self.assertTrue(server.transport.getTcpNoDelay())
        self.assertIs(server.transport.producer, server.connection)
        self.assertTrue(server.transport.streamingProducer)

    def test_protocol_options_come_from_config(self):
        factory = self.site.ws_factory
        self.assertEqual(factory.maxMessagePayloadSize, 65536)
        self.assertEqual(factory.maxFramePayloadSize, 65536)
        # Pings are the protocol's own, on the gateway's clock.
        self.assertEqual(factory.autoPingInterval, 0)
        self.assertFalse(factory.failByDrop)
        self.assertIsNot(getattr(factory, "server", None), self.gateway)

    @defer.inlineCallbacks
    def test_pings_on_the_gateway_clock_keep_an_answering_peer(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        server = self.servers[0]
        clock = self.gateway.clock
        for _ in range(3):
            clock.advance(30)                     # ping_interval: a ping goes out
            self.assertIsNotNone(server._pong_deadline)
            # Autobahn's client answers; wait for the pong to come back.
            yield next_pong(server)
            self.assertIsNone(server._pong_deadline)
        clock.advance(10)                         # past ping_timeout: nothing pending
        self.assertEqual(server.state, server.STATE_OPEN)
        reply = yield self.call(client, "ping", 1)
        self.assertIs(reply["result"]["pong"], True)

    @defer.inlineCallbacks
    def test_peer_that_does_not_answer_a_ping_is_dropped_after_ping_timeout(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        server = self.servers[0]
        session = server.connection.session
        clock = self.gateway.clock
        client.transport.pauseProducing()         # reads nothing: no pong
        clock.advance(30)
        clock.advance(9.9)
        self.assertEqual(server.state, server.STATE_OPEN)
        clock.advance(0.1)
        yield server.lost
        self.assertFalse(session.attached)
        client.transport.resumeProducing()
        yield client.lost

    @defer.inlineCallbacks
    def test_slow_client_does_not_delay_others_and_is_dropped_over_the_bound(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_send_buffer_bytes": 4096})
        slow = yield self.connect_ws({"X-API-Key": API_KEY})
        fast = yield self.connect_ws({"X-API-Key": API_KEY})
        slow_connection = self.servers[0].connection
        session = slow_connection.session
        slow_connection.pauseProducing()
        self.gateway.hub.publish("tell_received", {"n": 0}, permission="tell")
        event = yield fast.next_message()
        self.assertEqual(event["params"]["n"], 0)
        self.assertEqual(slow.messages, [])
        for n in range(1, 6):
            self.gateway.hub.publish("tell_received", {"n": n, "message": "x" * 1000}, permission="tell")
        yield slow.lost
        yield self.servers[0].lost
        self.assertFalse(session.attached)
        kept = [json.loads(data)["params"]["n"] for _, _, data in session.queue]
        self.assertEqual(kept, list(range(6)))
        for n in range(1, 6):
            event = yield fast.next_message()
            self.assertEqual(event["params"]["n"], n)


class InvalidUTF8Tests(WSTestBase):
    """RFC 6455 section 8.1, as the Autobahn|Testsuite's group 6 checks it:
    a text message that is not valid UTF-8 fails the connection with 1007
    and gets no reply, whichever frame holds the bad bytes."""

    # Each shape of invalid UTF-8, inside an otherwise good request.
    BAD = {
        "invalid byte": b"\xff",
        "lone continuation byte": b"\x80",
        "overlong slash": b"\xc0\xaf",
        "overlong three bytes": b"\xe0\x80\xaf",
        "surrogate": b"\xed\xa0\x80",
        "past U+10FFFF": b"\xf4\x90\x80\x80",
        "truncated sequence": b"\xe2\x82",
    }

    def request_with(self, bad):
        return b'{"jsonrpc":"2.0","method":"ping","id":"a' + bad + b'b"}'

    @defer.inlineCallbacks
    def assert_closed_1007_without_reply(self, client):
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1007)
        yield client.lost
        self.assertEqual(client.messages, [])

    @defer.inlineCallbacks
    def test_each_invalid_shape_in_one_frame_closes_1007(self):
        for shape, bad in self.BAD.items():
            client = yield self.connect_ws({"X-API-Key": API_KEY})
            client.sendMessage(self.request_with(bad))
            try:
                yield self.assert_closed_1007_without_reply(client)
            except AssertionError as error:
                self.fail(f"{shape}: {error}")

    @defer.inlineCallbacks
    def test_invalid_utf8_only_in_the_last_fragment_closes_1007(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        client.sendFrame(opcode=1, payload=b'{"jsonrpc":"2.0","method":"ping",', fin=False)
        client.sendFrame(opcode=0, payload=b'"id":"ok', fin=False)
        client.sendFrame(opcode=0, payload=b"\xed\xa0\x80" + b'"}', fin=True)
        yield self.assert_closed_1007_without_reply(client)

    @defer.inlineCallbacks
    def test_invalid_fragment_fails_before_the_message_ends(self):
        # Autobahn case 6.4: fail fast, without waiting for the final frame.
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        client.sendFrame(opcode=1, payload=b'{"jsonrpc":"2.0","method":"ping",', fin=False)
        client.sendFrame(opcode=0, payload=b'"id":"\xf4\x90\x80\x80', fin=False)
        yield self.assert_closed_1007_without_reply(client)

    @defer.inlineCallbacks
    def test_sequence_cut_short_by_the_end_of_the_message_closes_1007(self):
        # Each frame alone could be the start of a character; the message's
        # end shows it never finishes.
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        client.sendFrame(opcode=1, payload=b'{"jsonrpc":"2.0","method":"ping","id":"\xf0', fin=False)
        client.sendFrame(opcode=0, payload=b"\x9d", fin=True)
        yield self.assert_closed_1007_without_reply(client)

    @defer.inlineCallbacks
    def test_earlier_messages_are_answered_before_the_bad_one_closes(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        reply = yield self.call(client, "ping", 1)
        self.assertIs(reply["result"]["pong"], True)
        client.sendMessage(self.request_with(b"\xc0\x80"))
        yield self.assert_closed_1007_without_reply(client)

    @defer.inlineCallbacks
    def test_valid_utf8_split_across_fragments_at_every_byte(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        text = '{"jsonrpc":"2.0","method":"ping","id":"κόσμε €𝄞"}'.encode("utf-8")
        start = text.index("κ".encode("utf-8"))
        end = text.index('"}'.encode("utf-8"))
        for cut in range(start, end + 1):
            client.sendFrame(opcode=1, payload=text[:cut], fin=False)
            client.sendFrame(opcode=0, payload=text[cut:], fin=True)
            reply = yield client.next_message()
            self.assertEqual(reply["id"], "κόσμε €𝄞", f"cut at byte {cut}")
            self.assertIs(reply["result"]["pong"], True)
        # And one byte per frame.
        client.sendFrame(opcode=1, payload=text[:1], fin=False)
        for index in range(1, len(text)):
            client.sendFrame(opcode=0, payload=text[index:index + 1], fin=index == len(text) - 1)
        reply = yield client.next_message()
        self.assertEqual(reply["id"], "κόσμε €𝄞")


class OriginTests(WSTestBase):

    overrides = {"api.websocket.allowed_origins": ["https://mud.example"]}

    @defer.inlineCallbacks
    def test_foreign_origin_is_403(self):
        response = yield self.raw_exchange(
            self.port, UPGRADE + b"Origin: https://evil.example\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 403"), response[:80])

    @defer.inlineCallbacks
    def test_listed_origin_is_accepted(self):
        client = yield self.connect_ws({"Origin": "https://mud.example"})
        reply = yield self.call(client, "ping", 1)
        self.assertIn("result", reply)

    def test_origin_rules(self):
        self.assertTrue(origin_allowed(None, ["https://a"]))
        self.assertTrue(origin_allowed("https://x", ["*"]))
        self.assertTrue(origin_allowed("HTTPS://A/", ["https://a"]))
        self.assertFalse(origin_allowed("https://b", ["https://a"]))
        self.assertFalse(origin_allowed("null", ["https://a"]))


class AuthTimeoutTests(WSTestBase):

    @defer.inlineCallbacks
    def test_unauthenticated_websocket_is_closed_at_the_auth_timeout(self):
        idle = yield self.connect_ws()
        keyed = yield self.connect_ws({"X-API-Key": API_KEY})
        self.gateway.clock.advance(9.9)
        self.assertEqual(idle.state, WSClient.STATE_OPEN)
        self.gateway.clock.advance(0.1)
        yield idle.lost
        self.assertEqual(keyed.state, WSClient.STATE_OPEN)


class DefaultOriginTests(WSTestBase):
    """allowed_origins defaults to none: no web page may drive the gateway,
    while clients that send no Origin (MUD servers) are unaffected."""

    @defer.inlineCallbacks
    def test_any_browser_origin_is_403_by_default(self):
        self.assertEqual(self.gateway.config.api.websocket.allowed_origins, ())
        response = yield self.raw_exchange(
            self.port, UPGRADE + b"Origin: http://127.0.0.1:8080\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 403"), response[:80])

    @defer.inlineCallbacks
    def test_a_client_without_origin_connects(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        reply = yield self.call(client, "ping", 1)
        self.assertIn("result", reply)


class ConsoleOriginTests(WSTestBase):
    """While the web console is on, the page's own origin may connect as
    well as the listed ones; while it is off, only the listed ones."""

    overrides = {"api.websocket.allowed_origins": ["https://mud.example"],
                 "api.console.enabled": True}

    @defer.inlineCallbacks
    def test_own_origin_in_both_loopback_forms_is_accepted(self):
        for host in ("127.0.0.1", "localhost"):
            client = yield self.connect_ws({"Origin": f"http://{host}:{self.port}"})
            reply = yield self.call(client, "ping", 1)
            self.assertIn("result", reply)

    @defer.inlineCallbacks
    def test_another_port_on_the_same_host_is_403(self):
        response = yield self.raw_exchange(
            self.port, UPGRADE + f"Origin: http://127.0.0.1:{self.port + 1}\r\n\r\n".encode())
        self.assertTrue(response.startswith(b"HTTP/1.1 403"), response[:80])

    @defer.inlineCallbacks
    def test_own_origin_is_403_while_the_console_is_off(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.console.enabled": False})
        response = yield self.raw_exchange(
            self.port, UPGRADE + f"Origin: http://127.0.0.1:{self.port}\r\n\r\n".encode())
        self.assertTrue(response.startswith(b"HTTP/1.1 403"), response[:80])

    def test_console_origins(self):
        api = self.gateway.config.api
        self.assertEqual(console_origins(api, 8080), [
            "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"])
        config = self.gateway.config
        public = with_overrides(config, {"api.host": "192.0.2.7", "api.tls": {"cert": "c.pem", "key": "k.pem"}})
        self.assertEqual(console_origins(public.api, 443), ["https://192.0.2.7:443"])
        self.assertEqual(console_origins(with_overrides(config, {"api.console.enabled": False}).api, 8080), [])
        self.assertEqual(console_origins(with_overrides(config, {"api.host": "0.0.0.0"}).api, 8080), [])


class AuthDisabledTests(WSTestBase):

    overrides = {"api.auth.enabled": False}

    def setUp(self):
        super().setUp()
        self.gateway.sessions.reconfigure(self.gateway.config)

    @defer.inlineCallbacks
    def test_connection_is_authenticated_on_open_whatever_header(self):
        client = yield self.connect_ws({"X-API-Key": "anything"})
        reply = yield self.call(client, "heartbeat", 1)
        self.assertEqual(reply["result"]["status"], "ok")


class OpenConnectionStateTests(WSTestBase):
    """What an open connection keeps, and that Autobahn's own paths that
    use it still work."""

    @defer.inlineCallbacks
    def test_the_handshake_is_forgotten_once_open(self):
        yield self.connect_ws({"X-API-Key": API_KEY})
        server = self.servers[0]
        self.assertIsNone(server.http_headers)
        self.assertIsNone(server.http_request_data)
        self.assertIsNone(server.http_response_data)
        self.assertEqual(server.state, server.STATE_OPEN)

    @defer.inlineCallbacks
    def test_every_protocol_option_is_the_factorys(self):
        from autobahn.websocket.protocol import WebSocketServerProtocol
        yield self.connect_ws({"X-API-Key": API_KEY})
        server, factory = self.servers[0], self.site.ws_factory
        for name in WebSocketServerProtocol.CONFIG_ATTRS:
            # Functions too (perMessageCompressionAccept): the same object, not a method.
            self.assertIs(getattr(server, name), getattr(factory, name), name)
        # Kept on the class or in slots, never copied into an instance dict.
        self.assertFalse(set(vars(server)) & set(WebSocketServerProtocol.CONFIG_ATTRS))

    @defer.inlineCallbacks
    def test_autobahns_queued_send_still_delivers_in_order(self):
        client = yield self.connect_ws({"X-API-Key": API_KEY})
        server = self.servers[0]
        # sync=True goes through Autobahn's send queue (SendQueue here).
        server.sendMessage(encode_json({"n": 1}), sync=True)
        server.sendMessage(encode_json({"n": 2}), sync=True)
        first = yield client.next_message()
        second = yield client.next_message()
        self.assertEqual((first, second), ({"n": 1}, {"n": 2}))
