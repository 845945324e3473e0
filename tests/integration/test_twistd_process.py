"""End to end: `twistd -n intermud3` as a real process against the in-repo router.

Starts the plugin the way an admin does, checks readiness over HTTP, sends
SIGHUP (the process must reload, not die, and keep its router link), then
SIGTERM (the router must get `shutdown` and the process must exit 0).
Hard deadlines everywhere so a hang fails instead of stalling CI.
"""

import json
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

import yaml
from twisted.internet import defer, protocol, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, readBody

from tests.integration.harness import wait_until
from intermud3.testing.router import I3Router

REPO = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Process(protocol.ProcessProtocol):
    def __init__(self):
        self.output = []
        self.ended = defer.Deferred()

    def outReceived(self, data):
        self.output.append(data)

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(reason.value.exitCode)

    def text(self):
        return b"".join(self.output).decode("utf-8", "replace")


class TwistdProcessTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        self.router = I3Router("*e2e")
        self.router.listen(reactor, 0, "127.0.0.1")
        self.addCleanup(self.router.shutdown)
        self.dir = Path(tempfile.mkdtemp(prefix="i3gw-e2e-"))
        self.web_port = free_port()
        self.tcp_port = free_port()
        self.config = {
            "mud": {"name": "ProcMUD"},
            "routers": [{"name": "*e2e", "host": "127.0.0.1", "port": self.router.port}],
            "router": {"send_rate": 0, "backoff": {"initial": 0.1, "max": 1}},
            "api": {
                "host": "127.0.0.1", "port": self.web_port,
                "tcp": {"port": self.tcp_port},
                "auth": {"api_keys": [{"key": "process-test-key", "permissions": ["*"]}]},
            },
            "state": {"directory": str(self.dir / "state")},
            "logging": {"level": "warn"},
        }
        self.config_path = self.dir / "gateway.yaml"
        self.config_path.write_text(yaml.safe_dump(self.config))

    def start(self):
        proc = _Process()
        env = dict(os.environ, PYTHONPATH=str(REPO))
        args = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "-n", "--pidfile=", "intermud3", "--config", str(self.config_path)]
        self.transport = reactor.spawnProcess(proc, sys.executable, args, env=env, path=str(self.dir))

        def kill_if_alive():
            if not proc.ended.called:
                self.transport.signalProcess("KILL")
                return proc.ended

        self.addCleanup(kill_if_alive)
        return proc

    @defer.inlineCallbacks
    def get(self, path):
        response = yield Agent(reactor).request(
            b"GET", f"http://127.0.0.1:{self.web_port}{path}".encode())
        body = yield readBody(response)
        return response.code, json.loads(body)

    @defer.inlineCallbacks
    def test_run_reload_and_stop(self):
        proc = self.start()
        try:
            yield self.router.wait_for(lambda r: "ProcMUD" in r.connections, timeout=20)
            code, body = yield self._ready()
            self.assertEqual((code, body["status"]), (200, "ready"))
            link = self.router.connections["ProcMUD"]

            # The logging section filters twistd's own observer.
            self.assertNotIn("Router link ready", proc.text())

            # SIGHUP with a changed file: reloaded in place, link kept.
            self.config["channels"] = {"default": ["dead_test4"]}
            self.config["logging"] = {"level": "info"}
            self.config_path.write_text(yaml.safe_dump(self.config))
            self.transport.signalProcess("HUP")
            yield self.router.wait_for(
                lambda r: any(p[0] == "channel-listen" and p[6] == "dead_test4"
                              for m, p in r.received if m == "ProcMUD"), timeout=10)
            self.assertFalse(proc.ended.called)
            self.assertIs(self.router.connections.get("ProcMUD"), link)
            yield wait_until(lambda: "Configuration reloaded" in proc.text())

            # SIGTERM: shutdown packet to the router, then exit 0.
            self.transport.signalProcess("TERM")
            code = yield proc.ended
            self.assertEqual(code, 0, proc.text())
            self.assertIn("shutdown", [p[0] for m, p in self.router.received if m == "ProcMUD"])
        except Exception:
            print(proc.text())
            raise

    @defer.inlineCallbacks
    def test_json_logs(self):
        self.config["logging"] = {"level": "info", "format": "json"}
        self.config_path.write_text(yaml.safe_dump(self.config))
        proc = self.start()
        try:
            code, body = yield self._ready()
            self.assertEqual(code, 200)
            self.transport.signalProcess("TERM")
            self.assertEqual((yield proc.ended), 0)
            records = [json.loads(line) for line in proc.text().splitlines()
                       if line.startswith("{")]
            self.assertIn("intermud3.link", {r.get("log_namespace") for r in records})
        except Exception:
            print(proc.text()[-3000:])
            raise

    @defer.inlineCallbacks
    def _ready(self):
        result = {}

        @defer.inlineCallbacks
        def poll():
            try:
                result["answer"] = yield self.get("/health/ready")
            except Exception:
                result.pop("answer", None)

        for _ in range(200):
            yield poll()
            if result.get("answer", (0,))[0] == 200:
                break
            yield deferLater(0.1)
        return result.get("answer", (None, {"status": None}))


def deferLater(seconds):
    from twisted.internet import task
    return task.deferLater(reactor, seconds, lambda: None)
