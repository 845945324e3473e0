"""The in-repo router's channel service: the channels it lists, who
listens to each, and the channel packets (messages with their echo to the
sender, listen, add, remove, admin, filtered channels)."""

from dataclasses import dataclass, field

from intermud3.packets import TTL

__all__ = ["RouterChannels", "Channel", "DEFAULT_CHANNELS", "DEFAULT_CHANNEL_HOST"]

# Channels the real network always has; the vectors show them hosted by
# "Frontiers" (a MUD that is not in the local mudlist).
DEFAULT_CHANNELS = ("dead_test4", "dchat", "imud_gossip")
DEFAULT_CHANNEL_HOST = "Frontiers"


@dataclass
class Channel:
    """A channel the router hosts the listing of."""

    owner: str          # host_mud in the chanlist
    type: int = 0       # 0 ban list, 1 admission list, 2 filtered by the owner
    members: set = field(default_factory=set)  # banned (type 0) or admitted (1, 2)

    def admits(self, mud):
        if self.type == 0:
            return mud not in self.members
        return mud == self.owner or mud in self.members


class RouterChannels:
    """``channels``: name -> Channel; ``listening``: channel -> set of MUD
    names; ``chanlist_id``: the latest id. ``connections`` and ``muds``
    are the router's; ``out`` writes, ``reject`` records a dropped frame,
    ``changed()`` runs after each broadcast."""

    # A just-created channel shows type ({}) in the broadcast that
    # announces it, as the real router does (see the vectors).
    new_channel_type_quirk = True

    def __init__(self, connections, muds, out, reject, changed):
        self._connections = connections
        self._muds = muds
        self._out = out
        self._reject = reject
        self._changed = changed
        self.channels = {}
        self.listening = {}
        # The real router's chanlist starts at id 1, even when empty.
        self.chanlist_id = 1

    def open_defaults(self, names):
        """Channels that exist from the start, without an announcement."""
        for name in names:
            self.channels[name] = Channel(DEFAULT_CHANNEL_HOST)

    def open_delayed(self, names):
        """The delayed start-up channels, announced as the real router does
        when it re-creates them: one chanlist update each."""
        for name in names:
            if name not in self.channels:
                self.create(name, DEFAULT_CHANNEL_HOST, 0)

    def handle(self, conn, packet, raw):
        """A channel-* packet from ``conn``'s MUD."""
        kind = packet[0][len("channel-"):]
        if kind in ("m", "e", "t"):
            self._channel_message(conn, packet, raw)
        elif kind == "listen":
            self._channel_listen(conn, packet, raw)
        elif kind == "add":
            self._channel_add(conn, packet, raw)
        elif kind == "remove":
            self._channel_remove(conn, packet, raw)
        elif kind == "admin":
            self._channel_admin(conn, packet, raw)
        else:
            self._out.error(conn, packet, "unk-type", f"I don't know what {packet[0]} means.")

    def _channel_message(self, conn, packet, raw):
        ptype = packet[0]
        if ptype == "channel-t":
            if len(packet) != 13 or not all(isinstance(v, str) for v in packet[9:13]):
                self._out.error(conn, packet, "bad-pkt", "Bad packet format.")
                return
            if "$N" not in packet[9]:
                suffix = f" (from {packet[3]}@{packet[2]})"
                packet[9] += suffix
                packet[10] += suffix
        else:
            if len(packet) != 9:
                self._out.error(conn, packet, "bad-pkt", "Bad packet format.")
                return
            if ptype == "channel-e" and isinstance(packet[8], str) and "$N" not in packet[8]:
                packet[8] += f" (from {packet[3]}@{packet[2]})"
        if packet[4] != 0 or packet[5] != 0 or not all(isinstance(v, str) for v in packet[6:9]):
            self._out.error(conn, packet, "bad-pkt", "Bad packet format.")
            return
        name = packet[6]
        channel = self.channels.get(name)
        if channel is None:
            self._out.error(conn, packet, "unk-channel", f"Unknown channel: {name}")
            return
        if conn.mud not in self.listening.get(name, ()):
            # The real router makes the sender listen instead of sending.
            self._out.error(conn, packet, "warning",
                            f"Your mud wasn't listening to {name}, so I'll start you listening right now.")
            if channel.admits(conn.mud):
                self.listening.setdefault(name, set()).add(conn.mud)
            return
        if channel.type == 2 and conn.mud != channel.owner:
            owner = self._connections.get(channel.owner)
            if owner is None:
                self._out.error(conn, packet, "unk-dst", f"{channel.owner} is not online to filter {name}")
                return
            self._out.write(owner, [
                "chan-filter-req", TTL, self._out.name, 0, channel.owner, 0, name, packet])
            return
        self._to_listeners(name, packet)

    def _to_listeners(self, name, packet):
        for mud in sorted(self.listening.get(name, ())):
            conn = self._connections.get(mud)
            if conn is not None:
                self._out.write(conn, packet)

    def filter_reply(self, conn, packet, raw):
        """A chan-filter-reply: the owner of a filtered channel lets a message through."""
        inner = packet[7] if len(packet) > 7 else None
        name = packet[6] if len(packet) > 6 else None
        channel = self.channels.get(name) if isinstance(name, str) else None
        if channel is None or channel.owner != conn.mud:
            self._out.error(conn, packet, "not-allowed", f"You are not the owner of {name}")
            return
        if (not isinstance(inner, list) or len(inner) < 7
                or inner[0] not in ("channel-m", "channel-e", "channel-t") or inner[6] != name):
            self._out.error(conn, packet, "not-allowed", "Not a channel packet for that channel.")
            return
        self._to_listeners(name, inner)

    def _channel_listen(self, conn, packet, raw):
        if len(packet) != 8 or not isinstance(packet[6], str) or not isinstance(packet[7], int):
            self._reject(conn, "channel-listen needs a channel name and an int flag", raw)
            return
        name, on = packet[6], packet[7]
        channel = self.channels.get(name)
        if channel is None:
            self._out.error(conn, packet, "unk-channel", f"Unknown channel: {name}")
            return
        listeners = self.listening.setdefault(name, set())
        if bool(on) == (conn.mud in listeners):
            return  # no change
        if on and not channel.admits(conn.mud):
            reason = f"Banned from {name}" if channel.type == 0 else f"Not in allow list for {name}"
            self._out.send_error(conn, conn.mud, 0, "not-allowed", reason, packet)
            return
        if on:
            listeners.add(conn.mud)
        else:
            listeners.discard(conn.mud)

    def _channel_add(self, conn, packet, raw):
        if len(packet) != 8 or not isinstance(packet[6], str) or not isinstance(packet[7], int):
            self._out.error(conn, packet, "bad-pkt", "Bad packet format.")
            return
        name = packet[6]
        if name in self.channels:
            self._reject(conn, f"channel {name} already exists", raw)
            return
        self.create(name, conn.mud, packet[7])

    def create(self, name, owner, type):
        # The real router announces a new channel with the whole chanlist.
        self.channels[name] = Channel(owner, type)
        self.chanlist_id += 1
        listing = self.chanlist()
        if self.new_channel_type_quirk:
            listing[name] = [owner, []]
        self._broadcast_chanlist(listing)

    def _owned_channel(self, conn, packet, name):
        """The channel `name` if the sender owns it; else None, answered with
        unk-channel or not-allowed."""
        channel = self.channels.get(name) if isinstance(name, str) else None
        if channel is None:
            self._out.error(conn, packet, "unk-channel", f"Unknown channel: {name}")
        elif channel.owner != conn.mud:
            self._out.error(conn, packet, "not-allowed", f"Channel {name} owned by: {channel.owner}")
            channel = None
        return channel

    def _channel_remove(self, conn, packet, raw):
        name = packet[6] if len(packet) > 6 else None
        if self._owned_channel(conn, packet, name) is None:
            return
        del self.channels[name]
        self.listening.pop(name, None)
        self.chanlist_id += 1
        self._broadcast_chanlist({name: 0})

    def _channel_admin(self, conn, packet, raw):
        if len(packet) != 9:
            self._out.error(conn, packet, "bad-pkt", "Bad packet format.")
            return
        name = packet[6]
        channel = self._owned_channel(conn, packet, name)
        if channel is None:
            return
        added = [m for m in packet[7] if isinstance(m, str)] if isinstance(packet[7], list) else []
        removed = [m for m in packet[8] if isinstance(m, str)] if isinstance(packet[8], list) else []
        channel.members.update(added)
        channel.members.difference_update(removed)
        listeners = self.listening.get(name, set())
        for mud in list(listeners):
            if not channel.admits(mud):
                listeners.discard(mud)

    def stop_listening(self, mud):
        # Listening is per connection: a MUD listens again after reconnecting.
        for listeners in self.listening.values():
            listeners.discard(mud)

    def chanlist(self):
        """The whole chanlist, as a chanlist-reply carries it."""
        return {name: [c.owner, c.type] for name, c in self.channels.items()}

    def _broadcast_chanlist(self, listing):
        # Only to MUDs that offer the channel service.
        for name, conn in list(self._connections.items()):
            services = self._muds.get(name, [0] * 13)[11]
            if isinstance(services, dict) and "channel" in services:
                self._out.write(conn, self._out.packet("chanlist-reply", name, 0, self.chanlist_id, listing))
        self._changed()
