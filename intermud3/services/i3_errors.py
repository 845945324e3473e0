"""Inbound I3 ``error`` packets: who asked, and who hears about it.

An error carries the packet it answers. When that packet was one of our
pending queries, the query fails with it (services/queries.py); either way
an ``error_occurred`` event goes to the session whose request it concerns
while that session exists, else to every session holding the permission
of the packet's kind (API.md "Authentication, permissions, sessions").

Messages are sent through the durable outbox and complete long before any
error arrives, so their senders call ``remember(packet, session)``: a
bounded, expiring map from the packet's identity to the session.

Some routers (CoffeeMud's) send 0 where the answered packet belongs. Such
an error is matched by what it still says: the MUD that answered, our
user it is addressed to, and a code that answers one kind of request
(``unk-user`` a finger or a tell, ``unk-channel`` a chan-who).
"""

from collections import OrderedDict

from twisted.logger import Logger

from intermud3 import packets
from intermud3.permissions import for_packet
from intermud3.names import fold
from intermud3.services.inbound import text_field as _text

__all__ = ["ErrorRouter", "carried_packet"]

_log = Logger()

# How many sent packets we remember for routing their errors.
DEFAULT_MAX_REMEMBERED = 1000

# Codes that tell us about the network rather than answer a request.
_NOTICES = ("warning", "bad-mojo")

# For an error without its packet: the messages a code can answer.
_UNCARRIED_MESSAGES = {"unk-user": ("tell", "emoteto")}


def carried_packet(value):
    """The offending packet an error carries, as a Packet, or None (0 or junk)."""
    try:
        return packets.parse(value)
    except packets.PacketError:
        return None


def packet_key(value):
    """(type, target mud, target user, originator user), case-folded; None
    when ``value`` is not a packet."""
    if isinstance(value, packets.Packet):
        value = value.value
    # What packets.parse accepts, read in place (this runs for every
    # message we send): [type, ttl, o_mud, o_user, t_mud, t_user, ...].
    if not isinstance(value, (list, tuple)) or len(value) < 6 or not isinstance(value[0], str) \
            or not value[0]:
        return None
    return (value[0], fold(value[4]), fold(value[5]), fold(value[3]))


class ErrorRouter:
    def __init__(self, *, inbound, queries, presence, hub, config, clock,
                 max_remembered=DEFAULT_MAX_REMEMBERED):
        """``config()`` is the configuration now (a reload may change it)."""
        self._queries = queries
        self._presence = presence
        self._hub = hub
        self._config = config
        self._clock = clock
        self.max_remembered = max_remembered
        # packet_key -> (session, expires at); oldest first.
        self._remembered = OrderedDict()
        inbound.register("error", self.error_received)

    # -- remembering who sent what -------------------------------------------

    def _ttl(self):
        return self._config().api.session.timeout

    def remember(self, packet, session):
        """Route a later error carrying ``packet`` to ``session``."""
        if session is None:
            return
        key = packet_key(packet)
        if key is None:
            return
        remembered = self._remembered
        now = self._clock.seconds()
        remembered.pop(key, None)
        remembered[key] = (session, now + self._ttl(), packet)
        # Expired entries are pruned where they are read; here only the
        # bound is kept (this runs for every message sent).
        if len(remembered) > self.max_remembered:
            self._prune(now)

    def _prune(self, now):
        while self._remembered:
            key, (_, expires, _) = next(iter(self._remembered.items()))
            if len(self._remembered) <= self.max_remembered and expires > now:
                break
            del self._remembered[key]

    def remembered_session(self, carried):
        if carried is None:
            return None
        self._prune(self._clock.seconds())
        entry = self._remembered.get(packet_key(carried))
        return entry[0] if entry is not None else None

    def remembered_uncarried(self, mud, user, code):
        """(session, packet) of the newest remembered message an error
        without its packet can answer: sent to ``mud`` by ``user``, of a
        type ``code`` answers; None when there is none."""
        types = _UNCARRIED_MESSAGES.get(code, ())
        if not types or fold(mud) is None:
            return None
        self._prune(self._clock.seconds())
        for key, (session, _, packet) in reversed(self._remembered.items()):
            if key[0] in types and key[1] == fold(mud) and key[3] == fold(user):
                return session, carried_packet(packet)
        return None

    # -- inbound errors --------------------------------------------------------

    def error_received(self, packet):
        code = _text(packet.get("error_code")) or "unknown"
        message = _text(packet.get("error_message")) or ""
        carried = carried_packet(packet.get("error_packet"))
        if code in _NOTICES:
            _log.warn("Router notice {code} from {mud}: {text}",
                      code=code, mud=packet.o_mud, text=message)
        else:
            _log.info("I3 error {code} from {mud}: {text}", code=code, mud=packet.o_mud, text=message)

        queries = self._queries
        if carried is not None:
            request = queries.request_for_error(carried)
            session = request.call.session if request is not None else self.remembered_session(carried)
            context = _context(carried.type, carried.t_mud, carried.t_user)
        else:
            request, session, context = self._uncarried(packet, code)

        self._hub.publish("error_occurred", {
            "error_code": code,
            "error_message": message,
            "from_mud": _text(packet.o_mud),
            "to_mud": _text(packet.t_mud),
            "to_user": self._presence.local_name(packet.t_user),
            "context": context,
        }, session=session, permission=for_packet(context["packet_type"]))
        # The event first, then the call's reply, as for every other answer.
        if request is not None:
            queries.fail(request, code, message)

    def _uncarried(self, packet, code):
        """(request, session, context) for an error that carries 0 instead
        of the packet it answers: a pending query first, then a message."""
        request = self._queries.request_for_uncarried_error(packet.o_mud, packet.t_user, code)
        if request is not None:
            return request, request.call.session, _context(
                request.request_type, request.answered_by, request.target_user)
        found = self.remembered_uncarried(packet.o_mud, packet.t_user, code)
        if found is not None and found[1] is not None:
            session, sent = found
            return None, session, _context(sent.type, sent.t_mud, sent.t_user)
        return None, None, _context(None, None, None)


def _context(ptype, target_mud, target_user):
    return {"packet_type": ptype, "target_mud": _text(target_mud), "target_user": _text(target_user)}
