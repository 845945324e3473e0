"""What became of each message: the memory behind ``message_status``.

A message is "sent", "queued" or "expired" (API.md "message_status").
This process remembers the latest outcomes in memory (bounded); a queued
message's row in the store also carries its outcome, kept for
``router.queue.ttl`` plus ``OUTCOME_MARGIN`` (purged every
``PURGE_INTERVAL``), so the answer survives a restart.
"""

from collections import OrderedDict

from twisted.internet import defer

__all__ = ["Outcomes", "queued_id", "OUTCOME_MARGIN", "PURGE_INTERVAL", "ANY_KEY"]

# Outcomes are kept for router.queue.ttl plus this (API.md message_status).
OUTCOME_MARGIN = 3600.0

# How often finished outcomes older than their keep are purged.
PURGE_INTERVAL = 600.0

# The key of a message restored from the store: the store did not keep
# it, and every key of a gateway speaks for one MUD, so any key may ask.
ANY_KEY = None


def queued_id(row_id):
    """The message id of a queued message: its row id (store ids never
    repeat, even across restarts)."""
    return f"q{row_id}"


class Outcomes:
    """Recent outcomes in memory, older ones from the store."""

    def __init__(self, store, clock, config, *, max_remembered):
        self._store = store
        self._clock = clock
        self.config = config            # config() -> the configuration now
        self._max_remembered = max_remembered
        # message_id -> (key_id, client_msg_id, status, at), oldest first.
        self._recent = OrderedDict()
        self._purge_call = None
        self._stopped = False

    def record(self, message_id, key_id, client_msg_id, status, at=None):
        recent = self._recent
        recent[message_id] = (key_id, client_msg_id, status,
                              self._clock.seconds() if at is None else at)
        recent.move_to_end(message_id)
        if len(recent) > self._max_remembered:
            recent.popitem(last=False)

    def status(self, key_id, message_id=None, client_msg_id=None):
        """Deferred[{"message_id","client_msg_id","status","at"} or None]
        for a message of ``key_id``: from memory when this process knows
        it, else from the store."""
        for known_id, (owner_key, known_cmid, state, at) in reversed(self._recent.items()):
            if (known_id == message_id if message_id is not None
                    else known_cmid == client_msg_id) and owner_key in (key_id, ANY_KEY):
                return defer.succeed(_status(known_id, known_cmid, state, at))
        row_id = None
        if message_id is not None:
            if not (message_id.startswith("q") and message_id[1:].isdigit()):
                return defer.succeed(None)
            row_id = int(message_id[1:])
        d = self._store.outcome(id=row_id, client_msg_id=None if row_id else client_msg_id,
                                key_id=key_id)

        def found(row):
            if row is None:
                return None
            at = row["done_at"] if row["done_at"] is not None else row["created"]
            return _status(queued_id(row["id"]), row["client_msg_id"], row["status"], at)
        return d.addCallback(found)

    def purge(self):
        """Forget stored outcomes older than router.queue.ttl plus the
        margin, then again every PURGE_INTERVAL until ``stop``."""
        self._purge_call = None
        if self._stopped:
            return
        keep = self.config().router.queue.ttl + OUTCOME_MARGIN
        self._store.purge_outcomes(self._clock.seconds() - keep)
        self._purge_call = self._clock.callLater(PURGE_INTERVAL, self.purge)

    def stop(self):
        self._stopped = True
        if self._purge_call is not None and self._purge_call.active():
            self._purge_call.cancel()
        self._purge_call = None


def _status(message_id, client_msg_id, status, at):
    return {"message_id": message_id, "client_msg_id": client_msg_id, "status": status,
            "at": at}
