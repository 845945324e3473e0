"""Test-run settings shared by every test module."""

import atexit
import os
import shutil
import tempfile

from hypothesis import settings
from twisted.trial.unittest import SynchronousTestCase

# CI runs the property tests on a fixed sequence of examples, so a green
# main stays green; anywhere else they explore new examples on each run.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "explore")

# trial's mktemp() makes its directories under the current directory, which
# under pytest is the work tree: give every test's temporary path a home in
# one private directory instead, removed when the run ends.
_TEMP_ROOT = tempfile.mkdtemp(prefix="i3gw-tests-")
atexit.register(shutil.rmtree, _TEMP_ROOT, ignore_errors=True)


def _mktemp(self):
    """A path that does not exist yet, in a directory of its own."""
    return os.path.join(tempfile.mkdtemp(dir=_TEMP_ROOT), "temp")


SynchronousTestCase.mktemp = _mktemp
