"""How the in-repo router writes: packets built and framed as FluffOS does.

A newline inside a string goes out as a raw CR (the strict encoder emits
LF nowhere else), and a frame over the connection's ``max_send_bytes``
is not sent. Every packet written is recorded in ``sent``.
"""

import struct

from twisted.logger import Logger

from intermud3 import lpc
from intermud3.packets import TTL

__all__ = ["RouterWriter"]

_log = Logger()

_PREFIX = struct.Struct("!I")


class RouterWriter:
    """Writes the packets of the router called ``name``."""

    def __init__(self, name):
        self.name = name
        self.sent = []          # (mud, packet) for every packet written
        self.silent = False     # read everything, write nothing (a router gone quiet)

    def packet(self, ptype, t_mud, t_user, *fields):
        """A packet from this router."""
        return [ptype, TTL, self.name, 0, t_mud, t_user, *fields]

    def error(self, conn, packet, code, message):
        """An ``error`` packet answering ``packet`` to its originator."""
        self.send_error(conn, packet[2], packet[3], code, message, packet)

    def send_error(self, conn, mud, user, code, message, packet):
        self.write(conn, self.packet("error", mud, user, code, message, packet))

    def write(self, conn, packet, *, force=False):
        """Writes one packet as FluffOS would; False when nothing was
        written (silent unless ``force``, no LPC form, too large)."""
        if self.silent and not force:
            return False
        try:
            text = lpc.encode(packet).replace(b"\n", b"\r") + b"\x00"
        except lpc.LPCError as exc:
            _log.warn("Router cannot write a {type} packet: {error}", type=packet[0], error=str(exc))
            return False
        data = _PREFIX.pack(len(text)) + text
        if len(data) > conn.max_send_bytes:
            _log.warn("Router frame of {size} bytes is too large; not sent", size=len(data))
            return False
        conn.transport.write(data)
        self.sent.append((conn.mud, packet))
        return True
