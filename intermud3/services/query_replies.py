"""The values of who-, finger-, locate- and chan-who-reply packets as the
API reports them, read leniently: a malformed field becomes 0, "" or None,
never an exception (replies come from any MUD on the network)."""

import math

from intermud3.services.inbound import text_field as _text

__all__ = ["number", "who_users", "finger_info", "located", "visnames", "given"]


def number(value):
    """An int field from the network; 0 for anything malformed (infinity
    included: a lenient reader hands over whatever ``1e999`` reads as)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return 0


def _level(value):
    # Levels are ints on most MUDs, text ("Wizard") on some.
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else 0


def given(value):
    """A text field that may be missing: "" and 0 are both I3's "not
    given", which the API reports as null."""
    return _text(value) or None


def who_users(data):
    users = []
    if not isinstance(data, (list, tuple)):
        return users
    for entry in data:
        if not isinstance(entry, (list, tuple)) or not entry:
            continue
        users.append({
            "name": _text(entry[0]) or "",
            "idle": number(entry[1]) if len(entry) > 1 else 0,
            "level": _level(entry[3]) if len(entry) > 3 else 0,
            "extra": (_text(entry[2]) or "") if len(entry) > 2 else "",
        })
    return users


def finger_info(packet):
    return {
        "name": _text(packet.get("visname")),
        "title": given(packet.get("title")),
        "real_name": given(packet.get("real_name")),
        "email": given(packet.get("email")),
        "login_time": _login_time(packet.get("loginout_time")),
        "idle_time": number(packet.get("idle_time")),
        "ip_address": given(packet.get("ip_name")),
        "level": _level(packet.get("level")),
        "extra": given(packet.get("extra")),
    }


def located(packet):
    return {
        "mud": _text(packet.get("located_mud")),
        "user": _text(packet.get("located_visname")),
        "idle": number(packet.get("idle")),
        "status": given(packet.get("status")),
    }


def _login_time(value):
    # I3 types it a string (ctime()-like); some MUDs send a number.
    if isinstance(value, str):
        return value or None
    return number(value)


def visnames(data):
    if not isinstance(data, (list, tuple)):
        return []
    return [name for name in (_text(v) for v in data) if name]
