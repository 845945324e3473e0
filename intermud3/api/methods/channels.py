"""channel_join/leave/list/history/admin: their parameters read and handed
to services/channels.py (API.md "Channels")."""

from intermud3.api import params as p
from intermud3.api.errors import invalid_params
from intermud3.api.methods import readers as read
from intermud3.services.channels import ACTIONS
from intermud3.services.text import clean

__all__ = ["handlers", "MAX_ADMIN_MUDS", "MAX_HISTORY_LIMIT"]

# MUD names in one channel_admin call.
MAX_ADMIN_MUDS = 100
MAX_HISTORY_LIMIT = 1000
DEFAULT_HISTORY_LIMIT = 50
MAX_QUERY = 256


def handlers(channels):
    """{method: handler(call, params)} over the ChannelService."""

    def join(call, params):
        return channels.join(call.session, read.channel_name(params))

    def leave(call, params):
        return channels.leave(call.session, read.channel_name(params))

    def list_channels(call, params):
        wanted = p.mapping(params, "filter")
        want_type = p.integer(wanted, "type", default=None, minimum=0, maximum=2)
        want_owner = p.text(wanted, "owner", default=None, max_len=read.MAX_NAME)
        return channels.list_channels(call.session, want_type, want_owner)

    def history(call, params):
        channel = read.channel_name(params)
        limit = p.integer(params, "limit", default=DEFAULT_HISTORY_LIMIT,
                          minimum=1, maximum=MAX_HISTORY_LIMIT)
        before = p.integer(params, "before", default=None, minimum=0)
        after = p.integer(params, "after", default=None, minimum=0)
        query = p.text(params, "query", default=None, max_len=MAX_QUERY)
        return channels.history(channel, limit, before, after, query)

    def admin(call, params):
        channel = read.channel_name(params)
        action = p.text(params, "action")
        if action not in ACTIONS:
            raise invalid_params("action", f"action must be one of {', '.join(ACTIONS)}")
        channel_type = muds = None
        if action == "add":
            channel_type = p.integer(params, "type", minimum=0, maximum=2)
        elif action != "remove":
            muds = _muds(params)
        return channels.admin(call.session, channel, action, read.client_msg_id(params),
                              channel_type=channel_type, muds=muds)

    return {
        "channel_join": join,
        "channel_leave": leave,
        "channel_list": list_channels,
        "channel_history": history,
        "channel_admin": admin,
    }


def _muds(params):
    value = params.get("muds")
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise invalid_params("muds", "muds must be a non-empty list of MUD names")
    if len(value) > MAX_ADMIN_MUDS:
        raise invalid_params("muds", f"at most {MAX_ADMIN_MUDS} MUDs at a time",
                             maximum=MAX_ADMIN_MUDS)
    muds = []
    for name in value:
        if not isinstance(name, str) or not clean(name).strip():
            raise invalid_params("muds", "each MUD name must be a non-empty string")
        name = clean(name).strip()
        if len(name) > read.MAX_NAME:
            raise invalid_params("muds", f"a MUD name is at most {read.MAX_NAME} characters")
        muds.append(name)
    return muds
