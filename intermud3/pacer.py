"""Outbound pacing towards the router: stay clear of its flood control.

A Dead Souls router blocks a MUD that sends more than 10 packets within one
wall-clock second, counting ``startup-req-3`` as 6 and ``channel-listen`` as
0 (I3-PROTOCOL.md section 4, CONFIG.md "Pacing"). The pacer charges packets
the same way (``packets.weight``) and enforces two limits at once:

* never more than ``MAX_PER_SECOND`` (9) weighted units within one
  wall-clock second, ``int(clock.seconds())``, whatever the rate says;
* on average no more than ``send_rate`` units per second: a token bucket
  refilled at ``send_rate`` per second holding at most ``burst`` tokens
  (default ``max(1, send_rate)``, so a burst stays small).

``send_rate`` 0 turns pacing off entirely (tests, benchmarks). A rate above
8 is warned about by config.py, not here (one warning per reload). The pacer is
pure logic over an injected clock: it sends nothing itself.
"""

from intermud3.packets import weight as packet_weight

__all__ = ["Pacer", "MAX_PER_SECOND"]

# One below the router's limit of 10: the router's second and ours never
# line up exactly, and a block costs far more than a short wait.
MAX_PER_SECOND = 9

# Float slack: after waiting exactly next_opening() seconds the bucket may
# hold 0.9999999 tokens; that must count as a whole one.
_EPSILON = 1e-9

# Shortest wait ever reported while the pacer has no room, so a caller that
# reschedules itself can never spin at the same instant.
_MIN_WAIT = 0.001


class Pacer:
    """Decides when the next packet of a type may go to the router.

    ``can_send(type)`` asks, ``charge(type)`` records a packet written, and
    ``next_opening(type)`` says how many seconds until ``can_send`` will be
    true (0 when it is already).
    """

    def __init__(self, clock, send_rate, *, burst=None):
        self._clock = clock
        self._second = None   # the wall-clock second _used belongs to
        self._used = 0        # weighted units charged within _second
        self._configure(send_rate, burst)
        self._tokens = self.burst
        self._updated = clock.seconds()

    def _configure(self, send_rate, burst):
        rate = float(send_rate)
        if rate < 0:
            raise ValueError(f"send_rate must be 0 (unpaced) or more, not {send_rate!r}")
        if burst is None:
            burst = max(1.0, rate)
        if float(burst) < 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        self.send_rate = rate
        self.burst = float(burst)

    @property
    def paced(self):
        """False when send_rate is 0 and everything may go at once."""
        return self.send_rate > 0

    def set_rate(self, send_rate, burst=None):
        """Take a new rate at once (configuration reload); keeps what was charged."""
        self._refill()
        self._configure(send_rate, burst)
        self._tokens = min(self._tokens, self.burst)

    def _refill(self):
        now = self._clock.seconds()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(self.burst, self._tokens + elapsed * self.send_rate)
        self._updated = now
        second = int(now)
        if second != self._second:
            self._second = second
            self._used = 0
        return now

    def _needed_tokens(self, units):
        # A packet heavier than the bucket (startup-req-3 with a small rate)
        # waits for a full bucket, not forever.
        return min(float(units), self.burst)

    def can_send(self, type):
        """True when a packet of ``type`` may be written now."""
        if not self.paced:
            return True
        units = packet_weight(type)
        if units <= 0:
            return True
        self._refill()
        if self._used + units > MAX_PER_SECOND:
            return False
        return self._tokens + _EPSILON >= self._needed_tokens(units)

    def charge(self, type):
        """Record that a packet of ``type`` was written (even one sent
        regardless of ``can_send``, like the handshake's startup-req-3: the
        bucket may then go below zero and the wait grows accordingly)."""
        if not self.paced:
            return
        units = packet_weight(type)
        if units <= 0:
            return
        self._refill()
        self._used += units
        self._tokens -= units

    def next_opening(self, type):
        """Seconds until a packet of ``type`` may be written; 0 if it may now."""
        if self.can_send(type):
            return 0.0
        units = packet_weight(type)
        now = self._clock.seconds()   # _refill ran inside can_send
        wait = 0.0
        if self._used + units > MAX_PER_SECOND:
            wait = (int(now) + 1) - now
        missing = self._needed_tokens(units) - self._tokens
        if missing > 0:
            wait = max(wait, missing / self.send_rate)
        return max(wait, _MIN_WAIT)
