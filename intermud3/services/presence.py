"""Presence: the MUD's player snapshot, and the network's questions
answered from it (API.md "Presence", I3-PROTOCOL.md section 4).

The MUD calls ``presence_sync`` with a full list of its players; for
``presence.ttl`` seconds after that the snapshot is current, and the
gateway answers who-req, finger-req, locate-req, chan-who-req and
chan-user-req by itself, so the MUD need not be fast or even connected.
The ttl is read from the configuration at each check, so a reload applies.

``ucache-update`` broadcasts (and chan-user-reply answers) feed a small
LRU cache of other MUDs' users: ``lookup(mud, user)``.
"""

import time
from collections import OrderedDict

from twisted.logger import Logger

from intermud3 import lpc, packets
from intermud3.outbound import Unsendable, frame_size
from intermud3.names import fold
from intermud3.services.inbound import reply_user, same_mud, send_error

__all__ = ["Presence", "MAX_UCACHE"]

_log = Logger()

MAX_UCACHE = 1000

# Bytes of a frame besides the LPC text: 4-byte length, trailing NUL.
_FRAME_OVERHEAD = 5


class Presence:
    def __init__(self, *, inbound, link, config, mud_name, clock, max_ucache=MAX_UCACHE):
        """``config()`` and ``mud_name()`` give the values now (a reload
        may change them)."""
        self._link = link
        self._config = config
        self._mud_name = mud_name
        self._clock = clock
        self._users = {}            # I3 user name (lower case) -> user dict
        self._order = []            # user names in the order the MUD gave them
        self._synced_at = None
        self._ucache = OrderedDict()
        self.max_ucache = max_ucache
        register = inbound.register
        register("who-req", self._who_req)
        register("finger-req", self._finger_req)
        register("locate-req", self._locate_req)
        register("chan-who-req", self._chan_who_req)
        register("chan-user-req", self._chan_user_req)
        register("ucache-update", self._ucache_update)
        register("chan-user-reply", self._ucache_update)

    # -- the snapshot ---------------------------------------------------------------

    @property
    def max_users(self):
        """How many players one snapshot may hold (presence.max_users, read now)."""
        return self._config().presence.max_users

    def sync(self, users):
        """Replace the snapshot with ``users`` (checked user dicts, as the
        API reads them); the number of players it holds. A later entry of
        the same name (any case) wins, in the place of the first."""
        snapshot = {}
        order = []
        for user in users:
            key = user["name"].casefold()
            if key not in snapshot:
                order.append(key)
            snapshot[key] = user
        self._users = snapshot
        self._order = order
        self._synced_at = self._clock.seconds()
        _log.debug("Presence snapshot: {count} players", count=len(snapshot))
        return len(snapshot)

    def current(self):
        """Whether the snapshot is younger than presence.ttl (read now)."""
        if self._synced_at is None:
            return False
        ttl = self._config().presence.ttl
        return self._clock.seconds() - self._synced_at <= ttl

    def knows_user(self, name):
        """True/False for a current snapshot; None when there is none."""
        if not self.current():
            return None
        return isinstance(name, str) and name.casefold() in self._users

    def user(self, name):
        """The snapshot entry of ``name`` (any case) while current, else None."""
        if not self.current() or not isinstance(name, str):
            return None
        return self._users.get(name.casefold())

    def local_name(self, name):
        """Our user ``name`` from the network as the MUD knows it: the
        snapshot's name when the player is in it, else case-folded (routers
        may send ALICE for alice); None for 0."""
        if not isinstance(name, str) or not name:
            return None
        user = self.user(name)
        return user["name"] if user is not None else name.casefold()

    def players(self):
        return [self._users[k] for k in self._order] if self.current() else []

    # -- answering the network --------------------------------------------------------

    def _reply(self, packet, ptype, *fields):
        # Each field as I3 types it (packets.FIELD_TYPES): "" or 0 when not given.
        reply = packets.make(ptype, self._mud_name(), 0, packet.o_mud, reply_user(packet),
                             *packets.typed_fields(ptype, *fields))
        try:
            self._link.send(reply)
        except Unsendable:
            _log.warn("{type} to {mud} does not fit in a frame; not sent",
                      type=ptype, mud=packet.o_mud)

    @staticmethod
    def _answerable(packet):
        # Somewhere to answer. (Our own broadcasts coming back, such as a
        # locate-req we sent, never get here: the inbound dispatcher drops them.)
        origin = packet.o_mud
        return isinstance(origin, str) and bool(origin)

    def _named(self, packet, field):
        """The name a request asks about; None, after answering ``bad-pkt``
        (send_error keeps the I3 rules on answering), when it is missing
        or not a string."""
        name = packet.get(field)
        if isinstance(name, str) and name:
            return name
        send_error(self._link, self._mud_name(), packet, "bad-pkt", f"{packet.type} needs a {field}")
        return None

    def _who_req(self, packet):
        if not self._answerable(packet):
            return
        # A missing title is "" (a 0 here shows as "0" on LPC MUDs).
        entries, = packets.typed_fields(
            "who-reply", [[u["visname"], u["idle"], u["title"]] for u in self.players()])
        self._reply(packet, "who-reply", self._fit(packet, "who-reply", entries))

    def _asked_user(self, packet, unknown):
        """The player a finger or chan-user request names, or None once the
        request has been answered with bad-pkt or unk-user (`unknown`)."""
        if not self._answerable(packet):
            return None
        name = self._named(packet, "username")
        if name is None:
            return None
        user = self.user(name)
        if user is None:
            send_error(self._link, self._mud_name(), packet, "unk-user", unknown.format(name=name))
        return user

    def _finger_req(self, packet):
        user = self._asked_user(packet, "{name} is not online.")
        if user is None:
            return
        self._reply(packet, "finger-reply",
                    user["visname"], user["title"], None, None,
                    _login_text(user["login_time"]), user["idle"], None, user["level"], _extra(user))

    def _locate_req(self, packet):
        if not self._answerable(packet):
            return
        user = self.user(packet.get("username"))
        if user is None:
            return  # only our own players are answered, and only when found
        self._reply(packet, "locate-reply", self._mud_name(), user["visname"],
                    user["idle"], user["status"])

    def _chan_who_req(self, packet):
        if not self._answerable(packet):
            return
        channel = self._named(packet, "channel")
        if channel is None:
            return
        names = [u["visname"] for u in self.players() if channel in u["channels"]]
        self._reply(packet, "chan-who-reply", channel,
                    self._fit(packet, "chan-who-reply", names, channel))

    def _chan_user_req(self, packet):
        user = self._asked_user(packet, "{name} is not a valid player.")
        if user is None:
            return
        self._reply(packet, "chan-user-reply", packet.get("username").lower(),
                    user["visname"], user["gender"])

    def _fit(self, packet, ptype, items, *leading):
        """The longest prefix of ``items`` whose reply frame fits in
        router.max_send_bytes: sizes are added up once (each array element
        costs its LPC text plus a comma), then the result is verified with
        outbound.frame_size and shortened if the estimate was short."""
        limit = self._config().router.max_send_bytes
        ours = self._mud_name()

        def build(chosen):
            return packets.make(ptype, ours, 0, packet.o_mud, reply_user(packet),
                                *leading, chosen)

        size = _FRAME_OVERHEAD + len(lpc.encode(build([])))
        count = 0
        for item in items:
            size += len(lpc.encode(item)) + 1
            if size > limit:
                break
            count += 1
        while count and frame_size(build(items[:count])) > limit:
            count -= max(1, count // 16)
        if count < len(items):
            _log.info("{type} to {mud} trimmed to {count} of {total} entries to fit {limit} bytes",
                      type=ptype, mud=packet.o_mud, count=count, total=len(items), limit=limit)
        return items[:count]

    # -- other MUDs' users ---------------------------------------------------------------

    def _ucache_update(self, packet):
        mud, name = packet.o_mud, packet.get("username")
        if fold(mud) is None or not isinstance(name, str) or not name:
            return
        if same_mud(mud, self._mud_name()):
            return  # what we said of our own players; the snapshot knows better
        gender = packet.get("gender")
        key = (fold(mud), name.casefold())
        self._ucache.pop(key, None)
        self._ucache[key] = {
            "mud": mud,
            "user": name.lower(),
            "visname": packet.get("visname") if isinstance(packet.get("visname"), str) else name,
            "gender": gender if gender in (0, 1, 2) and not isinstance(gender, bool) else 2,
        }
        while len(self._ucache) > self.max_ucache:
            self._ucache.popitem(last=False)

    def lookup(self, mud, user):
        """What the network told us of ``user`` at ``mud`` (any case):
        {"mud","user","visname","gender"}, or None."""
        if fold(mud) is None or not isinstance(user, str):
            return None
        key = (fold(mud), user.casefold())
        entry = self._ucache.get(key)
        if entry is not None:
            self._ucache.move_to_end(key)
            return dict(entry)
        return None


def _extra(user):
    """Race, guild, location and status as one line for finger's ``extra``."""
    parts = [f"{label}: {user[key]}" for key, label in
             (("race", "Race"), ("guild", "Guild"), ("location", "Location"), ("status", "Status"))
             if user[key]]
    return ", ".join(parts) if parts else None


def _login_text(seconds):
    """finger-reply's login time is a string in I3: the snapshot's epoch
    seconds written as C's ctime() does (in UTC), as LPC MUDs print it."""
    return time.asctime(time.gmtime(seconds)) if seconds else None
