"""Permissions, in one place: the names a key may hold, what each API
method needs, and who hears about a packet.

An event about a packet nobody in particular asked for (an ``error`` whose
session is gone, the outcome of a message whose session ended) goes to
every session holding the permission of the packet's type.
"""

__all__ = ["NAMES", "METHODS", "for_packet"]

# The permissions an API key may hold (api.auth.api_keys[].permissions); "*" is all.
NAMES = ("tell", "channel", "info", "presence", "admin", "*")

# API.md's permission table: method -> the permission it needs.
# None: no permission needed (authentication may still be needed; see rpc.py).
METHODS = {
    "authenticate": None,
    "restore_session": None,
    "ping": None,
    "heartbeat": None,
    "set_options": None,
    "tell": "tell",
    "emoteto": "tell",
    "channel_join": "channel",
    "channel_leave": "channel",
    "channel_send": "channel",
    "channel_emote": "channel",
    "channel_target": "channel",
    # A tuple: any one of them (every permission that can send a message).
    "message_status": ("tell", "channel", "admin"),
    "channel_history": "channel",
    "who": "info",
    "finger": "info",
    "locate": "info",
    "mudlist": "info",
    "mud_info": "info",
    "channel_list": "info",
    "channel_who": "info",
    "status": "info",
    "stats": "info",
    "presence_sync": "presence",
    "reconnect": "admin",
    "reload_config": "admin",
    "channel_admin": "admin",
}

# Types that administer channels; any other channel-* type is "channel".
_ADMIN_TYPES = frozenset({"channel-add", "channel-remove", "channel-admin"})
_TELL_TYPES = frozenset({"tell", "emoteto"})


def for_packet(ptype):
    """The permission whose holders hear about a ``ptype`` packet."""
    if ptype in _TELL_TYPES:
        return "tell"
    if ptype in _ADMIN_TYPES:
        return "admin"
    if isinstance(ptype, str) and ptype.startswith("channel-"):
        return "channel"
    return "info"
