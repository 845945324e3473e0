"""The events a session keeps while it cannot take them, and their replay.

A detached session (or one whose replay is under way) keeps its events,
bounded by ``api.session.max_queue_size`` and ``api.session.queue_ttl``;
what the bounds drop is counted in ``session.dropped`` and reported on
re-attach, so loss is never silent. The replay follows the connection's
flow control: events go out while its transport takes them and wait in
the session while it is paused; a replay cut short leaves the rest there.
"""

from twisted.internet.defer import Deferred

__all__ = ["EventBacklog"]


class EventBacklog:
    """Delivers, keeps, bounds and replays the events of every session."""

    def __init__(self, clock, metrics=None):
        self._clock = clock
        self._metrics = metrics
        self._counters = {}
        self.max_queue_size = 0     # set by configure
        self.queue_ttl = 0.0

    def configure(self, max_queue_size, queue_ttl):
        self.max_queue_size = max_queue_size
        self.queue_ttl = queue_ttl

    # -- events ----------------------------------------------------------

    def deliver(self, session, event, data):
        """Send one serialised notification now, or keep it for replay
        (also while a replay is under way: it goes first)."""
        if session.connection is not None and session.replay is None:
            session.connection.send_message(data)
            self._count("events_delivered", event)
            return
        session.queue.append((self._clock.seconds(), event, data))
        self._prune(session)
        self.trim(session)

    def discard(self, session):
        """The session ended: its kept events are dropped (and counted)."""
        for _, event, _ in session.queue:
            self._count("events_dropped", event)
        session.queue.clear()

    def trim(self, session):
        """Drop the oldest kept events beyond max_queue_size."""
        while len(session.queue) > self.max_queue_size:
            self._drop_oldest(session)

    def _drop_oldest(self, session):
        _, event, _ = session.queue.popleft()
        session.dropped += 1
        self._count("events_dropped", event)

    def _prune(self, session):
        """Drop kept events older than queue_ttl."""
        oldest_allowed = self._clock.seconds() - self.queue_ttl
        while session.queue and session.queue[0][0] < oldest_allowed:
            self._drop_oldest(session)

    def _count(self, metric, event):
        # Once per recipient of every event: the labelled counter is looked
        # up once per (metric, event) pair, a fixed set of names.
        if self._metrics is None:
            return
        counter = self._counters.get((metric, event))
        if counter is None:
            counter = self._counters[metric, event] = getattr(self._metrics, metric).labels(event=event)
        counter.inc()

    # -- replay ----------------------------------------------------------

    def replay(self, session, connection):
        """``session`` was just attached to ``connection``: replay its kept
        events in order. (replayed, dropped), or a Deferred of it while the
        connection cannot take them all yet."""
        # A replay to an earlier connection still waiting is superseded.
        session.replay = None
        self._prune(session)
        replayed = self._replay_round(session, connection)
        if not session.queue or session.connection is not connection:
            return self._replay_done(session, replayed)
        session.replay = Deferred()
        self._continue_replay(session, connection, replayed)
        return session.replay

    def _replay_round(self, session, connection):
        """Send kept events while the connection takes them; how many went."""
        pending = list(session.queue)
        session.queue.clear()
        sent = 0
        for position, (_, event, data) in enumerate(pending):
            if session.connection is not connection:
                # The connection dropped (send buffer overflow) and handed
                # back what it held; the unsent rest follows that.
                session.queue.extend(pending[position:])
                self.trim(session)
                return sent
            if getattr(connection, "paused", False):
                # Its transport is full: the rest waits, still first in line.
                session.queue.extendleft(reversed(pending[position:]))
                return sent
            connection.send_message(data)
            sent += 1
            self._count("events_delivered", event)
        return sent

    def _continue_replay(self, session, connection, replayed):
        done = session.replay

        def resumed(_):
            if session.replay is not done:
                done.callback((replayed, 0))   # superseded by a newer attach
                return
            if session.connection is connection:
                self._prune(session)
                more = self._replay_round(session, connection)
            else:
                more = 0
            if session.queue and session.connection is connection:
                self._continue_replay(session, connection, replayed + more)
                return
            session.replay = None
            done.callback(self._replay_done(session, replayed + more))

        connection.when_writable().addCallback(resumed)

    @staticmethod
    def _replay_done(session, replayed):
        dropped, session.dropped = session.dropped, 0
        return replayed, dropped
