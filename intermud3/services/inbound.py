"""Inbound packet dispatch: every packet from the link goes to the services
that registered for its type (I3-PROTOCOL.md section 4).

The rules that keep two MUDs from answering each other forever live here,
once: our own broadcasts coming back are dropped before any service sees
them, and an unknown type is answered with ``unk-type`` only when it was
addressed to us by a MUD, and never when it is itself an ``error``.
"""

from twisted.logger import Logger

from intermud3 import packets
from intermud3.names import fold
from intermud3.outbound import Unsendable

__all__ = ["InboundDispatcher", "LINK_HANDLED", "same_mud", "text_field", "reply_user",
           "send_error", "may_answer"]

_log = Logger()

# Types the link handles itself; passed on (chanlist-reply) or not, they
# are known and must never be answered with unk-type.
LINK_HANDLED = ("startup-reply", "mudlist", "chanlist-reply", "auth-mud-req", "auth-mud-reply")


def same_mud(a, b):
    folded = fold(a)
    return folded is not None and folded == fold(b)


def text_field(value):
    """A text field from the network: a string, a number written out, or
    None for 0 and for anything else (an array or mapping is junk here)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
        return None
    return str(value)


def is_broadcast(packet):
    """Target MUD 0 (or missing): the packet went to every MUD."""
    return fold(packet.t_mud) is None


class InboundDispatcher:
    """Routes each inbound Packet by type (docs/ARCHITECTURE.md, services)."""

    def __init__(self, *, link, mud_name):
        """``mud_name()`` is our MUD's name now (a reload may change it)."""
        self._link = link
        self._mud_name = mud_name
        self._handlers = {}
        self._known = set(LINK_HANDLED)
        link.on_packet.append(self.dispatch)

    def register(self, ptype, handler):
        """Call ``handler(packet)`` for every inbound packet of ``ptype``.
        Several handlers may share a type; they run in registration order."""
        self._handlers.setdefault(ptype, []).append(handler)

    def known(self, ptype):
        return ptype in self._known or ptype in self._handlers

    def dispatch(self, packet):
        """One inbound packet. Never raises: a failing handler is logged."""
        try:
            self._dispatch(packet)
        except Exception:
            _log.failure("Inbound dispatch failed on a {type} packet",
                         type=getattr(packet, "type", "?"))

    def _dispatch(self, packet):
        ours = self._mud_name()
        if is_broadcast(packet) and same_mud(packet.o_mud, ours):
            # The router echoes our broadcasts (channel messages, locate-req,
            # ucache-update) back to us: already handled on the way out.
            return
        handlers = self._handlers.get(packet.type)
        if handlers:
            for handler in list(handlers):
                try:
                    handler(packet)
                except Exception:
                    _log.failure("Handler for {type} from {mud} failed",
                                 type=packet.type, mud=packet.o_mud)
            return
        if packet.type in self._known:
            return
        self._unknown_type(packet)

    def _unknown_type(self, packet):
        if not may_answer(packet, self._mud_name()):
            _log.debug("Unknown packet type {type} from {mud} ignored",
                       type=packet.type, mud=packet.o_mud)
            return
        _log.info("Unknown packet type {type} from {mud}: answering unk-type",
                  type=packet.type, mud=packet.o_mud)
        send_error(self._link, self._mud_name(), packet, "unk-type",
                   f"Unknown packet type: {packet.type}")


def may_answer(packet, our_mud):
    """Whether an error may be sent back for ``packet``: it was addressed to
    us (not a broadcast), by a MUD (not a router), and is not an error."""
    origin = packet.o_mud
    return (packet.type != "error"
            and same_mud(packet.t_mud, our_mud)
            and isinstance(origin, str) and origin and not origin.startswith("*"))


def reply_user(packet):
    """The user to address an answer to: the originator user when it is a
    name, else 0 (the MUD itself). Junk there (a number no LPC writer
    takes, an array) must not keep the answer from being written."""
    user = packet.o_user
    return user if isinstance(user, str) and user else 0


def send_error(link, our_mud, packet, code, message):
    """Send ``error`` back to the originator of ``packet``, carrying it when
    it can be written and fits in a frame (the offending packet is
    optional: "or 0"). Returns the link's ``outbound.SendResult`` (true
    only when written now). Nothing is sent where I3 forbids an error
    answer (``may_answer``): to a broadcast, an error or a router; False then."""
    if not may_answer(packet, our_mud):
        _log.debug("No {code} answer to a {type} from {mud}: a broadcast, an error or a router",
                   code=code, type=packet.type, mud=packet.o_mud)
        return False
    reply = packets.make("error", our_mud, 0, packet.o_mud, reply_user(packet),
                         code, message, packet.value)
    try:
        return link.send(reply)
    except Unsendable:
        # Too big, or holding what LPC cannot write (a huge int, infinity).
        reply[-1] = 0
        try:
            return link.send(reply)
        except Unsendable:
            _log.warn("Could not answer {code} to {mud}: the error does not fit a frame",
                      code=code, mud=packet.o_mud)
            return False
