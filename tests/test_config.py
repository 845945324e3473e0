"""Configuration loading: substitution, merge, validation, safety rules, diff."""

import dataclasses
import hashlib
import operator
import os
import pathlib
import shutil
import tempfile
import textwrap

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import config
from intermud3.config import ConfigError

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "etc" / "intermud3.yaml"
ENV = {"I3_MUD_NAME": "TestMud"}
MINIMAL = "mud: {name: TestMud}\n"


def load(text, environ=ENV):
    return config.load_text(textwrap.dedent(text), environ)


def plain(value):
    """A loaded section as the dicts and lists of its YAML, to compare with literals."""
    if dataclasses.is_dataclass(value):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    if hasattr(value, "items"):
        return {key: plain(item) for key, item in value.items()}
    return value


class ConfigTestCase(SynchronousTestCase):
    def temp_path(self):
        """A path in a private temporary directory removed after the test."""
        directory = tempfile.mkdtemp(prefix="i3-config-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        return os.path.join(directory, "config.yaml")

    def errors_of(self, text, environ=ENV):
        with self.assertRaises(ConfigError) as caught:
            load(text, environ)
        return caught.exception.errors

    def assertOneError(self, text, path, *words, environ=ENV):
        errors = self.errors_of(text, environ)
        self.assertEqual(len(errors), 1, errors)
        self.assertTrue(errors[0].startswith(path + ": "), errors)
        for word in words:
            self.assertIn(word, errors[0])
        return errors[0]


class DefaultsTests(ConfigTestCase):
    def test_minimal_file_gets_every_default(self):
        c = load(MINIMAL)
        self.assertEqual(c.mud.name, "TestMud")
        self.assertEqual(c.mud.port, 4000)
        self.assertEqual([r.name for r in c.routers], ["*dalet", "*i4"])
        self.assertEqual(plain(c.routers[0]), {"name": "*dalet", "host": "97.107.133.86",
                                           "port": 8787, "tls": False})
        self.assertEqual(c.api.host, "127.0.0.1")
        self.assertEqual(c.api.tcp.port, 8081)
        self.assertEqual(c.state.directory, "state")
        self.assertEqual(plain(c.logging), {"level": "info", "format": "text", "components": {}})
        self.assertEqual(plain(c.api.rate_limits.by_method), {"tell": {"per_minute": 30.0, "burst": 10}})

    def test_default_api_key_comes_from_the_environment(self):
        c = load(MINIMAL, {"I3_MUD_NAME": "TestMud", "I3_API_KEY": "s3cret"})
        self.assertEqual(plain(c.api.auth.api_keys),
                         [{"key": "s3cret", "mud_name": "TestMud", "permissions": ["*"], "rate_limit": None}])
        self.assertEqual(load(MINIMAL).api.auth.api_keys[0].key, "demo-key-123")

    def test_durations_are_floats_and_sizes_ints(self):
        c = load(MINIMAL)
        self.assertIsInstance(c.router.connect_timeout, float)
        self.assertIsInstance(c.api.session.timeout, float)
        self.assertIsInstance(c.api.tcp.idle_timeout, float)
        self.assertIsInstance(c.router.send_rate, float)
        self.assertIsInstance(c.router.max_frame_bytes, int)
        self.assertIsInstance(c.api.max_send_buffer_bytes, int)

    def test_console_is_on_by_default_only_on_loopback(self):
        self.assertIs(load(MINIMAL).api.console.enabled, True)
        self.assertIs(load(MINIMAL + "api: {host: localhost}").api.console.enabled, True)
        public = MINIMAL + "api: {host: 192.0.2.7, auth: {api_keys: [{key: s3cret-key-0123, permissions: [info]}]}}"
        self.assertIs(load(public).api.console.enabled, False)
        self.assertIs(load(public.replace("]}]}}", "]}]}, console: {enabled: true}}")).api.console.enabled,
                      True)
        self.assertIs(load(MINIMAL + "api: {console: {enabled: false}}").api.console.enabled, False)

    def test_console_enabled_must_be_a_boolean(self):
        self.assertOneError(MINIMAL + "api: {console: {enabled: yes please}}", "api.console.enabled", "true or false")

    def test_mud_name_has_no_default(self):
        self.assertNotIn("name", config.DEFAULTS["mud"])
        self.assertOneError("api: {port: 9000}", "mud.name", "required")

    def test_defaults_not_mutated_by_loading(self):
        before = repr(config.DEFAULTS)
        c = load(MINIMAL)
        self.assertRaises(TypeError, operator.setitem, c.mud.services, "x", 1)
        self.assertRaises(dataclasses.FrozenInstanceError, setattr, c.mud, "port", 1)
        self.assertEqual(repr(config.DEFAULTS), before)

    def test_sections_are_the_named_classes(self):
        c = load(MINIMAL)
        self.assertIsInstance(c, config.Config)
        self.assertIsInstance(c.router, config.RouterConfig)
        self.assertIsInstance(c.router.backoff, config.BackoffConfig)
        self.assertIsInstance(c.api.auth, config.AuthConfig)
        self.assertIsInstance(c.api.auth.api_keys[0], config.ApiKeyConfig)
        self.assertIsInstance(c.routers, tuple)


class ShippedFileTests(ConfigTestCase):
    def test_loads_with_mud_name_set(self):
        c = config.load(SHIPPED, {"I3_MUD_NAME": "MyMud"})
        self.assertEqual(c.mud.name, "MyMud")
        self.assertEqual(c.api.auth.api_keys[0].mud_name, "MyMud")
        self.assertEqual(c.state.directory, "state")

    def test_holds_the_documented_defaults(self):
        env = {"I3_MUD_NAME": "MyMud"}
        self.assertEqual(config.load(SHIPPED, env), config.load_text("mud: {name: MyMud}", env))

    def test_without_mud_name_says_set_it(self):
        with self.assertRaises(ConfigError) as caught:
            config.load(SHIPPED, {})
        errors = caught.exception.errors
        self.assertTrue(errors)
        self.assertTrue(errors[0].startswith("mud.name: "), errors)
        for error in errors:
            self.assertIn("set I3_MUD_NAME", error)

    def test_every_key_has_a_comment(self):
        for number, line in enumerate(SHIPPED.read_text().splitlines(), 1):
            stripped = line.strip()
            if stripped and not stripped.startswith(("#", "- ")) and not stripped.endswith(":"):
                previous = SHIPPED.read_text().splitlines()[number - 2].strip()
                self.assertTrue("#" in line or previous.startswith("#"), f"line {number}: {line}")


class SubstitutionTests(ConfigTestCase):
    def test_variable_and_default(self):
        c = load("""
            mud: {name: "${NAME}", mudlib: "${LIB:-Dead Souls}", driver: "x-${NAME}-y"}
            """, {"NAME": "Foo"})
        self.assertEqual(c.mud.name, "Foo")
        self.assertEqual(c.mud.mudlib, "Dead Souls")
        self.assertEqual(c.mud.driver, "x-Foo-y")

    def test_reread_as_yaml_scalar(self):
        c = load("""
            mud: {name: TestMud}
            api: {port: "${PORT:-8080}", tcp: {port: "${TCP}", enabled: "${ON:-false}"}}
            router: {send_rate: "${RATE:-2.5}"}
            """, {"TCP": "9001"})
        self.assertEqual(c.api.port, 8080)
        self.assertEqual(c.api.tcp.port, 9001)
        self.assertIs(c.api.tcp.enabled, False)
        self.assertEqual(c.router.send_rate, 2.5)

    def test_string_fields_keep_the_text(self):
        # a key that YAML would read as a number, or as a comment, stays text
        c = load("""
            mud: {name: TestMud}
            api: {auth: {api_keys: [{key: "${K}", mud_name: TestMud, permissions: [tell]}]}}
            """, {"K": "0123"})
        self.assertEqual(c.api.auth.api_keys[0].key, "0123")
        c = load("""
            mud: {name: TestMud}
            api: {auth: {api_keys: [{key: "${K}", mud_name: TestMud, permissions: [tell]}]}}
            """, {"K": "#hash: and more"})
        self.assertEqual(c.api.auth.api_keys[0].key, "#hash: and more")

    def test_unset_without_default_names_the_variable(self):
        self.assertOneError('mud: {name: "${NOPE}"}', "mud.name", "NOPE", "set NOPE", environ={})

    def test_empty_value_takes_the_default(self):
        c = load('mud: {name: "${N:-Fallback}"}', {"N": ""})
        self.assertEqual(c.mud.name, "Fallback")

    def test_malformed_reference(self):
        self.assertOneError('mud: {name: "${not valid}"}', "mud.name", "malformed")
        self.assertOneError('mud: {name: "${OPEN"}', "mud.name", "unterminated")

    def test_nullable_from_environment(self):
        c = load('mud: {name: TestMud}\napi: {tls: {cert: "${C:-null}", key: "${K:-null}"}}', {})
        self.assertEqual(plain(c.api.tls), {"cert": None, "key": None})

    def test_values_from_environment_never_in_errors(self):
        secret = "hunter2-SECRET-value"
        env = {"I3_MUD_NAME": "TestMud", "S": secret}
        errors = self.errors_of("""
            mud: {name: TestMud, port: "${S}", mudlib: ["${S}"]}
            api:
              host: "${S}"
              port: "${S}"
              auth: {api_keys: [{key: "sha256:${S}", mud_name: "${S}", permissions: ["${S}"]}]}
            logging: {level: "${S}"}
            routers: [{name: "${S}", host: x, port: 1}]
            """, env)
        self.assertGreaterEqual(len(errors), 7)
        for error in errors:
            self.assertNotIn(secret, error)
            self.assertNotIn("hunter2", error)

    @settings(deadline=None, max_examples=100)
    @given(st.text(min_size=1, max_size=40))
    def test_any_environment_value_loads_or_fails_cleanly(self, text):
        value = "SECRET-" + text
        env = {"I3_MUD_NAME": "TestMud", "V": value}
        source = 'mud: {name: TestMud, mudlib: "${V}", port: "${V}"}\napi: {host: "${V}", port: "${V}"}'
        with self.assertRaises(ConfigError) as caught:
            config.load_text(source, env)
        self.assertIn("mud.port: must be a port number, not string (a port number from 0 to 65535)",
                      caught.exception.errors)
        for error in caught.exception.errors:
            self.assertNotIn("SECRET-", error)


class UnknownKeyTests(ConfigTestCase):
    def test_unknown_key_suggests_the_closest(self):
        error = self.assertOneError("mud: {name: TestMud}\napi: {prot: 1}", "api.prot", "unknown key")
        self.assertIn("did you mean 'port'?", error)

    def test_unknown_top_level_key(self):
        error = self.assertOneError("mud: {name: TestMud}\nlogg1ng: {}", "logg1ng", "unknown")
        self.assertIn("'logging'", error)

    def test_unknown_key_without_close_match_lists_known(self):
        error = self.assertOneError("mud: {name: TestMud}\npresence: {zzzz: 1}", "presence.zzzz")
        self.assertIn("known keys: ttl, max_users", error)

    def test_unknown_key_inside_list_entry(self):
        self.assertOneError("mud: {name: TestMud}\nrouters: [{name: '*a', host: h, port: 1, tsl: true}]",
                            "routers[0].tsl", "did you mean 'tls'?")


class MergeTests(ConfigTestCase):
    def test_section_merges_key_by_key(self):
        c = load("mud: {name: TestMud}\napi: {port: 9000, tcp: {port: 9001}}")
        self.assertEqual(c.api.port, 9000)
        self.assertEqual(plain(c.api.tcp), {"enabled": True, "port": 9001, "max_line_bytes": 65536,
                                           "idle_timeout": 0.0})
        self.assertEqual(c.api.host, "127.0.0.1")
        self.assertEqual(c.router.backoff.max, 300.0)

    def test_name_mappings_replace_whole(self):
        c = load("""
            mud: {name: TestMud, services: {tell: 1}}
            api: {rate_limits: {by_method: {who: {per_minute: 5, burst: 1}}}}
            logging: {components: {link: debug}}
            """)
        self.assertEqual(c.mud.services, {"tell": 1})
        self.assertEqual(plain(c.api.rate_limits.by_method), {"who": {"per_minute": 5.0, "burst": 1}})
        self.assertEqual(plain(c.api.rate_limits.default), {"per_minute": 100.0, "burst": 20})
        self.assertEqual(c.logging.components, {"link": "debug"})

    def test_lists_replace_whole(self):
        c = load("""
            mud: {name: TestMud}
            routers: [{name: "*test", host: 127.0.0.1, port: 2323, tls: true}]
            channels: {default: [imud_gossip]}
            api: {websocket: {allowed_origins: ["https://example.org"]}}
            """)
        self.assertEqual(plain(c.routers), [{"name": "*test", "host": "127.0.0.1", "port": 2323, "tls": True}])
        self.assertEqual(c.channels.default, ("imud_gossip",))
        self.assertEqual(c.api.websocket.allowed_origins, ("https://example.org",))

    def test_empty_section_means_defaults(self):
        c = load("mud: {name: TestMud}\napi:\npresence: {}")
        self.assertEqual(c.api.port, 8080)
        self.assertEqual(c.presence.ttl, 120.0)


class TypeTests(ConfigTestCase):
    def test_type_errors_name_the_key_path(self):
        cases = [
            ("router: {connect_timeout: soon}", "router.connect_timeout", "duration"),
            ("router: {connect_timeout: 0}", "router.connect_timeout", "out of range"),
            ("router: {keepalive_timeout: -1}", "router.keepalive_timeout", "out of range"),
            ("router: {max_frame_bytes: 1.5}", "router.max_frame_bytes", "integer"),
            ("router: {send_rate: -1}", "router.send_rate", ">= 0"),
            ("router: {backoff: {jitter: maybe}}", "router.backoff.jitter", "true or false"),
            ("router: {queue: {max_messages: 0}}", "router.queue.max_messages", "out of range"),
            ("api: {port: 70000}", "api.port", "0 to 65535"),
            ("api: {port: true}", "api.port", "boolean"),
            ("api: {host: 5}", "api.host", "string"),
            ("api: {websocket: {allowed_origins: '*'}}", "api.websocket.allowed_origins", "list"),
            ("api: {session: {timeout: .inf}}", "api.session.timeout", "duration"),
            ("logging: {level: verbose}", "logging.level", "debug, info, warn, error"),
            ("logging: {format: xml}", "logging.format", "text, json"),
            ("logging: {components: {link: loud}}", "logging.components.link", "debug"),
            ("logging: {components: [link]}", "logging.components", "mapping"),
            ("presence: 5", "presence", "mapping"),
            ("routers: []", "routers", "at least 1"),
            ("routers: [{name: dalet, host: h, port: 1}]", "routers[0].name", "'*'"),
            ("routers: [{name: '*a', port: 1}]", "routers[0].host", "required"),
            ("routers: [{name: '*a', host: h, port: 1}, {name: '*A', host: g, port: 2}]",
             "routers[1].name", "twice"),
            ("api: {rate_limits: {default: {per_minute: 0, burst: 1}}}", "api.rate_limits.default.per_minute",
             "out of range"),
            ("api: {tls: {cert: a.pem}}", "api.tls", "both"),
            ("api: {port: 9000, tcp: {port: 9000}}", "api.tcp.port", "api.port"),
            ("router: {backoff: {initial: 500}}", "router.backoff.initial", "max"),
            ("mud: {name: TestMud, services: {tell: yes}}", "mud.services.tell", "integer"),
        ]
        for text, path, word in cases:
            if not text.startswith("mud:"):
                text = MINIMAL + text
            self.assertOneError(text, path, word)

    def test_idle_timeout_may_be_zero_and_send_rate_zero(self):
        c = load(MINIMAL + "api: {tcp: {idle_timeout: 0}}\nrouter: {send_rate: 0}")
        self.assertEqual(c.api.tcp.idle_timeout, 0.0)
        self.assertEqual(c.router.send_rate, 0.0)

    def test_port_zero_allowed(self):
        self.assertEqual(load(MINIMAL + "api: {port: 0, tcp: {port: 0}}").api.port, 0)

    def test_all_errors_are_collected(self):
        errors = self.errors_of("""
            mud: {port: x}
            routers: [{name: nostar, host: h, port: -1}]
            router: {send_rate: fast, connect_timeout: 0}
            api: {port: 99999, protocol: tcp}
            logging: {level: loud}
            """, {})
        paths = sorted(e.split(":", 1)[0] for e in errors)
        self.assertEqual(paths, sorted([
            "mud.name", "mud.port", "routers[0].port", "routers[0].name", "router.send_rate",
            "router.connect_timeout", "api.port", "api.protocol", "logging.level",
        ]))
        for error in errors:
            self.assertRegex(error, r"^\S+: .+ \(.+\)$")


class KeyTests(ConfigTestCase):
    def keys(self, entries, host="127.0.0.1", enabled="true"):
        return f"{MINIMAL}api: {{host: '{host}', auth: {{enabled: {enabled}, api_keys: {entries}}}}}\n"

    def test_key_fields(self):
        c = load(self.keys("[{key: abc, mud_name: TestMud, permissions: [tell, info], "
                           "rate_limit: {per_minute: 500, burst: 100}}]"))
        self.assertEqual(plain(c.api.auth.api_keys), [
            {"key": "abc", "mud_name": "TestMud", "permissions": ["tell", "info"],
             "rate_limit": {"per_minute": 500.0, "burst": 100}}])

    def test_mud_name_defaults_to_mud_name(self):
        c = load(self.keys("[{key: abc, permissions: ['*']}]"))
        self.assertEqual(c.api.auth.api_keys[0].mud_name, "TestMud")
        c = config.load_text("mud: {name: Literal}", {})
        self.assertEqual(c.api.auth.api_keys[0].mud_name, "Literal")

    def test_foreign_mud_name_rejected(self):
        self.assertOneError(self.keys("[{key: abc, mud_name: OtherMud, permissions: ['*']}]"),
                            "api.auth.api_keys[0].mud_name", "another MUD")

    def test_unknown_permission(self):
        self.assertOneError(self.keys("[{key: abc, mud_name: TestMud, permissions: [tell, root]}]"),
                            "api.auth.api_keys[0].permissions[1]", "admin")

    def test_permissions_required_and_not_empty(self):
        self.assertOneError(self.keys("[{key: abc, mud_name: TestMud, permissions: []}]"),
                            "api.auth.api_keys[0].permissions", "at least 1")
        self.assertOneError(self.keys("[{key: abc, mud_name: TestMud}]"),
                            "api.auth.api_keys[0].permissions", "required")

    def test_sha256_keys_accepted_and_normalised(self):
        digest = hashlib.sha256(b"secret").hexdigest().upper()
        c = load(self.keys(f"[{{key: 'sha256:{digest}', mud_name: TestMud, permissions: ['*']}}]"))
        self.assertEqual(c.api.auth.api_keys[0].key, "sha256:" + digest.lower())

    def test_bad_sha256_key(self):
        self.assertOneError(self.keys("[{key: 'sha256:abcd', mud_name: TestMud, permissions: ['*']}]"),
                            "api.auth.api_keys[0].key", "64 hex")

    def test_duplicate_keys(self):
        self.assertOneError(self.keys("[{key: a, mud_name: TestMud, permissions: ['*']}, "
                                      "{key: a, mud_name: TestMud, permissions: [tell]}]"),
                            "api.auth.api_keys[1].key", "earlier")

    def test_auth_enabled_needs_a_key(self):
        self.assertOneError(self.keys("[]"), "api.auth.api_keys", "no keys")
        self.assertEqual(load(self.keys("[]", enabled="false")).api.auth.api_keys, ())

    def test_demo_key_refused_off_loopback(self):
        demo = "[{key: demo-key-123, mud_name: TestMud, permissions: ['*']}]"
        for host in ("0.0.0.0", "::", "192.0.2.1", "gateway.example.org"):
            self.assertOneError(self.keys(demo, host=host), "api.auth.api_keys[0].key", "loopback")
        for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
            self.assertEqual(load(self.keys(demo, host=host)).api.host, host)

    def test_hashed_demo_key_refused_off_loopback(self):
        demo = "sha256:" + hashlib.sha256(b"demo-key-123").hexdigest()
        self.assertOneError(self.keys(f"[{{key: '{demo}', mud_name: TestMud, permissions: ['*']}}]",
                                      host="0.0.0.0"), "api.auth.api_keys[0].key", "demo key")

    def test_default_demo_key_refused_on_public_host(self):
        self.assertOneError(MINIMAL + "api: {host: 0.0.0.0}", "api.auth.api_keys[0].key", "I3_API_KEY")
        c = config.load_text(MINIMAL + "api: {host: 0.0.0.0}", {"I3_MUD_NAME": "TestMud", "I3_API_KEY": "k"})
        self.assertEqual(c.api.host, "0.0.0.0")

    def test_auth_off_refused_off_loopback(self):
        key = "[{key: k, mud_name: TestMud, permissions: ['*']}]"
        self.assertOneError(self.keys(key, host="0.0.0.0", enabled="false"), "api.auth.enabled", "loopback")
        self.assertIs(load(self.keys(key, enabled="false")).api.auth.enabled, False)

    def test_key_never_in_errors(self):
        errors = self.errors_of(self.keys("[{key: TopSecretKey99, mud_name: Other, permissions: [bad]}, "
                                          "{key: TopSecretKey99, mud_name: TestMud, permissions: ['*']}]"))
        self.assertEqual(len(errors), 3)
        for error in errors:
            self.assertNotIn("TopSecretKey99", error)


class BrokenFileTests(ConfigTestCase):
    def test_syntax_error(self):
        self.assertOneError("mud: {name: TestMud\napi: [", "config", "YAML syntax error", "line")

    def test_not_a_mapping(self):
        error = self.assertOneError("- a\n- b\n", "config", "top level", "list")
        self.assertIn("mud: {name: MyMud}", error)
        self.assertOneError("just text", "config", "top level")

    def test_empty_file(self):
        self.assertOneError("", "config", "empty")

    def test_duplicate_key(self):
        self.assertOneError("mud: {name: TestMud}\nmud: {name: Other}\n", "config", "twice")

    def test_non_string_key(self):
        errors = self.errors_of(MINIMAL + "presence: {1: 2}")
        self.assertEqual(len(errors), 1)
        self.assertIn("unknown key", errors[0])

    def test_missing_file(self):
        path = self.temp_path()
        with self.assertRaises(ConfigError) as caught:
            config.load(path, ENV)
        self.assertEqual(caught.exception.errors, [f"{path}: no such file (check the --config path)"])

    def test_directory_and_binary(self):
        path = self.temp_path()
        os.mkdir(path)
        with self.assertRaises(ConfigError) as caught:
            config.load(path, ENV)
        self.assertIn("cannot read", caught.exception.errors[0])
        binary = self.temp_path()
        pathlib.Path(binary).write_bytes(b"\xff\xfe\x00mud")
        with self.assertRaises(ConfigError) as caught:
            config.load(binary, ENV)
        self.assertIn("UTF-8", caught.exception.errors[0])

    def test_errors_name_the_file(self):
        path = self.temp_path()
        pathlib.Path(path).write_text("mud: [")
        with self.assertRaises(ConfigError) as caught:
            config.load(path, ENV)
        self.assertTrue(caught.exception.errors[0].startswith(path + ": YAML syntax error"))

    @settings(deadline=None, max_examples=200)
    @given(st.text(max_size=200))
    def test_any_text_loads_or_raises_config_error(self, text):
        try:
            config.load_text(text, ENV)
        except ConfigError as e:
            self.assertTrue(e.errors)
            self.assertTrue(all(isinstance(x, str) for x in e.errors))


class WarningTests(ConfigTestCase):
    def test_send_rate_above_eight_warns(self):
        c = load(MINIMAL + "router: {send_rate: 9}", {"I3_MUD_NAME": "TestMud", "I3_API_KEY": "k"})
        self.assertEqual(c.router.send_rate, 9.0)
        warned = config.warnings(c)
        self.assertEqual(len(warned), 1)
        self.assertTrue(warned[0].startswith("router.send_rate: "))
        c = load(MINIMAL + "router: {send_rate: 8}", {"I3_MUD_NAME": "TestMud", "I3_API_KEY": "k"})
        self.assertEqual(config.warnings(c), [])

    def test_demo_key_and_auth_off_warn(self):
        warned = config.warnings(load(MINIMAL + "api: {auth: {enabled: false}}"))
        self.assertEqual(len(warned), 2)
        self.assertTrue(any(w.startswith("api.auth.enabled") for w in warned))
        self.assertTrue(any("demo key" in w for w in warned))


    def test_any_origin_warns_and_the_default_allows_none(self):
        env = {"I3_MUD_NAME": "TestMud", "I3_API_KEY": "k"}
        self.assertEqual(load(MINIMAL, env).api.websocket.allowed_origins, ())
        warned = config.warnings(load(MINIMAL + "api: {websocket: {allowed_origins: ['*']}}", env))
        self.assertEqual(len(warned), 1)
        self.assertTrue(warned[0].startswith("api.websocket.allowed_origins: "))


class DiffTests(ConfigTestCase):
    def test_no_change(self):
        self.assertEqual(config.diff(load(MINIMAL), load(MINIMAL)), [])

    def test_leaf_and_whole_paths(self):
        old = load(MINIMAL)
        new = load("""
            mud: {name: Renamed, services: {tell: 1}}
            api: {port: 9000, tls: {cert: c.pem, key: k.pem},
                  auth: {api_keys: [{key: k, mud_name: Renamed, permissions: ['*']}]}}
            routers: [{name: "*test", host: 127.0.0.1, port: 1}]
            logging: {components: {link: debug}}
            router: {backoff: {max: 60}}
            """)
        changed = config.diff(old, new)
        self.assertEqual(sorted(changed), sorted([
            "mud.name", "mud.services", "routers", "router.backoff.max", "api.port",
            "api.tls.cert", "api.tls.key", "api.auth.api_keys", "logging.components"]))
        self.assertEqual(set(changed) & config.RESTART_REQUIRED, {"api.port", "api.tls.cert", "api.tls.key"})
        self.assertEqual(set(changed) & config.LINK_RESTART, {"mud.name", "routers"})

    def test_restart_sets_are_real_paths(self):
        c = load(MINIMAL)
        for path in config.RESTART_REQUIRED | config.LINK_RESTART:
            config.value_at(c, path)    # raises AttributeError for a path that is not


class WithOverridesTests(ConfigTestCase):
    def test_replaces_the_paths_and_leaves_the_original(self):
        old = load(MINIMAL)
        new = config.with_overrides(old, {"router.queue.ttl": 5.0, "api.port": 0})
        self.assertEqual((new.router.queue.ttl, new.api.port), (5.0, 0))
        self.assertEqual((old.router.queue.ttl, old.api.port), (300.0, 8080))
        self.assertIs(new.mud, old.mud)
        self.assertEqual(sorted(config.diff(old, new)), ["api.port", "router.queue.ttl"])

    def test_mappings_and_lists_are_built_like_loaded_ones(self):
        new = config.with_overrides(load(MINIMAL), {
            "api.auth.api_keys": [{"key": "k", "mud_name": "TestMud", "permissions": ["tell"]}],
            "channels.default": ["imud_gossip"],
            "api.auth.failures": {"delay": 2}})
        self.assertEqual(new.api.auth.api_keys[0].permissions, ("tell",))
        self.assertIsNone(new.api.auth.api_keys[0].rate_limit)
        self.assertEqual(new.channels.default, ("imud_gossip",))
        self.assertEqual(new.api.auth.failures.delay, 2)
        self.assertEqual(new.api.auth.failures.max_delay, 30.0)   # left out: the default

    def test_unknown_path_is_refused(self):
        with self.assertRaises(KeyError) as caught:
            config.with_overrides(load(MINIMAL), {"router.queue.tll": 1})
        self.assertIn("router.queue.tll", str(caught.exception))

    def test_value_at(self):
        self.assertEqual(config.value_at(load(MINIMAL), "api.tcp.port"), 8081)


class LoggingSectionTests(ConfigTestCase):
    def test_level_names_in_any_case_and_pythons_names(self):
        loaded = load(MINIMAL + "logging: {level: DEBUG, components: {link: Warning, api.tcp: CRITICAL}}")
        self.assertEqual(loaded.logging.level, "debug")
        self.assertEqual(loaded.logging.components, {"link": "warn", "api.tcp": "error"})

    def test_unknown_level_is_an_error(self):
        self.assertOneError(MINIMAL + "logging: {level: loud}", "logging.level", "one of debug")

    def test_unknown_component_is_an_error_with_the_closest_name(self):
        self.assertOneError(MINIMAL + "logging: {components: {lnik: debug}}",
                            "logging.components.lnik", "did you mean link?")
        self.assertOneError(MINIMAL + "logging: {components: {gateway: debug}}",
                            "logging.components.gateway", "link", "services")

    def test_every_module_and_package_is_a_component(self):
        names = config.log_components()
        for name in ("link", "api", "api.tcp", "services", "services.channels", "state", "service"):
            self.assertIn(name, names)
        self.assertFalse([name for name in names if "__" in name], names)
