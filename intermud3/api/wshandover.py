"""Handing a WebSocket upgrade to Autobahn before twisted.web parses it.

HTTP and WebSocket share the API port. Read through twisted.web, an upgrade
costs a full `Request` (headers, resource lookup, render) and then Autobahn
parses the head again from a copy rebuilt out of that request: about a
third of what a connect costs the gateway. The first request of a
connection is therefore looked at first (web.CountedHTTPChannel): when it
is an upgrade request for /ws in the form clients send, its bytes go to the
Autobahn protocol as they came; anything else goes to twisted.web as before,
where /ws is still mounted (so an unusual upgrade, or one on a kept-alive
connection, works as it always did).

"The form clients send" is narrow on purpose, so that Autobahn sees exactly
the request it would have seen through twisted.web: `GET /ws` (or
`/ws?query`) `HTTP/1.1`, the whole head in at most `MAX_HEAD` bytes with
CRLF line ends, every header line with a colon, no header name twice
(twisted.web joins repeats into one line), no body (`Content-Length`,
`Transfer-Encoding`: twisted.web reads a body before rendering).
"""

import re

from twisted.protocols.policies import ProtocolWrapper

# twisted.web's own bound on a request's head (HTTPChannel.totalHeadersSize):
# a longer one is left to it, to be refused as before.
MAX_HEAD = 16384
MAX_HEADERS = 100
_BODY_HEADERS = (b"content-length", b"transfer-encoding")
# The name of each header line that has a colon (one match per line).
_FIELD_NAME = re.compile(rb"^([^:\r\n]*):", re.MULTILINE)


def _is_ws_request_line(line):
    method, _, rest = line.partition(b" ")
    target, _, version = rest.partition(b" ")
    return (method == b"GET" and version == b"HTTP/1.1"
            and (target == b"/ws" or target.startswith(b"/ws?")))


def is_direct_upgrade(head):
    """For the first bytes of a connection: True when they hold a whole
    request head in the form above (Autobahn reads it), False when
    twisted.web must, None while more bytes may still decide."""
    line_end = head.find(b"\r\n")
    if line_end < 0:
        return None if len(head) < MAX_HEAD and b"\n" not in head else False
    if not _is_ws_request_line(head[:line_end]):
        return False
    end = head.find(b"\r\n\r\n")
    whole = end >= 0
    if whole and end > MAX_HEAD:
        return False
    fields = head[line_end + 2:end if whole else None]
    if fields.count(b"\n") != fields.count(b"\r\n"):
        return False    # a bare LF: twisted.web's reading of it stands
    if not whole:
        return None if len(head) < MAX_HEAD else False
    names = _FIELD_NAME.findall(fields.lower())
    lines = fields.count(b"\r\n") + 1
    if len(names) != lines or lines > MAX_HEADERS:
        return False    # a line without a colon, or very many
    if len(set(names)) != lines or any(name in names for name in _BODY_HEADERS):
        return False
    return True


def hand_over(transport, protocol, data):
    """Make `protocol` the one `transport` delivers to (the TLS wrapper's
    inner protocol under TLS) and give it `data`, the bytes read so far."""
    if isinstance(transport, ProtocolWrapper):
        transport.wrappedProtocol = protocol
    elif isinstance(getattr(transport, "protocol", None), ProtocolWrapper):
        transport.protocol.wrappedProtocol = protocol
    else:
        transport.protocol = protocol
    protocol.makeConnection(transport)
    protocol.dataReceived(data)
