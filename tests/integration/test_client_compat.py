"""Wire compatibility with the client libraries of the older I3 gateway.

API.md keeps the JSON-RPC API of the best-known existing gateway so that
"MUDs and client libraries written for that API can switch by changing a
URL". Its client libraries are: a Python (aiohttp) and a JavaScript
WebSocket client that authenticate with an `X-API-Key` header and never call
`authenticate`, and a CircleMUD C client that speaks TCP lines, waits for the
`welcome` line, then calls `authenticate`. docs/COMPATIBILITY.md says, client
by client, what each one sends and reads, and where ours differs.

Each test drives a real gateway ("CompatMud", the MUD's own) with the bytes
such a client puts on the wire -- the fixtures below, written from reading
those clients: their key order, spacing, id types and escapes -- and checks
that every reply and event carries each key that client reads, with the type
it expects. A second gateway on the same in-repo router ("FarMud") is the
remote MUD: it answers queries from a presence snapshot and sends the tells
and channel messages that become our events.
"""

import json

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.protocol import ClientCreator, Protocol
from twisted.trial.unittest import TestCase

from tests.integration.harness import API_KEY, Loopback
from tests.integration.waits import gateway_sees

OURS, FAR = "CompatMud", "FarMud"
CHANNEL = "dchat"
FAR_PLAYER = {"name": "Bob", "visname": "Bob", "title": "the Brave", "level": 20,
              "idle": 42, "login_time": 1700000000, "gender": 0, "channels": [CHANNEL]}


# -- the fixtures: what each client writes, byte for byte --------------------------

def python_request(serial, method, params):
    """aiohttp's send_str(json.dumps(...)): default separators, a string id
    "<mud_name>-<counter>-<8 hex>", and params always present ({} for none)."""
    return json.dumps({"jsonrpc": "2.0", "id": f"{OURS}-{serial}-5f2a9c{serial:02x}",
                       "method": method, "params": params})


def javascript_request(serial, method, params):
    """JSON.stringify: compact, a string id "<mudName>-<counter>-<base36>",
    params always present."""
    return json.dumps({"jsonrpc": "2.0", "id": f"{OURS}-{serial}-k2j9x{serial}q",
                       "method": method, "params": params}, separators=(",", ":"))


# The C client (json-c). i3_client.c builds jsonrpc, method, id, params and
# prints with json-c's default "spaced" style, escaping "/" as "\/";
# i3_protocol.c builds jsonrpc, id, method, params in the plain style. A call
# without parameters has no "params" member at all. Every line ends in "\n".
C_AUTHENTICATE = '{ "jsonrpc": "2.0", "method": "authenticate", "id": 1, "params": { "api_key": "%s" } }'
C_HEARTBEAT = '{ "jsonrpc": "2.0", "method": "heartbeat", "id": 2 }'
C_PING = '{"jsonrpc":"2.0","id":3,"method":"ping"}'
C_CALLS = [
    # (line, the keys of "result" the client goes on to read)
    ('{ "jsonrpc": "2.0", "method": "tell", "id": 4, "params": { "from_user": "Alice", '
     '"target_mud": "FarMud", "target_user": "bob", "message": "see http:\\/\\/example.org\\/" } }',
     {"status": str, "message_id": (str, int)}),
    ('{ "jsonrpc": "2.0", "method": "channel_join", "id": 5, "params": { "channel": "dchat", '
     '"user_name": "Alice" } }', {"status": str, "channel": str}),
    ('{ "jsonrpc": "2.0", "method": "channel_send", "id": 6, "params": { "channel": "dchat", '
     '"from_user": "Alice", "message": "hello all" } }', {"status": str}),
    ('{ "jsonrpc": "2.0", "method": "channel_emote", "id": 7, "params": { "channel": "dchat", '
     '"from_user": "Alice", "emote": "$N waves." } }', {"status": str}),
    ('{ "jsonrpc": "2.0", "method": "emoteto", "id": 8, "params": { "from_user": "Alice", '
     '"target_mud": "FarMud", "target_user": "bob", "emote": "smiles." } }', {"status": str}),
    ('{ "jsonrpc": "2.0", "method": "who", "id": 9, "params": { "target_mud": "FarMud", '
     '"from_user": "Alice" } }', {"users": list}),
    ('{ "jsonrpc": "2.0", "method": "finger", "id": 10, "params": { "target_mud": "FarMud", '
     '"target_user": "bob", "from_user": "Alice" } }', {"user_info": dict}),
    ('{ "jsonrpc": "2.0", "method": "locate", "id": 11, "params": { "target_user": "bob", '
     '"from_user": "Alice" } }', {"locations": list}),
    ('{ "jsonrpc": "2.0", "method": "mudlist", "id": 12 }', {"muds": list}),
    ('{ "jsonrpc": "2.0", "method": "channel_list", "id": 13 }', {"channels": list}),
    ('{ "jsonrpc": "2.0", "method": "channel_leave", "id": 14, "params": { "channel": "dchat", '
     '"user_name": "Alice" } }', {"status": str, "channel": str}),
]


