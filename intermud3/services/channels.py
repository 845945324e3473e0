"""Channel subscriptions, the router's listen set, history and admin.

A session's subscriptions live in ``session.channels`` (the event hub reads
them to deliver channel events). The router is asked to listen to every
channel that has a local subscriber or is in ``channels.default``: with
``channel-listen ... 1`` when a channel enters that set, ``0`` when it
leaves it, and the whole set again after every handshake, because a router
forgets what a connection listened to (I3-PROTOCOL.md section 4).

A router restarted from a clean state forgets more (listen_state.py): a
channel of the listen set is listened again whenever a chanlist update
(re)adds it, and the channel messages queued for a channel wait in the
outbox (its ``may_send`` hook) while the router may not know the channel.
"""

from twisted.logger import Logger

from intermud3 import packets
from intermud3.names import fold
from intermud3.outbound import Unsendable
from intermud3.services.failures import UnknownChannel, WrongChannelType
from intermud3.services.listen_state import ListenState

__all__ = ["ChannelService", "ACTIONS"]

_log = Logger()

ACTIONS = ("add", "remove", "ban", "unban", "admit", "unadmit")
# channel_admin actions that edit a list, and the channel types they fit.
_LIST_ACTIONS = {
    "ban": ("add", (0,)),
    "unban": ("remove", (0,)),
    "admit": ("add", (1, 2)),
    "unadmit": ("remove", (1, 2)),
}


