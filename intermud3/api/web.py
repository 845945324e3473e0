"""The HTTP side of the API port: /ws, /health*, /metrics, /api/info,
/static/pinkfish.css, and the web console (/ and /static/..., see static.py).

One twisted.web `Site` serves HTTP and the WebSocket upgrade on the same
port (the WebSocket resource takes the connection over). Every answer but
/metrics is JSON; unknown paths are 404 with a JSON body.

`/metrics` is a small synchronous resource around `generate_latest` with
the gateway's own registry (prometheus_client.twisted would import the
reactor and use a thread pool).
"""

import weakref

from autobahn.twisted.resource import WebSocketResource
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from twisted.internet import ssl
from twisted.web.resource import Resource
from twisted.web.server import Site

import intermud3
from intermud3.api import methods
from intermud3.api.connection import registry_for
from intermud3.api.static import ConsoleFile, ConsoleStatic
from intermud3.api.ws import CLOSE_GOING_AWAY, make_ws_factory
from intermud3.colour import html as colour_html
from intermud3.events import encode_json, iso_timestamp

JSON_TYPE = b"application/json; charset=utf-8"


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
    }


class Health(_JSONNode):
    def __init__(self, gateway):
        super().__init__()
        self.gateway = gateway

    def answer(self, request):
        gateway = self.gateway
        registry = registry_for(gateway)
        return 200, {
            "status": "healthy",
            "service": "i3-gateway",
            "version": intermud3.__version__,
            "websocket_connections": registry.count("websocket"),
            "tcp_connections": registry.count("tcp"),
            "active_sessions": gateway.sessions.count(),
            "router": _router_status(gateway.link),
        }


class Live(_JSONNode):
    def answer(self, request):
        return 200, {"status": "alive"}


class Ready(_JSONNode):
    """200 only once the router's startup-reply arrived, and while the
    state database takes writes (a gateway that cannot queue or record
    outcomes cannot keep its promises)."""

    def __init__(self, gateway):
        super().__init__()
        self.gateway = gateway

    def answer(self, request):
        link = self.gateway.link
        failing = sorted(getattr(self.gateway.store, "failing", ()))
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


class GatewaySite(Site):
    """The Site, plus what the service needs at shutdown."""

    # Never show a traceback to a client.
    displayTracebacks = False

    def __init__(self, root, ws_factory):
        super().__init__(root)
        self.ws_factory = ws_factory
        self._channels = weakref.WeakSet()  # every HTTP connection (kept alive or not)

    def buildProtocol(self, addr):
        channel = super().buildProtocol(addr)
        self._channels.add(channel)
        return channel

    def close_http(self):
        """Close the HTTP connections still open (a browser keeps its idle
        ones for reuse). Called at stop, after the WebSocket clients went."""
        for channel in list(self._channels):
            # Site's protocol wraps the HTTPChannel (HTTP/1.1 or HTTP/2) as _channel.
            transport = getattr(channel._channel, "transport", None)
            if transport is not None and transport.connected:
                transport.loseConnection()

    def close_all(self, code=CLOSE_GOING_AWAY, reason="server shutting down"):
        """Close every WebSocket client (the service's graceful stop: 1001)."""
        self.ws_factory.close_all(code, reason)


def make_site(gateway):
    ws_factory = make_ws_factory(gateway)
    root = _JSONNode()
    root.putChild(b"ws", WebSocketResource(ws_factory))
    health = Health(gateway)
    health.putChild(b"live", Live())
    health.putChild(b"ready", Ready(gateway))
    root.putChild(b"health", health)
    root.putChild(b"metrics", MetricsPage(gateway.metrics.registry))
    api = _JSONNode()
    api.putChild(b"info", APIInfo())
    root.putChild(b"api", api)
    root.putChild(b"", ConsoleFile(gateway, "index.html", _NOT_FOUND))
    static = ConsoleStatic(gateway, _NOT_FOUND)
    static.putChild(b"pinkfish.css", StyleSheet())
    root.putChild(b"static", static)
    site = GatewaySite(root, ws_factory)
    # Access lines would go to the log for every health probe: keep them out.
    site.log = lambda request: None
    return site


def make_tls_context(config):
    """A server TLS context factory when api.tls names cert and key, else None.

    The certificate file may hold the chain after the server certificate;
    it is sent to clients too. Keys and certificates are handed over as
    `cryptography` objects (pyOpenSSL's own types are deprecated there).
    """
    tls = config["api"].get("tls") or {}
    cert_path, key_path = tls.get("cert"), tls.get("key")
    if not cert_path or not key_path:
        return None
    with open(cert_path, "rb") as f:
        certificates = x509.load_pem_x509_certificates(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    return ssl.CertificateOptions(
        privateKey=key, certificate=certificates[0],
        extraCertChain=certificates[1:] or None)