def websocket_calls(request):
    """The calls of the Python and JavaScript clients, in their own bytes
    (`request` is python_request or javascript_request), each with the keys
    of "result" that client returns or reads. Their own defaults are sent:
    `listen_only: false`, `refresh: false`, `limit: 100`."""
    return [
        (request(1, "channel_join", {"channel": CHANNEL, "listen_only": False}),
         {"status": str, "channel": str}),
        (request(2, "tell", {"target_mud": FAR, "target_user": "Bob", "message": "hi Bob"}),
         {"status": str, "message_id": (str, int)}),
        (request(3, "emoteto", {"target_mud": FAR, "target_user": "Bob", "message": "grins."}),
         {"status": str, "message_id": (str, int)}),
        (request(4, "channel_send", {"channel": CHANNEL, "message": "hello", "from_user": "Alice"}),
         {"status": str}),
        (request(5, "channel_emote", {"channel": CHANNEL, "message": "$N nods."}), {"status": str}),
        (request(6, "who", {"target_mud": FAR, "filters": {"min_level": 1}}), {"users": list}),
        (request(7, "finger", {"target_mud": FAR, "target_user": "Bob"}),
         {"user_name": str, "user_info": dict}),
        (request(8, "locate", {"target_user": "Bob"}), {"locations": list}),
        (request(9, "mudlist", {"refresh": False}), {"muds": list}),
        (request(10, "mudlist", {"refresh": True, "filter": {"status": "up"}}), {"muds": list}),
        (request(11, "channel_list", {}), {"channels": list}),
        (request(12, "channel_history", {"channel": CHANNEL, "limit": 100}), {"messages": list}),
        (request(13, "status", {}), {"connected": bool, "mud_name": str}),
        (request(14, "stats", {}), {"packets_sent": int, "packets_received": int}),
        (request(15, "ping", {}), {"pong": bool}),
        (request(16, "channel_leave", {"channel": CHANNEL}), {"status": str, "channel": str}),
    ]


# Event params each client reads (the Python and JavaScript libraries hand
# the whole params to the MUD; their examples and the C client read these).
TELL_KEYS = {"from_mud": str, "from_user": str, "to_user": str, "message": str}
CHANNEL_KEYS = {"channel": str, "from_mud": str, "from_user": str, "message": str}


# -- what the clients receive, classified as they classify it ----------------------

class WireLog:
    """Every message one client received, in order, and waits on them.

    Each is checked as all three clients tell replies from events: the
    Python and JavaScript ones by `"id" in message`, the C one by "method"
    (i3_client.c) or "id" (i3_protocol.c). So a reply has an id and no
    method, an event a method and no id.
    """

    def __init__(self, testcase):
        self.testcase = testcase
        self.messages = []
        self._waiters = []

    def add(self, raw):
        message = json.loads(raw)
        self.testcase.assertIsInstance(message, dict, raw)
        if "id" in message:
            self.testcase.assertNotIn("method", message, raw)
            self.testcase.assertTrue("result" in message or "error" in message, raw)
        else:
            self.testcase.assertIsInstance(message.get("method"), str, raw)
            self.testcase.assertIsInstance(message.get("params"), dict, raw)
        self.messages.append(message)
        for waiter in list(self._waiters):
            predicate, d = waiter
            if predicate(message):
                self._waiters.remove(waiter)
                d.callback(message)

    def wait(self, predicate, timeout=5.0):
        for message in self.messages:
            if predicate(message):
                return defer.succeed(message)
        d = defer.Deferred()
        self._waiters.append((predicate, d))
        return d.addTimeout(timeout, reactor)

    def reply(self, request_id):
        return self.wait(lambda m: "id" in m and m["id"] == request_id)

    def event(self, name, predicate=lambda params: True):
        return self.wait(lambda m: "id" not in m and m["method"] == name and predicate(m["params"]))


