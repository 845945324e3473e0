"""End to end: `twistd -n intermud3` as a real process against the in-repo router.

Starts the plugin the way an admin does, checks readiness over HTTP, sends
SIGHUP (the process must reload, not die, and keep its router link), then
SIGTERM (the router must get `shutdown` and the process must exit 0).
Hard deadlines everywhere (tests/integration/process.py) so a hang fails
instead of stalling CI.
"""

import json
import socket

from twisted.internet import defer

from tests.integration.process import ProcessCase, output_on_failure, wait_ready


class TwistdProcessTests(ProcessCase):
    mud = "ProcMUD"

    @defer.inlineCallbacks
    def test_run_reload_and_stop(self):
        self.config["logging"] = {"level": "warn"}
        self.write_config()
        with output_on_failure(self.gateway()) as proc:
            yield self.connected()
            code, body = yield wait_ready(self.web_port)
            self.assertEqual((code, body["status"]), (200, "ready"))
            link = self.router.connections["ProcMUD"]

            # The logging section filters twistd's own observer.
            self.assertNotIn("Router link ready", proc.text())

            # SIGHUP with a changed file: reloaded in place, link kept.
            self.config["channels"] = {"default": ["dead_test4"]}
            self.config["logging"] = {"level": "info"}
            self.write_config()
            proc.transport.signalProcess("HUP")
            yield self.router.wait_for(
                lambda r: any(p[6] == "dead_test4" for p in self.received("channel-listen")),
                timeout=10)
            self.assertFalse(proc.ended.called)
            self.assertIs(self.router.connections.get("ProcMUD"), link)
            yield proc.wait_output("Configuration reloaded")

            # SIGTERM: shutdown packet to the router, then exit 0.
            proc.transport.signalProcess("TERM")
            code = yield proc.ended
            self.assertEqual(code, 0, proc.text())
            self.assertEqual(len(self.received("shutdown")), 1)

    @defer.inlineCallbacks
    def test_json_logs(self):
        self.config["logging"] = {"level": "info", "format": "json"}
        self.write_config()
        with output_on_failure(self.gateway()) as proc:
            code, body = yield wait_ready(self.web_port)
            self.assertEqual(code, 200)
            proc.transport.signalProcess("TERM")
            self.assertEqual((yield proc.ended), 0)
            records = [json.loads(line) for line in proc.text().splitlines()
                       if line.startswith("{")]
            self.assertIn("link", {r.get("component") for r in records})
            for record in records:
                self.assertTrue({"time", "level", "component", "message"} <= set(record), record)

    @defer.inlineCallbacks
    def test_a_port_in_use_is_one_line_naming_the_setting(self):
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", self.tcp_port))
        busy.listen()
        code, out = yield self.run_to_end(self.gateway())
        self.assertEqual(code, 1, out)
        self.assertIn(f"api.tcp.port: cannot listen on 127.0.0.1:{self.tcp_port}: Address already in use", out)
        self.assertNotIn("Traceback", out)
