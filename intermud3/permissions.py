"""Which permission hears about a packet: the one table of it.

An event about a packet nobody in particular asked for (an ``error`` whose
session is gone, the outcome of a message whose session ended) goes to
every session holding the permission of the packet's type.
"""

__all__ = ["NAMES", "for_packet"]

# The permissions an API key may hold (api.auth.api_keys[].permissions); "*" is all.
NAMES = ("tell", "channel", "info", "presence", "admin", "*")

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
