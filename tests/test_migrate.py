"""`intermud3 migrate-config`: the older gateway's configuration files
become valid files for this gateway, and every key left behind is named."""

import io
import os
import shutil
import tempfile
import textwrap

import yaml
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import cli, config
from intermud3.cli import main
from intermud3.migrate import migrate, migrate_text

# The older gateway's config.yaml layout (its section and key names), with
# its ${VAR:default} references.
OLD_FULL = textwrap.dedent("""\
    mud:
      name: ${MUD_NAME:OldMUD}
      port: ${MUD_PORT:4100}
      admin_email: admin@old.example
      mudlib: OldLib
      driver: CircleMUD
      services: {tell: 1, who: 1, chanlist-req: 1}
      oob_services: {mail: 0}
    router:
      primary: {name: "*i4", host: 204.209.44.3, port: 8080, password: "${I3_ROUTER_PASSWORD:0}"}
      fallback:
        - {host: "", port: 8080}
      connection: {timeout: 300, keepalive_interval: 60, reconnect_delay: 30, max_reconnect_attempts: 10}
    gateway: {host: localhost, port: 4001, worker_threads: 4}
    api:
      enabled: true
      host: "${API_HOST:127.0.0.1}"
      port: 8080
      tcp: {enabled: true, port: 8081, buffer_size: 4096}
      websocket: {enabled: true, ping_interval: 30, ping_timeout: 10, max_frame_size: 65536, compression: true}
      auth:
        enabled: true
        require_tls: false
        api_keys:
          - {key: "${API_KEY_OLD:a-long-old-secret-key}", mud_name: "${MUD_NAME:OldMUD}",
             permissions: ["*"], rate_limit_override: 500}
          - {key: other-secret-key-99, mud_name: OtherMUD, permissions: [tell, info]}
      rate_limits:
        default: {per_minute: 100, burst: 20}
        by_method: {tell: 30, mudlist: 5}
      session: {timeout: 3600, max_queue_size: 1000, queue_ttl: 300, cleanup_interval: 60}
      metrics: {enabled: true}
    logging:
      level: ${LOG_LEVEL:INFO}
      format: json
      file: logs/i3-gateway.log
      components: {network: INFO, api: DEBUG, state: WARNING, cache: INFO}
    channels:
      default_channels: [{name: intermud, type: 0}, {name: chat, type: 0}]
      history_size: 100
    state: {directory: "state/", save_interval: 300}
    metrics: {enabled: true, port: 8080}
    development: {debug: false}
    """)

# The two example files of the older troubleshooting guide: a minimal one
# (with a `gateway:` section and level "DEBUG") and a debugging one (with
# `development:`).
GUIDE_MINIMAL = textwrap.dedent("""\
    api:
      host: "localhost"
      port: 8080
      websocket: {enabled: true}
      auth: {enabled: false}
    gateway: {host: "localhost", port: 4001}
    logging: {level: "DEBUG"}
    """)
GUIDE_DEBUG = textwrap.dedent("""\
    logging:
      level: "DEBUG"
      components: {network: "DEBUG", api: "DEBUG", services: "DEBUG"}
    api:
      auth: {enabled: false}
      rate_limits: {default: {per_minute: 10000}}
    development: {debug: true, profile: true}
    """)


def load(text, environ=None):
    return config.load_text(text, environ if environ is not None else {"I3_MUD_NAME": "GuideMUD"})


