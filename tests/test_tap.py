"""The command line: `intermud3 check-config`, twistd Options/makeService, the plugin file."""

import importlib.util
import io
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from twisted.application.service import IServiceMaker
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import cli, tap
from intermud3.service import GatewayService

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "etc" / "intermud3.yaml"
GOOD = "mud: {name: TestMud}\n"
BAD = "mud: {port: x}\napi: {prot: 1}\n"


class FilesMixin:
    def temp_path(self):
        """A path in a private temporary directory removed after the test."""
        directory = tempfile.mkdtemp(prefix="i3-config-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        return os.path.join(directory, "config.yaml")

    def write(self, text):
        path = self.temp_path()
        pathlib.Path(path).write_text(text)
        return path

    def capture(self, name):
        stream = io.StringIO()
        self.patch(sys, name, stream)
        return stream


class CheckConfigCommandTests(FilesMixin, SynchronousTestCase):
    def run_main(self, argv, environ=None):
        out = io.StringIO()
        code = cli.main(argv, out=out, environ=environ if environ is not None else {})
        return code, out.getvalue()

    def test_valid_file(self):
        path = self.write(GOOD)
        code, out = self.run_main(["check-config", path], {"I3_API_KEY": "k"})
        self.assertEqual(code, 0)
        self.assertEqual(out, f"{path}: OK\n")

    def test_warnings_are_printed_but_still_ok(self):
        path = self.write(GOOD)
        code, out = self.run_main(["check-config", path])
        self.assertEqual(code, 0)
        self.assertIn("warning: api.auth.api_keys[0].key: the demo key", out)
        self.assertTrue(out.endswith(f"{path}: OK\n"))

    def test_every_error_printed_one_per_line(self):
        path = self.write(BAD)
        code, out = self.run_main(["check-config", path])
        self.assertEqual(code, 1)
        lines = out.splitlines()
        self.assertEqual(lines[:3], [
            "mud.name: is required (the MUD's I3 name, e.g. name: ${I3_MUD_NAME})",
            "mud.port: must be a port number, not string (a port number from 0 to 65535)",
            "api.prot: unknown key (did you mean 'port'?)",
        ])
        self.assertEqual(lines[3], f"{path}: 3 errors")

    def test_missing_and_broken_files(self):
        missing = self.temp_path()
        code, out = self.run_main(["check-config", missing])
        self.assertEqual(code, 1)
        self.assertIn(f"{missing}: no such file", out)
        broken = self.write("mud: {name: [\n")
        code, out = self.run_main(["check-config", broken])
        self.assertEqual(code, 1)
        self.assertIn("YAML syntax error at line", out)
        self.assertNotIn("Traceback", out)

    def test_shipped_file(self):
        self.assertEqual(self.run_main(["check-config", str(SHIPPED)], {"I3_MUD_NAME": "X"})[0], 0)
        code, out = self.run_main(["check-config", str(SHIPPED)], {})
        self.assertEqual(code, 1)
        self.assertIn("set I3_MUD_NAME", out)

    def test_usage_errors_exit_2(self):
        stderr = self.capture("stderr")
        self.assertEqual(self.run_main([])[0], 2)
        self.assertEqual(self.run_main(["check-config"])[0], 2)
        self.assertEqual(self.run_main(["frobnicate"])[0], 2)
        self.assertEqual(self.run_main(["check-config", "a", "b"])[0], 2)
        self.assertIn("usage:", stderr.getvalue())

    def test_help_exits_0(self):
        stdout = self.capture("stdout")
        self.assertEqual(self.run_main(["--help"])[0], 0)
        self.assertIn("check-config", stdout.getvalue())

    def test_environment_defaults_to_os_environ(self):
        path = self.write('mud: {name: "${I3_TAP_TEST_NAME}"}\n')
        self.patch(os, "environ", {"I3_TAP_TEST_NAME": "FromEnv"})
        out = io.StringIO()
        self.assertEqual(cli.main(["check-config", path], out=out), 0)

    def test_python_dash_m(self):
        path = self.write(BAD)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        result = subprocess.run([sys.executable, "-m", "intermud3", "check-config", path],
                                capture_output=True, text=True, env=env, cwd=str(ROOT), timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn("api.prot: unknown key", result.stdout)
        self.assertEqual(result.stderr, "")


class OptionsTests(SynchronousTestCase):
    def parse(self, *argv):
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def test_defaults(self):
        options = self.parse()
        self.assertEqual(options["config"], "etc/intermud3.yaml")
        self.assertFalse(options["check-config"])

    def test_long_short_and_flag(self):
        self.assertEqual(self.parse("--config", "a.yaml")["config"], "a.yaml")
        self.assertEqual(self.parse("-c", "b.yaml")["config"], "b.yaml")
        self.assertEqual(self.parse("--config=c.yaml", "--check-config")["check-config"], True)

    def test_bad_options(self):
        self.assertRaises(usage.UsageError, self.parse, "--bogus")
        self.assertRaises(usage.UsageError, self.parse, "--config")
        self.assertRaises(usage.UsageError, self.parse, "extra")


class MakeServiceTests(FilesMixin, SynchronousTestCase):
    def options(self, *argv):
        options = tap.Options()
        options.parseOptions(list(argv))
        return options

    def write_with_state(self, state_directory):
        path = self.temp_path()
        pathlib.Path(path).write_text(GOOD + f"state: {{directory: '{state_directory}'}}\n")
        return path

    def test_builds_the_gateway_service(self):
        state_parent = tempfile.mkdtemp(prefix="i3-state-")
        self.addCleanup(shutil.rmtree, state_parent, True)
        path = self.write_with_state(os.path.join(state_parent, "state"))
        service = tap.makeService(self.options("--config", path), environ={"I3_API_KEY": "k"})
        self.assertIsInstance(service, GatewayService)
        self.assertFalse(service.running)  # built, not started: no sockets yet
        self.assertEqual(service.config_path, path)
        self.assertEqual(service.config.mud.name, "TestMud")

    def test_bad_config_exits_1_with_errors_on_stderr(self):
        stderr = self.capture("stderr")
        path = self.write(BAD)
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(self.options("--config", path), environ={})
        self.assertEqual(caught.exception.code, 1)
        self.assertIn("api.prot: unknown key (did you mean 'port'?)", stderr.getvalue())
        self.assertIn("mud.name: is required", stderr.getvalue())

    def test_unusable_state_database_exits_1_with_one_clear_line(self):
        stderr = self.capture("stderr")
        blocker = self.temp_path()
        pathlib.Path(blocker).write_text("a file where the state directory should be")
        path = self.write_with_state(os.path.join(blocker, "state"))
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(self.options("--config", path), environ={})
        self.assertEqual(caught.exception.code, 1)
        lines = stderr.getvalue().splitlines()
        self.assertEqual(len(lines), 2, lines)
        self.assertIn("intermud3.sqlite3: cannot create or open the state database", lines[0])
        self.assertEqual(lines[1], f"{path}: not started, the state database cannot be used")

    def test_check_config_bad_exits_1(self):
        stdout = self.capture("stdout")
        path = self.write(BAD)
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(self.options("--config", path, "--check-config"), environ={})
        self.assertEqual(caught.exception.code, 1)
        self.assertIn("mud.port: must be a port number", stdout.getvalue())

    def test_check_config_good_exits_0_without_building(self):
        stdout = self.capture("stdout")
        built = []
        self.patch(GatewayService, "__init__", lambda *a, **k: built.append(a))
        path = self.write(GOOD)
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(self.options("-c", path, "--check-config"), environ={"I3_API_KEY": "k"})
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(stdout.getvalue(), f"{path}: OK\n")
        self.assertEqual(built, [])

    def test_missing_file_exits_1(self):
        stderr = self.capture("stderr")
        with self.assertRaises(SystemExit) as caught:
            tap.makeService(self.options("-c", self.temp_path()), environ={})
        self.assertEqual(caught.exception.code, 1)
        self.assertIn("no such file", stderr.getvalue())


class PluginFileTests(SynchronousTestCase):
    def test_one_service_maker_importing_nothing_heavy(self):
        path = ROOT / "twisted" / "plugins" / "intermud3_plugin.py"
        spec = importlib.util.spec_from_file_location("intermud3_plugin_under_test", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        maker = module.intermud3
        self.assertTrue(IServiceMaker.providedBy(maker))
        self.assertEqual(maker.tapname, "intermud3")
        self.assertEqual(maker.module, "intermud3.tap")
        self.assertIs(maker.options, tap.Options)
        self.assertNotIn("import intermud3", path.read_text())

    def test_no_init_files_in_plugin_directories(self):
        self.assertFalse((ROOT / "twisted" / "__init__.py").exists())
        self.assertFalse((ROOT / "twisted" / "plugins" / "__init__.py").exists())
