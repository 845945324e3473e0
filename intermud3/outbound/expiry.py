"""Expiry of the durable queue: a queued message past ``router.queue.ttl``
is dropped unsent, marked "expired" in the store, and its MUD is told
(``message_expired``)."""

from twisted.logger import Logger

from intermud3.outbound.deadlines import Deadlines

__all__ = ["QueueExpiry"]

_log = Logger()


class QueueExpiry:
    """Drops the messages of ``queue`` (id -> queued message, the Outbox's)
    whose time is up, on one timer for the earliest.

    ``remove(message)`` takes one out of the queue; ``outcomes`` and
    ``events`` record and announce the expiry.
    """

    def __init__(self, clock, queue, *, store, remove, outcomes, events, metrics=None):
        self._clock = clock
        self._queue = queue
        self._store = store
        self._remove = remove
        self._outcomes = outcomes
        self._events = events
        self._metrics = metrics
        self._deadlines = Deadlines(clock, queue, self.expire)
        self._stopped = False

    def add(self, message):
        self._deadlines.add(message.expires, message.id)

    def expire(self):
        """The timer: drop what is due, then wait for the next."""
        self._deadlines.fired()
        if self._stopped:
            return
        self.expire_due()
        self._deadlines.schedule()

    def expire_due(self):
        """Drop every queued message past its TTL now."""
        now = self._clock.seconds()
        expired = []
        deadlines = self._deadlines
        while True:
            row_id = deadlines.next_due(now)
            if row_id is None:
                break
            message = self._queue[row_id]
            if not message.durable or message.sending:
                # Its fate is being decided elsewhere; look again later.
                deadlines.postpone(now + 1.0, row_id)
                break
            self._remove(message)
            expired.append(message)
        if not expired:
            return
        self._store.finish([message.id for message in expired], "expired", now)
        if self._metrics is not None:
            self._metrics.outbound_expired.inc(len(expired))
        for message in expired:
            _log.info("Queued {kind} message {message_id} expired unsent",
                      kind=message.kind, message_id=message.message_id)
            self._outcomes.record(message.message_id, message.key_id, message.client_msg_id,
                                  "expired", now)
            self._events.publish("message_expired", message)

    def stop(self):
        self._stopped = True
        self._deadlines.stop()