class WebSocketWire(WebSocketClientProtocol):
    """A WebSocket client that writes given text and logs what it gets."""

    def onOpen(self):
        self.factory.opened.callback(self)

    def onMessage(self, payload, isBinary):
        self.factory.testcase.assertFalse(isBinary)
        self.factory.wire_log.add(payload)

    def onClose(self, wasClean, code, reason):
        if not self.factory.opened.called:
            self.factory.opened.errback(ConnectionError(f"upgrade refused: {reason}"))

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if not self.factory.lost.called:
            self.factory.lost.callback(None)

    def send(self, text):
        self.sendMessage(text.encode("utf-8"))

    def disconnect(self):
        if self.state == self.STATE_OPEN:
            self.sendClose(1000)
        elif self.state != self.STATE_CLOSED and self.transport is not None:
            self.transport.loseConnection()
        return self.factory.lost


class LineWire(Protocol):
    """A TCP client as the C one is: raw bytes out, lines split on "\\n"."""

    def __init__(self, testcase):
        self.testcase = testcase
        self.wire = WireLog(testcase)
        self.received = b""
        self._partial = b""
        self.lost = defer.Deferred()

    def dataReceived(self, data):
        self.received += data
        self._partial += data
        *lines, self._partial = self._partial.split(b"\n")
        for line in lines:
            self.wire.add(line)

    def send(self, text):
        self.transport.write(text.encode("utf-8") + b"\n")

    def connectionLost(self, reason):
        self.lost.callback(None)

    def disconnect(self):
        if not self.lost.called:
            self.transport.loseConnection()
        return self.lost


# -- the two MUDs ---------------------------------------------------------------------

