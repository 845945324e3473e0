"""The rate limits of each API key (``api.rate_limits``), shared by every
session of that key: reconnecting or opening a second session never
refills the buckets."""

from intermud3.api.ratelimit import RateLimits

__all__ = ["KeyLimits"]


class KeyLimits:
    """key_id -> RateLimits, made on first use."""

    def __init__(self, clock):
        self._clock = clock
        self._by_key = {}
        self.default_rate = None    # set by configure, before any for_key
        self.by_method = None

    def configure(self, rate_limits):
        """The ``api.rate_limits`` section (config.RateLimitsConfig); applied
        to existing buckets by ``reconfigure``."""
        self.default_rate = rate_limits.default
        self.by_method = rate_limits.by_method

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
        return key.rate_limit or self.default_rate
