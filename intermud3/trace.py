"""What the `level: debug` trace shows of a packet: its route and a bounded
glimpse of its text, never a secret.

Only header fields and the text fields named below are shown, so a router
password (startup-req-3, startup-reply) or a session key (auth-mud-reply)
never reaches a log line. A summary is an object formatted lazily: when
debug lines are filtered out, no packet is decoded or rendered for them.
"""

from intermud3 import lpc
from intermud3.packets import Packet

# Characters of message text a trace line shows; the rest becomes "...".
TEXT_LIMIT = 80

# The field of each type that holds what a person wrote.
_TEXT_FIELD = {
    "tell": "message", "emoteto": "message",
    "channel-m": "message", "channel-e": "message", "channel-t": "msg_others",
    "error": "error_message",
}


def cut(text, limit=TEXT_LIMIT):
    return text if len(text) <= limit else text[:limit] + "..."


def _address(user, mud):
    if not mud:
        return "*" if not user else f"{user}@*"
    return f"{user}@{mud}" if user else str(mud)


def summarize(value):
    """One line for a decoded packet: origin -> target, channel, text."""
    if not isinstance(value, list) or len(value) < 6 or not isinstance(value[0], str):
        return "(not a packet)"
    packet = Packet(value)
    parts = [f"{_address(packet.o_user, packet.o_mud)} -> {_address(packet.t_user, packet.t_mud)}"]
    channel = packet.get("channel", None)
    if isinstance(channel, str):
        parts.append(f"channel {channel}")
    if packet.type == "error":
        parts.append(str(packet.get("error_code", "")))
    field = _TEXT_FIELD.get(packet.type)
    if field is not None:
        text = packet.get(field, "")
        if isinstance(text, str):
            parts.append(repr(cut(text)))
    return " ".join(parts)


class PacketSummary:
    """summarize() of a decoded value or of a whole frame, done only when
    the log line is written."""

    __slots__ = ("_value", "_frame")

    def __init__(self, value=None, frame=None):
        self._value = value
        self._frame = frame

    def __str__(self):
        value = self._value
        if value is None:
            try:
                value = lpc.decode(self._frame[4:])
            except lpc.LPCError:
                return "(undecodable)"
        return summarize(value)

    def __format__(self, spec):
        return format(str(self), spec)
