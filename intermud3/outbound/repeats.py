"""Answers to repeats: a ``client_msg_id`` sent again gets the first answer.

A MUD that lost the reply to a send retries with the same
``client_msg_id``; within ``api.session.timeout`` of the first, the retry
gets the first result and nothing is sent twice (API.md "Messages"). While
the first is still being made durable the repeat waits for it.
"""

from collections import OrderedDict

from twisted.internet import defer

from intermud3.outbound.outcomes import ANY_KEY

__all__ = ["Repeats"]


class Repeats:
    """(key_id, client_msg_id) -> the first result, bounded in number and
    forgotten after ``api.session.timeout``."""

    def __init__(self, clock, config, *, max_remembered):
        self._clock = clock
        self.config = config            # config() -> the configuration now
        self._max_remembered = max_remembered
        # (key_id, client_msg_id) -> (forget_at, result dict or a message
        # still being made durable), oldest first.
        self._results = OrderedDict()

    def recall(self, key):
        """The first result for ``key``, a Deferred of it while that
        message is not yet durable, or None when there was none."""
        self._forget_old()
        entry = self._results.get(key)
        if entry is None:
            entry = self._results.get((ANY_KEY, key[1]))
        if entry is None:
            return None
        earlier = entry[1]
        if isinstance(earlier, dict):
            return dict(earlier)
        waiter = defer.Deferred()
        earlier.waiters.append(waiter)
        return waiter

    def remember(self, key, result):
        """``result``: a result dict, or a queued message (with
        ``waiters``) whose durability repeats must wait for."""
        self.remember_until(key, self._clock.seconds() + self._timeout(),
                            dict(result) if isinstance(result, dict) else result)

    def remember_restored(self, client_msg_id, created, result):
        """A message queued by an earlier process: any key's repeat of its
        client_msg_id gets ``result`` until its timeout from ``created``."""
        self.remember_until((ANY_KEY, client_msg_id), created + self._timeout(), result)

    def remember_until(self, key, forget_at, result):
        self._results[key] = (forget_at, result)
        self._results.move_to_end(key)
        while len(self._results) > self._max_remembered:
            self._results.popitem(last=False)

    def forget(self, key):
        self._results.pop(key, None)

    def _timeout(self):
        return self.config().api.session.timeout

    def _forget_old(self):
        now = self._clock.seconds()
        results = self._results
        while results:
            key, (forget_at, _) = next(iter(results.items()))
            if forget_at > now:
                break
            del results[key]
