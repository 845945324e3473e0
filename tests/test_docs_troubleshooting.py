"""Every `sh` block of docs/TROUBLESHOOTING.md runs as written, in order,
against a real gateway (twistd, JSON log file) linked to the in-repo
router; its `yaml` blocks are valid configurations. Blocks marked
`sh network` need the public I3 network and are not run; the `sh setup`
block's variables are given this gateway's values instead."""

import os
import re
import sys
from pathlib import Path

from twisted.internet import defer, utils

from intermud3 import config
from tests.integration.process import REPO, ProcessCase, output_on_failure, wait_ready

GUIDE = REPO / "docs" / "TROUBLESHOOTING.md"
BLOCK = re.compile(r"^```(\w+)([^\n]*)\n(.*?)^```", re.S | re.M)


def blocks(kind, tag=""):
    return [body for lang, rest, body in BLOCK.findall(GUIDE.read_text())
            if lang == kind and rest.strip() == tag]


class TroubleshootingGuideTests(ProcessCase):
    mud = "GuideMUD"
    timeout = 240
    gateway_deadline = 200   # the whole guide runs against one gateway

    def setUp(self):
        super().setUp()
        self.config["logging"] = {"level": "info", "format": "json"}
        self.write_config()
        # `intermud3` as installed, for a checkout run without installing.
        bin_dir = self.dir / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "intermud3"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m intermud3 "$@"\n')
        shim.chmod(0o755)
        self.bin_dir = bin_dir

    def environment(self, pid):
        state = self.dir / "state"
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO), "HOME": str(self.dir), "LANG": "C.UTF-8",
            "CONFIG": str(self.config_path),
            "HTTP": f"http://127.0.0.1:{self.web_port}",
            "WS": f"ws://127.0.0.1:{self.web_port}/ws",
            "TCP": f"tcp://127.0.0.1:{self.tcp_port}",
            "KEY": self.api_key, "STATE": str(state), "PID": str(pid),
            "LOG": str(self.dir / "gateway.log"),
        }

    def test_the_setup_block_names_the_variables_the_commands_use(self):
        (setup,) = blocks("sh", "setup")
        names = set(re.findall(r"^([A-Z]+)=", setup, re.M))
        self.assertEqual(names, set(self.environment(0)) - {"PATH", "PYTHONPATH", "HOME", "LANG"})

    def test_every_yaml_block_is_a_valid_configuration(self):
        examples = blocks("yaml")
        self.assertGreaterEqual(len(examples), 2)
        for text in examples:
            config.load_text(text, {"I3_MUD_NAME": "GuideMUD"})

    @defer.inlineCallbacks
    def test_every_command_runs_as_written(self):
        commands = blocks("sh")
        self.assertGreaterEqual(len(commands), 15)
        with output_on_failure(self.gateway(f"--logfile={self.dir / 'gateway.log'}")) as proc:
            self.assertEqual((yield wait_ready(self.web_port))[0], 200)
            env = self.environment(proc.transport.pid)
            outputs = []
            for block in commands:
                out, err, code = yield utils.getProcessOutputAndValue(
                    "/bin/bash", ["-e", "-c", block], env=env, path=str(self.dir))
                text = (out + err).decode("utf-8", "replace")
                outputs.append(text)
                log = self.dir / "gateway.log"
                self.assertEqual(code, 0, f"{block}\n--- exit {code}:\n{text}\n--- the gateway's log:\n"
                                          f"{log.read_text()[-3000:] if log.exists() else ''}")
                self.assertNotIn("Traceback", text, block)
                self.assertNotIn("command not found", text, block)
                self.assertNotIn("jq: error", text, block)
            self.assertFalse(proc.ended.called, "a command of the guide stopped the gateway")
            proc.transport.signalProcess("TERM")
            self.assertEqual((yield proc.ended), 0)
        everything = "\n".join(outputs)
        # A few things the guide promises the reader will see.
        self.assertIn("verdict: OK", everything)
        self.assertIn('"method":"welcome"', everything)
        self.assertIn('"state":"ready"', everything)
        self.assertIn("-32000", everything)
        self.assertIn("unk-dst", everything)
        self.assertIn("still running", everything)
        self.assertIn("gateway ready", everything)
        self.assertIn("collected in", everything)
        self.assertNotIn(self.api_key, everything.replace(f'"{self.api_key}"', ""))
        backup = Path(env["STATE"] + ".backup.sqlite3")
        self.assertEqual(backup.stat().st_mode & 0o077, 0)
