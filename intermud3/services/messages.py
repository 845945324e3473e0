"""Tells, emotes and channel messages, both ways (API.md "Messages", "Events").

Outbound, each method builds the exact I3 packet (I3-PROTOCOL.md section 3),
refuses one that would not fit in a frame, and hands it to the durable
outbox. Inbound, ``tell``/``emoteto`` become events for every session with
``tell`` permission (or an ``unk-user`` answer when our current presence
snapshot lacks the user), and channel packets are recorded in the history
and published to the channel's local subscribers.
"""

from twisted.internet import defer
from twisted.logger import Logger

from intermud3 import packets
from intermud3.api import params as p
from intermud3.api.errors import invalid_params
from intermud3.events import iso_timestamp
from intermud3.services.channels import channel_name, client_msg_id
from intermud3.services.inbound import send_error, text_field
from intermud3.services.text import clean, username

__all__ = ["MessageService", "MAX_NAME", "MAX_VISNAME"]

_log = Logger()

# User and MUD names are short on every real MUD; visnames may carry colour.
MAX_NAME = 64
# Message ids are short (q<row id> or 12 hex digits and a counter).
MAX_MESSAGE_ID = 64

MAX_VISNAME = 256
DEFAULT_FROM_USER = "someone"

# Inbound channel packet type -> (event, history type).
_CHANNEL_EVENTS = {
    "channel-m": ("channel_message", "message"),
    "channel-e": ("channel_emote", "emote"),
    "channel-t": ("channel_targeted", "targeted"),
}


