"""The web console's files: `/` (index.html) and `/static/<name>`.

The files ship in the package (`intermud3/console/`) and are read on each
request, so nothing is built or cached. Only plain file names in that
directory with a known type are served; anything else is the JSON 404 of
the rest of the site. While `api.console.enabled` is false (read per
request, so a reload switches it) every console path is 404 too.

Every answer carries a Content-Security-Policy that allows scripts, styles
and connections from the gateway's own origin only (no inline script), and
`X-Content-Type-Options: nosniff`.
"""

from importlib import resources

from twisted.web.resource import Resource

CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
}

# 'self' covers ws:/wss: to the same host and port in CSP level 3 browsers.
CSP = (b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def console_file(name):
    """(bytes, content type) of a console file, or None."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    suffix = name[name.rfind("."):] if "." in name else ""
    content_type = CONTENT_TYPES.get(suffix)
    if content_type is None:
        return None
    path = resources.files("intermud3.console").joinpath(name)
    if not path.is_file():
        return None
    return path.read_bytes(), content_type


def _serve(request, found):
    body, content_type = found
    request.setHeader(b"content-type", content_type)
    request.setHeader(b"content-security-policy", CSP)
    request.setHeader(b"x-content-type-options", b"nosniff")
    request.setHeader(b"referrer-policy", b"no-referrer")
    request.setHeader(b"cache-control", b"no-cache")
    return b"" if request.method == b"HEAD" else body


class ConsoleFile(Resource):
    """One console file at one path (`/` is index.html)."""

    isLeaf = True

    def __init__(self, config, name, not_found):
        """``config()`` is the configuration now."""
        super().__init__()
        self.config = config
        self.name = name
        self.not_found = not_found

    def render(self, request):
        enabled = self.config().api.console.enabled
        found = console_file(self.name) if enabled and not request.postpath else None
        if found is None:
            return self.not_found.render(request)
        if request.method not in (b"GET", b"HEAD"):
            request.setResponseCode(405)
            request.setHeader(b"allow", b"GET, HEAD")
            return b""
        return _serve(request, found)


class ConsoleStatic(Resource):
    """`/static/`: each child a console file (other files may be put as
    children of their own)."""

    def __init__(self, config, not_found):
        super().__init__()
        self.config = config
        self.not_found = not_found

    def getChild(self, path, request):
        return ConsoleFile(self.config, path.decode("utf-8", "replace"), self.not_found)

    def render(self, request):
        return self.not_found.render(request)
