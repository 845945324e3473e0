"""The client API end to end: a real GatewayService linked to the in-repo
router, driven over real loopback sockets on both transports (API.md
"Transports", "JSON-RPC rules", "Error codes", "Authentication, permissions,
sessions", "Link and housekeeping", "HTTP").

The JSON-RPC rules live in one mixin run once per transport, so the same
fault is shown to give the same code on TCP and on WebSocket.
"""

import json
import os
import random
import shutil
import socket
import tempfile

import yaml
from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import defer, protocol, reactor
from twisted.trial.unittest import TestCase

from intermud3 import __version__
from intermud3 import config as configuration

from intermud3.service import GatewayService
from tests.integration.harness import (
    API_KEY,
    JSONLineClient,
    Loopback,
    assert_rpc_error,
)
from tests.integration.waits import api_connections_closed, gateway_sees, link_ready
from tests.integration.wsclient import WSClosed, WSJSONClient, connect_ws

MUD = "E2EMud"
INFO_KEY = "info-key-0123456789"
LIMITED_KEY = "limited-key-0123456789"
KEYS = [
    {"key": API_KEY, "mud_name": MUD, "permissions": ["*"]},
    {"key": INFO_KEY, "mud_name": MUD, "permissions": ["info"]},
    {"key": LIMITED_KEY, "mud_name": MUD, "permissions": ["*"],
     "rate_limit": {"per_minute": 1, "burst": 3}},
]
MAX_BATCH = 8
MAX_BYTES = 4096          # both the TCP line and the WebSocket message bound
QUEUE_SIZE = 3            # events a detached session keeps
# The sections every gateway of this file starts with (tests add to them).
API = {
    "auth": {"api_keys": KEYS},
    "max_batch": MAX_BATCH,
    "rate_limits": {"by_method": {"mudlist": {"per_minute": 1, "burst": 2}}},
    "tcp": {"max_line_bytes": MAX_BYTES},
    "websocket": {"max_message_bytes": MAX_BYTES},
    "session": {"max_queue_size": QUEUE_SIZE},
}


def request(method, request_id=None, params=None, notification=False):
    message = {"jsonrpc": "2.0", "method": method}
    if not notification:
        message["id"] = request_id
    if params is not None:
        message["params"] = params
    return message


def encode(value):
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def channel_packet(text, channel="dchat", user="bob", mud="OtherMud"):
    """A channel-m as the router relays it from another MUD."""
    return ["channel-m", 5, mud, user, 0, 0, channel, user.capitalize(), text]


def merged(base, extra):
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


class TCPClient(JSONLineClient):
    """The harness's line client, also keeping every line's bytes and the
    replies no call waits for (errors with id null, batches, raw requests)."""

    def __init__(self):
        super().__init__()
        self.payloads = []
        self.unmatched = []
        self._unmatched_waiters = []

    def lineReceived(self, line):
        self.payloads.append(line)
        message = json.loads(line)
        if isinstance(message, dict) and ("method" in message or message.get("id") in self._pending):
            return super().lineReceived(line)
        self.unmatched.append(message)
        while self._unmatched_waiters and self.unmatched:
            self._unmatched_waiters.pop(0).callback(self.unmatched.pop(0))

    def next_unmatched(self, timeout=5.0):
        d = defer.Deferred()
        self._unmatched_waiters.append(d)
        while self._unmatched_waiters and self.unmatched:
            self._unmatched_waiters.pop(0).callback(self.unmatched.pop(0))
        return d.addTimeout(timeout, reactor)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        waiters, self._unmatched_waiters = self._unmatched_waiters, []
        for d in waiters:
            d.errback(ConnectionError("closed"))

    @property
    def lost(self):
        return self.closed


class HTTPFetch(protocol.Protocol):
    """Writes one request and collects everything until the server closes."""

    def __init__(self, data):
        self.data = data
        self.received = b""
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.data)

    def dataReceived(self, data):
        self.received += data

    def connectionLost(self, reason):
        self.done.callback(self.received)


