"""API.md "Methods", "Events" and the permission table, sentence by sentence,
where no other end-to-end test already shows it (docs/CONTRACT-CHECK-API.md
maps every sentence to its test).

Two real gateways ("MudA", "MudB") on one in-repo router. MudA has one key
per permission, so what each permission allows (methods) and receives
(events) is checked on real sessions.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from intermud3.api.methods import PERMISSIONS
from tests.integration.harness import API_KEY, RPCFailure, assert_rpc_error
from tests.integration.mudpair import A, B, FAST_LINK, make_loop, start_pair
from tests.integration.two_muds import mud_info
from tests.integration.waits import api_connections_closed, gateway_sees

CHANNEL = "dchat"
ONLY = ("tell", "channel", "info", "presence", "admin")


def key_for(permission):
    return f"{permission}-only-key-0123456789"


def keys(mud):
    """MudA's api.auth: the harness's all-powerful key, and one per permission."""
    return {"auth": {"api_keys": [{"key": API_KEY, "mud_name": mud, "permissions": ["*"]}] + [
        {"key": key_for(p), "mud_name": mud, "permissions": [p]} for p in ONLY]}}


# Params good enough that the only refusal left is the permission's.
GOOD_PARAMS = {
    "tell": {"target_mud": B, "target_user": "bob", "message": "hi"},
    "emoteto": {"target_mud": B, "target_user": "bob", "emote": "$N waves."},
    "channel_join": {"channel": CHANNEL},
    "channel_leave": {"channel": CHANNEL},
    "channel_send": {"channel": CHANNEL, "message": "hi"},
    "channel_emote": {"channel": CHANNEL, "emote": "$N waves."},
    "channel_target": {"channel": CHANNEL, "target_mud": B, "target_user": "bob",
                       "message_others": "$N pokes $O.", "message_target": "$N pokes you."},
    "channel_history": {"channel": CHANNEL},
    "who": {"target_mud": B, "wait": False},
    "finger": {"target_mud": B, "target_user": "bob", "wait": False},
    "locate": {"target_user": "bob", "wait": False},
    "mudlist": {},
    "mud_info": {"mud": B},
    "channel_list": {},
    "channel_who": {"channel": CHANNEL, "target_mud": B, "wait": False},
    "status": {},
    "stats": {},
    "presence_sync": {"users": []},
    "reload_config": {},
    "channel_admin": {"channel": "muda_new", "action": "add", "type": 0},
}


class ContractTestCase(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.pair = yield start_pair(self.loop, a={"api": keys(A), "router": FAST_LINK})
        self.router = self.pair.router
        self.only = {}
        for permission in ONLY:
            client = yield self.loop.tcp_client(self.pair.a, authenticate=False)
            yield client.call("authenticate", {"api_key": key_for(permission)})
            self.only[permission] = client

    def fails(self, deferred, code, **data):
        return assert_rpc_error(self, deferred, code, **data)

    @defer.inlineCallbacks
    def settled(self, *clients):
        """A round trip on each client: what was sent before it has arrived."""
        for client in clients:
            yield client.call("ping")

    def names(self, client, *events):
        return [n for n in client.event_names() if n in events]


class PermissionTableTests(ContractTestCase):
    """API.md "Permissions, one per method": the table, both ways."""

    @defer.inlineCallbacks
    def test_every_method_needs_exactly_its_permission(self):
        for held, client in self.only.items():
            for method, needed in sorted(PERMISSIONS.items()):
                if method in ("authenticate", "restore_session", "reconnect"):
                    continue   # below, and reconnect would drop the link
                params = GOOD_PARAMS.get(method, {})
                if isinstance(needed, tuple):   # any one of them
                    needed = held if held in needed else "|".join(needed)
                if needed is not None and needed != held:
                    yield self.fails(client.call(method, params), -32002, permission=needed)
                    continue
                try:
                    yield client.call(method, params)
                except RPCFailure as failure:
                    self.assertNotIn(failure.code, (-32000, -32002), (held, method, failure.error))
            if held != "admin":
                yield self.fails(client.call("reconnect"), -32002, permission="admin")
            # No permission needed: ping, heartbeat, authenticate, restore_session.
            again = yield client.call("authenticate", {"api_key": key_for(held)})
            self.assertEqual(again["status"], "success")
            restored = yield client.call("restore_session", {"session_id": again["session_id"]})
            self.assertEqual(restored["session_id"], again["session_id"])
        self.assertEqual(self.router.rejected, [])


class EventRecipientTests(ContractTestCase):
    """API.md "Events": who gets each event."""

    @defer.inlineCallbacks
    def test_tell_events_go_to_every_tell_session_only(self):
        pair = self.pair
        everyone = [pair.ca, *self.only.values()]
        for method, field, event in (("tell", "message", "tell_received"),
                                     ("emoteto", "emote", "emoteto_received")):
            waits = [c.event(event) for c in (pair.ca, self.only["tell"])]
            yield pair.cb.call(method, {"target_mud": A, "target_user": "Alice", field: "hello",
                                        "from_user": "Bob"})
            got = yield defer.gatherResults(waits)
            for params in got:
                params.pop("timestamp")
                self.assertEqual(params, {"from_mud": B, "from_user": "bob", "to_mud": A,
                                          "to_user": "alice", "message": "hello",
                                          "visname": "Bob"})
        yield self.settled(*everyone)
        for permission in ("channel", "info", "presence", "admin"):
            self.assertEqual(self.names(self.only[permission], "tell_received", "emoteto_received"),
                             [], permission)

    @defer.inlineCallbacks
    def test_channel_events_only_to_joined_sessions_attached_or_detached(self):
        pair = self.pair
        joined = self.only["channel"]
        yield joined.call("channel_join", {"channel": CHANNEL, "listen_only": True})
        detached = yield self.loop.tcp_client(pair.a, authenticate=False)
        auth = yield detached.call("authenticate", {"api_key": key_for("channel")})
        yield detached.call("channel_join", {"channel": CHANNEL})
        yield pair.cb.call("channel_join", {"channel": CHANNEL})
        yield self.router.wait_for(lambda r: A in r.listening.get(CHANNEL, ()))
        yield detached.disconnect()
        yield api_connections_closed(pair.a, lambda: not pair.a.gateway.sessions.get(auth["session_id"]).attached)

        heard = joined.event("channel_message")
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "message": "to the joined",
                                            "from_user": "Bob"})
        event = yield heard
        self.assertEqual(set(event), {"channel", "from_mud", "from_user", "message", "visname",
                                      "history_id", "timestamp"})
        self.assertIsInstance(event["history_id"], int)
        # The detached subscriber kept it; the others (all keys, not joined) got nothing.
        later = yield self.loop.tcp_client(pair.a, authenticate=False)
        replay = later.event("channel_message")
        restored = yield later.call("authenticate", {"api_key": key_for("channel"),
                                                     "session_id": auth["session_id"]})
        self.assertEqual(restored["replayed"], 1)
        self.assertEqual((yield replay)["message"], "to the joined")
        yield self.settled(pair.ca, *self.only.values())
        for client in (pair.ca, self.only["tell"], self.only["info"]):
            self.assertEqual(self.names(client, "channel_message"), [])

    @defer.inlineCallbacks
    def test_info_events_go_to_info_sessions_only(self):
        pair = self.pair
        # mud_online / mud_offline, with the mudlist entry as `info`.
        self.router.set_mud("Visitor", mud_info(state=-1))
        yield gateway_sees(pair.a, lambda: "Visitor" in pair.a.gateway.lists.muds, "Visitor in the mudlist")
        waits = [c.event("mud_offline") for c in (pair.ca, self.only["info"])]
        self.router.set_mud("Visitor", mud_info(state=300))
        for params in (yield defer.gatherResults(waits)):
            self.assertEqual(params["mud_name"], "Visitor")
            self.assertEqual((params["info"]["status"], params["info"]["restart_in"]), ("down", 300))
        waits = [c.event("mud_online") for c in (pair.ca, self.only["info"])]
        self.router.set_mud("Visitor", mud_info(state=-1))
        for params in (yield defer.gatherResults(waits)):
            self.assertEqual((params["info"]["status"], params["info"]["restart_in"]), ("up", None))
        # A reply nobody asked for goes to every info session, and only to them.
        waits = [c.event("who_reply") for c in (pair.ca, self.only["info"])]
        self.router.send_packet(A, ["who-reply", 5, B, 0, A, 0, [["Ghost", 1, 0]]])
        for params in (yield defer.gatherResults(waits)):
            params.pop("timestamp")
            self.assertEqual(params, {"from_mud": B, "to_mud": A, "to_user": None,
                                      "users": [{"name": "Ghost", "idle": 1, "level": 0,
                                                 "extra": ""}]})
        yield self.settled(*self.only.values())
        for permission in ("tell", "channel", "presence", "admin"):
            self.assertEqual(self.names(self.only[permission], "mud_online", "mud_offline",
                                        "who_reply"), [], permission)

    @defer.inlineCallbacks
    def test_error_occurred_to_the_asker_else_to_the_permission(self):
        pair = self.pair
        teller = self.only["tell"]
        # Our tell to a MUD the router does not know: unk-dst to the sender only.
        error = teller.event("error_occurred")
        yield teller.call("tell", {"target_mud": "Nowhere", "target_user": "x", "message": "hi"})
        params = yield error
        self.assertEqual(set(params), {"error_code", "error_message", "from_mud", "to_mud",
                                       "to_user", "context", "timestamp"})
        self.assertEqual(params["error_code"], "unk-dst")
        yield self.settled(pair.ca)
        self.assertEqual(self.names(pair.ca, "error_occurred"), [])
        # An error about a tell no session of ours sent: every tell session.
        waits = [c.event("error_occurred") for c in (pair.ca, teller)]
        self.router.send_packet(A, ["error", 5, B, 0, A, "ghost", "unk-user", "no such user",
                                    ["tell", 5, A, "ghost", B, "carol", "Ghost", "hi"]])
        for params in (yield defer.gatherResults(waits)):
            self.assertEqual((params["error_code"], params["context"]["packet_type"]),
                             ("unk-user", "tell"))
        yield self.settled(*self.only.values())
        for permission in ("channel", "info", "presence", "admin"):
            self.assertEqual(self.names(self.only[permission], "error_occurred"), [], permission)

    @defer.inlineCallbacks
    def test_gateway_events_go_to_every_session(self):
        pair = self.pair
        clients = [pair.ca, *self.only.values()]
        down = [c.event("gateway_disconnected") for c in clients]
        up = [c.event("gateway_connected") for c in clients]
        again = [c.event("gateway_reconnected") for c in clients]
        yield self.router.drop(A)
        for params in (yield defer.gatherResults(down)):
            self.assertEqual(params["router"], "*test")
            self.assertIn("reason", params)
        for params in (yield defer.gatherResults(up)):
            self.assertEqual(params["router"], "*test")
        for params in (yield defer.gatherResults(again)):
            self.assertEqual(params["status"], "connected")
            self.assertIsInstance(params["message"], str)


class MethodParamTests(ContractTestCase):
    """API.md "Methods": parameter names, defaults, name and text rules."""

    @defer.inlineCallbacks
    def test_query_names_lower_cased_cleaned_and_in_the_mudlists_case(self):
        pair = self.pair
        ca = pair.ca
        yield ca.call("who", {"target_mud": "mudb", "from_user": "\x1b[1mAlIce\x1b[0m",
                              "wait": False, "refresh": True})
        yield ca.call("finger", {"target_mud": "MUDB", "target_user": "BoB", "wait": False})
        yield ca.call("locate", {"target_user": "\x1b[31mCaRL\x1b[0m", "from_user": "Al",
                                 "wait": False})
        yield ca.call("channel_who", {"channel": CHANNEL, "target_mud": ["mudb", "Elsewhere"],
                                      "from_user": "ALICE", "wait": False})
        yield self.router.wait_for(lambda r: len(pair.received(A, "chan-who-req")) == 2)
        self.assertEqual(pair.received(A, "who-req"), [["who-req", 5, A, "alice", B, 0]])
        self.assertEqual(pair.received(A, "finger-req"), [["finger-req", 5, A, 0, B, 0, "bob"]])
        self.assertEqual(pair.received(A, "locate-req"), [["locate-req", 5, A, "al", 0, 0, "carl"]])
        self.assertEqual(pair.received(A, "chan-who-req"), [
            ["chan-who-req", 5, A, "alice", B, 0, CHANNEL],
            ["chan-who-req", 5, A, "alice", "Elsewhere", 0, CHANNEL]])

    @defer.inlineCallbacks
    def test_channel_who_target_mud_is_required_and_at_most_ten(self):
        # Without target_mud it asks the channel's owner by the chanlist;
        # a channel the chanlist does not know needs one.
        ca = self.pair.ca
        for params in ({"channel": "no_such_channel"}, {"channel": CHANNEL, "target_mud": []},
                       {"channel": CHANNEL, "target_mud": ""},
                       {"channel": CHANNEL, "target_mud": [f"M{i}" for i in range(11)]}):
            yield self.fails(ca.call("channel_who", params), -32602, field="target_mud")
        result = yield ca.call("channel_who", {"channel": CHANNEL, "wait": False,
                                               "target_mud": [f"M{i}" for i in range(10)]})
        self.assertEqual(result["status"], "requested")

    @defer.inlineCallbacks
    def test_channel_messages_default_speaker_and_clean_text(self):
        pair = self.pair
        listener = self.only["channel"]
        yield listener.call("channel_join", {"channel": CHANNEL})
        waits = [listener.event("channel_message"), listener.event("channel_emote")]
        sent = yield pair.ca.call("channel_send", {
            "channel": CHANNEL, "message": "\x1b[1;31mhi\x1b[0m %^RED%^all%^RESET%^\r\nline two\x07"})
        # The sender had not joined: it joins first (API.md).
        self.assertEqual(set(sent), {"status", "message_id", "joined"})
        self.assertEqual((sent["status"], sent["joined"]), ("sent", True))
        yield pair.ca.call("channel_emote", {"channel": CHANNEL, "emote": "$N waves.",
                                             "from_user": "ZeD", "visname": "Zed\nthe Bold"})
        message, emote = yield defer.gatherResults(waits)
        self.assertEqual((message["from_user"], message["visname"], message["message"]),
                         ("someone", "someone", "hi %^RED%^all%^RESET%^\nline two"))
        self.assertEqual((emote["from_user"], emote["visname"], emote["message"]),
                         ("zed", "Zed the Bold", "$N waves."))
        yield pair.wait_received(A, "channel-e")
        self.assertEqual(pair.received(A, "channel-m"), [
            ["channel-m", 5, A, "someone", 0, 0, CHANNEL, "someone",
             "hi %^RED%^all%^RESET%^\nline two"]])
        self.assertEqual(pair.received(A, "channel-e"), [
            ["channel-e", 5, A, "zed", 0, 0, CHANNEL, "Zed the Bold", "$N waves."]])

    @defer.inlineCallbacks
    def test_channel_join_leave_and_history_bounds(self):
        pair = self.pair
        ca = pair.ca
        for listen_only in (True, False, "anything"):
            joined = yield ca.call("channel_join", {"channel": CHANNEL, "listen_only": listen_only})
            self.assertEqual(joined, {"status": "joined", "channel": CHANNEL})
        yield self.router.wait_for(lambda r: A in r.listening.get(CHANNEL, ()))
        self.assertEqual(len(pair.received(A, "channel-listen")), 1)
        left = yield ca.call("channel_leave", {"channel": "never_joined"})
        self.assertEqual(left, {"status": "left", "channel": "never_joined"})

        for n in range(55):
            self.router.send_packet(A, ["channel-m", 5, B, "bob", 0, 0, CHANNEL, "Bob", f"m{n}"])
        yield ca.inbox.wait_count("channel_message", 55)
        default = yield ca.call("channel_history", {"channel": CHANNEL})
        self.assertEqual((default["status"], default["channel"], default["count"]),
                         ("success", CHANNEL, 50))
        self.assertEqual([m["message"] for m in default["messages"]],
                         [f"m{n}" for n in range(5, 55)])
        most = yield ca.call("channel_history", {"channel": CHANNEL, "limit": 1000})
        self.assertEqual(most["count"], 55)
        for limit in (1001, 0, "10"):
            yield self.fails(ca.call("channel_history", {"channel": CHANNEL, "limit": limit}),
                             -32602, field="limit")
