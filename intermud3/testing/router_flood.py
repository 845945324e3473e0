"""The in-repo router's flood control, as the Dead Souls router counts it:
more than ``limit`` weighted packets (packets.weight) from one MUD in one
wall-clock second block that MUD for ``block_seconds``."""

from twisted.logger import Logger

from intermud3.packets import weight

__all__ = ["FloodControl"]

_log = Logger()

FLOOD_LIMIT = 10
BLOCK_SECONDS = 60.0


class FloodControl:
    """Counts each MUD's packets per second; ``blocked``: MUD -> time its
    block ends. ``out`` (a RouterWriter) answers the flooder, ``reject``
    records the dropped frame."""

    def __init__(self, clock, out, reject):
        self._clock = clock
        self._out = out
        self._reject = reject
        self.limit = FLOOD_LIMIT
        self.block_seconds = BLOCK_SECONDS
        self.blocked = {}
        self._counts = {}       # mud -> (second, weighted count)

    def flooded(self, conn, packet, raw):
        """Counts the packet; True when it is dropped for flooding."""
        key = packet[2] if isinstance(packet[2], str) else conn.peer
        now = self._clock.seconds()
        second = int(now)
        counted_second, count = self._counts.get(key, (second, 0))
        if counted_second != second:
            count = 0
        count += weight(packet[0])
        self._counts[key] = (second, count)
        own = conn.mud is not None and conn.mud == key
        until = self.blocked.get(key)
        if until is not None:
            if now < until:
                if own and count < 2:
                    self._out.error(conn, packet, "not-allowed",
                                    "Your packets are being temporarily dropped due to flooding.")
                self._reject(conn, "flood: blocked", raw)
                return True
            del self.blocked[key]
        if count > self.limit:
            self.blocked[key] = now + self.block_seconds
            if own:
                self._out.error(conn, packet, "not-allowed",
                                "Flood detected! Your packets will be temporarily ignored.")
            _log.warn("Router blocks {mud} for flooding ({count} in one second)", mud=key, count=count)
            self._reject(conn, f"flood: {count} weighted packets in one second", raw)
            return True
        return False
