"""Readers of the I3 parameters the method handlers share: names, texts,
the speaking player. Each returns the value as the services take it
(cleaned for the network, services/text.py) or raises -32602 naming the
parameter (api/params.py)."""

from intermud3.api import params as p
from intermud3.api.errors import invalid_params
from intermud3.services.text import clean, username

# User and MUD names are short on every real MUD; visnames may carry colour.
MAX_NAME = 64
MAX_VISNAME = 256
# Real channel names are short ("dead_test4", "imud_gossip"); this bounds junk.
MAX_CHANNEL_NAME = 64
MAX_CLIENT_MSG_ID = 128
DEFAULT_FROM_USER = "someone"

_CONTROL = frozenset(chr(c) for c in list(range(0x20)) + list(range(0x7F, 0xA0)))


def channel_name(params, field="channel"):
    """A channel name parameter: non-empty, no control characters, at most
    MAX_CHANNEL_NAME characters, case kept (I3 channel names are case
    sensitive), surrounding blanks trimmed."""
    name = p.text(params, field, max_len=MAX_CHANNEL_NAME).strip()
    if any(ch in _CONTROL for ch in name):
        raise invalid_params(field, f"{field} must not contain control characters")
    return name


def client_msg_id(params):
    return p.text(params, "client_msg_id", default=None, max_len=MAX_CLIENT_MSG_ID)


def line(text):
    """A name given by the MUD, cleaned for the network like all text, on
    one line and trimmed."""
    return clean(text).replace("\n", " ").strip()


def name(params, field):
    """A required name (MUD, user, channel) on one line, non-empty."""
    value = line(p.text(params, field, max_len=MAX_NAME))
    if not value:
        raise invalid_params(field, f"{field} must not be empty")
    return value


def user(params, field):
    """An I3 user name (lower case, no blanks), required."""
    value = username(p.text(params, field, max_len=MAX_NAME))
    if not value:
        raise invalid_params(field, f"{field} must hold a user name")
    return value


def message(params, field):
    """A required message text, cleaned, not blank."""
    value = clean(p.text(params, field))
    if not value.strip():
        raise invalid_params(field, f"{field} must not be empty")
    return value


def visname(params, field, default):
    value = clean(p.text(params, field, default=default, max_len=MAX_VISNAME))
    return value.replace("\n", " ").strip() or clean(default).strip()


def speaker(params):
    """(I3 user name, visname) of the local player speaking."""
    given = p.text(params, "from_user", default=DEFAULT_FROM_USER, max_len=MAX_NAME)
    from_user = username(given)
    if not from_user:
        raise invalid_params("from_user", "from_user must hold a user name")
    shown = visname(params, "visname", given)
    return from_user, shown or from_user


def asker(params):
    """The asking player's I3 name (cleaned, lower-cased), or 0 (the MUD itself)."""
    value = p.text(params, "from_user", default=None, max_len=MAX_NAME)
    return (username(value) if value else "") or 0