class MessageService:
    """Built once per gateway, after ``gateway.outbox`` (it registers the
    inbound packet handlers)."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.outbox = gateway.outbox
        # Inbound channel packets for a channel outside the listen set.
        self.unlistened_dropped = 0
        register = gateway.inbound.register
        register("tell", self._tell_received)
        register("emoteto", self._tell_received)
        for ptype in _CHANNEL_EVENTS:
            register(ptype, self._channel_received)

    def handlers(self):
        return {
            "tell": self.tell,
            "emoteto": self.emoteto,
            "channel_send": self.channel_send,
            "channel_emote": self.channel_emote,
            "channel_target": self.channel_target,
            "message_status": self.message_status,
        }

    # -- outbound: tells ---------------------------------------------------

    def tell(self, call, params):
        return self._direct("tell", call, params, "message")

    def emoteto(self, call, params):
        # API.md: `emote`, or `message` for older clients.
        field = "emote" if params.get("emote") is not None else "message"
        return self._direct("emoteto", call, params, field)

    def _direct(self, kind, call, params, field):
        target_mud = self._target_mud(params)
        target_user = _user(params, "target_user")
        message = _message(params, field)
        from_user, visname = _speaker(params)
        packet = packets.make(kind, self.gateway.mud_name, from_user, target_mud,
                              target_user, visname, message)
        out = self.outbox.encode(packet, field)
        session = call.session
        return self.outbox.submit(
            kind, out, session, client_msg_id(params),
            accepted=lambda result: self.gateway.errors.remember(packet, session))

    # -- outcomes ----------------------------------------------------------

    def message_status(self, call, params):
        """The fate of a message this key sent (API.md message_status)."""
        session = call.session
        message_id = p.text(params, "message_id", default=None, max_len=MAX_MESSAGE_ID)
        asked_cmid = None if message_id is not None else client_msg_id(params)
        if message_id is None and asked_cmid is None:
            raise invalid_params("message_id", "give message_id or client_msg_id")
        d = self.outbox.status(session, message_id=message_id, client_msg_id=asked_cmid)

        def answer(found):
            if found is None:
                field = "message_id" if message_id is not None else "client_msg_id"
                raise invalid_params(field, f"no message with that {field} is known")
            return {**found, "at": iso_timestamp(found["at"])}
        return d.addCallback(answer)

    # -- outbound: channels ------------------------------------------------

    def channel_send(self, call, params):
        return self._channel_text("channel_send", "channel-m", call, params, "message")

    def channel_emote(self, call, params):
        field = "emote" if params.get("emote") is not None else "message"
        return self._channel_text("channel_emote", "channel-e", call, params, field)

    def _channel_text(self, kind, ptype, call, params, field):
        channel = channel_name(params)
        message = _message(params, field)
        from_user, visname = _speaker(params)
        packet = packets.make(ptype, self.gateway.mud_name, from_user, 0, 0,
                              channel, visname, message)
        out = self.outbox.encode(packet, field)
        event, history_type = _CHANNEL_EVENTS[ptype]
        fields = {"from_mud": self.gateway.mud_name, "from_user": from_user,
                  "visname": visname, "message": message}
        return self._submit_channel(kind, out, call.session, params, channel,
                                    event, history_type, fields)

    def channel_target(self, call, params):
        channel = channel_name(params)
        target_mud = self._target_mud(params)
        target_user = _user(params, "target_user")
        message_others = _message(params, "message_others")
        message_target = _message(params, "message_target")
        from_user, visname = _speaker(params)
        target_visname = _visname(params, "target_visname", p.text(params, "target_user"))
        packet = packets.make("channel-t", self.gateway.mud_name, from_user, 0, 0, channel,
                              target_mud, target_user, message_others, message_target,
                              visname, target_visname)
        longer = ("message_others" if len(message_others) >= len(message_target)
                  else "message_target")
        out = self.outbox.encode(packet, longer)
        fields = {"from_mud": self.gateway.mud_name, "from_user": from_user,
                  "visname": visname, "target_mud": target_mud, "target_user": target_user,
                  "target_visname": target_visname, "message_others": message_others,
                  "message_target": message_target}
        return self._submit_channel("channel_target", out, call.session, params, channel,
                                    "channel_targeted", "targeted", fields)

    def _submit_channel(self, kind, out, session, params, channel, event, history_type, fields):
        # Join first: a router drops channel packets from a MUD not listening.
        joined = session is not None and self.gateway.channels.subscribe(session, channel)

        def accepted(result):
            self.gateway.errors.remember(out.packet, session)
            # The router's echo is dropped, so our own message is recorded
            # and shown to the other local subscribers here, once.
            history_id = self._record(channel, history_type, fields)
            self._publish_local(channel, event, fields, history_id, session)
        result = self.outbox.submit(kind, out, session, client_msg_id(params), accepted=accepted)
        if not joined:
            return result
        if isinstance(result, defer.Deferred):
            return result.addCallback(lambda answer: {**answer, "joined": True})
        return {**result, "joined": True}

    def _publish_local(self, channel, event, fields, history_id, sender):
        params = {"channel": channel, **fields, "history_id": history_id}
        for session in self.gateway.sessions.sessions():
            if session is sender or channel not in session.channels:
                continue
            if session.has_permission("channel"):
                self.gateway.hub.publish(event, params, session=session)

    def _target_mud(self, params):
        given = clean(p.text(params, "target_mud", max_len=MAX_NAME)).strip()
        if not given:
            raise invalid_params("target_mud", "target_mud must not be empty")
        # Routers match MUD names exactly: send the mudlist's case when known.
        return self.gateway.lists.exact_mud(given) or given

    # -- inbound -------------------------------------------------------------

    def _tell_received(self, packet):
        target = packet.t_user
        if not isinstance(target, str) or not target:
            _log.debug("{type} from {mud} without a target user ignored",
                       type=packet.type, mud=packet.o_mud)
            return
        if self.gateway.presence.knows_user(target) is False:
            # send_error keeps the I3 rules: no answer to a router, a broadcast or an error.
            send_error(self.gateway, packet, "unk-user", f"{target} is not online.")
            return
        event = "tell_received" if packet.type == "tell" else "emoteto_received"
        self.gateway.hub.publish(event, {
            "from_mud": _text(packet.o_mud),
            "from_user": _text(packet.o_user),
            "to_mud": _text(packet.t_mud),
            "to_user": self.gateway.presence.local_name(target),
            "message": _text(packet.get("message")),
            "visname": _text(packet.get("orig_visname")) or _text(packet.o_user),
        }, permission="tell")

    def _channel_received(self, packet):
        # The router's echo of our own message never gets here: the inbound
        # dispatcher drops our broadcasts coming back.
        channel = packet.get("channel")
        if not isinstance(channel, str) or not channel:
            _log.debug("{type} from {mud} without a channel ignored",
                       type=packet.type, mud=packet.o_mud)
            return
        if not self.gateway.channels.listening(channel):
            # A router sends only the channels we listen to; anything else
            # would grow the history of any number of channels.
            self.unlistened_dropped += 1
            _log.debug("{type} from {mud} on {channel}, which we do not listen to, dropped",
                       type=packet.type, mud=packet.o_mud, channel=channel)
            return
        event, history_type = _CHANNEL_EVENTS[packet.type]
        fields = {"from_mud": _text(packet.o_mud), "from_user": _text(packet.o_user)}
        if packet.type == "channel-t":
            fields.update({
                "visname": _text(packet.get("orig_visname")) or fields["from_user"],
                "target_mud": _text(packet.get("target_mud")),
                "target_user": _text(packet.get("target_user")),
                "target_visname": _text(packet.get("target_visname")),
                "message_others": _text(packet.get("msg_others")),
                "message_target": _text(packet.get("msg_target")),
            })
        else:
            fields.update({
                "visname": _text(packet.get("visname")) or fields["from_user"],
                "message": _text(packet.get("message")),
            })
        history_id = self._record(channel, history_type, fields)
        self.gateway.hub.publish(event, {"channel": channel, **fields, "history_id": history_id},
                                 channel=channel)

    # -- history ---------------------------------------------------------------

    def _record(self, channel, history_type, fields):
        """Add a channel_history entry; its id, or None when history is off."""
        settings = self.gateway.config["channels"]["history"]
        if not settings["enabled"]:
            return None
        entry = {"type": history_type, **fields,
                 "timestamp": iso_timestamp(self.gateway.clock.seconds())}
        if history_type == "targeted":
            entry["message"] = fields["message_others"]
        try:
            return self.gateway.store.add_history(channel, entry, settings["max_per_channel"])
        except Exception:
            _log.failure("Recording history of channel {channel} failed", channel=channel)
            return None


def _user(params, field):
    name = username(p.text(params, field, max_len=MAX_NAME))
    if not name:
        raise invalid_params(field, f"{field} must hold a user name")
    return name


def _message(params, field):
    message = clean(p.text(params, field))
    if not message.strip():
        raise invalid_params(field, f"{field} must not be empty")
    return message


def _visname(params, field, default):
    visname = clean(p.text(params, field, default=default, max_len=MAX_VISNAME))
    return visname.replace("\n", " ").strip() or clean(default).strip()


def _speaker(params):
    """(I3 user name, visname) of the local player speaking."""
    given = p.text(params, "from_user", default=DEFAULT_FROM_USER, max_len=MAX_NAME)
    from_user = username(given)
    if not from_user:
        raise invalid_params("from_user", "from_user must hold a user name")
    visname = _visname(params, "visname", given)
    return from_user, visname or from_user


def _text(value):
    """A text field from the network; "" for 0 and junk."""
    return text_field(value) or ""
