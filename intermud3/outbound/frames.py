"""Frames for the router: every packet we write is encoded here, once.

``encode`` turns a packet into its frame (``OutFrame``); a packet that can
never be written (no LPC form, or a frame over ``router.max_send_bytes``)
raises ``Unsendable``, the one exception of the outbound path.
"""

import collections

from intermud3 import lpc
from intermud3.mudmode import frame as _frame
from intermud3.services import failures

__all__ = ["Unsendable", "OutFrame", "encode", "encode_field", "frame_size"]


class Unsendable(ValueError):
    """A packet that can never be written to the router. ``size`` and
    ``limit`` are set when it is too large (else None)."""

    def __init__(self, message, size=None, limit=None):
        super().__init__(message)
        self.size = size
        self.limit = limit


# ``data`` is the whole frame (length prefix, LPC text, NUL); ``type`` the
# packet type, for the pacer and metrics; ``packet`` the value, for storage.
OutFrame = collections.namedtuple("OutFrame", "type data packet")


def encode(packet, limit):
    """The packet (a list or a packets.Packet) as an OutFrame of at most
    ``limit`` bytes; Unsendable otherwise."""
    value = getattr(packet, "value", packet)
    try:
        data = _frame(value)
    except lpc.LPCError as error:
        raise Unsendable(f"cannot be written as I3 text: {error}") from error
    if len(data) > limit:
        raise Unsendable(f"is too long for one I3 packet ({len(data)} bytes, the limit is "
                         f"{limit})", size=len(data), limit=limit)
    ptype = value[0] if isinstance(value, (list, tuple)) and value else ""
    return OutFrame(ptype if isinstance(ptype, str) else "", data, value)


def frame_size(packet):
    """Bytes the packet takes on the wire, length prefix and NUL included;
    lpc.LPCError when it has no LPC form."""
    return len(_frame(getattr(packet, "value", packet)))


def encode_field(packet, limit, field):
    """``encode`` for a packet built from a client's ``field``: a BadRequest
    naming it (TooLarge, with ``max_bytes``, when too long) instead of
    Unsendable, checked before anything is sent or queued."""
    try:
        return encode(packet, limit)
    except Unsendable as error:
        if error.limit is None:
            raise failures.BadRequest(field, f"{field} {error}") from None
        raise failures.TooLarge(field, f"{field} {error}", max_bytes=error.limit) from None
