"""The transient lane, owned by the router link: the pacer's gate.

Replies, queries and listens are written at once when the pacer allows,
else held in memory, in order, and dropped when the link drops.
"""

import enum
from collections import deque

from twisted.logger import Logger

__all__ = ["SendResult", "PacedLane"]

_log = Logger()


class SendResult(enum.Enum):
    """What ``PacedLane.send`` did with a packet. Only SENT is true, so
    ``if link.send(...)`` still means "written now"."""

    SENT = "sent"         # written to the ready router link
    HELD = "held"         # waits for the pacer; dropped if the link drops
    DROPPED = "dropped"   # link not ready, or the hold full: never sent

    def __bool__(self):
        return self is SendResult.SENT


class PacedLane:
    """The pacer and the packets it holds back (the router link owns one).

    ``write(OutFrame)`` writes to the current connection (the link's);
    ``is_ready()`` says whether there is a ready one. ``on_writable``
    observers run when the pacer has room and nothing is held, after a
    refused ``try_send`` or a ``release`` (the durable outbox drains then).
    """

    def __init__(self, pacer, clock, *, write, is_ready, max_held):
        self.pacer = pacer
        self._clock = clock
        self._write = write
        self._is_ready = is_ready
        self._max_held = max_held       # a callable: read live (reload)
        self._held = deque()
        self._want_writable = False
        self._kick_call = None
        self.on_writable = []

    @property
    def held(self):
        return len(self._held)

    def send(self, out):
        """SENT: written now. HELD: held until the pacer allows. DROPPED:
        link not ready, or the hold full (a SendResult)."""
        if not self._is_ready():
            _log.debug("Discarded a {type} packet: the router link is not ready", type=out.type)
            return SendResult.DROPPED
        if not self._held and self.pacer.can_send(out.type):
            self._write(out)
            return SendResult.SENT
        if len(self._held) >= self._max_held():
            _log.warn("Discarded a {type} packet: {count} packets already held for pacing",
                      type=out.type, count=len(self._held))
            return SendResult.DROPPED
        self._held.append(out)
        self._schedule_kick()
        return SendResult.HELD

    def try_send(self, out):
        """Write now only if ready, the pacer has room and nothing is held;
        never holds. After a False while ready, on_writable runs once there
        is room again."""
        if self._may_write(out.type):
            self._write(out)
            return True
        return False

    def reserve(self, ptype):
        """As try_send for a packet of ``ptype`` written later: the pacer is
        charged now, and the write (``write_reserved``) charges nothing."""
        if self._may_write(ptype):
            self.pacer.charge(ptype)
            return True
        return False

    def _may_write(self, ptype):
        if not self._is_ready():
            return False
        if not self._held and self.pacer.can_send(ptype):
            return True
        self._want_writable = True
        self._schedule_kick()
        return False

    def release(self):
        """The link became ready (its on_ready observers have run): write
        what the pacer allows and tell on_writable."""
        self._want_writable = True
        self._kick()

    def drop(self, why):
        """The link dropped: held packets are discarded, timers stopped."""
        if self._kick_call is not None and self._kick_call.active():
            self._kick_call.cancel()
        self._kick_call = None
        self._want_writable = False
        if self._held:
            _log.info("Discarded {count} held packets: {reason}", count=len(self._held), reason=why)
            self._held.clear()

    def _schedule_kick(self):
        if not self._is_ready():
            return
        head = self._held[0].type if self._held else "tell"
        delay = self.pacer.next_opening(head)
        call = self._kick_call
        if call is not None and call.active():
            if call.getTime() > self._clock.seconds() + delay:
                call.reset(delay)
            return
        self._kick_call = self._clock.callLater(delay, self._kick)

    def _kick(self):
        if self._kick_call is not None and self._kick_call.active():
            self._kick_call.cancel()
        self._kick_call = None
        if not self._is_ready():
            return
        released = False
        while self._held and self.pacer.can_send(self._held[0].type):
            self._write(self._held.popleft())
            released = True
        if self._held:
            self._schedule_kick()
            return
        if released:
            self._want_writable = True
        if not self._want_writable:
            return
        if not self.pacer.can_send("tell"):
            self._schedule_kick()
            return
        self._want_writable = False
        for observer in list(self.on_writable):
            try:
                observer()
            except Exception:
                _log.failure("on_writable observer failed")
            if not self._is_ready():
                return
