"""The layering of services and API (docs/ARCHITECTURE.md): services speak
in domain terms and know nothing of JSON-RPC; every part gets its
collaborators from the composition root (service.py), never through a
gateway object; classes stay small enough to read."""

import ast
import pathlib

from twisted.trial.unittest import SynchronousTestCase

import intermud3

PACKAGE = pathlib.Path(intermud3.__file__).parent
MAX_CLASS_LINES = 300

# The composition root: the one place that holds every part.
ROOT = "service.py"


def modules(*folders):
    for folder in folders:
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            yield path, ast.parse(path.read_text(encoding="utf-8"))


def imported(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


class LayerTests(SynchronousTestCase):
    def test_services_never_import_the_api(self):
        for path, tree in modules("services"):
            for name in imported(tree):
                self.assertFalse(name.startswith("intermud3.api"), f"{path.name} imports {name}")

    def test_no_part_reaches_through_a_gateway_object(self):
        for path, tree in modules("."):
            if path.name == ROOT:
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                    self.assertNotEqual(node.value.id, "gateway", f"{path.name}:{node.lineno}")
                if isinstance(node, ast.Attribute) and node.attr == "gateway":
                    self.fail(f"{path.name}:{node.lineno} reads .gateway")

    def test_classes_stay_under_the_limit(self):
        for path, tree in modules("."):
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    lines = node.end_lineno - node.lineno + 1
                    self.assertLessEqual(lines, MAX_CLASS_LINES, f"{path.name}: {node.name}")
