"""The JSON-RPC 2.0 dispatcher (intermud3.api.rpc) against API.md's rules."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from intermud3.api import errors
from intermud3.api.errors import RPCError, invalid_params
from intermud3.api.methods import EVENTS, PERMISSIONS, MethodTable
from intermud3.api.rpc import Dispatcher
from intermud3.api.sessions import SessionManager
from intermud3.metrics import Metrics
from intermud3.services import failures
from tests.test_sessions import FakeConnection, make_clock, make_config, sample


def request(method, params=None, id=1, **extra):
    message = {"jsonrpc": "2.0", "method": method, **extra}
    if params is not None:
        message["params"] = params
    if id is not Ellipsis:
        message["id"] = id
    return json.dumps(message).encode()


class MethodTableTests(SynchronousTestCase):
    def test_permission_table(self):
        self.assertIsNone(PERMISSIONS["heartbeat"])
        self.assertEqual(PERMISSIONS["emoteto"], "tell")
        self.assertEqual(PERMISSIONS["channel_history"], "channel")
        self.assertEqual(PERMISSIONS["stats"], "info")
        self.assertEqual(PERMISSIONS["presence_sync"], "presence")
        self.assertEqual(PERMISSIONS["channel_admin"], "admin")
        self.assertEqual(PERMISSIONS["message_status"], ("tell", "channel", "admin"))  # any one
        self.assertIsNone(PERMISSIONS["set_options"])  # docs/COLOUR.md
        self.assertEqual(len(PERMISSIONS), 27)
        self.assertIn("gateway_reconnected", EVENTS)
        self.assertIn("channel_targeted", EVENTS)

    def test_add_and_lookup(self):
        table = MethodTable()

        def handler(call, params):
            return 1

        table.add("who", handler)
        self.assertEqual(table.lookup("who"), ("info", handler))
        self.assertIsNone(table.lookup("finger"))
        self.assertEqual(table.names(), ["who"])
        self.assertRaises(ValueError, table.add, "no_such_method", handler)


class DispatcherTestCase(SynchronousTestCase):
    """A dispatcher over real sessions and a few recording handlers."""

    keys = [{"key": "full", "mud_name": "OurMud", "permissions": ["*"]},
            {"key": "infoonly", "mud_name": "OurMud", "permissions": ["info"]}]

    def setUp(self):
        self.clock = make_clock()
        self.metrics = Metrics(CollectorRegistry())
        self.config = make_config(self.keys, default={"per_minute": 60, "burst": 5},
                                  by_method={"tell": {"per_minute": 6, "burst": 2}})
        self.sessions = SessionManager(self.config, self.clock, metrics=self.metrics)
        self.calls = []
        self.table = MethodTable()
        self.table.add("authenticate", self._authenticate)
        self.table.add("ping", self._record("ping", {"pong": True}))
        self.table.add("heartbeat", self._record("heartbeat", {"status": "ok"}))
        self.table.add("who", self._record("who", {"users": []}))
        self.table.add("tell", self._record("tell", {"status": "sent"}))
        self.table.add("reconnect", self._record("reconnect", {"status": "reconnecting"}))
        self.dispatcher = Dispatcher(self.table, self.sessions, max_batch=4, metrics=self.metrics,
                                     clock=self.clock)
        self.connection = FakeConnection()

    def _authenticate(self, call, params):
        return self.sessions.authenticate(call.connection, params.get("api_key"), params.get("session_id"))

    def _record(self, name, result):
        def handler(call, params):
            self.calls.append((name, call, params))
            return result
        return handler

    def handle(self, data, connection=None):
        return self.successResultOf(self.dispatcher.handle(connection or self.connection, data))

    def reply(self, data, connection=None):
        raw = self.handle(data, connection)
        return None if raw is None else json.loads(raw)

    def login(self, key="full", connection=None):
        reply = self.reply(request("authenticate", {"api_key": key}, id="auth"), connection)
        self.assertIn("result", reply)
        return reply["result"]


class ParseAndShapeTests(DispatcherTestCase):
    def test_exact_reply_bytes(self):
        self.assertEqual(self.handle(request("ping", id=7)),
                         b'{"jsonrpc":"2.0","result":{"pong":true},"id":7}')

    def test_ids_echoed_exactly(self):
        for request_id in ["abc", "ünï", 0, -5, 2**70, None, ""]:
            reply = self.reply(request("ping", id=request_id))
            self.assertEqual(reply["id"], request_id)
            self.assertIs(type(reply["id"]), type(request_id))

    def test_output_is_not_ascii_escaped(self):
        raw = self.handle(request("ping", id="ünï"))
        self.assertIn("ünï".encode("utf-8"), raw)

    def test_invalid_utf8(self):
        self.assertEqual(self.handle(b'{"jsonrpc":"2.0","method":"ping","id":1}\xff'),
                         b'{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error: not UTF-8"},"id":null}')

    def test_not_json(self):
        for data in [b"{", b"hello", b'{"jsonrpc":"2.0","method":"ping","id":NaN}', b"", b"[" * 100000]:
            reply = self.reply(data)
            self.assertEqual(reply["error"]["code"], -32700, data[:20])
            self.assertIsNone(reply["id"])

    def test_json_too_deep_or_a_number_too_long_is_said_so(self):
        deep = b"[" * 100000 + b"]" * 100000
        self.assertEqual(self.reply(deep)["error"],
                         {"code": -32700, "message": "Parse error: nesting too deep"})
        long_id = b'{"jsonrpc":"2.0","method":"ping","id":' + b"7" * 5000 + b"}"
        self.assertEqual(self.reply(long_id)["error"],
                         {"code": -32700, "message": "Parse error: number too long"})
        self.assertEqual(self.reply(b"{")["error"]["message"], "Parse error: not JSON")

    def test_not_an_object(self):
        for data in [b"1", b'"ping"', b"null", b"true"]:
            self.assertEqual(self.reply(data),
                             {"jsonrpc": "2.0", "error": {"code": -32600,
                                                          "message": "Invalid request: not an object"},
                              "id": None})

    def test_invalid_request_keeps_readable_id(self):
        cases = [
            {"method": "ping", "id": 3},                              # no jsonrpc
            {"jsonrpc": "1.0", "method": "ping", "id": 3},
            {"jsonrpc": "2.0", "id": 3},                              # no method
            {"jsonrpc": "2.0", "method": 5, "id": 3},
            {"jsonrpc": "2.0", "method": "ping", "params": "x", "id": 3},
            {"jsonrpc": "2.0", "method": "ping", "params": None, "id": 3},
        ]
        for case in cases:
            reply = self.reply(json.dumps(case).encode())
            self.assertEqual(reply["error"]["code"], -32600, case)
            self.assertEqual(reply["id"], 3, case)

    def test_invalid_request_without_id_is_answered_with_null_id(self):
        # Not a well-formed notification: API.md answers it, id null.
        for case in [{"method": "ping"}, {"jsonrpc": "1.0", "method": "ping"},
                     {"jsonrpc": "2.0", "method": 5}, {"jsonrpc": "2.0", "method": "ping", "params": 1}]:
            reply = self.reply(json.dumps(case).encode())
            self.assertEqual(reply["error"]["code"], -32600, case)
            self.assertIsNone(reply["id"], case)

    def test_invalid_id_types(self):
        for bad_id in [True, 1.5, [1], {"a": 1}]:
            reply = self.reply(json.dumps({"jsonrpc": "2.0", "method": "ping", "id": bad_id}).encode())
            self.assertEqual(reply["error"]["code"], -32600)
            self.assertIsNone(reply["id"])
        self.assertEqual(self.calls, [])

    def test_invalid_request_without_id_still_answered(self):
        # Not a valid request, so not a notification either (JSON-RPC 2.0).
        reply = self.reply(b'{"method":"ping"}')
        self.assertEqual(reply["error"]["code"], -32600)
        self.assertIsNone(reply["id"])

    def test_params_array(self):
        self.login()
        self.assertEqual(
            self.reply(request("who", [1, 2], id=9)),
            {"jsonrpc": "2.0", "id": 9, "error": {"code": -32602, "message":
                                                  "Invalid params: params must be an object, not an array",
                                                  "data": {"field": "params"}}})
        self.assertEqual([c for c in self.calls if c[0] == "who"], [])

    def test_unknown_params_ignored_and_absent_params_empty(self):
        self.login()
        self.reply(request("who", {"refresh": True, "filters": {}}))
        self.reply(request("who"))
        self.assertEqual([c[2] for c in self.calls], [{"refresh": True, "filters": {}}, {}])

    def test_unknown_method(self):
        self.login()
        self.assertEqual(self.reply(request("launch_missiles", id="x")),
                         {"jsonrpc": "2.0", "id": "x", "error": {"code": -32601, "message": "Method not found",
                                                                 "data": {"method": "launch_missiles"}}})
        # In PERMISSIONS but without a handler is unknown too.
        self.assertEqual(self.reply(request("finger"))["error"]["code"], -32601)

    def test_call_object(self):
        self.login()
        self.reply(request("who", id="q1"))
        name, call, _ = self.calls[-1]
        self.assertIs(call.session, self.connection.session)
        self.assertIs(call.connection, self.connection)
        self.assertEqual(call.transport, "tcp")
        self.assertEqual(call.method, "who")
        self.assertEqual(call.id, "q1")



class NotificationTests(DispatcherTestCase):
    def test_notification_executed_not_answered(self):
        self.login()
        self.assertIsNone(self.handle(request("who", id=...)))
        self.assertEqual(self.calls[-1][0], "who")
        self.assertTrue(self.calls[-1][1].is_notification)

    def test_notification_errors_not_answered(self):
        self.assertIsNone(self.handle(request("who", id=...)))           # not authenticated
        self.login("infoonly")
        self.assertIsNone(self.handle(request("tell", id=...)))          # permission
        self.assertIsNone(self.handle(request("nope", id=...)))          # unknown method
        self.assertIsNone(self.handle(request("who", [1], id=...)))      # params array

        def boom(call, params):
            raise RuntimeError("secret detail")

        self.table.add("status", boom)
        self.assertIsNone(self.handle(request("status", id=...)))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_null_id_is_not_a_notification(self):
        self.assertEqual(self.reply(request("ping", id=None))["result"], {"pong": True})


class BatchTests(DispatcherTestCase):
    def test_empty_batch(self):
        self.assertEqual(self.handle(b"[]"),
                         b'{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request: empty batch"},'
                         b'"id":null}')

    def test_batch_too_large(self):
        batch = b"[" + b",".join([request("ping", id=n) for n in range(5)]) + b"]"
        reply = self.reply(batch)
        self.assertIsInstance(reply, dict)
        self.assertEqual(reply["error"]["code"], -32600)
        self.assertEqual(reply["error"]["message"], "Invalid request: batch too large")
        self.assertEqual(reply["error"]["data"], {"max_batch": 4})
        self.assertEqual(self.calls, [])

    def test_batch_replies_only_for_members_with_id(self):
        batch = b"[" + b",".join([request("ping", id=1), request("ping", id=...), b"5",
                                  request("ping", id="z")]) + b"]"
        reply = self.reply(batch)
        self.assertEqual(reply, [
            {"jsonrpc": "2.0", "result": {"pong": True}, "id": 1},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid request: not an object"}, "id": None},
            {"jsonrpc": "2.0", "result": {"pong": True}, "id": "z"},
        ])
        self.assertEqual(len(self.calls), 3)

    def test_batch_of_notifications_gets_nothing(self):
        self.login()
        batch = b"[" + b",".join([request("who", id=...), request("nope", id=...)]) + b"]"
        self.assertIsNone(self.handle(batch))
        self.assertEqual(self.calls[-1][0], "who")

    def test_members_run_in_order_each_finished_first(self):
        self.login()
        pending = []
        log = []

        def slow(call, params):
            log.append(("start", params["n"]))
            d = defer.Deferred()
            d.addCallback(lambda _: log.append(("end", params["n"])) or params["n"])
            pending.append(d)
            return d

        self.table.add("who", slow)
        batch = b"[" + b",".join([request("who", {"n": n}, id=n) for n in range(3)]) + b"]"
        result = self.dispatcher.handle(self.connection, batch)
        self.assertNoResult(result)
        self.assertEqual(log, [("start", 0)])
        pending[0].callback(None)
        self.assertEqual(log, [("start", 0), ("end", 0), ("start", 1)])
        pending[1].callback(None)
        pending[2].callback(None)
        self.assertEqual([r["result"] for r in json.loads(self.successResultOf(result))], [0, 1, 2])

    def test_authenticate_in_batch_applies_to_later_members(self):
        batch = b"[" + b",".join([request("authenticate", {"api_key": "full"}, id=1), request("who", id=2)]) + b"]"
        reply = self.reply(batch)
        self.assertEqual(reply[0]["result"]["status"], "authenticated")
        self.assertEqual(reply[1]["result"], {"users": []})

    def test_each_member_costs_a_token(self):
        self.login()
        batch = b"[" + b",".join([request("who", id=n) for n in range(4)]) + b"]"
        self.assertTrue(all("result" in r for r in self.reply(batch)))
        replies = self.reply(batch)
        # burst 5: one token left after the first batch
        self.assertEqual(["result" in r for r in replies], [True, False, False, False])
        self.assertEqual(replies[1]["error"]["code"], -32001)


class AuthPermissionRateTests(DispatcherTestCase):
    def test_only_authenticate_and_ping_before_login(self):
        self.assertEqual(self.reply(request("ping"))["result"], {"pong": True})
        for method in ["heartbeat", "who", "tell", "reconnect"]:
            self.assertEqual(self.reply(request(method, id="m")),
                             {"jsonrpc": "2.0", "id": "m",
                              "error": {"code": -32000, "message": "Not authenticated"}}, method)
        self.assertEqual([c[0] for c in self.calls], ["ping"])

    def test_bad_key(self):
        reply = self.reply(request("authenticate", {"api_key": "wrong"}, id=1))
        self.assertEqual(reply["error"]["code"], -32000)
        self.assertIsNone(self.connection.session)

    def test_permission_denied(self):
        self.login("infoonly")
        self.assertEqual(self.reply(request("tell", {"message": "hi"}, id=4)),
                         {"jsonrpc": "2.0", "id": 4, "error": {"code": -32002, "message": "Permission denied",
                                                               "data": {"permission": "tell"}}})
        self.assertEqual(self.reply(request("reconnect", id=5))["error"]["data"], {"permission": "admin"})
        self.assertEqual(self.reply(request("who", id=6))["result"], {"users": []})
        self.assertEqual(self.reply(request("heartbeat", id=7))["result"], {"status": "ok"})

    def test_rate_limit_with_retry_after(self):
        self.login()
        for n in range(5):
            self.assertIn("result", self.reply(request("who", id=n)))
        self.assertEqual(self.reply(request("who", id=5)),
                         {"jsonrpc": "2.0", "id": 5, "error": {"code": -32001, "message": "Rate limit exceeded",
                                                               "data": {"retry_after": 1.0}}})
        # ping and authenticate are not limited
        self.assertIn("result", self.reply(request("ping", id=6)))
        self.assertEqual(self.reply(request("authenticate", {"api_key": "full"}, id=7))["result"]["status"],
                         "success")
        self.clock.advance(1.0)
        self.assertIn("result", self.reply(request("who", id=8)))

    def test_method_override(self):
        self.login()
        self.assertIn("result", self.reply(request("tell", id=1)))
        self.assertIn("result", self.reply(request("tell", id=2)))
        reply = self.reply(request("tell", id=3))
        self.assertEqual(reply["error"], {"code": -32001, "message": "Rate limit exceeded",
                                          "data": {"retry_after": 10.0}})
        self.assertIn("result", self.reply(request("who", id=4)))

    def test_sessions_of_one_key_share_its_bucket(self):
        self.login()
        for n in range(5):
            self.reply(request("who", id=n))
        other = FakeConnection()
        self.login(connection=other)
        self.assertEqual(self.reply(request("who", id=1), other)["error"]["code"], -32001)

    def test_ended_session_is_not_authenticated(self):
        self.login()
        session = self.connection.session
        self.sessions.end_session(session, "test")
        self.connection.session = session  # a transport that kept a stale reference
        self.assertEqual(self.reply(request("who"))["error"]["code"], -32000)


class HandlerOutcomeTests(DispatcherTestCase):
    def setUp(self):
        super().setUp()
        self.login()

    def test_rpc_error_passes_through(self):
        def bad(call, params):
            raise invalid_params("target_mud", "target_mud is missing")

        self.table.add("who", bad)
        self.assertEqual(self.reply(request("who", id=1)),
                         {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "target_mud is missing",
                                                               "data": {"field": "target_mud"}}})

    def test_service_failures_answered_by_the_table(self):
        """A service's refusal, raised or failing a Deferred, is answered
        with its JSON-RPC error (api/errors.py) and counted as that. (ping:
        never rate limited, so eight calls in a row are all answered.)"""
        cases = [
            (failures.LinkDown("The router link is down"),
             {"code": -32004, "message": "The router link is down", "data": {"reason": "link_down"}}),
            (failures.TimedOut("No answer to who in time"),
             {"code": -32004, "message": "No answer to who in time", "data": {"reason": "timeout"}}),
            (failures.RemoteError("unk-user", "bob is not here"),
             {"code": -32004, "message": "I3 error unk-user: bob is not here",
              "data": {"i3_error": "unk-user", "i3_message": "bob is not here"}}),
            (failures.WrongChannelType("action", "ban needs type 0", channel_type=1),
             {"code": -32602, "message": "ban needs type 0",
              "data": {"field": "action", "channel_type": 1}}),
        ]
        for failure, expected in cases:
            def raising(call, params, failure=failure):
                raise failure
            self.table.add("ping", raising)
            self.assertEqual(self.reply(request("ping", id=1))["error"], expected)
            self.table.add("ping", lambda call, params, failure=failure: defer.fail(failure))
            self.assertEqual(self.reply(request("ping", id=2))["error"], expected)
        self.assertEqual(self.metrics.registry.get_sample_value(
            "intermud3_api_requests_total", {"method": "ping", "outcome": "gateway_error"}), 6)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_every_service_failure_has_an_answer(self):
        for name in failures.__all__:
            cls = getattr(failures, name)
            if cls.__subclasses__() or cls in (failures.ServiceFailure,):
                continue   # only the concrete failures are raised
            self.assertIn(cls, errors._FOR_FAILURE, name)

    def test_a_failure_without_its_own_entry_is_answered_as_its_base(self):
        class Busy(failures.Unavailable):
            reason = "busy"

        answer = errors.for_failure(Busy("Busy right now"))
        self.assertEqual((answer.code, answer.message, answer.data),
                         (errors.GATEWAY_ERROR, "Busy right now", {"reason": "busy"}))
        bare = errors.for_failure(failures.ServiceFailure("Something failed"))
        self.assertEqual((bare.code, bare.message), (errors.GATEWAY_ERROR, "Something failed"))

    def test_exception_is_internal_error_logged_not_leaked(self):
        def boom(call, params):
            raise KeyError("the secret internals")

        self.table.add("who", boom)
        raw = self.handle(request("who", id="b"))
        self.assertEqual(raw, b'{"jsonrpc":"2.0","error":{"code":-32603,"message":"Internal error"},"id":"b"}')
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_deferred_results(self):
        self.table.add("who", lambda call, params: defer.succeed({"ok": 1}))
        self.assertEqual(self.reply(request("who"))["result"], {"ok": 1})
        self.table.add("who", lambda call, params: defer.fail(RPCError(-32004, "Gateway error",
                                                                        {"reason": "timeout"})))
        self.assertEqual(self.reply(request("who"))["error"],
                         {"code": -32004, "message": "Gateway error", "data": {"reason": "timeout"}})
        self.table.add("who", lambda call, params: defer.fail(ValueError("x")))
        self.assertEqual(self.reply(request("who"))["error"]["code"], -32603)
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_coroutine_results(self):
        async def handler(call, params):
            value = await defer.succeed(41)
            return {"value": value + 1}

        async def failing(call, params):
            await defer.succeed(None)
            raise invalid_params("channel", "no such channel")

        self.table.add("who", handler)
        self.assertEqual(self.reply(request("who"))["result"], {"value": 42})
        self.table.add("who", failing)
        self.assertEqual(self.reply(request("who"))["error"]["data"], {"field": "channel"})

    def test_unserialisable_result_is_internal_error(self):
        self.table.add("who", lambda call, params: {"x": object()})
        self.assertEqual(self.reply(request("who", id=3))["error"]["code"], -32603)
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)

    def test_lone_surrogate_still_valid_utf8(self):
        raw = self.handle(b'{"jsonrpc":"2.0","method":"ping","id":"\\ud800"}')
        raw.decode("utf-8")
        self.assertEqual(json.loads(raw)["id"], "\ud800")


class MetricsTests(DispatcherTestCase):
    def test_outcomes_counted(self):
        self.reply(request("who"))
        self.login()
        self.reply(request("who"))
        self.reply(request("no_such_thing"))
        self.reply(request("whatever_else"))
        self.reply(b"{")
        counter = self.metrics.api_requests
        self.assertEqual(sample(counter, method="who", outcome="not_authenticated"), 1)
        self.assertEqual(sample(counter, method="who", outcome="ok"), 1)
        self.assertEqual(sample(counter, method="authenticate", outcome="ok"), 1)
        self.assertEqual(sample(counter, method="unknown", outcome="method_not_found"), 2)
        names = {s.labels["method"] for m in self.metrics.registry.collect()
                 if m.name == "intermud3_api_requests" for s in m.samples}
        self.assertNotIn("no_such_thing", names)

    def test_duration_observed(self):
        pending = defer.Deferred()
        self.login()
        self.table.add("who", lambda call, params: pending)
        result = self.dispatcher.handle(self.connection, request("who"))
        self.clock.advance(2.5)
        pending.callback({})
        self.successResultOf(result)
        registry = self.metrics.registry
        self.assertEqual(registry.get_sample_value(
            "intermud3_api_request_duration_seconds_sum", {"method": "who"}), 2.5)
        self.assertEqual(registry.get_sample_value(
            "intermud3_api_request_duration_seconds_bucket", {"method": "who", "le": "2.5"}), 1)
        self.assertEqual(registry.get_sample_value(
            "intermud3_api_request_duration_seconds_bucket", {"method": "who", "le": "1.0"}), 0)


class FuzzTests(DispatcherTestCase):
    @settings(deadline=None, max_examples=200)
    @given(st.binary(max_size=200))
    def test_random_bytes_always_answered_sanely(self, data):
        raw = self.handle(data)
        if raw is not None:
            reply = json.loads(raw.decode("utf-8"))
            self.assertIsInstance(reply, (dict, list))

    @settings(deadline=None, max_examples=200)
    @given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                    max_size=4),
                        max_leaves=12))
    def test_random_json_never_internal_error(self, value):
        raw = self.handle(json.dumps(value).encode())
        if raw is not None:
            text = raw.decode("utf-8")
            self.assertNotIn("-32603", text)


class SyncAndDeferredPathTests(SynchronousTestCase):
    """A synchronous handler is answered at once (bytes, no Deferred); the same
    handler returning a Deferred or a coroutine gives the same bytes and codes."""

    def build(self, wrap):
        clock = make_clock()
        config = make_config(DispatcherTestCase.keys, default={"per_minute": 60, "burst": 5},
                             by_method={"tell": {"per_minute": 6, "burst": 4}})
        sessions = SessionManager(config, clock, metrics=Metrics(CollectorRegistry()))
        table = MethodTable()

        def authenticate(call, params):
            return sessions.authenticate(call.connection, params.get("api_key"))

        def tell(call, params):
            if params.get("fail") == "rpc":
                raise invalid_params("message", "message must not be empty")
            if params.get("fail") == "bug":
                raise RuntimeError("bug")
            if params.get("fail") == "unserialisable":
                return {"x": object()}
            return {"status": "sent", "echo": params.get("echo")}

        table.add("authenticate", wrap(authenticate))
        table.add("tell", wrap(tell))
        table.add("who", wrap(lambda call, params: {"users": []}))
        dispatcher = Dispatcher(table, sessions, max_batch=4, clock=clock)
        return dispatcher, FakeConnection()

    REQUESTS = [
        request("tell", {"target_mud": "X"}, id=1),                       # not authenticated
        request("authenticate", {"api_key": "infoonly"}, id="a"),
        request("tell", {}, id=2),                                        # permission denied
        request("authenticate", {"api_key": "full"}, id="b"),             # other key: -32000
    ]
    AS_FULL = [
        request("authenticate", {"api_key": "full"}, id="a"),
        request("tell", {"echo": "ünï \u2028"}, id=1),
        request("tell", {"fail": "rpc"}, id=2),
        request("tell", {"fail": "bug"}, id=3),
        request("tell", {"fail": "unserialisable"}, id=4),
        request("tell", [1], id=5),                                       # params an array
        request("tell", {}, id=6),                                        # rate limited (burst 4)
        request("tell", {"echo": 1}, id=...),                             # notification
        request("nope", id=7),
        b"[" + request("who", id=8) + b"," + request("who", id=...) + b"," + request("who", id=9) + b"]",
        b"[" + request("who", id=...) + b"]",
        b"{",
        b"\xff",
    ]

    def run_all(self, wrap, messages):
        dispatcher, connection = self.build(wrap)
        replies = []
        for data in messages:
            reply = dispatcher.dispatch(connection, data)
            if isinstance(reply, defer.Deferred):
                reply = self.successResultOf(reply)
            replies.append(reply)
        self.flushLoggedErrors(RuntimeError, TypeError)
        # Session ids are random: everything else must match byte for byte.
        return [None if r is None else re.sub(rb'"session_id":"[^"]+"', b'"session_id":"S"', r)
                for r in replies]

    def test_sync_handlers_answer_without_a_deferred(self):
        dispatcher, connection = self.build(lambda handler: handler)
        for data in self.REQUESTS + self.AS_FULL:
            self.assertNotIsInstance(dispatcher.dispatch(connection, data), defer.Deferred)
        self.flushLoggedErrors(RuntimeError, TypeError)

    def test_deferred_and_coroutine_handlers_give_the_same_bytes(self):
        def deferred(handler):
            return lambda call, params: defer.maybeDeferred(handler, call, params)

        def coroutine(handler):
            async def run(call, params):
                return handler(call, params)
            return run

        for messages in (self.REQUESTS, self.AS_FULL):
            expected = self.run_all(lambda handler: handler, messages)
            for wrap in (deferred, coroutine):
                self.assertEqual(self.run_all(wrap, messages), expected)
        codes = re.findall(rb'"code":(-\d+)', b"".join(r for r in expected if r))
        self.assertEqual(codes, [b"-32602", b"-32603", b"-32603", b"-32602", b"-32001", b"-32601",
                                 b"-32001", b"-32700", b"-32700"])  # the batch's last "who" finds no token

    def test_deferred_path_waits(self):
        pending = defer.Deferred()
        dispatcher, connection = self.build(lambda handler: handler)
        dispatcher.table.add("who", lambda call, params: pending)
        self.assertIsInstance(dispatcher.dispatch(connection, request("authenticate", {"api_key": "full"})),
                              bytes)
        reply = dispatcher.dispatch(connection, request("who", id=3))
        self.assertNoResult(reply)
        pending.callback({"users": ["z"]})
        self.assertEqual(self.successResultOf(reply), b'{"jsonrpc":"2.0","result":{"users":["z"]},"id":3}')

    def test_handle_is_dispatch_as_a_deferred(self):
        dispatcher, connection = self.build(lambda handler: handler)
        self.assertEqual(self.successResultOf(dispatcher.handle(connection, request("tell", id=1))),
                         dispatcher.dispatch(connection, request("tell", id=1)))