class MigrateTests(SynchronousTestCase):
    def test_the_full_old_file_loads_and_keeps_its_settings(self):
        text, dropped = migrate_text(OLD_FULL)
        loaded = load(text, {})
        self.assertEqual(loaded.mud.name, "OldMUD")
        self.assertEqual(loaded.mud.port, 4100)
        self.assertEqual(loaded.mud.services, {"tell": 1, "who": 1})
        self.assertEqual(loaded.routers, (config.RouterEntry(name="*i4", host="204.209.44.3", port=8080, tls=False),))
        self.assertEqual(loaded.router.connect_timeout, 300)
        self.assertEqual(loaded.router.backoff.initial, 30)
        self.assertEqual(loaded.api.websocket.max_message_bytes, 65536)
        self.assertEqual(loaded.api.rate_limits.by_method["mudlist"], config.RateConfig(per_minute=5, burst=5))
        first, second = loaded.api.auth.api_keys
        self.assertEqual(first.rate_limit, config.RateConfig(per_minute=500, burst=20))
        self.assertEqual((first.mud_name, second.mud_name), ("OldMUD", "OldMUD"))
        self.assertEqual(loaded.logging.level, "info")
        self.assertEqual(loaded.logging.components, {"link": "info", "api": "debug", "state": "warn"})
        self.assertEqual(loaded.channels.default, ("intermud", "chat"))
        self.assertEqual(loaded.state.directory, "state/")
        for path in ("mud.services.chanlist-req", "mud.oob_services", "router.primary.password",
                     "router.fallback[0]", "router.connection.max_reconnect_attempts", "gateway.host",
                     "gateway.port", "gateway.worker_threads", "api.enabled", "api.tcp.buffer_size",
                     "api.websocket.compression", "api.auth.require_tls", "api.auth.api_keys[1].mud_name",
                     "api.session.cleanup_interval", "api.metrics", "logging.file",
                     "logging.components.cache", "channels.history_size", "state.save_interval",
                     "metrics.enabled", "metrics.port", "development.debug"):
            self.assertEqual(len([line for line in dropped if line.startswith(path + ": not carried over: ")]),
                             1, path)
        self.assertEqual(len(dropped), 22, dropped)

    def test_environment_references_stay_references(self):
        text, _ = migrate_text(OLD_FULL)
        self.assertIn("${API_KEY_OLD:-a-long-old-secret-key}", text)
        self.assertEqual(load(text, {"MUD_NAME": "FromEnv"}).mud.name, "FromEnv")

    def test_the_guides_minimal_example(self):
        text, dropped = migrate_text(GUIDE_MINIMAL)
        loaded = load(text)
        self.assertEqual(loaded.logging.level, "debug")
        self.assertFalse(loaded.api.auth.enabled)
        self.assertEqual(loaded.mud.name, "GuideMUD")
        self.assertIn("mud.name: not in the old file; set I3_MUD_NAME or write the name here", dropped)
        self.assertTrue([line for line in dropped if line.startswith("gateway.host: ")])

    def test_the_guides_debug_example(self):
        text, dropped = migrate_text(GUIDE_DEBUG)
        loaded = load(text)
        self.assertEqual(loaded.logging.components, {"link": "debug", "api": "debug", "services": "debug"})
        self.assertEqual(loaded.api.rate_limits.default.per_minute, 10000)
        self.assertTrue([line for line in dropped if line.startswith("development.profile: ")])

    def test_the_guides_examples_fail_as_they_are(self):
        # What the migration is for: this gateway refuses the old names.
        for old in (GUIDE_MINIMAL, GUIDE_DEBUG):
            with self.assertRaises(config.ConfigError) as caught:
                load(old)
            self.assertTrue([e for e in caught.exception.errors if e.startswith(("gateway", "development"))])

    def test_not_a_mapping(self):
        self.assertRaises(ValueError, migrate, ["a", "list"])


class CommandTests(SynchronousTestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="i3-migrate-test-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def test_writes_the_file_and_lists_what_stayed_behind(self):
        old = os.path.join(self.dir, "config.yaml")
        new = os.path.join(self.dir, "new.yaml")
        with open(old, "w") as f:
            f.write(GUIDE_MINIMAL)
        err = io.StringIO()
        self.assertEqual(cli.migrate_config(old, err=err, output=new), 0)
        self.assertIn("gateway.port: not carried over", err.getvalue())
        self.assertIn(f"intermud3 check-config {new}", err.getvalue())
        out = io.StringIO()
        self.assertEqual(main(["check-config", new], out=out, environ={"I3_MUD_NAME": "X"}), 0, out.getvalue())
        self.assertIn("# Not carried over:", open(new).read())
        self.assertEqual(yaml.safe_load(open(new))["logging"]["level"], "DEBUG")

    def test_unreadable_file(self):
        err = io.StringIO()
        self.assertEqual(cli.migrate_config(os.path.join(self.dir, "missing.yaml"), err=err), 1)
        self.assertIn("cannot convert", err.getvalue())
