"""I3 packets: the field table of every packet type, and building/reading them.

A packet is the decoded top-level LPC array
``[type, ttl, o_mud, o_user, t_mud, t_user, *fields]`` (I3-PROTOCOL.md
section 3). ``FIELDS`` names the fields after that six-element header.
"""

__all__ = ["TTL", "HEADER", "FIELDS", "FIELD_TYPES", "PacketError", "Packet", "make",
           "parse", "typed_fields", "weight"]

# Nobody checks the ttl; everyone sends 5.
TTL = 5

HEADER = ("type", "ttl", "o_mud", "o_user", "t_mud", "t_user")

FIELDS = {
    # Session
    "startup-req-3": (
        "password", "old_mudlist_id", "old_chanlist_id", "player_port",
        "imud_tcp_port", "imud_udp_port", "mudlib", "base_mudlib", "driver",
        "mud_type", "open_status", "admin_email", "services", "other_data"),
    "startup-reply": ("router_list", "password"),
    "mudlist": ("mudlist_id", "info_mapping"),
    "chanlist-reply": ("chanlist_id", "channel_list"),
    "shutdown": ("restart_delay",),
    "error": ("error_code", "error_message", "error_packet"),
    # Services
    "tell": ("orig_visname", "message"),
    "emoteto": ("orig_visname", "message"),
    "who-req": (),
    "who-reply": ("who_data",),
    "finger-req": ("username",),
    "finger-reply": (
        "visname", "title", "real_name", "email", "loginout_time",
        "idle_time", "ip_name", "level", "extra"),
    "locate-req": ("username",),
    "locate-reply": ("located_mud", "located_visname", "idle", "status"),
    # Channels
    "channel-m": ("channel", "visname", "message"),
    "channel-e": ("channel", "visname", "message"),
    "channel-t": (
        "channel", "target_mud", "target_user", "msg_others", "msg_target",
        "orig_visname", "target_visname"),
    "channel-listen": ("channel", "on_or_off"),
    "channel-add": ("channel", "channel_type"),
    "channel-remove": ("channel",),
    "channel-admin": ("channel", "add_list", "remove_list"),
    "chan-who-req": ("channel",),
    "chan-who-reply": ("channel", "user_list"),
    "chan-user-req": ("username",),
    "chan-user-reply": ("username", "visname", "gender"),
    "ucache-update": ("username", "visname", "gender"),
    "auth-mud-req": (),
    "auth-mud-reply": ("session_key",),
    "chan-filter-req": ("channel", "packet"),
    "chan-filter-reply": ("channel", "packet"),
}

# The I3 type of each field of the replies we build from our own data,
# field by field as in FIELDS: "string", "int", [T] an array of T, and a
# tuple an array of fixed shape (a who-reply entry: visname, idle, extra).
# LPC peers print what they get: a missing string must go as "" (a 0 shows
# as "0", and CoffeeMud's router throws on an int where it reads a string).
_WHO_ENTRY = ("string", "int", "string")
FIELD_TYPES = {
    "who-reply": ([_WHO_ENTRY],),
    "finger-reply": ("string", "string", "string", "string", "string", "int",
                     "string", "string", "string"),
    "locate-reply": ("string", "string", "int", "string"),
    "chan-who-reply": ("string", ["string"]),
    "chan-user-reply": ("string", "string", "int"),
}

# Index of each named field in the whole packet list, per type.
_INDEX = {ptype: {name: len(HEADER) + i for i, name in enumerate(names)}
          for ptype, names in FIELDS.items()}

# How a Dead Souls router's flood control counts a packet; default 1.
_WEIGHTS = {"startup-req-3": 6, "channel-listen": 0}


class PacketError(ValueError):
    """A value is not a packet, or a packet is built with the wrong fields."""


def _nothing_to_zero(value):
    return 0 if value is None else value


def make(type, o_mud, o_user, t_mud, t_user, *fields):
    """The packet list for ``type``, with ttl ``TTL`` and None written as 0.

    Raises PacketError when a type listed in ``FIELDS`` gets the wrong
    number of fields: a router drops a malformed packet without a word.
    """
    expected = FIELDS.get(type)
    if expected is not None and len(fields) != len(expected):
        raise PacketError(
            f"{type} takes {len(expected)} fields ({', '.join(expected) or 'none'}), got {len(fields)}")
    header = [type, TTL, o_mud, o_user, t_mud, t_user]
    return [_nothing_to_zero(v) for v in header] + [_nothing_to_zero(v) for v in fields]


class Packet:
    """A received packet: header attributes, ``fields`` and ``get(name)``."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    type = property(lambda self: self.value[0])
    ttl = property(lambda self: self.value[1])
    o_mud = property(lambda self: self.value[2])
    o_user = property(lambda self: self.value[3])
    t_mud = property(lambda self: self.value[4])
    t_user = property(lambda self: self.value[5])
    fields = property(lambda self: self.value[len(HEADER):])

    def get(self, name, default=0):
        """The field called ``name`` in ``FIELDS``, or ``default`` when the
        type has no such field or the packet is too short to hold it."""
        index = _INDEX.get(self.type, {}).get(name)
        if index is None or index >= len(self.value):
            return default
        return self.value[index]

    def __eq__(self, other):
        return isinstance(other, Packet) and self.value == other.value

    __hash__ = None

    def __repr__(self):
        return f"Packet({self.value!r})"


def _typed(kind, value):
    """``value`` as the I3 type ``kind``: None (not given) is the type's
    empty value, an int for a string field is written out, and anything
    else that does not fit is the empty value."""
    if isinstance(kind, list):
        items = value if isinstance(value, (list, tuple)) else []
        return [_typed(kind[0], item) for item in items]
    if isinstance(kind, tuple):
        items = list(value) if isinstance(value, (list, tuple)) else []
        items += [None] * (len(kind) - len(items))
        return [_typed(k, item) for k, item in zip(kind, items)]
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int":
        return value if is_int else 0
    if isinstance(value, str):
        return value
    return str(value) if is_int else ""


def typed_fields(ptype, *fields):
    """The fields of a ``ptype`` reply, each as FIELD_TYPES types it."""
    kinds = FIELD_TYPES[ptype]
    if len(fields) != len(kinds):
        raise PacketError(f"{ptype} takes {len(kinds)} fields, got {len(fields)}")
    return [_typed(kind, value) for kind, value in zip(kinds, fields)]


def parse(value):
    """Wrap a decoded value as a Packet; PacketError if it is not one."""
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list):
        raise PacketError(f"a packet is an array, not {type(value).__name__}")
    if len(value) < len(HEADER):
        raise PacketError(f"a packet has at least {len(HEADER)} elements, this one {len(value)}")
    if not isinstance(value[0], str) or not value[0]:
        raise PacketError(f"a packet type is a non-empty string, not {value[0]!r}")
    return Packet(value)


def weight(type):
    """How many packets a Dead Souls router's flood control counts ``type`` as."""
    return _WEIGHTS.get(type, 1)
