"""The two LPC codecs for tests that run against both.

The compiled one may be missing (no C compiler where the package was
installed): its tests then skip, naming the reason, except under CI (the
environment variable CI set), where its absence fails them: CI must
exercise the C path.
"""

import os
import unittest

from intermud3 import lpc, lpc_python

NAMES = ("python", "c")


def compiled():
    """The compiled codec module; skips (fails under CI) without it."""
    if lpc.C_CODEC is None:
        reason = f"C codec unavailable: {lpc.FALLBACK_REASON}"
        if os.environ.get("CI"):
            raise AssertionError(f"{reason}; CI must test the C codec (pip install . builds it)")
        raise unittest.SkipTest(reason)
    return lpc.C_CODEC


def codec(name):
    """The codec module called `name` ("python" or "c")."""
    return lpc_python if name == "python" else compiled()
