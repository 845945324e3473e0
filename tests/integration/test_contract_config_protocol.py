"""CONFIG.md and I3-PROTOCOL.md sections 1-4, sentence by sentence, black box.

Each test names the contract sentence it shows; docs/CONTRACT-CHECK-CONFIG-PROTOCOL.md
maps every sentence to its test. Processes (`twist`, `twistd`) always point
at the in-repo router on 127.0.0.1: the shipped etc/intermud3.yaml (public
routers) is never run as it is.
"""

import os
import signal

import yaml
from twisted.internet import defer, reactor
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from intermud3 import config as configuration
from intermud3.packets import weight
from intermud3.service import GatewayService
from intermud3.testing.router import I3Router
from tests.integration.harness import API_KEY, RPCFailure, wait_until
from tests.integration.mudpair import A, B, make_loop, start_pair
from tests.integration.process import (
    REPO, TWIST, TWISTD, ProcessCase, free_port, output_on_failure, port_is_free, spawn)
from tests.integration.waits import gateway_sees, link_ready
from tests.integration.wsclient import connect_ws


# -- processes ------------------------------------------------------------------

class CommandLineTests(ProcessCase):

    @defer.inlineCallbacks
    def test_twist_runs_the_plugin_in_the_foreground_reloads_and_stops_with_0(self):
        """`twist intermud3 --config ...` (same, foreground); SIGHUP with a
        broken file keeps the old config and logs every error with its key
        path; SIGTERM sends `shutdown` and exits 0."""
        with output_on_failure(self.spawn(TWIST, "intermud3", "--config", str(self.config_path))) as proc:
            yield self.connected()
            link = self.router.connections["ContractMUD"]
            broken = dict(self.config, presence={"ttl": -1, "max_userz": 3})
            self.write_config(broken)
            proc.transport.signalProcess("HUP")
            yield proc.wait_output("presence.max_userz")
            self.assertIn("presence.ttl", proc.text())
            self.assertFalse(proc.ended.called)
            self.assertIs(self.router.connections.get("ContractMUD"), link)
            proc.transport.signalProcess("TERM")
            code = yield proc.ended
            self.assertEqual(code, 0, proc.text())
            self.assertEqual(len(self.received("shutdown")), 1)

    @defer.inlineCallbacks
    def test_config_defaults_to_etc_intermud3_yaml(self):
        """`--config` defaults to etc/intermud3.yaml (relative to the working directory)."""
        (self.dir / "etc").mkdir()
        self.write_config(path=self.dir / "etc" / "intermud3.yaml")
        code, out = yield self.run_to_end(self.spawn(TWISTD, "intermud3", "--check-config"))
        self.assertEqual(code, 0, out)
        self.assertIn("etc/intermud3.yaml: OK", out)

    @defer.inlineCallbacks
    def test_short_c_option_and_sigint_stop_gracefully(self):
        """`-c PATH`; SIGINT: `shutdown` to the router, WebSocket clients get
        1001, state flushed (the router password is in the store), exit 0."""
        proc = self.spawn(TWISTD, "-n", "--pidfile=", "intermud3", "-c", str(self.config_path))
        with output_on_failure(proc):
            yield self.connected()
            yield proc.wait_output("Gateway started")     # logged once the ports listen
            client = yield connect_ws(self.web_port, headers={"X-API-Key": self.api_key})
            proc.transport.signalProcess("INT")
            code = yield proc.ended
            yield client.lost
            self.assertEqual(code, 0, proc.text())
            self.assertEqual(client.close_code, 1001)
            self.assertEqual(len(self.received("shutdown")), 1)
        # Flushed: a restart sends the stored password.
        from intermud3.state import StateStore
        store = StateStore(str(self.dir / "state"))
        try:
            self.assertEqual(store.router_record("*proc", "ContractMUD")["password"],
                             self.router.passwords["ContractMUD"])
        finally:
            store.close()

    @defer.inlineCallbacks
    def test_sigusr1_keeps_twistds_meaning_rotating_the_logfile(self):
        """SIGUSR1 rotates the --logfile (twistd's meaning); the gateway keeps running."""
        logfile = self.dir / "gateway.log"
        with output_on_failure(self.gateway(f"--logfile={logfile}")) as proc:
            yield self.connected()
            # A file growing raises no event here: these two poll.
            yield wait_until(lambda: logfile.exists() and "Gateway started" in logfile.read_text())
            proc.transport.signalProcess(signal.SIGUSR1)
            rotated = self.dir / "gateway.log.1"
            yield wait_until(rotated.exists, timeout=10)
            self.assertIn("Gateway started", rotated.read_text())
            self.assertFalse(proc.ended.called)
            proc.transport.signalProcess("TERM")
            self.assertEqual((yield proc.ended), 0)
            self.assertNotIn("Gateway started", proc.text())   # the file, not stdout

    @defer.inlineCallbacks
    def test_sigusr1_without_a_logfile_is_logged_and_ignored(self):
        """Without --logfile, SIGUSR1 (the older gateway's restart signal)
        must not kill the process (its default action): it is logged and
        ignored. SIGTERM then stops in order and says what stays queued."""
        with output_on_failure(self.gateway()) as proc:
            yield self.connected()
            yield proc.wait_output("Gateway started")
            proc.transport.signalProcess(signal.SIGUSR1)
            yield proc.wait_output("SIGUSR1: ignored")
            self.assertFalse(proc.ended.called)
            proc.transport.signalProcess("TERM")
            self.assertEqual((yield proc.ended), 0)
            self.assertIn("0 outbound message(s) still queued", proc.text())

    @defer.inlineCallbacks
    def test_twistd_check_config_prints_every_error_opens_no_socket(self):
        """`twistd intermud3 --config PATH --check-config` (no -n): every
        error with its key path and a hint, exit 1; a valid file exits 0; no
        socket is opened either way."""
        bad = dict(self.config, api=dict(self.config["api"], max_batch=0, bogus=1),
                   router={"send_rate": "fast"})
        bad_path = self.dir / "bad.yaml"
        self.write_config(bad, bad_path)
        code, out = yield self.run_to_end(
            self.spawn(TWISTD, "intermud3", "--config", str(bad_path), "--check-config"))
        self.assertEqual(code, 1, out)
        lines = [line for line in out.splitlines() if line.strip()]
        errors = lines[:-1]
        self.assertEqual(len(errors), 3, out)
        for path in ("api.max_batch: ", "api.bogus: ", "router.send_rate: "):
            (line,) = [e for e in errors if e.startswith(path)]
            self.assertRegex(line, r"^[\w.\[\]]+: .+ \(.+\)$")   # key path: problem (hint)
        self.assertIn("3 errors", lines[-1])

        self.config["router"]["send_rate"] = 20
        self.write_config()
        code, out = yield self.run_to_end(
            self.spawn(TWISTD, "intermud3", "--config", str(self.config_path), "--check-config"))
        self.assertEqual(code, 0, out)
        self.assertIn(f"{self.config_path}: OK", out)
        self.assertIn("router.send_rate", out)      # accepted, with a warning
        self.assertEqual(self.router.connections, {})
        self.assertTrue(port_is_free(self.web_port) and port_is_free(self.tcp_port))
        self.assertFalse((self.dir / "twistd.pid").exists())

    @defer.inlineCallbacks
    def test_demo_key_and_auth_off_refused_off_loopback(self):
        """The demo key and `api.auth.enabled: false` are accepted on a
        loopback address only; elsewhere the gateway refuses to start and
        says why (and listens on nothing)."""
        public = dict(self.config["api"], host="0.0.0.0")
        demo = dict(self.config, api=dict(public, auth={"api_keys": [
            {"key": "${I3_API_KEY:-demo-key-123}", "permissions": ["*"]}]}))
        open_api = dict(self.config, api=dict(public, auth={"enabled": False}))
        for config, why in ((demo, "demo key"), (open_api, "api.auth.enabled")):
            self.write_config(config)
            code, out = yield self.run_to_end(self.gateway())
            self.assertEqual(code, 1, out)
            self.assertIn(why, out)
            self.assertIn("loopback", out)
            self.assertIn("not started", out)
            self.assertEqual(self.router.connections, {})
            self.assertTrue(port_is_free(self.tcp_port))

    @defer.inlineCallbacks
    def test_send_rate_above_8_is_accepted_with_a_warning_in_the_log(self):
        """A send_rate above 8 is accepted with a warning in the log, which
        goes to standard output by default."""
        self.config["router"]["send_rate"] = 12
        self.config["logging"] = {"level": "warn"}
        self.write_config()
        with output_on_failure(self.gateway()) as proc:
            yield self.connected()
            # Logs go to standard output by default.
            yield proc.wait_output("router.send_rate", stdout_only=True)
            proc.transport.signalProcess("TERM")
            self.assertEqual((yield proc.ended), 0)