class CompatTestCase(TestCase):
    timeout = 20
    our_api = {}

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = Loopback(self)
        self.router = self.loop.router()
        self.ours = yield self.loop.ready_gateway(OURS, [self.router], api=self.our_api)
        self.far = yield self.loop.ready_gateway(FAR, [self.router])
        yield gateway_sees(self.ours, lambda: FAR in self.ours.gateway.lists.muds, f"{OURS} knows {FAR}")
        yield gateway_sees(self.far, lambda: OURS in self.far.gateway.lists.muds, f"{FAR} knows {OURS}")
        self.far_client = yield self.loop.tcp_client(self.far)
        result = yield self.far_client.call("presence_sync", {"users": [FAR_PLAYER]})
        self.assertEqual(result["status"], "synchronized")
        # The router passes channel messages only from a MUD that listens.
        yield self.far_client.call("channel_join", {"channel": CHANNEL})
        yield self.listening(FAR)

    # clients

    @defer.inlineCallbacks
    def websocket(self, headers=None, path="/ws"):
        port = self.ours.web_listener.getHost().port
        factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}{path}", headers=headers or {})
        factory.protocol = WebSocketWire
        factory.testcase = self
        factory.wire_log = WireLog(self)
        factory.opened, factory.lost = defer.Deferred(), defer.Deferred()
        client = yield TCP4ClientEndpoint(reactor, "127.0.0.1", port).connect(factory)
        self.addCleanup(client.disconnect)
        yield factory.opened
        client.wire = factory.wire_log
        return client

    @defer.inlineCallbacks
    def line_client(self):
        port = self.ours.tcp_listener.getHost().port
        client = yield ClientCreator(reactor, LineWire, self).connectTCP("127.0.0.1", port)
        self.addCleanup(client.disconnect)
        return client

    # exchanges

    @defer.inlineCallbacks
    def exchange(self, client, text):
        """Send one fixture; the reply carrying its id."""
        request_id = json.loads(text)["id"]
        client.send(text)
        reply = yield client.wire.reply(request_id)
        self.assertEqual(reply["jsonrpc"], "2.0")
        self.assertIs(type(reply["id"]), type(request_id))
        return reply

    @defer.inlineCallbacks
    def call_ok(self, client, text, keys):
        reply = yield self.exchange(client, text)
        self.assertNotIn("error", reply, text)
        self.assertHasKeys(reply["result"], keys, text)
        return reply["result"]

    @defer.inlineCallbacks
    def call_error(self, client, text):
        """The error a call got: code, message and data as the clients read them."""
        reply = yield self.exchange(client, text)
        self.assertNotIn("result", reply, text)
        error = reply["error"]
        self.assertHasKeys(error, {"code": int, "message": str}, text)
        return error

    def assertHasKeys(self, mapping, keys, what=""):
        self.assertIsInstance(mapping, dict, what)
        for key, kind in keys.items():
            self.assertIn(key, mapping, f"{what}: {key} missing from {mapping}")
            self.assertIsInstance(mapping[key], kind, f"{what}: {key} in {mapping}")

    def listening(self, mud=OURS, channel=CHANNEL):
        return self.router.wait_for(lambda r: mud in r.listening.get(channel, set()))

    # the remote MUD talking to ours

    @defer.inlineCallbacks
    def far_speaks(self, to_user="alice"):
        """FarMud's tell, emoteto, channel message and channel emote to us."""
        far = self.far_client
        yield far.call("tell", {"target_mud": OURS, "target_user": to_user,
                                "from_user": "Bob", "message": "hi there\nsecond line"})
        yield far.call("emoteto", {"target_mud": OURS, "target_user": to_user,
                                   "from_user": "Bob", "emote": "waves at you."})
        yield far.call("channel_send", {"channel": CHANNEL, "from_user": "Bob",
                                        "message": "hello channel"})
        yield far.call("channel_emote", {"channel": CHANNEL, "from_user": "Bob",
                                         "emote": "$N bows."})

    @defer.inlineCallbacks
    def assertHeardFar(self, log, to_user="alice"):
        """The four events far_speaks causes, with the fields the clients read."""
        tell = yield log.event("tell_received")
        self.assertHasKeys(tell["params"], TELL_KEYS, "tell_received")
        self.assertEqual((tell["params"]["from_mud"], tell["params"]["to_user"],
                          tell["params"]["message"]), (FAR, to_user, "hi there\nsecond line"))
        emote = yield log.event("emoteto_received")
        self.assertHasKeys(emote["params"], TELL_KEYS, "emoteto_received")
        self.assertEqual(emote["params"]["message"], "waves at you.")
        said = yield log.event("channel_message")
        self.assertHasKeys(said["params"], CHANNEL_KEYS, "channel_message")
        self.assertEqual((said["params"]["channel"], said["params"]["message"]),
                         (CHANNEL, "hello channel"))
        emoted = yield log.event("channel_emote")
        self.assertHasKeys(emoted["params"], CHANNEL_KEYS, "channel_emote")
        self.assertEqual(emoted["params"]["message"], "$N bows.")


# -- clients/python/i3_client.py (aiohttp) ----------------------------------------------

