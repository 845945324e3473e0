"""Waiting on the in-repo router: a Deferred that fires once a condition
on it holds, checked after every packet and state change."""

from twisted.internet import defer

__all__ = ["Conditions"]


class Conditions:
    """``wait_for`` conditions on ``subject`` (the router); ``changed()``
    re-checks them."""

    def __init__(self, subject, clock):
        self._subject = subject
        self._clock = clock
        self._waiters = []      # [predicate, Deferred, timeout call]

    def wait_for(self, predicate, timeout=5):
        """A Deferred firing with predicate(subject) once it is true.

        Checked now and after every ``changed``; fails with
        ``defer.TimeoutError`` after ``timeout`` seconds of the clock (with
        a ``task.Clock``, only when the test advances it).
        """
        d = defer.Deferred(lambda _: self._forget(entry))
        result = predicate(self._subject)
        if result:
            d.callback(result)
            return d
        entry = [predicate, d, None]

        def expire():
            self._waiters.remove(entry)
            d.errback(defer.TimeoutError(f"router condition not met in {timeout}s"))

        entry[2] = self._clock.callLater(timeout, expire)
        self._waiters.append(entry)
        return d

    def changed(self):
        for entry in list(self._waiters):
            predicate, d, call = entry
            if entry not in self._waiters:
                continue
            try:
                result = predicate(self._subject)
            except Exception:
                self._forget(entry)
                d.errback()
                continue
            if result:
                self._forget(entry)
                d.callback(result)

    def cancel_all(self):
        """The router shuts down: pending waits never fire now, and their
        timers must not outlive it."""
        for _, _, call in self._waiters:
            call.cancel()
        self._waiters = []

    def _forget(self, entry):
        if entry in self._waiters:
            self._waiters.remove(entry)
            entry[2].cancel()
