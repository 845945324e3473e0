"""The HTTP side of the API port: /ws, /health*, /metrics, /api/info,
/static/pinkfish.css, and the web console (/ and /static/..., see static.py).

One twisted.web `Site` serves HTTP and the WebSocket upgrade on the same
port: the first request's head of a connection is looked at before
twisted.web parses it, and an upgrade on /ws in the common form is handed
to the WebSocket protocol as it came (wshandover.py); any other request,
an unusual upgrade included, goes through twisted.web, where /ws is the
WebSocket resource (which takes the connection over). Every answer but
/metrics is JSON; unknown paths are 404 with a JSON body.

Every HTTP connection holds a slot of `api.max_connections` (and of
`api.max_connections_per_ip`) from accept, and must send its request
headers within `api.header_timeout` seconds (each request of a kept-alive
connection again), so a client that never finishes its headers cannot hold
the port; a WebSocket upgrade hands its slot to the WebSocket connection.

`/metrics` is a small synchronous resource around `generate_latest` with
the gateway's own registry (prometheus_client.twisted would import the
reactor and use a thread pool).
"""


from autobahn.twisted.resource import WebSocketResource
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet import ssl
from twisted.logger import Logger
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Site

import intermud3
from intermud3.api import methods, wshandover
from intermud3.api.connection import peer_host
from intermud3.api.static import ConsoleFile, ConsoleStatic
from intermud3.api.ws import CLOSE_GOING_AWAY, make_ws_factory
from intermud3.colour import html as colour_html
from intermud3.events import encode_json, iso_timestamp

JSON_TYPE = b"application/json; charset=utf-8"

_log = Logger()

_REFUSED = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def _json_body(request, code, value):
    request.setResponseCode(code)
    request.setHeader(b"content-type", JSON_TYPE)
    request.setHeader(b"cache-control", b"no-store")
    return encode_json(value)


class _JSONNode(Resource):
    """A resource that answers GET/HEAD with JSON and 404s unknown children."""

    def getChild(self, path, request):
        return _NOT_FOUND

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            request.setHeader(b"allow", b"GET, HEAD")
            return _json_body(request, 405, {"error": "method not allowed"})
        code, value = self.answer(request)
        return _json_body(request, code, value)

    def answer(self, request):
        return 404, {"error": "not found", "path": request.path.decode("utf-8", "replace")}


class _NotFound(_JSONNode):
    """Whatever lies below an unknown path: 404, whatever the method."""

    isLeaf = True

    def render(self, request):
        return _json_body(request, *self.answer(request))


_NOT_FOUND = _NotFound()


def _router_status(link):
    router = getattr(link, "router", None) or {}
    address = f"{router['host']}:{router['port']}" if "host" in router else None
    since = getattr(link, "connected_since", None)
    return {
        "state": getattr(link, "state", "stopped"),
        "name": router.get("name"),
        "address": address,
        "connected_since": iso_timestamp(since) if since is not None else None,
        # Why the link last failed, oldest first: what `intermud3 doctor` shows.
        "last_errors": [{"at": iso_timestamp(f["at"]), "router": f["router"], "reason": f["reason"]}
                        for f in getattr(link, "recent_failures", ())],
    }


class Health(_JSONNode):
    def __init__(self, context, link):
        super().__init__()
        self.context = context
        self.link = link

    def answer(self, request):
        registry = self.context.connections
        return 200, {
            "status": "healthy",
            "service": "i3-gateway",
            "version": intermud3.__version__,
            "websocket_connections": registry.count("websocket"),
            "tcp_connections": registry.count("tcp"),
            "active_sessions": self.context.sessions.count(),
            "router": _router_status(self.link),
        }


class Live(_JSONNode):
    def answer(self, request):
        return 200, {"status": "alive"}


class Ready(_JSONNode):
    """200 only once the router's startup-reply arrived, and while the
    state database takes writes (a gateway that cannot queue or record
    outcomes cannot keep its promises)."""

    def __init__(self, link, store):
        super().__init__()
        self.link = link
        self.store = store

    def answer(self, request):
        link = self.link
        failing = sorted(getattr(self.store, "failing", ()))
        if failing:
            return 503, {"status": "not_ready",
                         "reason": f"state database writes failing ({', '.join(failing)})"}
        if getattr(link, "ready", False):
            return 200, {"status": "ready"}
        state = getattr(link, "state", "stopped")
        return 503, {"status": "not_ready", "reason": f"router link is {state}"}


class APIInfo(_JSONNode):
    def answer(self, request):
        return 200, {
            "version": intermud3.__version__,
            "protocol": "JSON-RPC 2.0",
            "transports": ["websocket", "tcp"],
            "authentication": "api_key",
            "methods": sorted(methods.PERMISSIONS),
            "events": list(methods.EVENTS),
        }


class MetricsPage(_JSONNode):
    """Prometheus text exposition, rendered synchronously."""

    def __init__(self, registry):
        super().__init__()
        self.registry = registry

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            return super().render(request)
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode("ascii"))
        request.setHeader(b"cache-control", b"no-store")
        return generate_latest(self.registry)


class StyleSheet(_JSONNode):
    """/static/pinkfish.css: the classes of the html colour form."""

    isLeaf = True

    def render(self, request):
        if request.method not in (b"GET", b"HEAD"):
            return super().render(request)
        request.setHeader(b"content-type", b"text/css; charset=utf-8")
        request.setHeader(b"cache-control", b"max-age=86400")
        return colour_html.STYLESHEET


