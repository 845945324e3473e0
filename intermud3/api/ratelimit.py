"""Token buckets for the per-key rate limits (`api.rate_limits`).

Every API key has a default bucket, shared by all its sessions (`per_minute`, `burst`: its key's
`rate_limit`, else `api.rate_limits.default`). A method named in
`api.rate_limits.by_method` also has a bucket of its own for each key,
and a call of it must find a token in BOTH buckets (taken from both only
when both have one). So an override narrows one method, and the key's
overall budget still bounds everything.
"""

import math


class TokenBucket:
    """`burst` tokens, refilled at `per_minute` per minute, read off the clock."""

    def __init__(self, per_minute, burst, clock):
        self.clock = clock
        self.per_minute = None
        self.burst = None
        self.tokens = None
        self._stamp = clock.seconds()
        self.configure(per_minute, burst)

    def configure(self, per_minute, burst):
        per_minute = float(per_minute)
        burst = float(burst)
        if per_minute <= 0 or burst < 1:
            raise ValueError("rate limit needs per_minute > 0 and burst >= 1")
        self._refill()
        self.per_minute = per_minute
        self.burst = burst
        # A reload never grants more than the new burst.
        self.tokens = burst if self.tokens is None else min(self.tokens, burst)

    def _refill(self, now=None):
        if now is None:
            now = self.clock.seconds()
        if self.tokens is not None and now > self._stamp:
            self.tokens = min(self.burst, self.tokens + (now - self._stamp) * self.per_minute / 60.0)
        self._stamp = max(self._stamp, now)

    def wait(self, now=None):
        """Seconds until one token is available (0 when one is now); `now`
        saves a clock read when the caller has one."""
        self._refill(now)
        missing = 1.0 - self.tokens
        if missing <= 1e-9:
            return 0.0
        return missing * 60.0 / self.per_minute

    def spend(self):
        """Take one token right after `wait` found one (it refilled the bucket)."""
        self.tokens -= 1.0


def _retry_after(seconds):
    """Round up to a tenth of a second, never 0, so a client that waits succeeds."""
    return max(0.1, math.ceil(seconds * 10 - 1e-9) / 10)


class RateLimits:
    """One key's buckets: the default one and one per limited method."""

    def __init__(self, clock, default_rate, by_method):
        self.clock = clock
        self._default = TokenBucket(default_rate.per_minute, default_rate.burst, clock)
        self._by_method = {}
        self.configure(default_rate, by_method)

    def configure(self, default_rate, by_method):
        """Apply (re)loaded limits; a bucket kept across a reload keeps its
        tokens, up to its new burst."""
        self._default.configure(default_rate.per_minute, default_rate.burst)
        buckets = {}
        for method, rate in by_method.items():
            bucket = self._by_method.get(method)
            if bucket is None:
                bucket = TokenBucket(rate.per_minute, rate.burst, self.clock)
            else:
                bucket.configure(rate.per_minute, rate.burst)
            buckets[method] = bucket
        self._by_method = buckets

    def take(self, method):
        """None when the call may run (a token is taken), else retry_after seconds."""
        # Once per request: one clock read, no list, no generator.
        now = self.clock.seconds()
        wait = self._default.wait(now)
        bucket = self._by_method.get(method)
        if bucket is not None:
            wait = max(wait, bucket.wait(now))
        if wait > 0:
            return _retry_after(wait)
        self._default.spend()
        if bucket is not None:
            bucket.spend()
        return None
