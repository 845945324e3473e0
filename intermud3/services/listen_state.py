"""What the router may not know of our listen set, on the current connection.

A router forgets every listen with the connection, and one restarted from a
clean state forgets its channels too: a Dead Souls router re-creates them
some seconds after start and answers a listen before that with
``unk-channel``. Nothing confirms a listen that worked, so a channel counts
as known once the router lists it in a chanlist on this connection, or
once ``channels.listen_wait`` has passed after the handshake without an
``unk-channel`` for it. ChannelService sends the packets and keeps the
timer; this object only holds the three sets.
"""

__all__ = ["ListenState"]


class ListenState:
    def __init__(self):
        self.unconfirmed = set()   # listened at the handshake, outcome unknown
        self.unknown = set()       # answered unk-channel; wait for the chanlist
        self.listed = set()        # listed by a chanlist on this connection

    def handshake(self, wanted):
        """A new connection: every channel of ``wanted`` is listened again
        and none is known to the router yet."""
        self.unknown.clear()
        self.listed.clear()
        self.unconfirmed = set(wanted)

    def settled(self):
        """listen_wait passed: no unk-channel came for the rest."""
        self.unconfirmed.clear()

    def refused(self, channel):
        """The router answered unk-channel for ``channel``."""
        self.unknown.add(channel)
        self.unconfirmed.discard(channel)

    def chanlist(self, delta, wanted):
        """Apply a chanlist delta; returns (listed, again): the channels of
        ``wanted`` it (re)adds, i.e. lists for the first time on this
        connection or after deleting them, and of those the ones to listen
        to again. A channel whose handshake listen is still unconfirmed
        needs no second listen: the router listed it before it read ours
        (the chanlist it sends at startup), so that listen holds."""
        self.listed.difference_update(name for name, entry in delta.items() if not entry)
        listed = sorted(name for name, entry in delta.items()
                        if isinstance(name, str) and entry and name in wanted
                        and name not in self.listed)
        again = [channel for channel in listed if channel not in self.unconfirmed]
        self.listed.update(listed)
        self.unknown.difference_update(listed)
        self.unconfirmed.difference_update(listed)
        return listed, again

    def may_speak(self, channel):
        """Whether a message on ``channel`` can go: the router knows it."""
        return channel not in self.unknown and channel not in self.unconfirmed
