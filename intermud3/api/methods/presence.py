"""presence_sync: the MUD's player list read and checked, then handed to
services/presence.py (API.md "Presence")."""

from intermud3.api.errors import invalid_params
from intermud3.api.methods.readers import line

__all__ = ["handlers"]

MAX_NAME = 64
MAX_TEXT = 1024
MAX_CHANNELS = 256

_TEXT_FIELDS = ("visname", "title", "race", "guild", "location", "status")
_INT_FIELDS = ("idle", "login_time")


def handlers(presence, mud_name):
    """{method: handler(call, params)} over the Presence service;
    ``mud_name()`` is our MUD's name now."""

    def presence_sync(call, params):
        limit = presence.max_users
        users = params.get("users")
        if not isinstance(users, list):
            raise invalid_params("users", "users must be a list of player objects")
        if len(users) > limit:
            raise invalid_params("users", f"users holds at most {limit} players", max=limit)
        count = presence.sync([_read_user(raw, f"users[{index}]")
                               for index, raw in enumerate(users)])
        return {"status": "synchronized", "mud_name": mud_name(), "count": count}

    return {"presence_sync": presence_sync}


def _read_user(raw, where):
    """One player of presence_sync, checked; fields not given are 0/None."""
    if not isinstance(raw, dict):
        raise invalid_params(where, f"{where} must be an object")

    def field(name):
        return f"{where}.{name}"

    name = raw.get("name")
    if not isinstance(name, str) or not line(name):
        raise invalid_params(field("name"), f"{field('name')} must be a non-empty string")
    name = line(name)
    if len(name) > MAX_NAME:
        raise invalid_params(field("name"), f"{field('name')} is longer than {MAX_NAME} characters",
                             max_len=MAX_NAME)
    user = {"name": name}
    for key in _TEXT_FIELDS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise invalid_params(field(key), f"{field(key)} must be a string")
        if value is not None and len(value) > MAX_TEXT:
            raise invalid_params(field(key), f"{field(key)} is longer than {MAX_TEXT} characters",
                                 max_len=MAX_TEXT)
        user[key] = (line(value) if value is not None else None) or None
    user["visname"] = user["visname"] or name
    for key in _INT_FIELDS:
        value = raw.get(key)
        if value is None:
            user[key] = 0
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise invalid_params(field(key), f"{field(key)} must be a number of at least 0")
        # LPC ints are 32-bit on some peers.
        user[key] = min(int(value), 2**31 - 1)
    level = raw.get("level")
    if level is not None and (isinstance(level, bool) or not isinstance(level, (int, str))):
        raise invalid_params(field("level"), f"{field('level')} must be an integer or a string")
    if isinstance(level, int) and not -2**31 <= level < 2**31:
        raise invalid_params(field("level"), f"{field('level')} is out of range")
    user["level"] = level if level not in (None, "") else None
    gender = raw.get("gender", 2)
    if gender is None:
        gender = 2
    if isinstance(gender, bool) or gender not in (0, 1, 2):
        raise invalid_params(field("gender"), f"{field('gender')} must be 0, 1 or 2")
    user["gender"] = gender
    channels = raw.get("channels")
    if channels is None:
        channels = []
    if not isinstance(channels, list) or len(channels) > MAX_CHANNELS:
        raise invalid_params(field("channels"),
                             f"{field('channels')} must be a list of at most {MAX_CHANNELS} names")
    for index, channel in enumerate(channels):
        if not isinstance(channel, str) or not channel:
            raise invalid_params(f"{field('channels')}[{index}]",
                                 f"{field('channels')}[{index}] must be a non-empty string")
    user["channels"] = frozenset(channels)
    return user
