"""The HTTP endpoints of the API port, over a real loopback socket, and
the TLS context."""

import datetime
import json

from twisted.internet import defer, reactor, ssl
from twisted.internet.endpoints import SSL4ClientEndpoint, TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock, deferLater
from twisted.trial import unittest

from intermud3.config import with_overrides
from intermud3.api import methods
from intermud3.api.tcp import APILineFactory, make_tcp_factory
from intermud3.api.web import make_tls_context
from tests.test_api_tcp import LineClient, LoopbackMixin, LoopGateway, RawClient, track_protocols


@defer.inlineCallbacks
def wait_until(predicate, timeout=5.0):
    """Poll the real reactor until `predicate()` holds (server-side state).

    Only for a connection being counted on accept, which raises no event;
    the count going to 0 has the registry's own `when_empty()`."""
    waited = 0.0
    while not predicate():
        if waited >= timeout:
            raise AssertionError("condition not reached")
        yield deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower().decode()] = value.strip().decode()
    return status, headers, body


class HTTPTests(LoopbackMixin, unittest.TestCase):

    def setUp(self):
        self.gateway = LoopGateway()
        self.site = self.gateway.site()
        self.port = self.listen(self.site)

    @defer.inlineCallbacks
    def get(self, path, method=b"GET"):
        # HTTP/1.0: the server closes after the answer, so both sides are
        # done when the client sees the end.
        raw = yield self.raw_exchange(
            self.port, method + b" " + path + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        return parse_response(raw)

    @defer.inlineCallbacks
    def get_json(self, path):
        status, headers, body = yield self.get(path)
        self.assertEqual(headers["content-type"], "application/json; charset=utf-8")
        return status, json.loads(body)

    @defer.inlineCallbacks
    def test_health(self):
        status, body = yield self.get_json(b"/health")
        self.assertEqual(status, 200)
        self.assertEqual(body, {
            "status": "healthy", "service": "i3-gateway", "version": "0.1.0",
            "websocket_connections": 0, "tcp_connections": 0, "active_sessions": 0,
            "router": {"state": "connecting", "name": "*test", "address": "127.0.0.1:9999",
                       "connected_since": None, "last_errors": []}})

    @defer.inlineCallbacks
    def test_health_counts_connections_and_sessions(self):
        factory = APILineFactory(self.gateway.api)
        servers = track_protocols(factory)
        tcp_port = self.listen(factory)
        self.addCleanup(lambda: self.wait_server_side(servers))
        client = yield self.connect_lines(tcp_port)
        yield client.next_line()
        client.send(b'{"jsonrpc":"2.0","method":"authenticate","params":{"api_key":"test-key-0123456789"},"id":1}\n')
        yield client.next_line()
        self.gateway.link.state = "ready"
        self.gateway.link.connected_since = 1714564800.0
        status, body = yield self.get_json(b"/health")
        self.assertEqual(body["tcp_connections"], 1)
        self.assertEqual(body["active_sessions"], 1)
        self.assertEqual(body["router"]["state"], "ready")
        self.assertEqual(body["router"]["connected_since"], "2024-05-01T12:00:00.000Z")

    @defer.inlineCallbacks
    def test_live(self):
        status, body = yield self.get_json(b"/health/live")
        self.assertEqual((status, body), (200, {"status": "alive"}))

    @defer.inlineCallbacks
    def test_ready_is_503_until_the_link_is_ready(self):
        status, body = yield self.get_json(b"/health/ready")
        self.assertEqual(status, 503)
        self.assertEqual(body["status"], "not_ready")
        self.assertIn("connecting", body["reason"])
        self.gateway.link.ready = True
        self.gateway.link.state = "ready"
        status, body = yield self.get_json(b"/health/ready")
        self.assertEqual((status, body), (200, {"status": "ready"}))

    @defer.inlineCallbacks
    def test_ready_is_503_while_the_store_fails(self):
        self.gateway.link.ready = True
        self.gateway.link.state = "ready"
        self.gateway.store.failing.add("outcomes")
        status, body = yield self.get_json(b"/health/ready")
        self.assertEqual((status, body["status"]), (503, "not_ready"))
        self.assertIn("state database writes failing (outcomes)", body["reason"])
        self.gateway.store.failing.clear()
        status, body = yield self.get_json(b"/health/ready")
        self.assertEqual(status, 200)

    @defer.inlineCallbacks
    def test_metrics(self):
        self.gateway.metrics.api_connections.labels("tcp").set(0)
        status, headers, body = yield self.get(b"/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"))
        text = body.decode()
        self.assertIn("intermud3_api_connections{transport=\"tcp\"} 0.0", text)
        self.assertIn("# TYPE intermud3_api_requests_total counter", text)

    @defer.inlineCallbacks
    def test_api_info(self):
        status, body = yield self.get_json(b"/api/info")
        self.assertEqual(status, 200)
        self.assertEqual(body["protocol"], "JSON-RPC 2.0")
        self.assertEqual(body["transports"], ["websocket", "tcp"])
        self.assertEqual(body["authentication"], "api_key")
        self.assertEqual(body["methods"], sorted(methods.PERMISSIONS))
        self.assertIn("tell", body["methods"])
        self.assertEqual(body["events"], methods.EVENTS)
        self.assertEqual(body["version"], "0.1.0")

    @defer.inlineCallbacks
    def test_unknown_paths_are_404_json(self):
        for path in (b"/nope", b"/health/nope", b"/api", b"/api/info/x", b"/health/live/x"):
            status, body = yield self.get_json(path)
            self.assertEqual(status, 404, path)
            self.assertEqual(body["error"], "not found")

    @defer.inlineCallbacks
    def test_post_is_405_json(self):
        status, headers, body = yield self.get(b"/health", method=b"POST")
        self.assertEqual(status, 405)
        self.assertEqual(json.loads(body)["error"], "method not allowed")

    @defer.inlineCallbacks
    def test_plain_get_on_ws_path_is_refused(self):
        status, headers, body = yield self.get(b"/ws")
        self.assertGreaterEqual(status, 400)


