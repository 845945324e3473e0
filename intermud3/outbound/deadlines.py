"""One timer for many deadlines: the queued messages' expiry times.

A heap of (deadline, key) with a single delayed call for the earliest key
still ``alive`` (keys that left it are skipped lazily, so removing one
costs nothing).
"""

import heapq

__all__ = ["Deadlines"]


class Deadlines:
    def __init__(self, clock, alive, on_due):
        self._clock = clock
        self._alive = alive         # a container: the keys that still count
        self._on_due = on_due       # called (no arguments) at the earliest deadline
        self._heap = []
        self._call = None
        self._stopped = False

    def add(self, when, key):
        heapq.heappush(self._heap, (when, key))
        self.schedule()

    def postpone(self, when, key):
        """Look at ``key`` again at ``when``; the timer is left as it is."""
        heapq.heappush(self._heap, (when, key))

    def next_due(self, now):
        """The next live key whose deadline is at or before ``now``, taken
        off the heap; None when there is none."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, key = heapq.heappop(heap)
            if key in self._alive:
                return key
        return None

    def fired(self):
        """The timer ran (``on_due`` calls this first)."""
        self._call = None

    def schedule(self):
        """Set the timer for the earliest live deadline (none if none)."""
        if self._stopped:
            return
        heap = self._heap
        while heap and heap[0][1] not in self._alive:
            heapq.heappop(heap)
        call = self._call
        if not heap:
            if call is not None and call.active():
                call.cancel()
            self._call = None
            return
        when = heap[0][0]
        if call is not None and call.active():
            if call.getTime() <= when:
                return
            call.cancel()
        self._call = self._clock.callLater(max(0.0, when - self._clock.seconds()), self._on_due)

    def stop(self):
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
