"""The method table: method name -> permission it needs -> handler.

PERMISSIONS (intermud3/permissions.METHODS) is API.md's permission
table, the single source of truth for which methods exist; the dispatcher
enforces it, so a handler never checks
permissions itself. The modules of this package read each method's
parameters (-32602 for a bad one) and call the service that does the work;
a service's refusal (services/failures.py) becomes its JSON-RPC error in
api/errors.py, on the error path only.
"""

from intermud3.api.methods import channels as channel_methods
from intermud3.api.methods import messages as message_methods
from intermud3.api.methods import network as network_methods
from intermud3.api.methods import presence as presence_methods
from intermud3.api.methods import queries as query_methods
from intermud3.permissions import METHODS as PERMISSIONS


# Every server-to-client notification of API.md (for /api/info).
EVENTS = [
    "welcome",
    "tell_received",
    "emoteto_received",
    "channel_message",
    "channel_emote",
    "channel_targeted",
    "who_reply",
    "finger_reply",
    "locate_reply",
    "chan_who_reply",
    "error_occurred",
    "mud_online",
    "mud_offline",
    "gateway_connected",
    "gateway_disconnected",
    "gateway_reconnected",
    "message_sent",
    "message_expired",
]


class MethodTable:
    """Handlers registered by name; only names of PERMISSIONS are accepted."""

    def __init__(self, handlers=None):
        self._handlers = {}
        for name, handler in (handlers or {}).items():
            self.add(name, handler)

    def add(self, name, handler):
        if name not in PERMISSIONS:
            raise ValueError(f"{name!r} is not a method of the API (see PERMISSIONS)")
        if not callable(handler):
            raise TypeError(f"handler for {name!r} is not callable")
        self._handlers[name] = handler

    def lookup(self, name):
        """(permission, handler) for a registered method, else None."""
        handler = self._handlers.get(name)
        if handler is None:
            return None
        return PERMISSIONS[name], handler

    def names(self):
        return sorted(self._handlers)


def i3_handlers(*, messages, channels, queries, presence, network, mud_name):
    """Method name -> handler of every I3 method, over the built services."""
    return {
        **message_methods.handlers(messages),
        **channel_methods.handlers(channels),
        **query_methods.handlers(queries),
        **presence_methods.handlers(presence, mud_name),
        **network_methods.handlers(network),
    }
