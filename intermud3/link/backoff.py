"""How long the router link waits before its next attempt.

A policy is a callable ``failures -> seconds`` (``failures`` counts the
failed attempts in a row, from 1), as ``ClientService``'s
``retryPolicy``; ``twisted.application.internet.backoffPolicy`` adds its
jitter on top of the delay, where ours draws within it.
"""

import math
import random as _random

__all__ = ["backoff_policy", "configured_policy"]


def backoff_policy(initial=1.0, maximum=300.0, factor=2.0, jitter=True, random=_random.random):
    """Exponential delays ``initial * factor ** (failures - 1)``, at most
    ``maximum``. With ``jitter`` each is drawn between half and all of that
    ("equal jitter"): never near zero, so a router that takes TCP and never
    answers is not hammered, and gateways that lost the same router do not
    come back in step. ``random() -> float in [0, 1)`` draws it."""

    def policy(failures):
        try:
            delay = initial * math.pow(factor, min(failures - 1, 1000))
        except OverflowError:
            delay = maximum
        delay = min(maximum, delay)
        if jitter:
            delay = delay / 2 + (delay / 2) * random()
        return delay
    return policy


def configured_policy(settings, random=_random.random):
    """The policy of ``router.backoff`` as it is configured now:
    ``settings() -> config.BackoffConfig`` is read at each
    failure, so a reload applies from the next one."""

    def policy(failures):
        current = settings()
        return backoff_policy(current.initial, current.max, current.factor,
                              current.jitter, random)(failures)
    return policy
