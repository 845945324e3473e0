"""No secret ever reaches the log (ARCHITECTURE.md: "No module logs a
secret (API key, router password)").

One whole gateway run, logged at debug level through the gateway's own
observers (JSON lines, which carry every field of an event, and text):
a router handshake that assigns a password, a reconnect that sends it
back, clients that authenticate with a good key and with a bad one on
both transports, a reload whose file is broken around the key, and the
check-config command on that file. Neither the API keys nor the router
password may appear anywhere in what was logged or printed.
"""

import dataclasses
import io
import os
import shutil
import tempfile

import yaml
from twisted.internet import defer, protocol, reactor
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from intermud3 import cli
from intermud3 import config as configuration
from intermud3.logsetup import GatewayLogObserver
from intermud3.service import GatewayService
from tests.integration.harness import JSONLineClient, Loopback, RPCFailure, raw_gateway_config
from tests.integration.wsclient import WSClosed, connect_ws
from tests.integration.waits import link_ready

MUD = "QuietMUD"
GOOD_KEY = "gw-secret-key-7Q2xK9vM"
BAD_KEY = "wrong-secret-key-Z8pL4rT"
# The in-repo router and test clients are not the gateway: their own
# logging is theirs to choose.
TEST_ONLY_NAMESPACES = ("intermud3.testing",)


def raw_config(router, state_dir):
    return raw_gateway_config(
        MUD, [router], state_dir, logging={"level": "debug"},
        api={"auth": {"api_keys": [{"key": GOOD_KEY, "mud_name": MUD, "permissions": ["*"]}]}})


class LogCapture:
    """Every gateway log event at debug level, as JSON lines and as text."""

    def __init__(self, testcase):
        self.json = io.StringIO()
        self.text = io.StringIO()
        debug = configuration.load_text("mud: {name: LogMud}\nlogging: {level: debug}", environ={}).logging
        writers = [GatewayLogObserver(debug, out=self.json),
                   GatewayLogObserver(dataclasses.replace(debug, format="text"), out=self.text)]
        self.events = 0

        def observe(event):
            if str(event.get("log_namespace", "")).startswith(TEST_ONLY_NAMESPACES):
                return
            self.events += 1
            for writer in writers:
                writer(event)

        globalLogPublisher.addObserver(observe)
        testcase.addCleanup(globalLogPublisher.removeObserver, observe)

    def output(self):
        return self.json.getvalue() + self.text.getvalue()


class SecretsNotLoggedTests(TestCase):
    def setUp(self):
        # Added before the loopback, so it is removed after everything stopped.
        self.log = LogCapture(self)
        self.loop = Loopback(self)
        self.dir = tempfile.mkdtemp(prefix="i3gw-secrets-")
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)

    def write(self, raw):
        path = os.path.join(self.dir, "intermud3.yaml")
        with open(path, "w", encoding="utf-8") as out:
            yaml.safe_dump(raw, out)
        return path

    def startups(self, router):
        return [p for mud, p in router.received if mud == MUD and p[0] == "startup-req-3"]

    @defer.inlineCallbacks
    def tcp_client(self, svc):
        port = svc.tcp_listener.getHost().port
        client = yield protocol.ClientCreator(reactor, JSONLineClient).connectTCP("127.0.0.1", port)
        self.addCleanup(client.disconnect)
        yield client.welcomed
        return client

    @defer.inlineCallbacks
    def test_api_keys_and_router_password_never_logged(self):
        router = self.loop.router()
        raw = raw_config(router, os.path.join(self.dir, "state"))
        path = self.write(raw)
        svc = GatewayService(configuration.load(path, environ={}), config_path=path,
                             reactor=reactor)
        svc.startService()
        self.addCleanup(lambda: svc.stopService() if svc.running else None)
        yield link_ready(svc)
        password = router.passwords[MUD]

        # Keys on TCP: a good one, then a bad one on another connection.
        client = yield self.tcp_client(svc)
        yield client.call("authenticate", {"api_key": GOOD_KEY})
        stranger = yield self.tcp_client(svc)
        failure = yield self.assertFailure(
            stranger.call("authenticate", {"api_key": BAD_KEY}), RPCFailure)
        self.assertEqual(failure.code, -32000)

        # Keys on WebSocket, in the upgrade's header: a good one, a bad one.
        web_port = svc.web_listener.getHost().port
        ws = yield connect_ws(web_port, headers={"X-API-Key": GOOD_KEY})
        self.addCleanup(ws.disconnect)
        yield ws.call("ping")
        refused = yield connect_ws(web_port, headers={"X-API-Key": BAD_KEY}, wait_open=False)
        yield self.assertFailure(refused.opened, WSClosed)
        yield refused.lost

        # The stored password goes back to the router on the next handshake.
        yield client.call("reconnect")
        yield router.wait_for(lambda r: len(self.startups(r)) >= 2)
        yield link_ready(svc)
        self.assertEqual(self.startups(router)[-1][6], password)

        # A reload whose file is broken around the key is refused, old config kept.
        broken = raw_config(router, os.path.join(self.dir, "state"))
        broken["api"]["auth"]["api_keys"] = [
            {"key": GOOD_KEY, "mud_name": "SomeoneElse", "permissions": ["*", "nonsense"]},
            {"key": GOOD_KEY, "mud_name": MUD, "permissions": ["*"], "rate_limit": BAD_KEY},
            {"key": "sha256:" + BAD_KEY, "mud_name": MUD, "permissions": ["*"]},
        ]
        self.write(broken)
        result = yield client.call("reload_config")
        self.assertEqual(result["status"], "rejected")
        self.assertTrue(result["errors"])
        for error in result["errors"]:
            self.assertNotIn(GOOD_KEY, error)
            self.assertNotIn(BAD_KEY, error)
        self.assertEqual(svc.gateway.config.api.auth.api_keys[0].key, GOOD_KEY)

        # check-config on the same file prints every error, but no key.
        printed = io.StringIO()
        self.assertEqual(cli.check_config(path, printed, environ={}), 1)

        yield svc.stopService()
        yield router.wait_for(lambda r: MUD not in r.connections)

        logged = self.log.output()
        self.assertGreater(self.log.events, 10)          # the capture saw the run
        self.assertIn("failed authentication(s) from", logged)   # ... the bad key's attempt (summary)
        self.assertIn("Reload rejected", logged)         # ... and the broken reload
        for secret in (GOOD_KEY, BAD_KEY, str(password)):
            self.assertEqual(lines_holding(secret, logged), [])
            self.assertEqual(lines_holding(secret, printed.getvalue()), [])


def lines_holding(secret, text):
    """The lines of ``text`` that hold ``secret``, shortened for a report."""
    return [line[:300] for line in text.splitlines() if secret in line]