class PythonClientTests(CompatTestCase):
    """Upgrade on /ws with X-API-Key and X-MUD-Name; calls at once, no
    authenticate; string ids; "id" in a message means a reply."""

    HEADERS = {"X-API-Key": API_KEY, "X-MUD-Name": OURS}

    @defer.inlineCallbacks
    def test_header_key_then_every_call_with_its_own_bytes(self):
        client = yield self.websocket(self.HEADERS)
        # No waiting for anything: the client calls as soon as the socket opens.
        for text, keys in websocket_calls(python_request):
            yield self.call_ok(client, text, keys)
        result = yield self.call_ok(client, python_request(20, "who", {"target_mud": FAR}),
                                    {"users": list})
        self.assertEqual([user["name"] for user in result["users"]], ["Bob"])
        result = yield self.call_ok(client, python_request(21, "locate", {"target_user": "Bob"}),
                                    {"locations": list})
        self.assertEqual([place["mud"] for place in result["locations"]], [FAR])
        result = yield self.call_ok(client, python_request(22, "mudlist", {"refresh": False}),
                                    {"muds": list})
        for mud in result["muds"]:
            self.assertHasKeys(mud, {"name": str, "status": str}, "mudlist entry")
        # channel_who: the client sends the channel only and reads `users`;
        # the gateway asks the channel's owner by the chanlist.
        self.router.add_channel(CHANNEL, FAR, 0)
        yield gateway_sees(self.ours, lambda: self.ours.gateway.lists.channels.get(CHANNEL, [None])[0] == FAR,
                           f"{CHANNEL} owned by {FAR}")
        result = yield self.call_ok(client, python_request(23, "channel_who", {"channel": CHANNEL}),
                                    {"users": list})
        self.assertEqual(result["users"], ["Bob@" + FAR])

    @defer.inlineCallbacks
    def test_events_have_no_id_and_carry_the_fields_read(self):
        client = yield self.websocket(self.HEADERS)
        yield self.call_ok(client, python_request(1, "channel_join", {"channel": CHANNEL,
                                                                      "listen_only": False}),
                           {"status": str})
        yield self.listening()
        yield self.far_speaks()
        yield self.assertHeardFar(client.wire)

    @defer.inlineCallbacks
    def test_reconnect_with_the_header_and_rejoin(self):
        """The client's _reconnect: a new socket, the header again, then
        channel_join for each channel it had joined; no restore_session."""
        first = yield self.websocket(self.HEADERS)
        yield self.call_ok(first, python_request(1, "channel_join", {"channel": CHANNEL,
                                                                     "listen_only": False}),
                           {"status": str})
        yield first.disconnect()
        second = yield self.websocket(self.HEADERS)
        # The counter goes on; a join of a channel the old session still holds works.
        result = yield self.call_ok(second, python_request(2, "channel_join",
                                                           {"channel": CHANNEL, "listen_only": False}),
                                    {"status": str})
        self.assertEqual(result["status"], "joined")
        yield self.listening()
        yield self.far_speaks()
        yield self.assertHeardFar(second.wire)


# -- clients/javascript/i3-client.js -----------------------------------------------------

class JavaScriptClientTests(CompatTestCase):
    """Node: as the Python client, compact JSON and base36 ids. A browser
    cannot set the header and the library has no authenticate call."""

    HEADERS = {"X-API-Key": API_KEY, "X-MUD-Name": OURS}

    @defer.inlineCallbacks
    def test_node_header_key_then_every_call_with_its_own_bytes(self):
        client = yield self.websocket(self.HEADERS)
        for text, keys in websocket_calls(javascript_request):
            yield self.call_ok(client, text, keys)
        # The library rejects on a truthy "error"; a success must have none.
        for message in client.wire.messages:
            if "id" in message:
                self.assertNotIn("error", message)
        yield self.call_ok(client, javascript_request(20, "channel_join", {"channel": CHANNEL,
                                                                           "listen_only": True}),
                           {"status": str})
        yield self.listening()
        yield self.far_speaks()
        yield self.assertHeardFar(client.wire)

    @defer.inlineCallbacks
    def test_browser_without_header_gets_not_authenticated_until_it_calls_authenticate(self):
        client = yield self.websocket()
        error = yield self.call_error(client, javascript_request(1, "channel_list", {}))
        self.assertEqual(error["code"], -32000)
        # The change a browser client needs: call authenticate first.
        result = yield self.call_ok(client, javascript_request(2, "authenticate", {"api_key": API_KEY}),
                                    {"status": str, "mud_name": str, "session_id": str})
        self.assertEqual((result["status"], result["mud_name"]), ("authenticated", OURS))
        yield self.call_ok(client, javascript_request(3, "channel_list", {}), {"channels": list})

    @defer.inlineCallbacks
    def test_the_library_default_url_without_ws_path_is_not_upgraded(self):
        """'ws://localhost:8080' (the libraries' default) names no endpoint,
        here as on the older gateway: the URL must end in /ws."""
        with self.assertRaises(ConnectionError):
            yield self.websocket(self.HEADERS, path="/")