def adopt_narrow_socket(port, factory):
    """Connect to 127.0.0.1:port on a socket with small segments and a small
    receive buffer, and hand it to the reactor; returns the built protocol.

    A client that stops reading then fills the kernel's buffers with tens of
    kilobytes instead of megabytes (loopback segments are 64 KiB, and the
    sender's buffer grows with them), so the gateway's own bound is reached
    quickly. A blocking connect on loopback completes at once.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        built = []
        build = factory.buildProtocol
        factory.buildProtocol = lambda addr: built.append(build(addr)) or built[-1]
        reactor.adoptStreamConnection(sock.fileno(), socket.AF_INET, factory)
    finally:
        sock.close()   # the reactor holds its own duplicate
    return built[0]


class GatewayTestCase(TestCase):
    """Starts routers, gateways and clients; waits for both sides of every
    disconnect before the harness stops the gateway."""

    def setUp(self):
        # Removed last, after the harness has stopped every gateway.
        self.scratch = tempfile.mkdtemp(prefix="i3gw-e2e-")
        self.addCleanup(shutil.rmtree, self.scratch, ignore_errors=True)
        self.loop = Loopback(self)

    @defer.inlineCallbacks
    def start(self, i3router=None, ready=True, **sections):
        router = i3router or self.loop.router()
        sections["api"] = merged(API, sections.get("api", {}))
        state_dir = tempfile.mkdtemp(dir=self.scratch)
        if ready:
            svc = yield self.loop.ready_gateway(MUD, [router], state_dir, **sections)
        else:
            svc = self.loop.gateway(MUD, [router], state_dir, **sections)
        self.addCleanup(self.all_closed, svc)
        return router, svc

    def all_closed(self, svc):
        # Runs after the clients' own cleanups (registered later, run first).
        return api_connections_closed(svc, lambda: svc.gateway.api_connections.count() == 0)

    @defer.inlineCallbacks
    def tcp(self, svc, key=API_KEY, welcome=True, narrow=False):
        port = svc.tcp_listener.getHost().port
        if narrow:
            client = adopt_narrow_socket(port, protocol.Factory.forProtocol(TCPClient))
        else:
            client = yield protocol.ClientCreator(reactor, TCPClient).connectTCP("127.0.0.1", port)
        self.addCleanup(client.disconnect)
        if welcome:
            yield client.welcomed
        if key is not None:
            result = yield client.call("authenticate", {"api_key": key})
            client.session_id = result["session_id"]
        return client

    @defer.inlineCallbacks
    def ws(self, svc, key=API_KEY, headers=None, narrow=False):
        port = svc.web_listener.getHost().port
        if narrow:
            factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/ws")
            factory.protocol = WSJSONClient
            client = adopt_narrow_socket(port, factory)
            self.addCleanup(client.disconnect)
            yield client.opened
        else:
            client = yield connect_ws(port, headers=headers)
            self.addCleanup(client.disconnect)
        if key is not None:
            result = yield client.call("authenticate", {"api_key": key})
            client.session_id = result["session_id"]
        return client

    @defer.inlineCallbacks
    def http(self, svc, path, extra=b""):
        """(status code, headers dict, body bytes) of one HTTP/1.0 GET."""
        port = svc.web_listener.getHost().port
        fetch = HTTPFetch(b"GET " + path.encode() + b" HTTP/1.0\r\nHost: 127.0.0.1\r\n" + extra + b"\r\n")
        yield protocol.ClientCreator(reactor, lambda: fetch).connectTCP("127.0.0.1", port)
        raw = yield fetch.done
        head, _, body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(lines[0].split()[1]), headers, body


# -- the JSON-RPC rules, once per transport ---------------------------------------

class RulesMixin:
    """Every test here runs on TCP and on WebSocket (see the two classes below)."""

    def connect(self, svc, key=API_KEY, narrow=False):
        raise NotImplementedError

    @defer.inlineCallbacks
    def exchange(self, client, data):
        """Send raw bytes as one message; the reply no call was waiting for."""
        client.send_raw(data)
        reply = yield client.next_unmatched()
        return reply

    def assertError(self, reply, code, request_id=None):
        self.assertEqual(reply["jsonrpc"], "2.0")
        self.assertNotIn("result", reply)
        self.assertEqual(reply["error"]["code"], code, reply)
        self.assertIsInstance(reply["error"]["message"], str)
        self.assertIn("id", reply)
        self.assertEqual(reply["id"], request_id)

    def assertCallFails(self, client, method, params, code):
        return assert_rpc_error(self, client.call(method, params), code)

    @defer.inlineCallbacks
    def assertNothingUnmatched(self, client):
        # Replies are written in order of handling: once a later ping is
        # answered, any answer to what was sent before it has arrived too.
        result = yield client.call("ping")
        self.assertIs(result["pong"], True)
        self.assertEqual(client.unmatched, [])

    # -- malformed input --------------------------------------------------------

    @defer.inlineCallbacks
    def test_parse_error_has_id_null(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=None)
        reply = yield self.exchange(client, b'{"jsonrpc": "2.0", "id": 4, "method": ')
        self.assertError(reply, -32700)

    @defer.inlineCallbacks
    def test_not_an_object_is_invalid_request(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        for data in (b"42", b'"ping"', b"null", b"true"):
            reply = yield self.exchange(client, data)
            self.assertError(reply, -32600)

    @defer.inlineCallbacks
    def test_deeply_nested_json_is_refused_and_harmless(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        depth = (MAX_BYTES - 100) // 2
        reply = yield self.exchange(client, b"[" * depth + b"]" * depth)
        self.assertIn(reply["error"]["code"], (-32700, -32600))
        self.assertIsNone(reply["id"])
        reply = yield self.exchange(client, b'{"a":' * (depth // 3) + b"1" + b"}" * (depth // 3))
        self.assertIn(reply["error"]["code"], (-32700, -32600))
        yield self.assertNothingUnmatched(client)

    @defer.inlineCallbacks
    def test_missing_or_wrong_jsonrpc_keeps_the_id(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        reply = yield self.exchange(client, encode({"id": 5, "method": "ping"}))
        self.assertError(reply, -32600, 5)
        reply = yield self.exchange(client, encode({"jsonrpc": "1.0", "id": "a", "method": "ping"}))
        self.assertError(reply, -32600, "a")
        reply = yield self.exchange(client, encode({"jsonrpc": "2.0", "id": 6, "method": 12}))
        self.assertError(reply, -32600, 6)

    @defer.inlineCallbacks
    def test_bad_id_types_are_invalid_with_id_null(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        for bad in (True, False, 1.5, 2.0, {"n": 1}, [1]):
            reply = yield self.exchange(client, encode({"jsonrpc": "2.0", "id": bad, "method": "ping"}))
            self.assertError(reply, -32600)

    @defer.inlineCallbacks
    def test_params_neither_object_nor_array_is_invalid_request(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        for params in (None, "x", 3, True):
            message = dict(request("ping", "p"), params=params)
            reply = yield self.exchange(client, encode(message))
            self.assertError(reply, -32600, "p")
        reply = yield self.exchange(client, encode({"jsonrpc": "2.0", "id": "m"}))
        self.assertError(reply, -32600, "m")

    @defer.inlineCallbacks
    def test_params_as_array_is_invalid_params(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        reply = yield self.exchange(client, encode(request("ping", 7, [])))
        self.assertError(reply, -32602, 7)
        reply = yield self.exchange(client, encode(request("tell", "t", ["Mud", "bob", "hi"])))
        self.assertError(reply, -32602, "t")

    @defer.inlineCallbacks
    def test_unknown_method(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=None)
        reply = yield self.exchange(client, encode(request("no_such_method", 8)))
        self.assertError(reply, -32601, 8)
        yield client.call("authenticate", {"api_key": API_KEY})
        yield self.assertCallFails(client, "channel_send_all", {}, -32601)

    @defer.inlineCallbacks
    def test_unknown_params_are_ignored(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        result = yield client.call("ping", {"refresh": True, "extra": [1, 2]})
        self.assertIs(result["pong"], True)
        result = yield client.call("mudlist", {"refresh": True, "filters": {"x": 1}})
        self.assertEqual(result["status"], "success")
        self.assertIn(MUD, [m["name"] for m in result["muds"]])

    # -- notifications and batches ---------------------------------------------

    @defer.inlineCallbacks
    def test_notifications_are_executed_and_never_answered(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        for message in (
            request("ping", notification=True),
            request("channel_join", params={"channel": "dchat"}, notification=True),
            request("no_such_method", notification=True),
            request("tell", params={}, notification=True),              # -32602
            request("heartbeat", params=[1], notification=True),        # -32602
        ):
            client.send_raw(encode(message))
        yield self.assertNothingUnmatched(client)
        # The notification ran: the session joined the channel.
        listing = yield client.call("channel_list")
        self.assertIn("dchat", listing["subscribed_channels"])
        yield router.wait_for(lambda r: MUD in r.listening.get("dchat", ()))

    @defer.inlineCallbacks
    def test_failing_notification_before_authentication_is_not_answered(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=None)
        client.send_raw(encode(request("heartbeat", notification=True)))       # -32000
        client.send_raw(encode(request("authenticate", params={"api_key": "wrong"}, notification=True)))
        yield self.assertNothingUnmatched(client)
        # A good authenticate sent as a notification still runs.
        client.send_raw(encode(request("authenticate", params={"api_key": API_KEY}, notification=True)))
        result = yield client.call("heartbeat")
        self.assertEqual(result["status"], "ok")
        self.assertEqual(client.unmatched, [])

    @defer.inlineCallbacks
    def test_batch_members_run_in_order_and_only_ids_are_answered(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=None)
        batch = [
            request("authenticate", "auth", {"api_key": API_KEY}),
            request("heartbeat", notification=True),
            request("channel_join", 2, {"channel": "dchat"}),
            request("channel_list", 3),
            request("channel_leave", params={"channel": "dchat"}, notification=True),
            request("channel_list", 4),
            request("no_such_method", 5),
        ]
        replies = yield self.exchange(client, encode(batch))
        self.assertIsInstance(replies, list)
        by_id = {reply["id"]: reply for reply in replies}
        self.assertEqual(sorted(map(str, by_id)), ["2", "3", "4", "5", "auth"])
        # Each member saw the effect of the ones before it.
        self.assertEqual(by_id["auth"]["result"]["status"], "authenticated")
        self.assertEqual(by_id[2]["result"], {"status": "joined", "channel": "dchat"})
        self.assertIn("dchat", by_id[3]["result"]["subscribed_channels"])
        self.assertNotIn("dchat", by_id[4]["result"]["subscribed_channels"])
        self.assertError(by_id[5], -32601, 5)

    @defer.inlineCallbacks
    def test_invalid_batch_members_each_get_an_error(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        replies = yield self.exchange(client, encode([1, request("ping", "ok"), {"id": "no-version"}]))
        self.assertEqual(len(replies), 3)
        by_id = {}
        for reply in replies:
            by_id.setdefault(reply["id"], []).append(reply)
        self.assertError(by_id[None][0], -32600)
        self.assertError(by_id["no-version"][0], -32600, "no-version")
        self.assertIs(by_id["ok"][0]["result"]["pong"], True)

    @defer.inlineCallbacks
    def test_batch_of_notifications_gets_no_reply(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        client.send_raw(encode([request("ping", notification=True),
                                request("no_such_method", notification=True)]))
        yield self.assertNothingUnmatched(client)

    @defer.inlineCallbacks
    def test_empty_batch_is_one_error_object(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        reply = yield self.exchange(client, b"[]")
        self.assertIsInstance(reply, dict)
        self.assertError(reply, -32600)

    @defer.inlineCallbacks
    def test_batch_over_max_batch_is_one_error_object(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        reply = yield self.exchange(client, encode([request("ping", n) for n in range(MAX_BATCH + 1)]))
        self.assertIsInstance(reply, dict)
        self.assertError(reply, -32600)
        replies = yield self.exchange(client, encode([request("ping", n) for n in range(MAX_BATCH)]))
        self.assertEqual(sorted(r["id"] for r in replies), list(range(MAX_BATCH)))

    @defer.inlineCallbacks
    def test_each_batch_member_costs_a_token(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=LIMITED_KEY)      # burst 3
        replies = yield self.exchange(client, encode([request("heartbeat", n) for n in range(4)]))
        by_id = {reply["id"]: reply for reply in replies}
        for n in range(3):
            self.assertEqual(by_id[n]["result"]["status"], "ok")
        self.assertError(by_id[3], -32001, 3)
        self.assertGreater(by_id[3]["error"]["data"]["retry_after"], 0)

    # -- ids and output -----------------------------------------------------------

    @defer.inlineCallbacks
    def test_ids_are_echoed_exactly(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        for request_id in ("abc", "", "17", 0, -3, 2 ** 53 + 1, None):
            reply = yield self.exchange(client, encode(request("heartbeat", request_id)))
            self.assertEqual(reply["id"], request_id)
            self.assertIs(type(reply["id"]), type(request_id))
            self.assertEqual(reply["result"]["status"], "ok")
        # Errors keep the id too.
        reply = yield self.exchange(client, encode(request("tell", "err-1", {})))
        self.assertError(reply, -32602, "err-1")

    @defer.inlineCallbacks
    def test_output_is_compact_utf8_not_ascii_escaped(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        request_id = "caf\u00e9-\u2603-\u6f22"
        reply = yield self.exchange(client, encode(request("ping", request_id)))
        self.assertEqual(reply["id"], request_id)
        raw = client.payloads[-1]
        self.assertIn(request_id.encode("utf-8"), raw)
        self.assertNotIn(b"\\u", raw)
        self.assertNotIn(b'": ', raw)
        self.assertNotIn(b'", ', raw)
        # Events too: a channel message from the network with non-ASCII text.
        yield client.call("channel_join", {"channel": "dchat"})
        text = "gr\u00fc\u00dfe \u2603 \u4f60\u597d"
        router.send_packet(MUD, channel_packet(text))
        event = yield client.event("channel_message")
        self.assertEqual(event["message"], text)
        raw = next(p for p in client.payloads if b"channel_message" in p)
        self.assertIn(text.encode("utf-8"), raw)
        self.assertNotIn(b"\\u", raw)

    # -- authentication, permissions, limits -------------------------------------

    @defer.inlineCallbacks
    def test_everything_but_authenticate_and_ping_needs_authentication(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=None)
        result = yield client.call("ping")
        self.assertIs(result["pong"], True)
        for method, params in (
            ("heartbeat", None), ("status", None), ("stats", None), ("mudlist", {}),
            ("tell", {"target_mud": MUD, "target_user": "x", "message": "hi"}),
            ("channel_join", {"channel": "dchat"}), ("restore_session", {"session_id": "x"}),
            ("reconnect", None),
        ):
            yield self.assertCallFails(client, method, params, -32000)
        yield self.assertCallFails(client, "authenticate", {"api_key": "wrong-key"}, -32000)
        yield self.assertCallFails(client, "heartbeat", None, -32000)
        result = yield client.call("authenticate", {"api_key": API_KEY})
        self.assertEqual(result["status"], "authenticated")

    @defer.inlineCallbacks
    def test_missing_permission_is_denied_naming_it(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=INFO_KEY)
        status = yield client.call("status")
        self.assertEqual(status["mud_name"], MUD)
        heartbeat = yield client.call("heartbeat")
        self.assertEqual(heartbeat["status"], "ok")
        for method, params, permission in (
            ("tell", {"target_mud": MUD, "target_user": "x", "message": "hi"}, "tell"),
            ("emoteto", {"target_mud": MUD, "target_user": "x", "emote": "waves"}, "tell"),
            ("channel_join", {"channel": "dchat"}, "channel"),
            ("channel_send", {"channel": "dchat", "message": "hi"}, "channel"),
            ("presence_sync", {"users": []}, "presence"),
            ("reconnect", None, "admin"),
            ("reload_config", None, "admin"),
        ):
            failure = yield self.assertCallFails(client, method, params, -32002)
            self.assertEqual(failure.data, {"permission": permission})
        self.assertNotIn(MUD, router.listening.get("dchat", ()))

    @defer.inlineCallbacks
    def test_per_method_rate_limit_gives_retry_after(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        for _ in range(2):                                      # burst 2 for mudlist
            yield client.call("mudlist")
        failure = yield self.assertCallFails(client, "mudlist", None, -32001)
        self.assertGreater(failure.data["retry_after"], 0)
        self.assertLessEqual(failure.data["retry_after"], 60)
        # Other methods still have tokens; ping is never limited.
        yield client.call("heartbeat")
        for _ in range(30):
            yield client.call("ping")
        # authenticate is never limited either, even for a key of burst 3.
        limited = yield self.connect(svc, key=LIMITED_KEY)
        for _ in range(6):
            result = yield limited.call("authenticate", {"api_key": LIMITED_KEY})
            self.assertEqual(result["status"], "success")

    @defer.inlineCallbacks
    def test_unknown_session_is_expired(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        yield self.assertCallFails(client, "restore_session", {"session_id": "no-such-session"}, -32003)
        fresh = yield self.connect(svc, key=None)
        yield self.assertCallFails(
            fresh, "authenticate", {"api_key": API_KEY, "session_id": "no-such-session"}, -32003)
        # Another key's session looks just like an unknown one.
        other = yield self.connect(svc, key=INFO_KEY)
        yield self.assertCallFails(client, "restore_session", {"session_id": other.session_id}, -32003)

    # -- sessions -------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_authenticate_gives_a_session_and_again_says_success(self):
        router, svc = yield self.start()
        client = yield self.connect(svc, key=None)
        first = yield client.call("authenticate", {"api_key": API_KEY})
        self.assertEqual(set(first), {"status", "mud_name", "session_id", "resumed", "replayed", "dropped"})
        self.assertEqual(first["status"], "authenticated")
        self.assertEqual(first["mud_name"], MUD)
        self.assertGreaterEqual(len(first["session_id"]), 22)       # >= 128 bits in base64
        self.assertEqual((first["resumed"], first["replayed"], first["dropped"]), (False, 0, 0))
        again = yield client.call("authenticate", {"api_key": API_KEY})
        self.assertEqual(again, dict(first, status="success"))
        status = yield client.call("status")
        self.assertEqual(status["session_id"], first["session_id"])

    @defer.inlineCallbacks
    def test_detached_session_keeps_channel_and_replays_in_order(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        watcher = yield self.tcp(svc)
        for each in (client, watcher):
            yield each.call("channel_join", {"channel": "dchat"})
        yield client.disconnect()
        yield api_connections_closed(svc, lambda: svc.gateway.sessions.attached_count() == 1)
        # Detached, the session keeps its subscription: the router still sends.
        self.assertIn(MUD, router.listening["dchat"])
        texts = [f"while away {n}" for n in range(QUEUE_SIZE + 2)]
        for text in texts:
            router.send_packet(MUD, channel_packet(text))
        yield watcher.event("channel_message", lambda p: p["message"] == texts[-1])
        self.assertIn(MUD, router.listening["dchat"])
        # A new connection takes the session back: the newest QUEUE_SIZE
        # events come first, in order, then the authenticate reply.
        back = yield self.connect(svc, key=None)
        result = yield back.call("authenticate", {"api_key": API_KEY, "session_id": client.session_id})
        self.assertEqual(result["status"], "authenticated")
        self.assertEqual(result["session_id"], client.session_id)
        self.assertEqual((result["resumed"], result["replayed"], result["dropped"]), (True, QUEUE_SIZE, 2))
        self.assertEqual([e["params"]["message"] for e in back.events], texts[2:])
        router.send_packet(MUD, channel_packet("after restore"))
        event = yield back.event("channel_message", lambda p: p["message"] == "after restore")
        self.assertEqual(event["channel"], "dchat")
        self.assertEqual((event["from_mud"], event["from_user"], event["visname"]), ("OtherMud", "bob", "Bob"))
        self.assertRegex(event["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        self.assertEqual([e["params"]["message"] for e in back.events[:QUEUE_SIZE]], texts[2:])

    @defer.inlineCallbacks
    def test_restore_session_on_a_new_authenticated_connection(self):
        router, svc = yield self.start()
        client = yield self.connect(svc)
        yield client.call("channel_join", {"channel": "dchat"})
        yield client.disconnect()
        yield api_connections_closed(svc, lambda: svc.gateway.sessions.attached_count() == 0)
        router.send_packet(MUD, channel_packet("kept"))
        back = yield self.connect(svc)
        yield gateway_sees(svc, lambda: len(svc.gateway.sessions.get(client.session_id).queue) == 1,
                           "the detached session kept the message")
        result = yield back.call("restore_session", {"session_id": client.session_id})
        self.assertEqual(result["session_id"], client.session_id)
        self.assertEqual((result["resumed"], result["replayed"], result["dropped"]), (True, 1, 0))
        self.assertEqual([e["params"]["message"] for e in back.events], ["kept"])
        # The session the connection held before is gone; the restored one works.
        status = yield back.call("status")
        self.assertEqual(status["session_id"], client.session_id)
        yield self.assertCallFails(back, "restore_session", {"session_id": back.session_id}, -32003)

    # -- a client that stops reading ---------------------------------------------

    @defer.inlineCallbacks
    def test_slow_client_does_not_delay_others_and_is_dropped(self):
        router, svc = yield self.start(
            api={"max_send_buffer_bytes": 16384, "session": {"max_queue_size": 100000}})
        slow = yield self.connect(svc, narrow=True)
        fast = yield self.tcp(svc)
        for each in (slow, fast):
            yield each.call("channel_join", {"channel": "dchat"})
        slow.transport.pauseProducing()         # stops reading its socket
        filler = "x" * 900
        count = 0
        # Events until the gateway gives up on the slow client; every burst
        # must reach the fast one at once.
        while svc.gateway.sessions.get(slow.session_id).attached:
            burst = [f"{count + n} {filler}" for n in range(50)]
            for text in burst:
                router.send_packet(MUD, channel_packet(text))
            # (the wait fails if the burst does not arrive; no timed bound)
            yield fast.event("channel_message", lambda p, last=burst[-1]: p["message"] == last)
            count += len(burst)
            self.assertLess(count, 20000, "the slow client was never dropped")
        session = svc.gateway.sessions.get(slow.session_id)
        self.assertFalse(session.attached)
        slow.transport.resumeProducing()
        yield slow.lost
        # Its session kept what it did not get, for replay, in order.
        kept = [json.loads(data)["params"]["message"] for _, _, data in session.queue]
        self.assertTrue(kept)
        numbers = [int(text.split()[0]) for text in kept]
        self.assertEqual(numbers, list(range(numbers[0], numbers[0] + len(numbers))))
        self.assertEqual(numbers[-1], count - 1)
        back = yield self.connect(svc, key=None)
        result = yield back.call("authenticate", {"api_key": API_KEY, "session_id": slow.session_id})
        self.assertEqual((result["replayed"], result["dropped"]), (len(kept), 0))
        self.assertEqual([e["params"]["message"] for e in back.events], kept)


class TCPRulesTests(RulesMixin, GatewayTestCase):
    def connect(self, svc, key=API_KEY, narrow=False):
        return self.tcp(svc, key=key, narrow=narrow)


class WebSocketRulesTests(RulesMixin, GatewayTestCase):
    def connect(self, svc, key=API_KEY, narrow=False):
        return self.ws(svc, key=key, narrow=narrow)


# -- sessions across transports, expiry -------------------------------------------

class SessionTests(GatewayTestCase):

    @defer.inlineCallbacks
    def test_tcp_session_restored_over_websocket(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        yield client.call("channel_join", {"channel": "dchat"})
        yield client.disconnect()
        yield api_connections_closed(svc, lambda: svc.gateway.sessions.attached_count() == 0)
        for n in range(2):
            router.send_packet(MUD, channel_packet(f"kept {n}"))
        # Wait for the gateway to have handled both, through an observer.
        watcher = yield self.tcp(svc)
        yield watcher.call("channel_join", {"channel": "dchat"})
        router.send_packet(MUD, channel_packet("kept 2"))
        yield watcher.event("channel_message", lambda p: p["message"] == "kept 2")
        back = yield self.ws(svc, key=None, headers={"X-API-Key": API_KEY})
        result = yield back.call("restore_session", {"session_id": client.session_id}, request_id="r-1")
        self.assertEqual((result["resumed"], result["replayed"], result["dropped"]), (True, 3, 0))
        self.assertEqual([e["params"]["message"] for e in back.events], ["kept 0", "kept 1", "kept 2"])
        status = yield back.call("status")
        self.assertEqual(status["session_id"], client.session_id)

    @defer.inlineCallbacks
    def test_detached_session_expires_after_the_timeout(self):
        router, svc = yield self.start(api={"session": {"timeout": 0.2}})
        client = yield self.ws(svc)
        yield client.call("channel_join", {"channel": "dchat"})
        yield router.wait_for(lambda r: MUD in r.listening.get("dchat", ()))
        yield client.disconnect()
        # Past the timeout the session ends and its channel is let go.
        yield router.wait_for(lambda r: MUD not in r.listening.get("dchat", ()))
        self.assertEqual(svc.gateway.sessions.count(), 0)
        back = yield self.tcp(svc, key=None)
        yield RulesMixin.assertCallFails(
            self, back, "authenticate", {"api_key": API_KEY, "session_id": client.session_id}, -32003)
        yield back.call("authenticate", {"api_key": API_KEY})
        yield RulesMixin.assertCallFails(
            self, back, "restore_session", {"session_id": client.session_id}, -32003)


# -- WebSocket specifics ------------------------------------------------------------

class WebSocketTests(GatewayTestCase):

    @defer.inlineCallbacks
    def test_invalid_utf8_closes_1007_with_no_reply(self):
        # RFC 6455 section 8.1: not -32700 as on TCP.
        router, svc = yield self.start()
        client = yield self.ws(svc)
        seen = len(client.payloads)
        client.send_raw(b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":"\xff\xfe"}}')
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1007)
        yield client.lost
        self.assertEqual(client.payloads[seen:], [])
        status = yield (yield self.tcp(svc)).call("status")
        self.assertTrue(status["connected"])

    @defer.inlineCallbacks
    def test_header_key_and_string_ids_like_older_client_libraries(self):
        router, svc = yield self.start()
        client = yield self.ws(svc, key=None, headers={"X-API-Key": API_KEY})
        # Authenticated by the header: no authenticate call needed.
        result = yield client.call("heartbeat", request_id="req-1")
        self.assertEqual(result["status"], "ok")
        status = yield client.call("status", request_id="req-2")
        self.assertEqual(status["mud_name"], MUD)
        self.assertTrue(status["connected"])
        again = yield client.call("authenticate", {"api_key": API_KEY}, request_id="req-3")
        self.assertEqual(again["status"], "success")
        self.assertEqual(again["session_id"], status["session_id"])
        self.assertEqual(svc.gateway.sessions.count(), 1)

    @defer.inlineCallbacks
    def test_browser_authenticates_by_call(self):
        # A browser page's origin must be listed (none is by default).
        router, svc = yield self.start(api={"websocket": {"allowed_origins": ["http://localhost:8000"]}})
        client = yield self.ws(svc, key=None, headers={"Origin": "http://localhost:8000"})
        yield RulesMixin.assertCallFails(self, client, "heartbeat", None, -32000)
        result = yield client.call("authenticate", {"api_key": API_KEY})
        self.assertEqual(result["status"], "authenticated")
        self.assertTrue(result["session_id"])
        yield client.call("heartbeat")

    @defer.inlineCallbacks
    def test_bad_header_key_is_http_401_without_upgrade(self):
        router, svc = yield self.start()
        status, headers, body = yield self.http(svc, "/ws", (
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            b"X-API-Key: wrong-key\r\n"))
        self.assertEqual(status, 401)
        self.assertNotIn("sec-websocket-accept", headers)
        # A client library sees the handshake fail, never an open socket.
        client = yield connect_ws(svc.web_listener.getHost().port,
                                  headers={"X-API-Key": "wrong-key"}, wait_open=False)
        yield self.assertFailure(client.opened, WSClosed)
        yield client.lost
        self.assertEqual(svc.gateway.api_connections.count(), 0)
        self.assertEqual(svc.gateway.sessions.count(), 0)

    @defer.inlineCallbacks
    def test_binary_frame_closes_1003(self):
        router, svc = yield self.start()
        client = yield self.ws(svc)
        other = yield self.ws(svc)
        client.send_raw(b"\x00\x01binary", binary=True)
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1003)
        yield client.lost
        result = yield other.call("ping")
        self.assertIs(result["pong"], True)

    @defer.inlineCallbacks
    def test_peer_that_stops_answering_pings_is_dropped(self):
        router, svc = yield self.start(api={"websocket": {"ping_interval": 0.05, "ping_timeout": 0.1}})
        client = yield self.ws(svc)
        lively = yield self.ws(svc)
        client.transport.pauseProducing()      # reads nothing, so answers no ping
        yield api_connections_closed(svc, lambda: svc.gateway.sessions.attached_count() == 1)
        self.assertFalse(svc.gateway.sessions.get(client.session_id).attached)
        client.transport.resumeProducing()
        yield client.lost
        # A peer that answers its pings stays.
        result = yield lively.call("ping")
        self.assertIs(result["pong"], True)

    @defer.inlineCallbacks
    def test_oversized_message_closes_1009(self):
        router, svc = yield self.start()
        client = yield self.ws(svc)
        # Exactly at the bound is fine; one byte over is not.
        padding = "x" * (MAX_BYTES - len(encode(request("ping", ""))))
        exact = encode(request("ping", padding))
        self.assertEqual(len(exact), MAX_BYTES)
        result = yield client.call("ping", request_id=padding)
        self.assertIs(result["pong"], True)
        client.send_raw(encode(request("ping", padding + "x")))
        was_clean, code, reason = yield client.closed
        self.assertEqual(code, 1009)


# -- both transports at once: auth disabled, idle timeout, stop ------------------------

class LifecycleTests(GatewayTestCase):

    @defer.inlineCallbacks
    def test_auth_disabled_authenticates_on_connect(self):
        router, svc = yield self.start(api={"auth": {"enabled": False}})
        tcp = yield self.tcp(svc, key=None)
        self.assertEqual(json.loads(tcp.payloads[0])["params"]["authentication"], "none")
        ws = yield self.ws(svc, key=None)
        for client in (tcp, ws):
            result = yield client.call("heartbeat")
            self.assertEqual(result["status"], "ok")
            result = yield client.call("authenticate", {"api_key": "anything at all"})
            self.assertEqual(result["mud_name"], MUD)
            self.assertTrue(result["session_id"])
            status = yield client.call("status")
            self.assertEqual(status["session_id"], result["session_id"])

    @defer.inlineCallbacks
    def test_tcp_idle_timeout_closes(self):
        router, svc = yield self.start(api={"tcp": {"idle_timeout": 0.1}})
        client = yield self.tcp(svc)
        yield client.closed
        self.assertFalse(svc.gateway.sessions.get(client.session_id).attached)

    @defer.inlineCallbacks
    def test_stopping_the_gateway_closes_clients_1001(self):
        router, svc = yield self.start()
        tcp = yield self.tcp(svc)
        ws = yield self.ws(svc)
        stopped = self.loop.stop_gateway(svc)
        was_clean, code, reason = yield ws.closed
        self.assertEqual(code, 1001)
        yield tcp.closed
        yield ws.lost
        yield stopped
        yield router.wait_for(lambda r: MUD not in r.connections)
        self.assertTrue(any(mud == MUD and p[0] == "shutdown" for mud, p in router.received))


# -- TCP specifics ----------------------------------------------------------------

class TCPTests(GatewayTestCase):

    @defer.inlineCallbacks
    def test_invalid_utf8_is_a_parse_error(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        reply = yield RulesMixin.exchange(
            self, client, b'{"jsonrpc":"2.0","id":4,"method":"ping","params":{"x":"\xff\xfe"}}')
        RulesMixin.assertError(self, reply, -32700)
        # The connection is still good.
        yield RulesMixin.assertNothingUnmatched(self, client)

    @defer.inlineCallbacks
    def test_welcome_line_is_exact(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc, key=None)
        self.assertEqual(json.loads(client.payloads[0]), {
            "jsonrpc": "2.0", "method": "welcome",
            "params": {"service": "i3-gateway", "version": __version__,
                       "protocol": "JSON-RPC 2.0", "authentication": "required"}})
        self.assertEqual(client.payloads[0], json.dumps(
            json.loads(client.payloads[0]), separators=(",", ":")).encode())

    @defer.inlineCallbacks
    def test_crlf_and_blank_lines(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        client.transport.write(b"\r\n\n   \n\t\r\n" + encode(request("ping", 1)) + b"\r\n")
        reply = yield client.next_unmatched()
        self.assertEqual(reply["id"], 1)
        self.assertIs(reply["result"]["pong"], True)
        yield RulesMixin.assertNothingUnmatched(self, client)

    @defer.inlineCallbacks
    def test_utf8_character_split_across_writes_arrives_intact(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        other = yield self.tcp(svc)
        request_id = "\u6f22\u5b57-\u00e9"
        line = encode(request("ping", request_id)) + b"\n"
        cut = line.index("\u6f22".encode("utf-8")) + 1        # inside the 3-byte character
        client.transport.write(line[:cut])
        # A round trip of another client: the first half has been read by now.
        yield other.call("ping")
        client.transport.write(line[cut:])
        reply = yield client.next_unmatched()
        self.assertEqual(reply["id"], request_id)

    @defer.inlineCallbacks
    def test_line_too_long_is_refused_then_closed_others_unaffected(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        other = yield self.tcp(svc)
        client.send_raw(encode(request("ping", "x" * MAX_BYTES)))
        reply = yield client.next_unmatched()
        self.assertEqual(reply["error"]["code"], -32600)
        self.assertEqual(reply["error"]["message"], "line too long")
        self.assertIsNone(reply["id"])
        yield client.closed
        result = yield other.call("ping")
        self.assertIs(result["pong"], True)
        # Its session outlives the connection, as for any disconnect.
        self.assertTrue(svc.gateway.sessions.get(client.session_id) is not None)

    @defer.inlineCallbacks
    def test_garbage_bytes_leave_process_and_other_clients_fine(self):
        router, svc = yield self.start()
        other = yield self.tcp(svc)
        rng = random.Random(3)
        for _ in range(3):
            client = yield self.tcp(svc, key=None)
            garbage = bytes(rng.randrange(256) for _ in range(3000))
            client.transport.write(garbage + b"\n")
            try:
                result = yield client.call("ping")
            except ConnectionError:
                pass     # closed (e.g. a line over the bound): allowed
            else:
                self.assertIs(result["pong"], True)
                for reply in client.unmatched:
                    self.assertIn(reply["error"]["code"], (-32700, -32600))
            yield client.disconnect()
        result = yield other.call("status")
        self.assertTrue(result["connected"])
        self.assertTrue(svc.running)

    @defer.inlineCallbacks
    def test_max_connections_counts_both_transports(self):
        router, svc = yield self.start(api={"max_connections": 2})
        first = yield self.tcp(svc)
        second = yield self.ws(svc)
        refused = yield self.tcp(svc, key=None, welcome=False)
        reply = yield refused.next_unmatched()
        self.assertEqual(reply, {"jsonrpc": "2.0", "id": None,
                                 "error": {"code": -32000, "message": "too many connections"}})
        yield refused.closed
        status, headers, body = yield self.http(svc, "/ws", (
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"))
        self.assertEqual(status, 503)
        # One leaves: the next one is let in.
        yield first.disconnect()
        yield api_connections_closed(svc, lambda: svc.gateway.api_connections.count() == 1)
        third = yield self.ws(svc)
        result = yield third.call("ping")
        self.assertIs(result["pong"], True)
        yield second.call("ping")


# -- link and housekeeping on a live gateway --------------------------------------

MUD_INFO_UP = [-1, "127.0.0.1", 5000, 0, 0, "Lib", "Lib", "Driver", "LP", "open", "a@b.c", {"tell": 1}, 0]


def file_config(router, state_dir, keys=KEYS, presence_ttl=120):
    """The raw YAML mapping of a gateway config file (reload tests)."""
    return {
        "mud": {"name": MUD, "port": 4000},
        "routers": [{"name": router.name, "host": "127.0.0.1", "port": router.port}],
        "router": {"connect_timeout": 2, "handshake_timeout": 2, "send_rate": 0,
                   "backoff": {"initial": 0.05, "max": 0.2, "factor": 2, "jitter": False}},
        "api": {"host": "127.0.0.1", "port": 0, "tcp": {"port": 0},
                "auth": {"api_keys": keys},
                "rate_limits": {"default": {"per_minute": 6000, "burst": 1000}, "by_method": {}}},
        "presence": {"ttl": presence_ttl},
        "state": {"directory": state_dir},
        "logging": {"level": "warn"},
    }


class HousekeepingTests(GatewayTestCase):

    def assertTimestamp(self, value):
        self.assertRegex(value, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

    @defer.inlineCallbacks
    def test_ping_and_heartbeat(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        pong = yield client.call("ping")
        self.assertEqual(set(pong), {"pong", "timestamp"})
        self.assertIs(pong["pong"], True)
        self.assertTimestamp(pong["timestamp"])
        beat = yield client.call("heartbeat")
        self.assertEqual(set(beat), {"status", "timestamp"})
        self.assertEqual(beat["status"], "ok")
        self.assertTimestamp(beat["timestamp"])

    @defer.inlineCallbacks
    def test_status_of_a_ready_link(self):
        router = self.loop.router()
        before_start = reactor.seconds()
        router, svc = yield self.start(router)
        after_start = reactor.seconds()
        client = yield self.tcp(svc, key=None)
        before_auth = reactor.seconds()
        auth = yield client.call("authenticate", {"api_key": API_KEY})
        after_auth = reactor.seconds()
        asked = reactor.seconds()
        status = yield client.call("status")
        answered = reactor.seconds()
        self.assertEqual(set(status), {"connected", "router", "router_address", "mud_name", "session_id",
                                       "uptime", "session_uptime", "state"})
        self.assertIs(status["connected"], True)
        self.assertEqual(status["state"], "ready")
        self.assertEqual(status["router"], "*test")
        self.assertEqual(status["router_address"], f"127.0.0.1:{router.port}")
        self.assertEqual(status["mud_name"], MUD)
        self.assertEqual(status["session_id"], auth["session_id"])
        slack = 0.002   # rounding to milliseconds
        # uptime is the gateway's, session_uptime the session's.
        self.assertGreaterEqual(status["uptime"], asked - after_start - slack)
        self.assertLessEqual(status["uptime"], answered - before_start + slack)
        self.assertGreaterEqual(status["session_uptime"], asked - after_auth - slack)
        self.assertLessEqual(status["session_uptime"], answered - before_auth + slack)

    @defer.inlineCallbacks
    def test_status_while_the_link_is_down(self):
        router = self.loop.router()
        router.refuse_startups = True
        router, svc = yield self.start(router, ready=False)
        client = yield self.tcp(svc)
        yield router.wait_for(lambda r: r.rejected)     # the startup it stayed silent on
        status = yield client.call("status")
        self.assertIs(status["connected"], False)
        self.assertIn(status["state"], ("connecting", "handshaking", "backoff"))
        stats = yield client.call("stats")
        self.assertIs(stats["gateway_connected"], False)

    @defer.inlineCallbacks
    def test_stats_count_for_real(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        first = yield client.call("stats")
        self.assertEqual(set(first), {
            "mud_count", "online_muds", "channel_count", "session_count", "mudlist_id", "chanlist_id",
            "gateway_connected", "packets_sent", "packets_received", "reconnects", "queued_outbound"})
        self.assertIs(first["gateway_connected"], True)
        self.assertEqual(first["channel_count"], len(router.channels))
        self.assertEqual(first["session_count"], 1)
        self.assertEqual(first["reconnects"], 0)
        self.assertEqual(first["queued_outbound"], 0)
        self.assertGreaterEqual(first["packets_sent"], 1)          # startup-req-3
        self.assertGreaterEqual(first["packets_received"], 2)      # startup-reply, mudlist...
        self.assertEqual(first["mud_count"], len(router.muds))
        # Another MUD comes up; we send and receive on a channel.
        router.set_mud("OtherMud", MUD_INFO_UP)
        yield client.call("channel_join", {"channel": "dchat"})
        yield client.call("channel_send", {"channel": "dchat", "message": "hello"})
        router.send_packet(MUD, channel_packet("hi back"))
        yield client.event("channel_message", lambda p: p["message"] == "hi back")
        yield self.tcp(svc)
        second = yield client.call("stats")
        self.assertEqual(second["mud_count"], first["mud_count"] + 1)
        self.assertEqual(second["online_muds"], first["online_muds"] + 1)
        self.assertEqual(second["mudlist_id"], router.mudlist_id)
        self.assertEqual(second["chanlist_id"], router.chanlist_id)
        self.assertEqual(second["session_count"], 2)
        self.assertGreaterEqual(second["packets_sent"], first["packets_sent"] + 2)     # listen + message
        self.assertGreaterEqual(second["packets_received"], first["packets_received"] + 2)
        sent = sum(1 for mud, _ in router.received if mud == MUD)
        self.assertEqual(second["packets_sent"], sent)

    @defer.inlineCallbacks
    def test_reconnect_reopens_the_link(self):
        router, svc = yield self.start()
        client = yield self.tcp(svc)
        def startups(r):
            return sum(1 for mud, p in r.received if mud == MUD and p[0] == "startup-req-3")
        self.assertEqual(startups(router), 1)
        result = yield client.call("reconnect")
        self.assertEqual(result, {"status": "reconnecting"})
        event = yield client.event("gateway_disconnected")
        self.assertEqual(event["router"], "*test")
        self.assertIsInstance(event["reason"], str)
        yield router.wait_for(lambda r: startups(r) == 2)
        event = yield client.event("gateway_reconnected")
        self.assertEqual(event["status"], "connected")
        yield link_ready(svc)
        stats = yield client.call("stats")
        self.assertEqual(stats["reconnects"], 1)
        self.assertIs(stats["gateway_connected"], True)

    # -- reload_config ------------------------------------------------------------

    @defer.inlineCallbacks
    def file_gateway(self, router):
        directory = tempfile.mkdtemp(dir=self.scratch)
        path = os.path.join(directory, "gateway.yaml")
        self.write(path, file_config(router, os.path.join(directory, "state")))
        svc = GatewayService(configuration.load(path, environ={}), config_path=path, reactor=reactor)
        svc.startService()
        self.addCleanup(lambda: svc.stopService() if svc.running else None)
        self.addCleanup(self.all_closed, svc)
        yield link_ready(svc)
        return svc, path, directory

    @staticmethod
    def write(path, raw):
        with open(path, "w") as f:
            f.write(raw if isinstance(raw, str) else yaml.safe_dump(raw))

    @defer.inlineCallbacks
    def test_reload_config_applies_rejects_and_removes_keys(self):
        router = self.loop.router()
        svc, path, directory = yield self.file_gateway(router)
        state = os.path.join(directory, "state")
        admin = yield self.tcp(svc)
        info = yield self.ws(svc, key=INFO_KEY)
        # A changed file applies.
        self.write(path, file_config(router, state, presence_ttl=30))
        result = yield admin.call("reload_config")
        self.assertEqual(result, {"status": "reloaded", "changed": ["presence.ttl"]})
        self.assertEqual(svc.gateway.config.presence.ttl, 30)
        # A broken file is rejected and the config in force stays.
        broken = file_config(router, state, presence_ttl=-5)
        broken["api"]["no_such_key"] = 1
        self.write(path, broken)
        result = yield admin.call("reload_config")
        self.assertEqual(result["status"], "rejected")
        self.assertEqual(set(result), {"status", "errors"})
        self.assertTrue(any("no_such_key" in error for error in result["errors"]), result)
        self.assertTrue(any("presence.ttl" in error for error in result["errors"]), result)
        self.assertEqual(svc.gateway.config.presence.ttl, 30)
        self.write(path, "mud: [unclosed\n")
        result = yield admin.call("reload_config")
        self.assertEqual(result["status"], "rejected")
        self.assertTrue(result["errors"])
        # A listening port cannot change live: the rest still applies.
        moved = file_config(router, state, presence_ttl=45)
        moved["api"]["tcp"]["port"] = svc.tcp_listener.getHost().port + 1
        self.write(path, moved)
        result = yield admin.call("reload_config")
        self.assertEqual(result["status"], "reloaded")
        self.assertEqual(result["changed"], ["presence.ttl"])
        self.assertEqual(result["restart_required"], ["api.tcp.port"])
        self.assertEqual(svc.gateway.config.presence.ttl, 45)
        self.assertEqual(svc.gateway.config.api.tcp.port, 0)
        # Removing a key ends its sessions; the others stay.
        self.write(path, file_config(router, state, keys=[KEYS[0]], presence_ttl=45))
        result = yield admin.call("reload_config")
        self.assertEqual(result, {"status": "reloaded", "changed": ["api.auth.api_keys"]})
        yield info.lost
        self.assertIsNone(svc.gateway.sessions.get(info.session_id))
        again = yield self.ws(svc, key=None)
        yield RulesMixin.assertCallFails(self, again, "authenticate", {"api_key": INFO_KEY}, -32000)
        status = yield admin.call("status")
        self.assertEqual(status["session_id"], admin.session_id)


# -- HTTP on the WebSocket's port ---------------------------------------------------

class HTTPTests(GatewayTestCase):

    @defer.inlineCallbacks
    def get_json(self, svc, path):
        code, headers, body = yield self.http(svc, path)
        self.assertTrue(headers["content-type"].startswith("application/json"), headers)
        return code, json.loads(body)

    @defer.inlineCallbacks
    def test_health_live_and_info(self):
        router, svc = yield self.start()
        yield self.tcp(svc)
        yield self.ws(svc)
        yield self.ws(svc, key=None)
        code, health = yield self.get_json(svc, "/health")
        self.assertEqual(code, 200)
        self.assertEqual(set(health), {"status", "service", "version", "websocket_connections",
                                       "tcp_connections", "active_sessions", "router"})
        self.assertEqual((health["status"], health["service"]), ("healthy", "i3-gateway"))
        self.assertEqual((health["websocket_connections"], health["tcp_connections"]), (2, 1))
        self.assertEqual(health["active_sessions"], 2)
        self.assertEqual(set(health["router"]), {"state", "name", "address", "connected_since", "last_errors"})
        self.assertEqual(health["router"]["state"], "ready")
        self.assertEqual(health["router"]["name"], "*test")
        self.assertEqual(health["router"]["address"], f"127.0.0.1:{router.port}")
        self.assertTrue(health["router"]["connected_since"].endswith("Z"))
        code, live = yield self.get_json(svc, "/health/live")
        self.assertEqual((code, live), (200, {"status": "alive"}))
        code, info = yield self.get_json(svc, "/api/info")
        self.assertEqual(code, 200)
        self.assertEqual(info["protocol"], "JSON-RPC 2.0")
        self.assertEqual(info["transports"], ["websocket", "tcp"])
        self.assertEqual(info["authentication"], "api_key")
        self.assertEqual(info["version"], health["version"])
        for method in ("authenticate", "restore_session", "ping", "heartbeat", "status", "stats",
                       "reconnect", "reload_config", "tell", "emoteto", "channel_send", "channel_emote",
                       "channel_target", "channel_join", "channel_leave", "channel_list", "channel_who",
                       "channel_history", "channel_admin", "who", "finger", "locate", "mudlist",
                       "mud_info", "presence_sync"):
            self.assertIn(method, info["methods"])
        for event in ("tell_received", "emoteto_received", "channel_message", "channel_emote",
                      "channel_targeted", "who_reply", "finger_reply", "locate_reply", "chan_who_reply",
                      "error_occurred", "mud_online", "mud_offline", "gateway_connected",
                      "gateway_disconnected", "gateway_reconnected", "message_sent", "message_expired"):
            self.assertIn(event, info["events"])

    @defer.inlineCallbacks
    def test_unknown_path_is_json_404(self):
        router, svc = yield self.start()
        for path in ("/nope", "/health/nope", "/api", "/api/info/more"):
            code, body = yield self.get_json(svc, path)
            self.assertEqual(code, 404, path)
            self.assertIsInstance(body, dict)

    @defer.inlineCallbacks
    def test_ready_only_after_the_startup_reply(self):
        router = self.loop.router()
        router.refuse_startups = True
        router, svc = yield self.start(router, ready=False, router={"handshake_timeout": 0.2})
        yield router.wait_for(lambda r: r.rejected)     # the startup it stayed silent on
        code, body = yield self.get_json(svc, "/health/ready")
        self.assertEqual(code, 503)
        self.assertEqual(body["status"], "not_ready")
        self.assertIsInstance(body["reason"], str)
        code, health = yield self.get_json(svc, "/health")
        self.assertEqual(code, 200)
        self.assertNotEqual(health["router"]["state"], "ready")
        router.refuse_startups = False
        yield link_ready(svc)
        code, body = yield self.get_json(svc, "/health/ready")
        self.assertEqual((code, body), (200, {"status": "ready"}))

    @defer.inlineCallbacks
    def test_metrics_exposition(self):
        from prometheus_client.parser import text_string_to_metric_families

        router, svc = yield self.start()
        client = yield self.tcp(svc)
        stranger = yield self.ws(svc, key=None)
        yield client.call("ping")
        yield client.call("channel_join", {"channel": "dchat"})
        yield RulesMixin.assertCallFails(self, client, "no_such_method", None, -32601)
        yield RulesMixin.assertCallFails(self, stranger, "heartbeat", None, -32000)
        router.send_packet(MUD, channel_packet("counted"))
        yield client.event("channel_message")
        code, headers, body = yield self.http(svc, "/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(headers["content-type"].startswith("text/plain"), headers)
        kinds = {}
        samples = {}
        for family in text_string_to_metric_families(body.decode("utf-8")):
            kinds[family.name] = family.type
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value

        def value(name, **labels):
            return samples.get((name, tuple(sorted(labels.items()))))

        for name, kind in (
            ("intermud3_router_connected", "gauge"), ("intermud3_router_reconnects", "counter"),
            ("intermud3_packets_received", "counter"), ("intermud3_packets_sent", "counter"),
            ("intermud3_packet_decode_errors", "counter"),
            ("intermud3_router_bytes_received", "counter"), ("intermud3_router_bytes_sent", "counter"),
            ("intermud3_outbound_queue_depth", "gauge"), ("intermud3_mudlist_size", "gauge"),
            ("intermud3_chanlist_size", "gauge"), ("intermud3_api_connections", "gauge"),
            ("intermud3_api_requests", "counter"), ("intermud3_api_request_duration_seconds", "histogram"),
            ("intermud3_events_delivered", "counter"), ("intermud3_events_dropped", "counter"),
        ):
            self.assertEqual(kinds.get(name), kind, name)
        self.assertEqual(value("intermud3_router_connected", router="*test"), 1.0)
        self.assertEqual(value("intermud3_packets_sent_total", type="startup-req-3"), 1.0)
        self.assertGreaterEqual(value("intermud3_packets_received_total", type="startup-reply"), 1.0)
        self.assertGreater(value("intermud3_router_bytes_received_total"), 0)
        self.assertGreater(value("intermud3_router_bytes_sent_total"), 0)
        self.assertEqual(value("intermud3_packet_decode_errors_total"), 0)
        self.assertEqual(value("intermud3_outbound_queue_depth"), 0)
        self.assertEqual(value("intermud3_chanlist_size"), len(router.channels))
        self.assertEqual(value("intermud3_mudlist_size"), len(router.muds))
        self.assertEqual(value("intermud3_api_connections", transport="tcp"), 1)
        self.assertEqual(value("intermud3_api_connections", transport="websocket"), 1)
        self.assertEqual(value("intermud3_api_requests_total", method="ping", outcome="ok"), 1)
        self.assertEqual(value("intermud3_api_requests_total", method="authenticate", outcome="ok"), 1)
        self.assertEqual(value("intermud3_api_requests_total", method="heartbeat",
                               outcome="not_authenticated"), 1)
        self.assertEqual(value("intermud3_api_requests_total", method="unknown",
                               outcome="method_not_found"), 1)
        self.assertEqual(value("intermud3_api_request_duration_seconds_count", method="ping"), 1)
        self.assertEqual(value("intermud3_events_delivered_total", event="channel_message"), 1)