def _self_signed(directory):
    """A throwaway certificate and key for 127.0.0.1."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    san = x509.SubjectAlternativeName([x509.DNSName("localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(san, critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = directory + "/cert.pem"
    key_path = directory + "/key.pem"
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


class TLSTests(LoopbackMixin, unittest.TestCase):

    def test_no_certificate_means_no_tls(self):
        self.assertIsNone(make_tls_context(LoopGateway().config))

    @defer.inlineCallbacks
    def test_tls_tcp_round_trip(self):
        import os
        directory = self.mktemp()
        os.makedirs(directory)
        cert_path, key_path = _self_signed(directory)
        gateway = LoopGateway({"api.tls": {"cert": cert_path, "key": key_path}})
        context = make_tls_context(gateway.config)
        self.assertIsNotNone(context)
        factory = make_tcp_factory(gateway.api)
        servers = track_protocols(factory)
        port = reactor.listenSSL(0, factory, context, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        with open(cert_path, "rb") as f:
            trusted = ssl.Certificate.loadPEM(f.read())
        client_context = ssl.optionsForClientTLS("localhost", trustRoot=trusted)
        client = LineClient()
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, client_context)
        yield connectProtocol(endpoint, client)
        welcome = yield client.next_json()
        self.assertEqual(welcome["method"], "welcome")
        client.send(b'{"jsonrpc":"2.0","method":"ping","id":1}\n')
        reply = yield client.next_json()
        self.assertEqual(reply["id"], 1)
        client.transport.loseConnection()
        yield client.closed
        yield servers[0].lost

    def test_certificate_file_may_carry_the_chain(self):
        import os
        first, second = self.mktemp(), self.mktemp()
        os.makedirs(first)
        os.makedirs(second)
        cert_path, key_path = _self_signed(first)
        other_cert, _ = _self_signed(second)
        with open(cert_path, "ab") as out, open(other_cert, "rb") as extra:
            out.write(extra.read())
        gateway = LoopGateway({"api.tls": {"cert": cert_path, "key": key_path}})
        context = make_tls_context(gateway.config)
        self.assertEqual(len(context.extraCertChain), 1)
        context.getContext()  # builds, and the key matches the certificate


class SecureWebSocketTests(LoopbackMixin, unittest.TestCase):

    @defer.inlineCallbacks
    def test_wss_round_trip_with_api_key_header(self):
        import os
        from autobahn.twisted.websocket import WebSocketClientFactory
        from tests.test_api_tcp import API_KEY, request
        from tests.test_api_ws import WSClient

        directory = self.mktemp()
        os.makedirs(directory)
        cert_path, key_path = _self_signed(directory)
        gateway = LoopGateway({"api.tls": {"cert": cert_path, "key": key_path}})
        site = gateway.site()
        servers = track_protocols(site.ws_factory)
        port = reactor.listenSSL(0, site, make_tls_context(gateway.config), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        with open(cert_path, "rb") as f:
            trusted = ssl.Certificate.loadPEM(f.read())
        number = port.getHost().port
        factory = WebSocketClientFactory(f"wss://localhost:{number}/ws", headers={"X-API-Key": API_KEY})
        factory.protocol = WSClient
        endpoint = SSL4ClientEndpoint(reactor, "127.0.0.1", number,
                                      ssl.optionsForClientTLS("localhost", trustRoot=trusted))
        client = yield endpoint.connect(factory)
        yield client.opened
        server = servers[0]
        self.assertIs(server.transport._producer._producer, server.connection)
        client.sendMessage(request("heartbeat", "s-1"))
        reply = yield client.next_message()
        self.assertEqual(reply["result"]["status"], "ok")
        # Pausing and resuming through the TLS layer keeps the order.
        server.connection.pauseProducing()
        for n in range(3):
            gateway.hub.publish("tell_received", {"n": n}, session=server.connection.session)
        server.connection.resumeProducing()
        for n in range(3):
            event = yield client.next_message()
            self.assertEqual(event["params"]["n"], n)
        client.sendClose(1000)
        yield client.lost
        yield server.lost


class HTTPSlotTests(LoopbackMixin, unittest.TestCase):
    """HTTP connections count against max_connections from accept and must
    finish their request headers within api.header_timeout."""

    def setUp(self):
        self.clock = Clock()
        self.gateway = LoopGateway(clock=self.clock)
        self.site = self.gateway.site()
        self.port = self.listen(self.site)

    @defer.inlineCallbacks
    def open_raw(self, data):
        client = RawClient(data)
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        self.addCleanup(self.disconnect, client)
        yield wait_until(lambda: self.gateway.api_connections.count("http") >= 1)
        return client

    @defer.inlineCallbacks
    def test_unfinished_headers_hold_a_slot_until_the_header_timeout(self):
        client = yield self.open_raw(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        self.assertEqual(self.gateway.api_connections.count("http"), 1)
        self.clock.advance(9.9)
        self.assertTrue(client.transport.connected)
        self.clock.advance(0.1)
        yield client.closed
        yield self.gateway.api_connections.when_empty()

    @defer.inlineCallbacks
    def test_a_new_request_gets_in_while_unfinished_ones_hold_every_slot(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_connections": 2})
        first = yield self.open_raw(b"GET /health HTTP/1.1\r\n")
        yield self.open_raw(b"GET /health HTTP/1.1\r\n")
        yield wait_until(lambda: self.gateway.api_connections.count("http") == 2)
        received = yield self.raw_exchange(
            self.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        self.assertTrue(received.startswith(b"HTTP/1.1 200"), received[:40])
        yield first.closed    # the oldest unfinished one made room

    @defer.inlineCallbacks
    def test_per_ip_cap_answers_503(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.max_connections_per_ip": 1})
        yield self.open_raw(b"GET /health HTTP/1.1\r\n")
        received = yield self.raw_exchange(self.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(received.startswith(b"HTTP/1.1 503"), received[:40])


class ConsoleTests(LoopbackMixin, unittest.TestCase):
    """The web console's files: served with their type and the security
    headers, only from the package's console directory, only while on."""

    setUp = HTTPTests.setUp
    get = HTTPTests.get

    @defer.inlineCallbacks
    def test_root_is_the_console_page_with_security_headers(self):
        status, headers, body = yield self.get(b"/")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn(b'<script type="module" src="/static/app.js">', body)
        csp = headers["content-security-policy"]
        self.assertIn("script-src 'self'", csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertEqual(headers["x-content-type-options"], "nosniff")

    @defer.inlineCallbacks
    def test_static_files_have_their_types(self):
        for path, kind in ((b"/static/app.js", "text/javascript"), (b"/static/rpc.js", "text/javascript"),
                           (b"/static/text.js", "text/javascript"), (b"/static/shared.js", "text/javascript"),
                           (b"/static/console.css", "text/css")):
            status, headers, body = yield self.get(path)
            self.assertEqual(status, 200, path)
            self.assertTrue(headers["content-type"].startswith(kind), path)
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            self.assertTrue(body)

    @defer.inlineCallbacks
    def test_head_has_no_body(self):
        status, headers, body = yield self.get(b"/static/app.js", method=b"HEAD")
        self.assertEqual((status, body), (200, b""))

    @defer.inlineCallbacks
    def test_other_paths_are_404(self):
        for path in (b"/static/", b"/static/nope.js", b"/static/../config.py", b"/static/%2e%2e%2fconfig.py",
                     b"/static/__init__.py", b"/static/app.js/x", b"/index.html/x", b"/static"):
            status, headers, body = yield self.get(path)
            self.assertEqual(status, 404, path)
            self.assertEqual(json.loads(body)["error"], "not found")

    @defer.inlineCallbacks
    def test_post_is_405(self):
        status, headers, body = yield self.get(b"/static/app.js", method=b"POST")
        self.assertEqual(status, 405)

    @defer.inlineCallbacks
    def test_console_off_is_404(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.console.enabled": False})
        for path in (b"/", b"/static/app.js"):
            status, headers, body = yield self.get(path)
            self.assertEqual(status, 404, path)