class _HTTPSlot:
    """An HTTP connection as the ConnectionRegistry counts it."""

    transport_name = "http"
    authenticated = False

    def __init__(self, transport, host):
        self.transport = transport
        self.host = host

    def close(self, reason, code=None):
        self.transport.loseConnection()

    def abort(self):
        self.transport.abortConnection()


class CountedHTTPChannel(HTTPChannel):
    """An HTTP/1.1 channel that holds a connection slot and a header deadline.

    The first request's head is read here before twisted.web sees a byte:
    a WebSocket upgrade in the common form goes straight to Autobahn
    (wshandover.py), anything else to twisted.web."""

    _slot = None
    _header_call = None
    _refused = False
    # The first request's head while it arrives; None once it went its way.
    _head = b""

    def connectionMade(self):
        # twisted.web's own setup (an idle timer, the transport's producer)
        # waits until the first request is known to be for it (dataReceived).
        slot = _HTTPSlot(self.transport, peer_host(self.transport.getPeer()))
        refusal = self.site.context.connections.admit(slot)
        if refusal is not None:
            _log.warn("Refusing HTTP connection from {host}: {reason}", host=slot.host, reason=refusal)
            self._refused = True
            self.transport.write(_REFUSED)
            self.transport.loseConnection()
            return
        self._slot = slot
        self._arm_header_deadline()

    def _arm_header_deadline(self):
        context = self.site.context
        timeout = context.config().api.header_timeout
        self._header_call = context.clock.callLater(timeout, self._headers_too_slow, timeout)

    def _cancel_header_deadline(self):
        if self._header_call is not None and self._header_call.active():
            self._header_call.cancel()
        self._header_call = None

    def _headers_too_slow(self, timeout):
        self._header_call = None
        _log.info("HTTP client {host} sent no complete request headers within {seconds}s; closing",
                  host=self._slot.host, seconds=timeout)
        self.transport.abortConnection()

    def dataReceived(self, data):
        if self._refused:
            return
        if self._head is not None:
            data = self._head + data
            direct = wshandover.is_direct_upgrade(data)
            if direct is None:
                self._head = data
                return
            self._head = None
            if direct:
                self._upgrade(data)
                return
            super().connectionMade()
        super().dataReceived(data)

    def _upgrade(self, data):
        """Hand the connection to a WebSocket protocol; this channel is done
        (its slot is taken over or freed by the WebSocket side)."""
        self._cancel_header_deadline()
        transport = self.transport
        protocol = self.site.ws_factory.buildProtocol(transport.getPeer())
        wshandover.hand_over(transport, protocol, data)
        # The handshake's answer (101, or the refusal) leaves this turn.
        self.site.context.end_of_turn.written(transport)

    def allHeadersReceived(self):
        self._cancel_header_deadline()
        super().allHeadersReceived()

    def requestDone(self, request):
        super().requestDone(request)
        # A kept-alive connection owes the next request's headers in time too.
        if self._slot is not None and not self._refused and self._header_call is None:
            self._arm_header_deadline()

    def connectionLost(self, reason):
        self._cancel_header_deadline()
        if self._slot is not None:
            self.site.context.connections.remove(self._slot)
        super().connectionLost(reason)


class GatewaySite(Site):
    """The Site, plus what the service needs at shutdown."""

    protocol = CountedHTTPChannel
    # Never show a traceback to a client.
    displayTracebacks = False

    def __init__(self, root, ws_factory, context):
        super().__init__(root)
        self.ws_factory = ws_factory
        self.context = context

    def close_all(self, code=CLOSE_GOING_AWAY, reason="server shutting down"):
        """Close every WebSocket client (the service's graceful stop: 1001)."""
        self.ws_factory.close_all(code, reason)


def make_site(context, *, link, store, metrics):
    """The HTTP side: ``context`` the API's parts (connection.APIContext);
    ``link`` and ``store`` for /health, ``metrics`` for /metrics."""
    ws_factory = make_ws_factory(context)
    root = _JSONNode()
    root.putChild(b"ws", WebSocketResource(ws_factory))
    health = Health(context, link)
    health.putChild(b"live", Live())
    health.putChild(b"ready", Ready(link, store))
    root.putChild(b"health", health)
    root.putChild(b"metrics", MetricsPage(metrics.registry))
    api = _JSONNode()
    api.putChild(b"info", APIInfo())
    root.putChild(b"api", api)
    root.putChild(b"", ConsoleFile(context.config, "index.html", _NOT_FOUND))
    static = ConsoleStatic(context.config, _NOT_FOUND)
    static.putChild(b"pinkfish.css", StyleSheet())
    root.putChild(b"static", static)
    site = GatewaySite(root, ws_factory, context)
    # Access lines would go to the log for every health probe: keep them out.
    site.log = lambda request: None
    return site


def make_tls_context(config):
    """A server TLS context factory when api.tls names cert and key, else None.

    The certificate file may hold the chain after the server certificate;
    it is sent to clients too. Keys and certificates are handed over as
    `cryptography` objects (pyOpenSSL's own types are deprecated there).
    """
    cert_path, key_path = config.api.tls.cert, config.api.tls.key
    if not cert_path or not key_path:
        return None
    with open(cert_path, "rb") as f:
        certificates = x509.load_pem_x509_certificates(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return ssl.CertificateOptions(
        privateKey=key, certificate=certificates[0],
        extraCertChain=certificates[1:] or None)
