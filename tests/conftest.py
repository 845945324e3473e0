"""Test-run settings shared by every test module."""

import os

from hypothesis import settings

# CI runs the property tests on a fixed sequence of examples, so a green
# main stays green; anywhere else they explore new examples on each run.
settings.register_profile("ci", derandomize=True, deadline=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "explore")
