"""`intermud3 --version`, `doctor` and `collect` against a real gateway
process (twistd) linked to the in-repo router."""

import io
import os
import stat
import tarfile
from contextlib import redirect_stdout

from twisted.internet import defer

import intermud3
from intermud3.cli import main
from tests.integration.process import ProcessCase, output_on_failure, wait_ready

CLI = "import sys; from intermud3.cli import main; sys.exit(main())"


class VersionTests(ProcessCase):
    def test_version(self):
        out = io.StringIO()
        with redirect_stdout(out):
            self.assertEqual(main(["--version"]), 0)
        self.assertEqual(out.getvalue().strip(), f"intermud3 {intermud3.__version__}")


class DoctorTests(ProcessCase):
    mud = "DoctorMUD"

    def doctor(self):
        return self.run_to_end(self.spawn(CLI, "doctor", "-c", str(self.config_path)))

    @defer.inlineCallbacks
    def test_all_well(self):
        with output_on_failure(self.gateway()):
            self.assertEqual((yield wait_ready(self.web_port))[0], 200)
            code, out = yield self.doctor()
        self.assertEqual(code, 0, out)
        for line in ("ok    config:", "ok    state permissions:", "ok    state integrity: quick_check ok",
                     f"ok    api.port: 127.0.0.1:{self.web_port} answers",
                     f"ok    api.tcp.port: 127.0.0.1:{self.tcp_port} answers",
                     "ok    router link: ready on *proc"):
            self.assertIn(line, out)
        self.assertTrue(out.rstrip().endswith("verdict: OK, the gateway is up and linked to its router"), out)

    @defer.inlineCallbacks
    def test_no_gateway_running(self):
        code, out = yield self.doctor()
        self.assertEqual(code, 1, out)
        self.assertIn(f"FAIL  api.port: 127.0.0.1:{self.web_port} does not answer", out)
        self.assertIn("verdict: PROBLEM: api.port:", out)
        self.assertIn("Next: start the gateway", out)

    @defer.inlineCallbacks
    def test_router_refusing_shows_the_link_state_and_its_errors(self):
        self.router.refuse_startups = True   # silent: each handshake times out
        self.config["router"]["handshake_timeout"] = 1
        self.write_config()
        with output_on_failure(self.gateway()) as proc:
            yield proc.wait_output("Router link to *proc failed", timeout=15)
            code, out = yield self.doctor()
        self.assertEqual(code, 1, out)
        self.assertIn("router error: ", out)
        self.assertIn("*proc: ", out)
        self.assertRegex(out, r"FAIL  router link: (connecting|handshaking|backoff) \(router link is ")
        self.assertIn("Next: read the router errors above", out)

    @defer.inlineCallbacks
    def test_a_broken_config_is_the_verdict(self):
        self.config["api"]["max_batch"] = 0
        self.write_config()
        code, out = yield self.doctor()
        self.assertEqual(code, 1, out)
        self.assertIn("FAIL  config: api.max_batch:", out)
        self.assertIn(f"Next: fix {self.config_path}", out)


class CollectTests(ProcessCase):
    mud = "CollectMUD"

    @defer.inlineCallbacks
    def test_bundle_is_owner_only_and_holds_no_secret(self):
        logfile = self.dir / "gateway.log"
        bundle = self.dir / "bundle"
        with output_on_failure(self.gateway(f"--logfile={logfile}")):
            self.assertEqual((yield wait_ready(self.web_port))[0], 200)
            code, out = yield self.run_to_end(self.spawn(
                CLI, "collect", "-c", str(self.config_path), "--log", str(logfile), str(bundle)))
        self.assertEqual(code, 0, out)
        names = sorted(os.listdir(bundle))
        self.assertEqual(names, ["api-info.json", "config.redacted.yaml", "doctor.txt", "health.json",
                                 "log-tail.txt", "metrics.txt", "versions.txt"])
        self.assertEqual(stat.S_IMODE(os.stat(bundle).st_mode), 0o700)
        archive = str(bundle) + ".tar.gz"
        for path in [archive] + [os.path.join(bundle, name) for name in names]:
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
        texts = {name: (bundle / name).read_text() for name in names}
        with tarfile.open(archive) as packed:
            packed_texts = [packed.extractfile(m).read().decode() for m in packed.getmembers() if m.isfile()]
        for text in list(texts.values()) + packed_texts:
            self.assertNotIn(self.api_key, text)
        self.assertIn("key: <redacted>", texts["config.redacted.yaml"])
        self.assertIn(f"intermud3 {intermud3.__version__}", texts["versions.txt"])
        self.assertIn("verdict: OK", texts["doctor.txt"])
        self.assertIn('"state":"ready"', texts["health.json"])
        self.assertIn("intermud3_router_connected", texts["metrics.txt"])
        self.assertIn("Gateway started", texts["log-tail.txt"])
