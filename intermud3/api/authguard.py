"""Slowing down key guessing (`api.auth.failures`).

Each wrong key makes the caller wait before its answer: `delay` seconds,
doubled for every earlier failure of the same connection or of the same
source address (whichever has more), at most `max_delay`. A connection is
closed after `max_per_connection` failures (guesses pipelined beyond that
close it at once, unanswered). A source address is forgotten
after `forget_after` seconds without a failure; at most `MAX_SOURCES` are
remembered (the longest quiet go first).

Every failure counts in `intermud3_api_auth_failures_total`; the log gets
one line per source address per `log_interval`, with the count since the
last line, never one line per attempt (and never the key).
"""

from collections import OrderedDict

from twisted.logger import Logger

_log = Logger()

MAX_SOURCES = 10000


class _Source:
    __slots__ = ("failures", "last_failure", "unlogged", "logged_at")

    def __init__(self):
        self.failures = 0
        self.last_failure = None
        self.unlogged = 0
        self.logged_at = None


class AuthGuard:
    """Counts failed authentications per connection and per source address."""

    def __init__(self, settings, clock, metrics=None):
        # settings() -> api.auth.failures, read at each failure (reloads apply).
        self._settings = settings
        self._clock = clock
        self._metrics = metrics
        self._sources = OrderedDict()

    def failed(self, connection, host):
        """Record one failure; returns (seconds to wait before answering,
        close the connection after the answer); (None, True): close now,
        unanswered."""
        settings = self._settings()
        now = self._clock.seconds()
        source = self._source(host, now, settings.forget_after)
        source.failures += 1
        source.last_failure = now
        connection_failures = 0
        if connection is not None:
            connection_failures = getattr(connection, "auth_failures", 0) + 1
            connection.auth_failures = connection_failures
        if self._metrics is not None:
            self._metrics.api_auth_failures.inc()
        self._summarise(host, source, now, settings.log_interval)
        if connection_failures > settings.max_per_connection:
            # Guesses pipelined past the last allowed one: no answer, no
            # timer; the connection closes now (answering them early would
            # undo the delays).
            return None, True
        count = max(source.failures, connection_failures)
        delay = min(settings.max_delay, settings.delay * 2 ** min(count - 1, 32))
        close = connection is not None and connection_failures >= settings.max_per_connection
        return delay, close

    def failures(self, host):
        """Failures remembered for a source address (0 when forgotten)."""
        source = self._sources.get(host)
        return 0 if source is None else source.failures

    def _source(self, host, now, forget_after):
        source = self._sources.pop(host, None)
        if source is not None and now - source.last_failure >= forget_after:
            source.failures = 0
        if source is None:
            source = _Source()
            while len(self._sources) >= MAX_SOURCES:
                self._sources.popitem(last=False)
        # Most recent failure last: the oldest quiet source is dropped first.
        self._sources[host] = source
        return source

    @staticmethod
    def _summarise(host, source, now, interval):
        source.unlogged += 1
        if source.logged_at is not None and now - source.logged_at < interval:
            return
        _log.warn("{count} failed authentication(s) from {host} since the last report "
                  "({total} remembered for this address)",
                  count=source.unlogged, host=host, total=source.failures)
        source.unlogged = 0
        source.logged_at = now
