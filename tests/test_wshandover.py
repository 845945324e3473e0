"""The API port reads the first request's head itself: an upgrade on /ws in
the common form goes straight to Autobahn, everything else to twisted.web,
and both answer as before."""

import json

from twisted.internet import defer
from twisted.trial import unittest

from intermud3.api import wshandover
from tests.test_api_tcp import API_KEY, LoopbackMixin, LoopGateway, track_protocols
from tests.test_api_ws import UPGRADE
from tests.test_web import parse_response, wait_until

HEAD = UPGRADE + b"\r\n"


def masked_text_frame(payload, mask=b"\x01\x02\x03\x04"):
    assert len(payload) < 126
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + mask + body


class DirectUpgradeRuleTests(unittest.SynchronousTestCase):
    """is_direct_upgrade: True only for a whole head in the common form."""

    def test_the_common_upgrade(self):
        self.assertIs(wshandover.is_direct_upgrade(HEAD), True)
        self.assertIs(wshandover.is_direct_upgrade(HEAD.replace(b"/ws ", b"/ws?a=1 ")), True)
        # Bytes after the head (a frame sent at once) do not change it.
        self.assertIs(wshandover.is_direct_upgrade(HEAD + b"\x81\x80abcd"), True)

    def test_waits_for_the_rest_of_a_head_that_may_qualify(self):
        for cut in (1, 10, len(b"GET /ws HTTP/1.1\r\n"), len(HEAD) - 1):
            self.assertIsNone(wshandover.is_direct_upgrade(HEAD[:cut]), cut)

    def test_everything_else_goes_to_twisted_web(self):
        for head in (
            b"GET /health HTTP/1.1\r\n",               # another path: decided on the first line
            b"GET /ws HTTP/1.0\r\n\r\n",               # HTTP/1.0
            b"POST /ws HTTP/1.1\r\n\r\n",
            b"GET /ws/x HTTP/1.1\r\n\r\n",
            b"GET /%77s HTTP/1.1\r\n\r\n",             # twisted.web unquotes it to /ws
            b"GET  /ws HTTP/1.1\r\n\r\n",
            b"GET /ws HTTP/1.1\n",                     # bare LF line ends
            HEAD.replace(b"Upgrade: websocket\r\n", b"Upgrade: websocket\n"),
            HEAD.replace(b"\r\n\r\n", b"\r\nHost: again\r\n\r\n"),   # a header twice
            HEAD.replace(b"\r\n\r\n", b"\r\nCONTENT-LENGTH: 0\r\n\r\n"),
            HEAD.replace(b"\r\n\r\n", b"\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HEAD.replace(b"\r\n\r\n", b"\r\nno colon here\r\n\r\n"),
            b"GET /ws HTTP/1.1\r\nX-Long: " + b"a" * wshandover.MAX_HEAD,   # never-ending head
            b"GET /ws" + b"a" * wshandover.MAX_HEAD,                        # never-ending line
        ):
            self.assertIs(wshandover.is_direct_upgrade(head), False, head[:60])


class SharedPortTests(LoopbackMixin, unittest.TestCase):
    """Over a real socket: which requests twisted.web builds, and the answers."""

    def setUp(self):
        self.gateway = LoopGateway()
        self.site = self.gateway.site()
        self.servers = track_protocols(self.site.ws_factory)
        self.requests = []
        request_factory = self.site.requestFactory

        def counted(*args, **kwargs):
            request = request_factory(*args, **kwargs)
            self.requests.append(request)
            return request

        self.site.requestFactory = counted
        self.port = self.listen(self.site)
        self.addCleanup(lambda: self.wait_server_side(self.servers))

    @defer.inlineCallbacks
    def test_upgrade_skips_twisted_web_and_a_pipelined_frame_is_answered(self):
        authenticate = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "authenticate",
                                   "params": {"api_key": API_KEY}}).encode()
        ping = json.dumps({"jsonrpc": "2.0", "id": 2, "method": "ping"}).encode()
        # The head, a request right after it, in one write.
        response = yield self.raw_exchange(
            self.port, HEAD + masked_text_frame(authenticate) + masked_text_frame(ping),
            close_after=b'"id":2')
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response[:80])
        self.assertIn(b'"status":"authenticated"', response)
        self.assertEqual(self.requests, [])
        self.assertEqual(len(self.servers), 1)

    @defer.inlineCallbacks
    def test_plain_http_on_the_same_port_goes_through_twisted_web(self):
        response = yield self.raw_exchange(self.port, b"GET /health/live HTTP/1.0\r\n\r\n")
        status, _, body = parse_response(response)
        self.assertEqual((status, json.loads(body)), (200, {"status": "alive"}))
        self.assertEqual(len(self.requests), 1)
        self.assertEqual(self.servers, [])

    @defer.inlineCallbacks
    def test_an_upgrade_twisted_web_reads_still_upgrades(self):
        # A header twice: the old way, through the /ws resource.
        response = yield self.raw_exchange(
            self.port, UPGRADE + b"X-Extra: 1\r\nX-Extra: 2\r\n\r\n", close_after=b"\r\n\r\n")
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response[:80])
        self.assertEqual(len(self.requests), 1)
        self.assertEqual(len(self.servers), 1)

    @defer.inlineCallbacks
    def test_upgrade_after_a_request_on_a_kept_alive_connection(self):
        first = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        response = yield self.raw_exchange(self.port, first + HEAD, close_after=b"HTTP/1.1 101 ")
        self.assertTrue(response.startswith(b"HTTP/1.1 200 "), response[:80])
        self.assertIn(b"HTTP/1.1 101 ", response)
        self.assertEqual(len(self.requests), 2)

    @defer.inlineCallbacks
    def test_a_refused_direct_upgrade_gets_its_status_and_frees_its_slot(self):
        response = yield self.raw_exchange(self.port, UPGRADE + b"X-API-Key: wrong\r\n\r\n")
        self.assertEqual(parse_response(response)[0], 401)
        self.assertEqual(self.requests, [])
        yield wait_until(lambda: self.gateway.api_connections.count() == 0)

    @defer.inlineCallbacks
    def test_a_malformed_upgrade_is_refused_and_frees_its_slot(self):
        # No Sec-WebSocket-Key: Autobahn refuses it before asking the gateway.
        head = HEAD.replace(b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", b"")
        response = yield self.raw_exchange(self.port, head)
        self.assertEqual(parse_response(response)[0], 400)
        self.assertEqual(self.requests, [])
        yield wait_until(lambda: self.gateway.api_connections.count() == 0)

    @defer.inlineCallbacks
    def test_a_head_sent_in_pieces_is_still_an_upgrade(self):
        from tests.test_api_tcp import RawClient
        from twisted.internet import reactor
        from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
        from twisted.internet.task import deferLater
        client = RawClient(HEAD[:20], close_after=b"\r\n\r\n")
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        self.addCleanup(self.disconnect, client)
        yield deferLater(reactor, 0.05, lambda: None)
        client.transport.write(HEAD[20:])
        response = yield client.closed
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response[:80])
        self.assertEqual(self.requests, [])
