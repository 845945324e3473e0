"""pyproject.toml lists every package of the source tree (setuptools installs
only those listed: one left out is missing from a non-editable install)."""

import os
import tomllib

from twisted.trial.unittest import SynchronousTestCase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PackagesTests(SynchronousTestCase):
    def test_every_intermud3_package_is_listed(self):
        with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
            listed = set(tomllib.load(f)["tool"]["setuptools"]["packages"])
        found = {
            os.path.relpath(directory, ROOT).replace(os.sep, ".")
            for directory, _, files in os.walk(os.path.join(ROOT, "intermud3"))
            if "__init__.py" in files
        }
        self.assertEqual(found - listed, set())