# -- the console script ---------------------------------------------------------

class ConsoleScriptTests(unittest.TestCase):
    def test_intermud3_check_config_is_the_installed_command(self):
        """`python -m intermud3 check-config PATH` is also installed as
        `intermud3 check-config PATH`: the package declares the script."""
        import tomllib
        with open(REPO / "pyproject.toml", "rb") as f:
            scripts = tomllib.load(f)["project"]["scripts"]
        self.assertEqual(scripts["intermud3"], "intermud3.cli:main")


# -- reload (SIGHUP or reload_config) -------------------------------------------

class _LogCapture:
    """Every log event's text while installed on the global publisher."""

    def __init__(self, testcase):
        from twisted.logger import formatEvent
        self._format = formatEvent
        self.lines = []
        globalLogPublisher.addObserver(self)
        testcase.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event):
        self.lines.append(self._format(event))

    def text(self):
        return "\n".join(self.lines)


OTHER_KEY = "contract-other-key-42"


class ReloadTests(unittest.TestCase):
    """A gateway started from a file, changed and reloaded while a client stays connected."""

    timeout = 20

    def setUp(self):
        self.loop = make_loop(self)
        self.path = os.path.join(self.loop.root, "gateway.yaml")

    def raw(self, routers, mud="ReloadMUD", **sections):
        raw = {
            "mud": {"name": mud},
            "routers": [{"name": r.name, "host": "127.0.0.1", "port": r.port} for r in routers],
            "router": {"send_rate": 0, "handshake_timeout": 2, "keepalive_interval": 60,
                       "backoff": {"initial": 0.05, "max": 0.2, "jitter": False}},
            "api": {
                "host": "127.0.0.1", "port": 0, "tcp": {"port": 0},
                # No mud_name: the keys follow mud.name.
                "auth": {"api_keys": [{"key": API_KEY, "permissions": ["*"]},
                                      {"key": OTHER_KEY, "permissions": ["info"]}]},
            },
            "state": {"directory": os.path.join(self.loop.root, "state")},
            "logging": {"level": "info"},
        }
        for name, values in sections.items():
            raw.setdefault(name, {}).update(values)
        return raw

    def write(self, raw):
        with open(self.path, "w") as f:
            yaml.safe_dump(raw, f)

    @defer.inlineCallbacks
    def start(self, raw):
        self.write(raw)
        svc = GatewayService(configuration.load(self.path, environ={}), config_path=self.path,
                             reactor=reactor)
        svc.startService()
        self.loop._stoppers.append(lambda: svc.stopService() if svc.running else None)
        yield link_ready(svc)
        client = yield self.loop.tcp_client(svc)
        return svc, client

    def reload(self, svc, raw):
        self.write(raw)
        return svc.gateway.reload()

    @defer.inlineCallbacks
    def test_live_keys_apply_at_once_without_dropping_clients(self):
        """Keys, permissions, rate limits, session bounds, default channels
        (listen/unlisten), presence TTL and router timing take effect at once;
        the API client stays connected throughout."""
        router = self.loop.router()
        svc, client = yield self.start(self.raw([router]))
        yield client.call("tell", {"target_mud": "Nowhere", "target_user": "x", "message": "hi"})\
            .addErrback(lambda f: f.trap(RPCFailure))

        changed = self.raw(
            [router],
            api=dict(self.raw([router])["api"],
                     auth={"api_keys": [{"key": API_KEY, "permissions": ["info", "admin"]}]},
                     rate_limits={"default": {"per_minute": 1, "burst": 3}},
                     session={"max_pending_queries": 1, "timeout": 30}),
            channels={"default": ["dchat"]},
            presence={"ttl": 7},
            router=dict(self.raw([router])["router"], keepalive_interval=0.2))
        result = yield self.reload(svc, changed)
        self.assertEqual(result["status"], "reloaded")
        self.assertEqual(set(result["changed"]), {
            "api.auth.api_keys", "api.rate_limits.default.per_minute",
            "api.rate_limits.default.burst", "api.session.timeout",
            "api.session.max_pending_queries", "channels.default", "presence.ttl",
            "router.keepalive_interval"})
        # Permissions: tell is now denied on the same connection.
        with self.assertRaises(RPCFailure) as caught:
            yield client.call("tell", {"target_mud": "X", "target_user": "y", "message": "m"})
        self.assertEqual((caught.exception.code, caught.exception.data["permission"]), (-32002, "tell"))
        # Rate limit: a bucket of at most 3 tokens, refilled at 1 a minute.
        outcomes = []
        for _ in range(4):
            try:
                yield client.call("status")
                outcomes.append("ok")
            except RPCFailure as failure:
                outcomes.append(failure.code)
        self.assertEqual(outcomes[-1], -32001, outcomes)
        # Session bounds, presence TTL: in force.
        [session] = svc.gateway.sessions.sessions()  # the client's, the only one
        self.assertEqual(svc.gateway.config.presence.ttl, 7.0)
        # Default channels: listened to on the router at once.
        yield router.wait_for(lambda r: "ReloadMUD" in r.listening.get("dchat", ()))
        # Router timing: the keepalive now comes within a fraction of a second.
        yield router.wait_for(lambda r: any(m == "ReloadMUD" and p[0] == "auth-mud-req"
                                            for m, p in r.received), timeout=3)
        # A removed default channel is unlistened (flag 0).
        yield self.reload(svc, self.raw([router]))
        yield router.wait_for(lambda r: ("dchat", 0) in [
            (p[6], p[7]) for m, p in r.received if m == "ReloadMUD" and p[0] == "channel-listen"])
        self.assertTrue(client.transport.connected)

    @defer.inlineCallbacks
    def test_a_removed_key_ends_its_sessions(self):
        router = self.loop.router()
        svc, admin = yield self.start(self.raw([router]))
        other = yield self.loop.tcp_client(svc, authenticate=False)
        yield other.call("authenticate", {"api_key": OTHER_KEY})
        raw = self.raw([router])
        raw["api"]["auth"]["api_keys"] = raw["api"]["auth"]["api_keys"][:1]
        result = yield self.reload(svc, raw)
        self.assertEqual(result["changed"], ["api.auth.api_keys"])
        yield other.closed
        yield admin.call("status")

    @defer.inlineCallbacks
    def test_a_new_mud_name_reopens_the_router_link(self):
        router = self.loop.router()
        svc, client = yield self.start(self.raw([router]))
        old_link = router.connections["ReloadMUD"]
        result = yield self.reload(svc, self.raw([router], mud="RenamedMUD"))
        # The keys follow mud.name, so they change too (and stay valid).
        self.assertEqual(sorted(result["changed"]), ["api.auth.api_keys", "mud.name"])
        yield router.wait_for(lambda r: "RenamedMUD" in r.connections)
        yield old_link.closed
        yield link_ready(svc)
        status = yield client.call("status")
        self.assertEqual((status["mud_name"], status["connected"]), ("RenamedMUD", True))

    @defer.inlineCallbacks
    def test_a_new_router_list_reopens_the_link_on_its_first_router(self):
        first, second = self.loop.router("*first"), self.loop.router("*second")
        svc, client = yield self.start(self.raw([first]))
        result = yield self.reload(svc, self.raw([second, first]))
        self.assertEqual(result["changed"], ["routers"])
        yield second.wait_for(lambda r: "ReloadMUD" in r.connections)
        yield first.wait_for(lambda r: "ReloadMUD" not in r.connections)
        status = yield client.call("status")
        self.assertEqual(status["router"], "*second")

    @defer.inlineCallbacks
    def test_ports_and_tls_refused_with_restart_required_the_rest_applies(self):
        router = self.loop.router()
        svc, client = yield self.start(self.raw([router]))
        log = _LogCapture(self)
        raw = self.raw([router], presence={"ttl": 9})
        raw["api"]["tcp"]["port"] = free_port()
        raw["api"]["port"] = free_port()
        raw["api"]["tls"] = {"cert": "/nonexistent/cert.pem", "key": "/nonexistent/key.pem"}
        result = yield self.reload(svc, raw)
        self.assertEqual(result["changed"], ["presence.ttl"])
        self.assertEqual(sorted(result["restart_required"]),
                         ["api.port", "api.tcp.port", "api.tls.cert", "api.tls.key"])
        self.assertEqual(svc.gateway.config.presence.ttl, 9.0)
        self.assertEqual((svc.gateway.config.api.tls.cert, svc.gateway.config.api.tls.key), (None, None))
        for key in ("api.port", "api.tcp.port", "api.tls.cert", "api.tls.key"):
            self.assertTrue(any(key in line and "restart required" in line for line in log.lines),
                            log.text())
        yield client.call("status")

    @defer.inlineCallbacks
    def test_an_invalid_file_keeps_the_old_configuration_and_logs_the_errors(self):
        router = self.loop.router()
        svc, client = yield self.start(self.raw([router]))
        log = _LogCapture(self)
        old = svc.gateway.config
        raw = self.raw([router], presence={"ttl": 0})
        raw["router"]["keepalive_intervl"] = 5
        result = yield self.reload(svc, raw)
        self.assertEqual(result["status"], "rejected")
        self.assertIs(svc.gateway.config, old)
        self.assertIn("presence.ttl", log.text())
        self.assertIn("router.keepalive_intervl", log.text())
        yield client.call("status")


