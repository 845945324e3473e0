"""Tells, emotes and channel messages, both ways (API.md "Messages", "Events").

Outbound, each method takes checked values (the API layer reads the
parameters: names cleaned, texts non-empty), builds the exact I3 packet
(I3-PROTOCOL.md section 3), refuses one that would not fit in a frame, and
hands it to the durable outbox. ``text_field`` names the parameter the
text came in, for the error when it is too large. Inbound, ``tell``/``emoteto`` become events for every session with
``tell`` permission (or an ``unk-user`` answer when our current presence
snapshot lacks the user), and channel packets are recorded in the history
and published to the channel's local subscribers.
"""

from twisted.internet import defer
from twisted.logger import Logger

from intermud3 import packets
from intermud3.events import iso_timestamp
from intermud3.services.failures import UnknownMessage
from intermud3.services.inbound import send_error, text_field

__all__ = ["MessageService"]

_log = Logger()

# Inbound channel packet type -> (event, history type).
_CHANNEL_EVENTS = {
    "channel-m": ("channel_message", "message"),
    "channel-e": ("channel_emote", "emote"),
    "channel-t": ("channel_targeted", "targeted"),
}
# Method -> the packet type of its channel text.
_CHANNEL_TYPES = {"channel_send": "channel-m", "channel_emote": "channel-e"}


