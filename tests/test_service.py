"""Gateway.reload: validated as a whole, applied live, restart-only keys kept."""

import os
import tempfile

import yaml
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3 import config as configuration
from intermud3.service import Gateway


def raw_config(state_dir, **api):
    return {
        "mud": {"name": "ReloadMUD"},
        "routers": [{"name": "*test", "host": "127.0.0.1", "port": 1}],
        "api": {"host": "127.0.0.1", "port": 0, "tcp": {"port": 0}, **api,
                "auth": {"api_keys": [{"key": "reload-key", "permissions": ["*"]}]}},
        "state": {"directory": state_dir},
    }


class ReloadTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="i3gw-reload-")
        self.path = os.path.join(self.dir, "gateway.yaml")
        self.write(raw_config(self.dir))
        config = configuration.load(self.path, environ={})
        self.gateway = Gateway(config, clock=Clock(), config_path=self.path)
        self.addCleanup(self.gateway.store.close)

    def write(self, raw):
        with open(self.path, "w") as f:
            yaml.safe_dump(raw, f)

    def reload(self):
        return self.successResultOf(self.gateway.reload())

    def test_live_keys_apply_at_once(self):
        self.write(raw_config(self.dir, max_batch=7))
        applied = []
        self.gateway.on_apply.append(applied.append)
        result = self.reload()
        self.assertEqual(result, {"status": "reloaded", "changed": ["api.max_batch"]})
        self.assertEqual(self.gateway.dispatcher.max_batch, 7)
        self.assertEqual(self.gateway.config.api.max_batch, 7)
        self.assertEqual(applied, [self.gateway.config])

    def test_restart_only_keys_keep_their_old_value(self):
        self.write(raw_config(self.dir, port=18080, max_batch=9))
        result = self.reload()
        self.assertEqual(result["restart_required"], ["api.port"])
        self.assertEqual(result["changed"], ["api.max_batch"])
        self.assertEqual(self.gateway.config.api.port, 0)

    def test_a_broken_file_is_rejected_and_the_old_config_kept(self):
        old = self.gateway.config
        with open(self.path, "w") as f:
            f.write("mud: {name: [unclosed\n")
        result = self.reload()
        self.assertEqual(result["status"], "rejected")
        self.assertTrue(result["errors"])
        self.assertIs(self.gateway.config, old)


class ListenBacklogTests(SynchronousTestCase):
    def test_listeners_use_the_configured_backlog(self):
        from twisted.internet.protocol import Factory
        from twisted.internet.testing import MemoryReactor

        from intermud3.service import GatewayService

        config = configuration.load_text("mud: {name: TestMud}\n", environ={})
        self.assertEqual(config.api.listen_backlog, 1024)
        config = with_overrides(config, {"api.listen_backlog": 77})
        reactor = MemoryReactor()
        svc = GatewayService(config, reactor=reactor)
        svc._listen("api.tcp.port", 8081, Factory(), "127.0.0.1", None)
        port, _, backlog, interface = reactor.tcpServers[0]
        self.assertEqual((port, backlog, interface), (8081, 77, "127.0.0.1"))