# -- clients/circlemud (i3_client.c, i3_protocol.c, i3_commands.c) -------------------------

class CircleMudClientTests(CompatTestCase):
    """TCP lines: wait for welcome, authenticate (integer ids, json-c
    spacing), then calls; `status == "authenticated"` marks it connected."""

    @defer.inlineCallbacks
    def authenticated(self, wait_for_welcome=True):
        """A connected client. i3_client.c authenticates once the welcome
        line is in; i3_protocol.c's reconnect writes authenticate at once."""
        client = yield self.line_client()
        if wait_for_welcome:
            yield client.wire.event("welcome")
        result = yield self.authenticate(client)
        welcome = client.wire.messages[0]
        self.assertEqual(welcome["method"], "welcome")
        self.assertHasKeys(welcome["params"], {"service": str, "version": str}, "welcome")
        return client, result

    @defer.inlineCallbacks
    def authenticate(self, client):
        result = yield self.call_ok(client, C_AUTHENTICATE % API_KEY,
                                    {"status": str, "mud_name": str, "session_id": str})
        self.assertEqual((result["status"], result["mud_name"]), ("authenticated", OURS))
        return result

    def assertLinesEndInNewlineOnly(self, client):
        self.assertNotIn(b"\r", client.received)
        self.assertTrue(client.received.endswith(b"\n"))

    @defer.inlineCallbacks
    def test_welcome_authenticate_heartbeat_and_every_call(self):
        client, _ = yield self.authenticated()
        result = yield self.call_ok(client, C_HEARTBEAT, {"status": str})
        self.assertEqual(result["status"], "ok")
        yield self.call_ok(client, C_PING, {"pong": bool})
        tell = self.far_client.event("tell_received")
        for line, keys in C_CALLS:
            yield self.call_ok(client, line, keys)
        tell = yield tell
        # json-c's "\/" is a plain "/" once parsed.
        self.assertEqual(tell["message"], "see http://example.org/")
        self.assertLinesEndInNewlineOnly(client)

    @defer.inlineCallbacks
    def test_events_and_errors_as_the_client_parses_them(self):
        client, _ = yield self.authenticated()
        yield self.call_ok(client, C_CALLS[1][0], {"status": str})
        yield self.listening()
        yield self.far_speaks()
        yield self.assertHeardFar(client.wire)
        # A text holding a newline still arrives on one line.
        self.assertEqual(len(client.received.split(b"\n")) - 1, len(client.wire.messages))
        error = yield self.call_error(client, '{ "jsonrpc": "2.0", "method": "i3_nonsense", "id": 40 }')
        self.assertEqual(error["code"], -32601)
        self.assertLinesEndInNewlineOnly(client)

    @defer.inlineCallbacks
    def test_reconnect_waits_for_welcome_and_authenticates_again(self):
        first, before = yield self.authenticated()
        yield first.disconnect()
        second, after = yield self.authenticated(wait_for_welcome=False)
        self.assertNotEqual(before["session_id"], after["session_id"])
        yield self.call_ok(second, C_HEARTBEAT, {"status": str})


class CircleMudWithoutAuthenticationTests(CompatTestCase):
    """`api.auth.enabled: false`: the connection is authenticated on connect,
    but the C client still waits for `"status": "authenticated"` before it
    does anything; a first authenticate must say so (COMPATIBILITY.md)."""

    our_api = {"auth": {"enabled": False}}

    @defer.inlineCallbacks
    def test_first_authenticate_reports_authenticated(self):
        client = yield self.line_client()
        welcome = yield client.wire.event("welcome")
        self.assertEqual(welcome["params"]["authentication"], "none")
        result = yield self.call_ok(client, C_AUTHENTICATE % "any key at all",
                                    {"status": str, "mud_name": str, "session_id": str})
        self.assertEqual((result["status"], result["mud_name"]), ("authenticated", OURS))
        again = yield self.call_ok(client, C_AUTHENTICATE.replace('"id": 1', '"id": 2') % "x",
                                   {"status": str})
        self.assertEqual(again, dict(result, status="success"))
        yield self.call_ok(client, C_HEARTBEAT, {"status": str})
