"""The rate limits of each API key (``api.rate_limits``), shared by every
session of that key: reconnecting or opening a second session never
refills the buckets."""

from intermud3.api.ratelimit import RateLimits

__all__ = ["KeyLimits", "DEFAULT_RATE"]

DEFAULT_RATE = {"per_minute": 100, "burst": 20}


class KeyLimits:
    """key_id -> RateLimits, made on first use."""

    def __init__(self, clock):
        self._clock = clock
        self._by_key = {}
        self.default_rate = dict(DEFAULT_RATE)
        self.by_method = {}

    def configure(self, rate_limits):
        """The ``api.rate_limits`` section; applied to existing buckets by
        ``reconfigure``."""
        rate_limits = rate_limits or {}
        self.default_rate = {**DEFAULT_RATE, **(rate_limits.get("default") or {})}
        self.by_method = dict(rate_limits.get("by_method") or {})

    def for_key(self, key):
        limits = self._by_key.get(key.key_id)
        if limits is None:
            limits = self._by_key[key.key_id] = RateLimits(
                self._clock, self._rate_for(key), self.by_method)
        return limits

    def reconfigure(self, find_key):
        """New rates for every key ``find_key(key_id)`` still knows; the
        buckets of keys it does not are forgotten."""
        for key_id, limits in list(self._by_key.items()):
            key = find_key(key_id)
            if key is None:
                del self._by_key[key_id]
            else:
                limits.configure(self._rate_for(key), self.by_method)

    def _rate_for(self, key):
        return {**self.default_rate, **(key.rate_limit or {})}
