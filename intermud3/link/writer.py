"""What the link writes to the router: encoded once, paced, counted.

``RouterWriter`` holds the connection frames go to (``connection``: the
link attaches it when accepted, detaches it when it goes), the pacer and
the transient lane (``outbound.PacedLane``), and the outbound counters.
The link hands out its ``send``, ``try_send``, ``reserve``,
``write_reserved`` and ``encode`` as they are: nothing sits between a
caller and the lane.
"""

from intermud3.link.stats import type_label
from intermud3.outbound import OutFrame, PacedLane, encode
from intermud3.pacer import Pacer

__all__ = ["RouterWriter"]


class RouterWriter:
    """``settings() -> the router configuration section`` is read live
    (``max_send_bytes``, ``queue.max_messages``); ``is_ready()`` says
    whether the link is ready; ``metrics`` may be None."""

    def __init__(self, clock, settings, is_ready, metrics=None):
        self._settings = settings
        self.metrics = metrics
        self.connection = None         # the RouterProtocol in use, or None
        self.packets_sent = 0
        self._sent_counters = {}       # packet type -> bound metric counter
        self.pacer = Pacer(clock, settings().send_rate)
        # The in-memory hold is an outbound queue too: same bound as the outbox.
        self.lane = PacedLane(self.pacer, clock, write=self.write, is_ready=is_ready,
                              max_held=lambda: self._settings().queue.max_messages)

    def encode(self, packet):
        """The packet as an OutFrame, encoded once (outbound.encode);
        Unsendable over ``router.max_send_bytes`` or with no LPC form."""
        if isinstance(packet, OutFrame):
            return packet
        return encode(packet, self._settings().max_send_bytes)

    def send(self, packet):
        """Send a packet (a list, a Packet or an OutFrame), paced; an
        ``outbound.SendResult``, of which only SENT is true:

        SENT: written now. HELD: held in memory, in order, until the pacer
        allows (only while the link is ready). DROPPED: the link is not
        ready or the hold is full (``router.queue.max_messages``).
        Held packets are dropped when the link drops: callers that must
        not lose a message use the durable outbox. Raises Unsendable before
        anything is held, whatever the link's state.
        """
        return self.lane.send(self.encode(packet))

    def try_send(self, packet):
        """Write now only if ready, the pacer has room and nothing is held;
        never holds. True means written. After a False while ready, the
        on_writable observers are called once there is room again."""
        return self.lane.try_send(self.encode(packet))

    def reserve(self, ptype):
        """Charge the pacer now for a packet written later by
        ``write_reserved`` (PacedLane.reserve)."""
        return self.lane.reserve(ptype)

    def write_reserved(self, out):
        """Write an OutFrame the pacer was already charged for."""
        self.write(out, charge=False)

    def write(self, out, charge=True):
        """Write an OutFrame to the connection now, unpaced (the lane and
        the handshake ask the pacer first), and count it."""
        self.connection.sendFrame(out)
        if charge:
            self.pacer.charge(out.type)
        self.packets_sent += 1
        if self.metrics is not None:
            counter = self._sent_counters.get(out.type)
            if counter is None:
                counter = self._sent_counters[out.type] = self.metrics.packets_sent.labels(
                    type=type_label(out.type))
            counter.inc()
            self.metrics.router_bytes_sent.inc(len(out.data))