class MessageService:
    """Built once per gateway, after the outbox and the channels' service
    (it registers the inbound packet handlers)."""

    def __init__(self, *, inbound, link, outbox, errors, presence, channels, lists, sessions,
                 hub, store, config, mud_name, clock):
        """``config()`` and ``mud_name()`` give the values now (a reload
        may change them)."""
        self._link = link
        self.outbox = outbox
        self._errors = errors
        self._presence = presence
        self._channels = channels
        self._lists = lists
        self._sessions = sessions
        self._hub = hub
        self._store = store
        self._config = config
        self._mud_name = mud_name
        self._clock = clock
        # Inbound channel packets for a channel outside the listen set.
        self.unlistened_dropped = 0
        register = inbound.register
        register("tell", self._tell_received)
        register("emoteto", self._tell_received)
        for ptype in _CHANNEL_EVENTS:
            register(ptype, self._channel_received)

    # -- outbound: tells ---------------------------------------------------

    def direct(self, kind, session, target_mud, target_user, message, from_user, visname,
               client_msg_id, text_field):
        """A ``tell`` or ``emoteto`` (``kind``) to ``target_user`` at ``target_mud``."""
        # Routers match MUD names exactly: send the mudlist's case when known.
        target_mud = self._lists.exact_mud(target_mud) or target_mud
        packet = packets.make(kind, self._mud_name(), from_user, target_mud,
                              target_user, visname, message)
        out = self.outbox.encode(packet, text_field)
        return self.outbox.submit(
            kind, out, session, client_msg_id,
            accepted=lambda result: self._errors.remember(packet, session))

    # -- outcomes ----------------------------------------------------------

    def message_status(self, session, message_id=None, client_msg_id=None):
        """Deferred: the fate of a message this key sent (API.md
        message_status); UnknownMessage when there is no such message."""
        d = self.outbox.status(session, message_id=message_id, client_msg_id=client_msg_id)

        def answer(found):
            if found is None:
                field = "message_id" if message_id is not None else "client_msg_id"
                raise UnknownMessage(field, f"no message with that {field} is known")
            return {**found, "at": iso_timestamp(found["at"])}
        return d.addCallback(answer)

    # -- outbound: channels ------------------------------------------------

    def channel_text(self, kind, session, channel, message, from_user, visname, client_msg_id,
                     text_field):
        """A ``channel_send`` or ``channel_emote`` (``kind``) to ``channel``."""
        ptype = _CHANNEL_TYPES[kind]
        ours = self._mud_name()
        packet = packets.make(ptype, ours, from_user, 0, 0, channel, visname, message)
        out = self.outbox.encode(packet, text_field)
        event, history_type = _CHANNEL_EVENTS[ptype]
        fields = {"from_mud": ours, "from_user": from_user,
                  "visname": visname, "message": message}
        return self._submit_channel(kind, out, session, client_msg_id, channel,
                                    event, history_type, fields)

    def channel_target(self, session, channel, target_mud, target_user, message_others,
                       message_target, from_user, visname, target_visname, client_msg_id):
        target_mud = self._lists.exact_mud(target_mud) or target_mud
        ours = self._mud_name()
        packet = packets.make("channel-t", ours, from_user, 0, 0, channel,
                              target_mud, target_user, message_others, message_target,
                              visname, target_visname)
        longer = ("message_others" if len(message_others) >= len(message_target)
                  else "message_target")
        out = self.outbox.encode(packet, longer)
        fields = {"from_mud": ours, "from_user": from_user,
                  "visname": visname, "target_mud": target_mud, "target_user": target_user,
                  "target_visname": target_visname, "message_others": message_others,
                  "message_target": message_target}
        return self._submit_channel("channel_target", out, session, client_msg_id, channel,
                                    "channel_targeted", "targeted", fields)

    def _submit_channel(self, kind, out, session, client_msg_id, channel, event, history_type,
                        fields):
        # Join first: a router drops channel packets from a MUD not listening.
        joined = session is not None and self._channels.subscribe(session, channel)

        def accepted(result):
            self._errors.remember(out.packet, session)
            # The router's echo is dropped, so our own message is recorded
            # and shown to the other local subscribers here, once.
            history_id = self._record(channel, history_type, fields)
            self._publish_local(channel, event, fields, history_id, session)
        result = self.outbox.submit(kind, out, session, client_msg_id, accepted=accepted)
        if not joined:
            return result
        if isinstance(result, defer.Deferred):
            return result.addCallback(lambda answer: {**answer, "joined": True})
        return {**result, "joined": True}

    def _publish_local(self, channel, event, fields, history_id, sender):
        params = {"channel": channel, **fields, "history_id": history_id}
        for session in self._sessions.sessions():
            if session is sender or channel not in session.channels:
                continue
            if session.has_permission("channel"):
                self._hub.publish(event, params, session=session)

    # -- inbound -------------------------------------------------------------

    def _tell_received(self, packet):
        target = packet.t_user
        if not isinstance(target, str) or not target:
            _log.debug("{type} from {mud} without a target user ignored",
                       type=packet.type, mud=packet.o_mud)
            return
        if self._presence.knows_user(target) is False:
            # send_error keeps the I3 rules: no answer to a router, a broadcast or an error.
            send_error(self._link, self._mud_name(), packet, "unk-user", f"{target} is not online.")
            return
        event = "tell_received" if packet.type == "tell" else "emoteto_received"
        self._hub.publish(event, {
            "from_mud": _text(packet.o_mud),
            "from_user": _text(packet.o_user),
            "to_mud": _text(packet.t_mud),
            "to_user": self._presence.local_name(target),
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
        if not self._channels.listening(channel):
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
        self._hub.publish(event, {"channel": channel, **fields, "history_id": history_id},
                                 channel=channel)

    # -- history ---------------------------------------------------------------

    def _record(self, channel, history_type, fields):
        """Add a channel_history entry; its id, or None when history is off."""
        settings = self._config().channels.history
        if not settings.enabled:
            return None
        entry = {"type": history_type, **fields,
                 "timestamp": iso_timestamp(self._clock.seconds())}
        if history_type == "targeted":
            entry["message"] = fields["message_others"]
        try:
            return self._store.add_history(channel, entry, settings.max_per_channel)
        except Exception:
            _log.failure("Recording history of channel {channel} failed", channel=channel)
            return None


def _text(value):
    """A text field from the network; "" for 0 and junk."""
    return text_field(value) or ""