# -- pacing ----------------------------------------------------------------------

class _TimedRouter(I3Router):
    """The in-repo router, also noting when (wall-clock second) each frame arrived."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.arrivals = []     # (second, packet type) of every readable packet

    def _frameReceived(self, conn, raw):
        from intermud3 import lpc
        try:
            value = lpc.decode(raw)
        except lpc.LPCError:
            value = None
        if isinstance(value, list) and value and isinstance(value[0], str):
            self.arrivals.append((int(self.clock.seconds()), value[0]))
        super()._frameReceived(conn, raw)

    def weighted_per_second(self):
        seconds = {}
        for second, ptype in self.arrivals:
            seconds[second] = seconds.get(second, 0) + weight(ptype)
        return seconds


class PacingTests(unittest.TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_never_more_than_nine_weighted_packets_in_one_wall_clock_second(self):
        """send_rate 40 (above 8): the pacer still charges startup-req-3 as 6
        and channel-listen as 0 and never sends more than 9 weighted packets
        in one wall-clock second; a flood-controlled router never blocks us."""
        loop = make_loop(self)
        router = _TimedRouter("*test", flood_control=True)
        router.listen(reactor, 0, "127.0.0.1")
        loop._stoppers.append(lambda: defer.maybeDeferred(router.shutdown))
        svc = yield loop.ready_gateway("PacedMUD", [router], router={"send_rate": 40})
        client = yield loop.tcp_client(svc)
        for channel in ("dchat", "dead_test4", "imud_gossip"):
            yield client.call("channel_join", {"channel": channel})
        results = []
        for i in range(14):
            results.append((yield client.call(
                "tell", {"target_mud": "PacedMUD", "target_user": "nobody", "message": f"m{i}"})))
            if i == 6:
                # A reconnect in the middle of the burst: startup-req-3 (6) must fit too.
                yield client.call("reconnect")
        self.assertIn("queued", {r["status"] for r in results})
        yield router.wait_for(
            lambda r: sum(1 for m, p in r.received if m == "PacedMUD" and p[0] == "tell") == 14,
            timeout=10)
        per_second = router.weighted_per_second()
        self.assertLessEqual(max(per_second.values()), 9, per_second)
        self.assertEqual(router.flood_blocked, {})
        self.assertFalse([why for _, why, _ in router.rejected if why.startswith("flood")])
        types = [t for _, t in router.arrivals]
        self.assertEqual(types.count("startup-req-3"), 2)
        # Three listens after each of the two handshakes: they cost nothing.
        self.assertEqual(types.count("channel-listen"), 6)


# -- I3-PROTOCOL.md section 4: behaviour ------------------------------------------

def _down_mud_info():
    return [0, "127.0.0.1", 4000, 0, 0, "Lib", "Lib", "Driver", "Other", "open",
            "a@b.c", {"who": 1, "finger": 1, "channel": 1, "locate": 1}, 0]


class BehaviourTests(unittest.TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.pair = yield start_pair(self.loop)

    @defer.inlineCallbacks
    def assertTimesOut(self, call):
        with self.assertRaises(RPCFailure) as caught:
            yield call
        self.assertEqual((caught.exception.code, caught.exception.data.get("reason")),
                         (-32004, "timeout"))

    @defer.inlineCallbacks
    def test_every_request_to_a_silent_mud_has_a_timeout(self):
        """Routers drop packets to a known MUD that is down without a word:
        who, finger and chan-who fail with reason timeout; locate (a
        broadcast) ends at its timeout with what came."""
        pair = self.pair
        pair.router.set_mud("Sleepy", _down_mud_info())
        yield gateway_sees(pair.a, lambda: pair.a.gateway.lists.mud_entry("Sleepy"), "Sleepy in the mudlist")
        yield self.assertTimesOut(pair.ca.call("who", {"target_mud": "Sleepy", "timeout": 0.2}))
        yield self.assertTimesOut(pair.ca.call(
            "finger", {"target_mud": "Sleepy", "target_user": "bob", "timeout": 0.2}))
        with self.assertRaises(RPCFailure) as caught:
            yield pair.ca.call("channel_who", {"channel": "dchat", "target_mud": "Sleepy",
                                               "timeout": 0.2})
        self.assertEqual(caught.exception.data.get("reason"), "timeout")
        located = yield pair.ca.call("locate", {"target_user": "nobody", "timeout": 0.2})
        self.assertEqual((located["status"], located["locations"]), ("success", []))
        for ptype in ("who-req", "finger-req", "chan-who-req"):
            self.assertEqual(pair.received(A, ptype)[-1][4], "Sleepy")

    @defer.inlineCallbacks
    def test_filtered_channel_we_host_passes_messages_back_unchanged(self):
        """`chan-filter-req` (we host a filtered channel) gets
        `chan-filter-reply` carrying the packet unchanged, so the channel works."""
        pair = self.pair
        name = "muda_filtered"
        # The real router first announces a new channel with type ({}), read
        # as 0, and admit would then be refused: here the type is announced.
        pair.router.new_channel_type_quirk = False
        yield pair.ca.call("channel_admin", {"channel": name, "action": "add", "type": 2})
        yield gateway_sees(pair.b, lambda: name in pair.b.gateway.lists.channels, f"chanlist has {name}")
        yield pair.ca.call("channel_admin", {"channel": name, "action": "admit", "muds": [B]})
        yield pair.wait_received(A, "channel-admin")
        for client in (pair.ca, pair.cb):
            yield client.call("channel_join", {"channel": name})
        yield pair.router.wait_for(lambda r: r.listening.get(name, set()) >= {A, B})
        yield pair.cb.call("channel_send", {"channel": name, "message": "through the filter",
                                            "from_user": "bob"})
        event = yield pair.ca.event("channel_message", lambda e: e["channel"] == name)
        self.assertEqual(event["message"], "through the filter")
        (reply,) = yield pair.wait_received(A, "chan-filter-reply")
        (request,) = [p for m, p in pair.router.sent if m == A and p[0] == "chan-filter-req"]
        self.assertEqual(reply, ["chan-filter-reply", 5, A, 0, "*test", 0, name, request[7]])

    @defer.inlineCallbacks
    def test_originator_is_not_trusted_for_a_filter_reply(self):
        """A chan-filter-req that claims to come from another MUD (not the
        router we are on) is not answered: originators are not authenticated."""
        pair = self.pair
        message = ["channel-m", 5, B, "bob", 0, 0, "muda_x", "Bob", "spoofed"]
        pair.router.send_packet(A, ["chan-filter-req", 5, B, 0, A, 0, "muda_x", message])
        pair.router.send_packet(A, ["chan-filter-req", 5, "*elsewhere", 0, A, 0, "muda_x", message])
        yield pair.ca.call("ping")
        # Both handled (a round trip through the router later): nothing sent back.
        yield pair.ca.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual(pair.received(A, "chan-filter-reply"), [])
        self.assertEqual(pair.received(A, "error"), [])


# -- routers over TLS ------------------------------------------------------------

class RouterTLSTests(unittest.TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def test_tls_router_entry_verifies_the_certificate(self):
        """`tls: true` on a router entry connects with TLS and verifies the
        host name: a router whose certificate nobody vouches for is refused
        before any packet, and the link keeps retrying."""
        from twisted.internet import ssl
        from tests.test_web import _self_signed

        loop = make_loop(self)
        cert_path, key_path = _self_signed(loop.root)
        with open(cert_path) as c, open(key_path) as k:
            server_tls = ssl.PrivateCertificate.loadPEM(c.read() + k.read()).options()
        router = I3Router("*tls")
        router._listening_port = reactor.listenSSL(0, router, server_tls, interface="127.0.0.1")
        router.port = router._listening_port.getHost().port
        loop._stoppers.append(lambda: defer.maybeDeferred(router.shutdown))
        svc = loop.gateway("TLSMUD", [router])
        # The harness writes plain entries: make this one TLS, by host name.
        reasons = []
        link = svc.gateway.link
        link.on_state.append(lambda state, reason: reasons.append((state, reason)))
        tls_entry = {"name": "*tls", "host": "localhost", "port": router.port, "tls": True}
        new = configuration.with_overrides(svc.gateway.config, {"routers": [tls_entry]})
        svc.gateway.apply(new)
        yield gateway_sees(svc, lambda: sum(1 for s, _ in reasons if s == "backoff") >= 2,
                           "two backoffs", timeout=10)
        self.assertFalse(link.ready)
        self.assertEqual(router.received, [])
        self.assertTrue(any("certificate" in why.lower() or "verif" in why.lower()
                            for state, why in reasons if state == "backoff"), reasons)


class TwistedFactsTests(unittest.TestCase):
    """DESIGN.md "Twisted facts that bite"."""

    @defer.inlineCallbacks
    def test_prometheus_client_twisted_is_never_imported(self):
        code = ("import sys, intermud3.tap, intermud3.service, intermud3.api.web, intermud3.metrics;"
                "print('prometheus_client.twisted' in sys.modules, 'twisted.internet.reactor' in sys.modules)")
        proc = spawn(self, code)
        self.assertEqual((yield proc.ended), 0, proc.text())
        imported, _ = proc.text().split()
        self.assertEqual(imported, "False")
