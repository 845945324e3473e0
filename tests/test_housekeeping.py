"""Link and housekeeping methods (intermud3.api.methods.housekeeping) through the dispatcher."""

import json

from twisted.internet import defer
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3.api.authguard import AuthGuard
from intermud3.api.methods import housekeeping
from intermud3.api.methods import MethodTable
from intermud3.api.rpc import Dispatcher
from intermud3.api.sessions import SessionManager
from intermud3.metrics import Metrics
from tests.test_sessions import START, FakeConnection, make_clock, make_config

KEYS = [{"key": "admin", "mud_name": "OurMud", "permissions": ["*"]},
        {"key": "info", "mud_name": "OurMud", "permissions": ["info"]}]


class FakeLink:
    def __init__(self):
        self.state = "ready"
        self.ready = True
        self.router = {"name": "*dalet", "host": "97.107.133.86", "port": 8787, "tls": False}
        self.mud_name = "OurMud"
        self.packets_sent = 12
        self.packets_received = 34
        self.reconnects = 2
        self.reconnect_reasons = []

    def reconnect(self, reason):
        self.reconnect_reasons.append(reason)


class FakeOutbox:
    depth = 3


class FakeLists:
    def __init__(self):
        up, down = [-1, "h", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0, "h", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        self.muds = {"A": up, "B": down, "C": list(up), "D": [3600] + up[1:]}
        self.channels = {"imud_gossip": ("*dalet", 0), "imud_code": ("*dalet", 0)}
        self.mudlist_id = 1234
        self.chanlist_id = 56


class FakeGateway:
    def __init__(self, config, clock):
        self.config = config
        self.metrics = Metrics()
        self.sessions = SessionManager(config, clock)
        self.link = FakeLink()
        self.outbox = FakeOutbox()
        self.lists = FakeLists()
        self.started_at = START - 100
        self.reload_result = {"status": "reloaded", "changed": ["api.auth.api_keys"]}

    def reload(self):
        return self.reload_result

    def handlers(self):
        """As intermud3.service.Gateway hands them their collaborators."""
        guard = AuthGuard(
            lambda: self.config.api.auth.failures,
            self.sessions.clock, self.metrics)
        return housekeeping.handlers(
            sessions=self.sessions, link=self.link, lists=self.lists, outbox=self.outbox,
            auth_guard=guard, started_at=self.started_at, reload=self.reload)


class HousekeepingTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        self.gateway = FakeGateway(make_config(KEYS), self.clock)
        self.table = MethodTable(self.gateway.handlers())
        self.dispatcher = Dispatcher(self.table, self.gateway.sessions, clock=self.clock)
        self.connection = FakeConnection()

    def call(self, method, params=None, connection=None):
        message = {"jsonrpc": "2.0", "method": method, "id": 1}
        if params is not None:
            message["params"] = params
        raw = self.successResultOf(self.dispatcher.handle(connection or self.connection, json.dumps(message).encode()))
        return json.loads(raw)

    def result(self, method, params=None, connection=None):
        reply = self.call(method, params, connection)
        self.assertIn("result", reply, reply)
        return reply["result"]

    def login(self, key="admin", connection=None):
        return self.result("authenticate", {"api_key": key}, connection)

    def test_registers_the_housekeeping_methods(self):
        self.assertEqual(self.table.names(), sorted([
            "authenticate", "restore_session", "ping", "heartbeat", "status", "stats", "reconnect",
            "reload_config"]))

    def test_ping_before_login(self):
        self.clock.advance(0.123)
        self.assertEqual(self.result("ping"), {"pong": True, "timestamp": "2023-11-14T22:13:20.123Z"})

    def test_heartbeat(self):
        self.login()
        self.assertEqual(self.result("heartbeat"), {"status": "ok", "timestamp": "2023-11-14T22:13:20.000Z"})

    def test_authenticate_shapes(self):
        first = self.login()
        self.assertEqual(first["status"], "authenticated")
        self.assertEqual(first["mud_name"], "OurMud")
        again = self.login()
        self.assertEqual(again, {**first, "status": "success"})

    def test_authenticate_param_errors(self):
        reply = self.call("authenticate", {})
        self.assertEqual(reply["error"]["code"], -32602)
        self.assertEqual(reply["error"]["data"], {"field": "api_key"})
        reply = self.call("authenticate", {"api_key": "admin", "session_id": 5})
        self.assertEqual(reply["error"]["data"], {"field": "session_id"})
        self.assertEqual(self.wrong_key()["error"]["code"], -32000)

    def wrong_key(self, connection=None, delay=1):
        """A wrong-key authenticate, answered after `delay` seconds, not before."""
        message = {"jsonrpc": "2.0", "method": "authenticate", "id": 1, "params": {"api_key": "nope"}}
        d = self.dispatcher.handle(connection or self.connection, json.dumps(message).encode())
        self.clock.advance(delay - 0.01)
        self.assertNoResult(d)
        self.clock.advance(0.01)
        return json.loads(self.successResultOf(d))

    def test_wrong_keys_wait_longer_each_time_then_close(self):
        for delay in (1, 2, 4, 8):
            self.assertEqual(self.wrong_key(delay=delay)["error"]["message"], "Invalid API key")
        self.clock.advance(0)
        self.assertEqual(self.connection.closed, [])
        self.wrong_key(delay=16)
        self.clock.advance(0)   # the close follows the reply
        self.assertEqual(self.connection.closed, ["too many failed authentications"])
        self.assertEqual(self.gateway.metrics.registry.get_sample_value(
            "intermud3_api_auth_failures_total"), 5.0)
        # A guess pipelined behind the fifth closes the connection at once.
        message = {"jsonrpc": "2.0", "method": "authenticate", "id": 6, "params": {"api_key": "nope"}}
        self.dispatcher.handle(self.connection, json.dumps(message).encode())
        self.assertEqual(len(self.connection.closed), 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_the_source_address_is_remembered_across_connections(self):
        self.wrong_key(FakeConnection(peer="10.0.0.9:1"), delay=1)
        self.wrong_key(FakeConnection(peer="10.0.0.9:2"), delay=2)
        self.wrong_key(FakeConnection(peer="10.0.0.8:1"), delay=1)   # another address
        self.clock.advance(600)                                       # forgotten
        self.wrong_key(FakeConnection(peer="10.0.0.9:3"), delay=1)

    def test_the_delay_is_capped(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.auth.failures": {
            "delay": 1, "max_delay": 3, "max_per_connection": 100, "forget_after": 600, "log_interval": 60}})
        for delay in (1, 2, 3, 3):
            self.wrong_key(delay=delay)

    def test_one_log_line_per_source_per_interval(self):
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        for n in range(3):
            self.wrong_key(FakeConnection(peer=f"10.0.0.9:{n}"), delay=2 ** n)
        self.clock.advance(60)
        self.wrong_key(FakeConnection(peer="10.0.0.9:9"), delay=8)
        lines = [e for e in logged if "failed authentication" in e.get("log_format", "")]
        self.assertEqual([(e["count"], e["host"]) for e in lines], [(1, "10.0.0.9"), (3, "10.0.0.9")])
        self.assertFalse(any("nope" in formatEvent(e) for e in logged))

    def test_authenticate_with_unknown_session(self):
        reply = self.call("authenticate", {"api_key": "admin", "session_id": "gone"})
        self.assertEqual(reply["error"], {"code": -32003, "message": "Session expired or unknown"})

    def test_restore_session(self):
        session_id = self.login()["session_id"]
        self.gateway.sessions.detach(self.connection)
        self.assertEqual(self.call("restore_session", {"session_id": session_id})["error"]["code"], -32000)
        new = FakeConnection()
        self.login(connection=new)
        result = self.result("restore_session", {"session_id": session_id}, new)
        self.assertEqual(result["session_id"], session_id)
        self.assertTrue(result["resumed"])
        self.assertEqual(self.call("restore_session", {}, new)["error"]["data"], {"field": "session_id"})

    def test_status(self):
        self.login()
        self.clock.advance(7.5)
        status = self.result("status")
        self.assertEqual(status, {
            "connected": True, "router": "*dalet", "router_address": "97.107.133.86:8787", "mud_name": "OurMud",
            "session_id": self.connection.session.id, "uptime": 107.5, "session_uptime": 7.5, "state": "ready"})

    def test_status_while_handshaking(self):
        self.login("info")
        self.gateway.link.state = "handshaking"
        self.gateway.link.ready = False
        status = self.result("status")
        self.assertFalse(status["connected"])
        self.assertEqual(status["state"], "handshaking")
        self.gateway.link.router = None
        self.gateway.link.state = "backoff"
        status = self.result("status")
        self.assertIsNone(status["router"])
        self.assertIsNone(status["router_address"])

    def test_stats(self):
        self.login()
        self.assertEqual(self.result("stats"), {
            "mud_count": 4, "online_muds": 2, "channel_count": 2, "session_count": 1, "mudlist_id": 1234,
            "chanlist_id": 56, "gateway_connected": True, "packets_sent": 12, "packets_received": 34,
            "reconnects": 2, "queued_outbound": 3})

    def test_reconnect(self):
        self.login()
        self.assertEqual(self.result("reconnect"), {"status": "reconnecting"})
        self.assertEqual(self.gateway.link.reconnect_reasons, ["requested by API"])

    def test_admin_methods_need_admin(self):
        self.login("info")
        reply = self.call("reconnect")
        self.assertEqual(reply["error"]["data"], {"permission": "admin"})
        self.assertEqual(self.gateway.link.reconnect_reasons, [])
        self.assertEqual(self.call("reload_config")["error"]["code"], -32002)

    def test_reload_config_plain_and_deferred(self):
        self.login()
        self.assertEqual(self.result("reload_config"), {"status": "reloaded", "changed": ["api.auth.api_keys"]})
        pending = defer.Deferred()
        self.gateway.reload_result = pending
        result = self.dispatcher.handle(self.connection, b'{"jsonrpc":"2.0","method":"reload_config","id":2}')
        self.assertNoResult(result)
        pending.callback({"status": "rejected", "errors": ["api.port: must be an integer"]})
        self.assertEqual(json.loads(self.successResultOf(result))["result"],
                         {"status": "rejected", "errors": ["api.port: must be an integer"]})


class AuthDisabledHousekeepingTests(SynchronousTestCase):
    def test_any_key_or_none_succeeds(self):
        clock = make_clock()
        gateway = FakeGateway(make_config([], enabled=False), clock)
        dispatcher = Dispatcher(MethodTable(gateway.handlers()), gateway.sessions, clock=clock)
        connection = FakeConnection()
        gateway.sessions.connection_opened(connection)
        # The first call reports "authenticated" (clients wait for it), a repeat "success".
        for params, status in (({}, "authenticated"), ({"api_key": "whatever"}, "success")):
            raw = self.successResultOf(dispatcher.handle(
                connection, json.dumps({"jsonrpc": "2.0", "method": "authenticate", "params": params,
                                        "id": 1}).encode()))
            self.assertEqual(json.loads(raw)["result"]["status"], status)
        raw = self.successResultOf(dispatcher.handle(connection, b'{"jsonrpc":"2.0","method":"stats","id":2}'))
        self.assertIn("result", json.loads(raw))