class ChannelService:
    """Built once per gateway, after the outbox (it hooks link.on_ready and
    sessions.on_session_end)."""

    def __init__(self, *, inbound, link, outbox, errors, sessions, lists, store, config,
                 mud_name, clock):
        """``config()`` and ``mud_name()`` give the values now (a reload
        may change them)."""
        self._link = link
        self.outbox = outbox
        self._errors = errors
        self._sessions = sessions
        self._lists = lists
        self._store = store
        self._config = config
        self._mud_name = mud_name
        self._clock = clock
        self._defaults = _default_channels(config())
        # Types of the channels we asked the router to create: it announces
        # a new channel's type as ({}) (read as 0) until a later chanlist.
        self._created_types = {}
        self._router_knows = ListenState()
        self._settle_call = None    # ends the handshake's listen_wait
        link.on_ready.append(self._relisten)
        sessions.on_session_end.append(self._session_ended)
        inbound.register("chan-filter-req", self._filter_req)
        inbound.register("chanlist-reply", self._chanlist_update)
        inbound.register("error", self._error)
        self.outbox.may_send = self._may_send

    # -- the listen set ----------------------------------------------------

    def listening(self, channel):
        """Whether ``channel`` is in the listen set (default, or joined by
        a session): the only channels a router sends us messages for."""
        return channel in self._defaults or any(
            channel in session.channels for session in self._sessions.sessions())

    def wanted(self):
        """Every channel the router should send us: subscribed or default."""
        wanted = set(self._defaults)
        for session in self._sessions.sessions():
            wanted.update(session.channels)
        return wanted

    def _listen(self, channel, on):
        link = self._link
        if not link.ready or not link.router:
            return  # the whole set is sent after the next handshake
        packet = packets.make("channel-listen", self._mud_name(), 0,
                              link.router["name"], 0, channel, 1 if on else 0)
        try:
            link.send(packet)
        except Unsendable:
            _log.warn("channel-listen for {channel} is too large to send", channel=channel)

    def _relisten(self):
        wanted = self.wanted()
        self._router_knows.handshake(wanted)
        self.stop()
        if wanted:
            wait = self._config().channels.listen_wait
            self._settle_call = self._clock.callLater(wait, self._listens_settled)
        for channel in sorted(wanted):
            self._listen(channel, True)

    def _listens_settled(self):
        """No unk-channel within listen_wait: the router knows the rest."""
        self._settle_call = None
        self._router_knows.settled()
        self.outbox.drain()

    def _chanlist_update(self, packet):
        """A chanlist update that (re)adds a channel of the listen set: the
        router may have just re-created it, so listen again, and let the
        messages waiting for it go. (A Dead Souls router sends its whole
        chanlist with every change; ListenState tells what is new.)"""
        delta = packet.get("channel_list")
        if not isinstance(delta, dict):
            return
        listed, again = self._router_knows.chanlist(delta, self.wanted())
        for channel in again:
            self._listen(channel, True)
        if again:
            _log.info("Chanlist update lists {channels}: listening again", channels=", ".join(again))
        if listed:
            self.outbox.drain()

    def _error(self, packet):
        """unk-channel for a listen or a message of ours: the router does
        not know the channel (yet); its messages wait for the chanlist."""
        if packet.get("error_code") != "unk-channel":
            return
        carried = packet.get("error_packet")
        if not isinstance(carried, list) or len(carried) < 7:
            return
        if carried[0] not in ("channel-listen", "channel-m", "channel-e", "channel-t"):
            return
        channel = carried[6]
        if carried[2] != self._mud_name() or channel not in self.wanted():
            return
        if carried[0] == "channel-listen" and carried[7:8] != [1]:
            return
        self._router_knows.refused(channel)
        _log.info("Router does not know channel {channel}; listening again when the chanlist "
                  "shows it", channel=channel)

    def _may_send(self, packet):
        """The outbox's hook: a channel message waits while the router may
        not know its channel."""
        if not isinstance(packet, list) or packet[0] not in ("channel-m", "channel-e", "channel-t"):
            return True
        return self._router_knows.may_speak(packet[6] if len(packet) > 6 else None)

    def subscribe(self, session, channel):
        """Join ``session`` to ``channel``, listening when it is new to the
        listen set; True when the session had not joined it."""
        if channel in session.channels:
            return False
        new = channel not in self.wanted()
        session.channels.add(channel)
        if new:
            self._listen(channel, True)
        return True

    def stop(self):
        """Cancel the listen_wait timer (at gateway stop, or a new handshake)."""
        if self._settle_call is not None and self._settle_call.active():
            self._settle_call.cancel()
        self._settle_call = None

    def _session_ended(self, session):
        # The session manager has already dropped the session, so wanted()
        # no longer counts it.
        left = set(session.channels)
        session.channels.clear()
        still_wanted = self.wanted()
        for channel in sorted(left - still_wanted):
            self._listen(channel, False)

    def reconfigure(self, config):
        """Apply a new ``channels.default``: listen to the added channels,
        unlisten the removed ones nobody is subscribed to."""
        before = self.wanted()
        self._defaults = _default_channels(config)
        after = self.wanted()
        for channel in sorted(after - before):
            self._listen(channel, True)
        for channel in sorted(before - after):
            self._listen(channel, False)

    def _filter_req(self, packet):
        """The router asks the host of a filtered channel (type 2) to pass
        each message from another MUD. We filter nothing: the message goes
        back unchanged (I3-PROTOCOL.md section 4), or the channel would
        carry nothing but our own messages."""
        link = self._link
        channel, message = packet.get("channel"), packet.get("packet")
        if not link.ready or not link.router or packet.o_mud != link.router["name"]:
            return  # only the router we are on asks
        if not isinstance(channel, str) or not channel or not isinstance(message, list):
            return
        reply = packets.make("chan-filter-reply", self._mud_name(), 0,
                             link.router["name"], 0, channel, message)
        try:
            link.send(reply)
        except Unsendable as error:
            # The message came from the network: it may be too big, or hold
            # a value (an int past 32 bits) that LPC cannot carry back.
            _log.warn("Cannot pass {channel}'s filtered message back: {error}",
                      channel=channel, error=error)

    # -- the requests ----------------------------------------------------------
    # Each takes checked values: the API layer reads the parameters.

    def join(self, session, channel):
        # listen_only is accepted, whatever its value, and ignored: I3 has
        # no listen-only membership.
        self.subscribe(session, channel)
        return {"status": "joined", "channel": channel}

    def leave(self, session, channel):
        if channel in session.channels:
            session.channels.discard(channel)
            if channel not in self.wanted():
                self._listen(channel, False)
        return {"status": "left", "channel": channel}

    def list_channels(self, session, want_type=None, want_owner=None):
        """The chanlist's channels of that type and owner (None: any),
        with how many local sessions joined each."""
        counts = {}
        for other in self._sessions.sessions():
            for channel in other.channels:
                counts[channel] = counts.get(channel, 0) + 1
        channels = []
        for name, (owner, ctype) in sorted(self._lists.channels.items()):
            if want_type is not None and ctype != want_type:
                continue
            if want_owner is not None and fold(owner) != fold(want_owner):
                continue
            channels.append({"name": name, "owner": owner, "type": ctype,
                             "member_count": counts.get(name, 0)})
        return {"status": "success", "channels": channels, "count": len(channels),
                "subscribed_channels": sorted(session.channels)}

    def history(self, channel, limit, before=None, after=None, query=None):
        # Read on the store's thread: a search may take a while.
        d = self._store.history(channel, limit, before, after, query)
        return d.addCallback(lambda messages: {
            "status": "success", "channel": channel, "messages": messages,
            "count": len(messages)})

    def admin(self, session, channel, action, client_msg_id, *, channel_type=None, muds=None):
        """One of ACTIONS on ``channel``: ``channel_type`` for "add",
        ``muds`` (names, any case) for the list actions."""
        mud = self._mud_name()
        router = self._router_name()
        if action == "add":
            packet = packets.make("channel-add", mud, 0, router, 0, channel, channel_type)
            field = "channel"
        elif action == "remove":
            packet = packets.make("channel-remove", mud, 0, router, 0, channel)
            field = "channel"
        else:
            which, fits = _LIST_ACTIONS[action]
            ctype = self._channel_type(channel)
            if ctype is None:
                raise UnknownChannel("channel", f"{channel} is not in the channel list, so "
                                     f"{action} cannot be checked against its type")
            if ctype not in fits:
                raise WrongChannelType(
                    "action", f"{action} needs a channel of type {' or '.join(map(str, fits))};"
                    f" {channel} is type {ctype}", channel_type=ctype)
            muds = [self._lists.exact_mud(name) or name for name in muds]
            add_list = muds if which == "add" else []
            remove_list = muds if which == "remove" else []
            packet = packets.make("channel-admin", mud, 0, router, 0, channel, add_list, remove_list)
            field = "muds"
        out = self.outbox.encode(packet, field)
        result = self.outbox.submit(
            "channel_admin", out, session, client_msg_id,
            accepted=lambda result: self._errors.remember(packet, session))
        if action == "add":
            self._created_types[channel] = channel_type
        elif action == "remove":
            self._created_types.pop(channel, None)
        return result

    def _channel_type(self, channel):
        """The type to check admin actions against, None when unknown: the
        one we created it with while we host it, else the chanlist's."""
        known = self._lists.channels.get(channel)
        ours = known is None or known[0] == self._mud_name()
        if ours and channel in self._created_types:
            return self._created_types[channel]
        return None if known is None else known[1]

    def _router_name(self):
        # Admin packets go to the router we are on; while the link is down
        # (the packet is queued) the preferred router is the best guess.
        router = self._link.router
        if router:
            return router["name"]
        return self._config().routers[0].name


def _default_channels(config):
    return set(config.channels.default)
