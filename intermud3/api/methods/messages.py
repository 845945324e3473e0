"""tell, emoteto, channel_send/emote/target and message_status: their
parameters read and handed to services/messages.py (API.md "Messages")."""

from intermud3.api import params as p
from intermud3.api.errors import invalid_params
from intermud3.api.methods import readers as read
from intermud3.services.text import clean

__all__ = ["handlers"]

# Message ids are short (q<row id> or 12 hex digits and a counter).
MAX_MESSAGE_ID = 64


def handlers(messages):
    """{method: handler(call, params)} over the MessageService."""

    def direct(kind, call, params, field):
        target_mud = _target_mud(params)
        target_user = read.user(params, "target_user")
        message = read.message(params, field)
        from_user, visname = read.speaker(params)
        return messages.direct(kind, call.session, target_mud, target_user, message, from_user,
                               visname, read.client_msg_id(params), field)

    def tell(call, params):
        return direct("tell", call, params, "message")

    def emoteto(call, params):
        # API.md: `emote`, or `message` for older clients.
        return direct("emoteto", call, params, _emote_field(params))

    def channel_text(kind, call, params, field):
        channel = read.channel_name(params)
        message = read.message(params, field)
        from_user, visname = read.speaker(params)
        return messages.channel_text(kind, call.session, channel, message, from_user, visname,
                                     read.client_msg_id(params), field)

    def channel_send(call, params):
        return channel_text("channel_send", call, params, "message")

    def channel_emote(call, params):
        return channel_text("channel_emote", call, params, _emote_field(params))

    def channel_target(call, params):
        channel = read.channel_name(params)
        target_mud = _target_mud(params)
        target_user = read.user(params, "target_user")
        message_others = read.message(params, "message_others")
        message_target = read.message(params, "message_target")
        from_user, visname = read.speaker(params)
        target_visname = read.visname(params, "target_visname", p.text(params, "target_user"))
        return messages.channel_target(
            call.session, channel, target_mud, target_user, message_others, message_target,
            from_user, visname, target_visname, read.client_msg_id(params))

    def message_status(call, params):
        message_id = p.text(params, "message_id", default=None, max_len=MAX_MESSAGE_ID)
        asked_cmid = None if message_id is not None else read.client_msg_id(params)
        if message_id is None and asked_cmid is None:
            raise invalid_params("message_id", "give message_id or client_msg_id")
        return messages.message_status(call.session, message_id, asked_cmid)

    return {
        "tell": tell,
        "emoteto": emoteto,
        "channel_send": channel_send,
        "channel_emote": channel_emote,
        "channel_target": channel_target,
        "message_status": message_status,
    }


def _emote_field(params):
    return "emote" if params.get("emote") is not None else "message"


def _target_mud(params):
    given = clean(p.text(params, "target_mud", max_len=read.MAX_NAME)).strip()
    if not given:
        raise invalid_params("target_mud", "target_mud must not be empty")
    return given
