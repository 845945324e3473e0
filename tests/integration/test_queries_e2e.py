"""who, finger, locate, channel_who and presence, end to end.

Two real gateways ("MudA", "MudB") on one in-repo router, a TCP API client
on each. Every exchange is checked three ways: the JSON-RPC result (API.md
"Queries", "Presence"), the events, and the exact packets on the wire
(router.received / router.sent) against I3-PROTOCOL.md and the shapes of the
real frames in the vectors.
"""

from twisted.internet import defer, reactor, task
from twisted.trial import unittest

from intermud3.outbound import frame_size
from tests.integration.harness import assert_rpc_error
from tests.integration.two_muds import A, B, TwoMuds, mud_info, player, same_shape, vector
from tests.integration.waits import gateway_sees, link_ready

BOB = player("bob", title="the Brave", idle=42, level=20, race="dwarf", guild="smiths",
             location="the forge", status="busy", gender=0, channels=["dchat"])
CARL = player("carl", visname="Carl", title="", idle=125, level="Wizard", gender=2,
              channels=["dchat", "imud_gossip"])
ALICE = player("alice", visname="Alice", title="the Curious", idle=3, channels=["dchat"])

USER_KEYS = {"name", "idle", "level", "extra"}
USER_INFO_KEYS = {"name", "title", "real_name", "email", "login_time", "idle_time",
                  "ip_address", "level", "extra"}


class QueriesEndToEnd(unittest.TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.muds = TwoMuds(self)
        yield self.start()
        self.router = self.muds.router

    def start(self):
        # A short handshake timeout: a refused startup is retried soon.
        return self.muds.start(a_sections={"router": {"handshake_timeout": 0.3}})

    @defer.inlineCallbacks
    def sync(self, client, users):
        result = yield client.call("presence_sync", {"users": users})
        self.assertEqual(result["status"], "synchronized")
        self.assertEqual(result["count"], len(users))
        return result

    def assertFails(self, deferred, code, **data):
        return assert_rpc_error(self, deferred, code, **data)

    # -- who -----------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_who_both_ways_answered_from_the_snapshot(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB, CARL])
        yield self.sync(m.client_a, [ALICE])

        result = yield m.client_a.call("who", {"target_mud": "mudb", "from_user": "Alice", "timeout": 2})
        self.assertEqual(result, {"status": "success", "mud_name": B, "users": [
            {"name": "Bob", "idle": 42, "level": 0, "extra": "the Brave"},
            {"name": "Carl", "idle": 125, "level": 0, "extra": ""}]})
        for user in result["users"]:
            self.assertEqual(set(user), USER_KEYS)

        # On the wire: the request in the mudlist's exact case, the user
        # lower-cased; the reply from B's gateway, entries ({visname,idle,extra}).
        request = m.received_from(A, "who-req")[-1]
        self.assertEqual(request, ["who-req", 5, A, "alice", B, 0])
        self.assertTrue(same_shape(request, vector("who-req")))
        reply = m.received_from(B, "who-reply")[-1]
        self.assertEqual(reply, ["who-reply", 5, B, 0, A, "alice",
                                 [["Bob", 42, "the Brave"], ["Carl", 125, ""]]])
        self.assertTrue(same_shape(reply, vector("who-reply", conn="ProbeB")))
        self.assertIn(reply, m.sent_to(A, "who-reply"))

        # And back: B asks A as the MUD itself (from_user absent: 0 on the wire).
        result = yield m.client_b.call("who", {"target_mud": A, "timeout": 2})
        self.assertEqual(result["mud_name"], A)
        self.assertEqual(result["users"], [{"name": "Alice", "idle": 3, "level": 0, "extra": "the Curious"}])
        self.assertEqual(m.received_from(B, "who-req")[-1], ["who-req", 5, B, 0, A, 0])
        self.assertEqual(m.received_from(A, "who-reply")[-1],
                         ["who-reply", 5, A, 0, B, 0, [["Alice", 3, "the Curious"]]])

    @defer.inlineCallbacks
    def test_who_without_waiting_sends_the_event_to_the_asker_only(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        bystander = yield m.loop.tcp_client(m.a)

        result = yield m.client_a.call("who", {"target_mud": B, "from_user": "alice", "wait": False})
        self.assertEqual(result, {"status": "requested", "mud_name": B})
        event = yield m.client_a.event("who_reply")
        self.assertEqual(event["from_mud"], B)
        self.assertEqual(event["to_mud"], A)
        self.assertEqual(event["to_user"], "alice")
        self.assertEqual(event["users"], [{"name": "Bob", "idle": 42, "level": 0, "extra": "the Brave"}])
        self.assertTrue(event["timestamp"].endswith("Z"))
        # The reply was delivered to every recipient at once; a round trip on
        # the bystander's connection shows it got nothing.
        yield bystander.call("ping")
        self.assertNotIn("who_reply", bystander.event_names())

    @defer.inlineCallbacks
    def test_replies_matching_no_request_go_to_every_info_session(self):
        m = self.muds
        bystander = yield m.loop.tcp_client(m.a)
        m.router.send_packet(A, ["who-reply", 5, B, 0, A, "nobody", [["Ghost", 1, ""]]])
        m.router.send_packet(A, ["locate-reply", 5, B, 0, A, 0, B, "Ghost", 9, "sleeping"])
        m.router.send_packet(A, ["chan-who-reply", 5, B, 0, A, 0, "dchat", ["Ghost"]])
        m.router.send_packet(A, ["error", 5, B, 0, A, 0, "unk-user", "who?", ["finger-req", 5, A, 0, B, 0, "x"]])
        for client in (m.client_a, bystander):
            event = yield client.event("who_reply")
            self.assertEqual(event["users"], [{"name": "Ghost", "idle": 1, "level": 0, "extra": ""}])
            self.assertEqual(event["to_user"], "nobody")
            event = yield client.event("locate_reply")
            self.assertEqual((event["located_mud"], event["located_user"], event["idle"], event["status"]),
                             (B, "Ghost", 9, "sleeping"))
            event = yield client.event("chan_who_reply")
            self.assertEqual(event["from_mud"], B)
            self.assertEqual((event["channel"], event["users"]), ("dchat", ["Ghost"]))
            event = yield client.event("error_occurred")
            self.assertEqual(event["error_code"], "unk-user")
        yield m.tell_only.call("ping")
        self.assertEqual(m.tell_only.event_names(), [])
        # None of them is answered.
        self.assertEqual((yield m.flush(A)), [])

    @defer.inlineCallbacks
    def test_who_to_a_mud_that_is_down_times_out(self):
        m = self.muds
        m.router.set_mud("Sleepy", mud_info(state=0))
        yield gateway_sees(m.a, lambda: m.a.gateway.lists.mud_entry("Sleepy"), "Sleepy in the mudlist")
        yield self.assertFails(m.client_a.call("who", {"target_mud": "sleepy", "timeout": 0.3}),
                               -32004, reason="timeout")
        # The router took the request and dropped it without a word.
        self.assertEqual(m.received_from(A, "who-req")[-1], ["who-req", 5, A, 0, "Sleepy", 0])
        self.assertTrue(any(who == A and "Sleepy is down" in why for who, why, _ in m.router.rejected))
        self.assertEqual(m.sent_to(A, "error"), [])

    @defer.inlineCallbacks
    def test_who_to_an_unknown_mud_is_unk_dst(self):
        m = self.muds
        failure = yield self.assertFails(
            m.client_a.call("who", {"target_mud": "NoSuchMud", "from_user": "alice"}),
            -32004, i3_error="unk-dst")
        self.assertIsInstance(failure.data["i3_message"], str)
        error = m.sent_to(A, "error")[-1]
        self.assertEqual(error[:7], ["error", 5, "*test", 0, A, "alice", "unk-dst"])
        self.assertEqual(error[8], ["who-req", 5, A, "alice", "NoSuchMud", 0])
        self.assertTrue(same_shape(error, vector("error", "A responses")))
        self.assertEqual(m.a.gateway.queries.pending_count(), 0)
        event = yield m.client_a.event("error_occurred")
        self.assertEqual((event["error_code"], event["from_mud"], event["to_user"]),
                         ("unk-dst", "*test", "alice"))
        self.assertEqual(event["context"], {"packet_type": "who-req", "target_mud": "NoSuchMud",
                                            "target_user": None})

    @defer.inlineCallbacks
    def test_snapshot_text_is_cleaned_before_it_goes_to_the_network(self):
        # API.md: text sent to the network keeps Pinkfish markup; ANSI
        # escapes and control characters (but LF) are removed.
        m = self.muds
        eve = player("Eve", visname="\x1b[1;31mEve\x1b[0m", title="the\x00 %^RED%^Red%^RESET%^\x07",
                     status="away\r\n", channels=["dchat"])
        yield self.sync(m.client_b, [eve])
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual(result["users"], [{"name": "Eve", "idle": 7, "level": 0,
                                            "extra": "the %^RED%^Red%^RESET%^"}])
        self.assertEqual(m.received_from(B, "who-reply")[-1][6], [["Eve", 7, "the %^RED%^Red%^RESET%^"]])
        result = yield m.client_a.call("finger", {"target_mud": B, "target_user": "eve", "timeout": 2})
        self.assertEqual(result["user_info"]["name"], "Eve")
        self.assertEqual(result["user_info"]["title"], "the %^RED%^Red%^RESET%^")
        result = yield m.client_a.call("locate", {"target_user": "eve", "timeout": 0.3})
        self.assertEqual(result["locations"], [{"mud": B, "user": "Eve", "idle": 7, "status": "away"}])
        result = yield m.client_a.call("channel_who", {"channel": "dchat", "target_mud": B, "timeout": 2})
        self.assertEqual(result["members"], [{"mud": B, "users": ["Eve"]}])
        self.assertEqual(m.router.rejected, [])

    @defer.inlineCallbacks
    def test_long_who_list_is_trimmed_to_fit_a_frame(self):
        m = self.muds
        # Lean entries, so that 500 fit in one API line (api.tcp.max_line_bytes).
        crowd = [{"name": f"Player{i:03d}", "title": f"the {i}th of a long line of testers", "idle": 7}
                 for i in range(500)]
        yield self.sync(m.client_b, crowd)
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        limit = m.b.gateway.config.router.max_send_bytes
        reply = m.received_from(B, "who-reply")[-1]
        self.assertLessEqual(frame_size(reply), limit)
        self.assertEqual(m.router.rejected, [])
        count = len(result["users"])
        self.assertTrue(0 < count < 500, count)
        # The first players, in the MUD's order; nearly a full frame of them.
        self.assertEqual([u["name"] for u in result["users"]],
                         [u["name"] for u in crowd[:count]])
        one_more = list(reply)
        one_more[6] = reply[6] + [[crowd[count]["name"], 7, crowd[count]["title"]]]
        self.assertGreater(frame_size(one_more), limit)

    # -- finger ----------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_finger_known_user(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB, CARL])
        result = yield m.client_a.call("finger", {"target_mud": B, "target_user": "Bob",
                                                  "from_user": "alice", "timeout": 2})
        self.assertEqual(result["status"], "success")
        self.assertEqual(result["mud_name"], B)
        self.assertEqual(result["user_name"], "Bob")
        info = result["user_info"]
        self.assertEqual(set(info), USER_INFO_KEYS)
        self.assertEqual(info["name"], "Bob")
        self.assertEqual(info["title"], "the Brave")
        self.assertEqual(info["login_time"], "Tue Nov 14 22:13:20 2023")
        self.assertEqual(info["idle_time"], 42)
        self.assertEqual(info["level"], "20")     # I3 types it a string
        self.assertIsNone(info["real_name"])
        self.assertIsNone(info["email"])
        self.assertIsNone(info["ip_address"])
        self.assertIn("dwarf", info["extra"])

        self.assertEqual(m.received_from(A, "finger-req")[-1], ["finger-req", 5, A, "alice", B, 0, "bob"])
        self.assertTrue(same_shape(m.received_from(A, "finger-req")[-1], vector("finger-req")))
        reply = m.received_from(B, "finger-reply")[-1]
        # visname, title, real_name, email, loginout_time, idle_time, ip_name, level, extra
        self.assertEqual(reply[:14], ["finger-reply", 5, B, 0, A, "alice",
                                      "Bob", "the Brave", "", "", "Tue Nov 14 22:13:20 2023",
                                      42, "", "20"])
        self.assertEqual(len(reply), 15)
        self.assertIsInstance(reply[14], str)

        # A text level travels as it is, no title as "" (read back as null).
        result = yield m.client_a.call("finger", {"target_mud": B, "target_user": "carl", "timeout": 2})
        self.assertEqual(result["user_info"]["level"], "Wizard")
        self.assertIsNone(result["user_info"]["title"])
        self.assertEqual(m.received_from(B, "finger-reply")[-1][7], "")

    @defer.inlineCallbacks
    def test_finger_unknown_user_is_unk_user_with_an_event_to_the_asker(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        bystander = yield m.loop.tcp_client(m.a)
        failure = yield self.assertFails(
            m.client_a.call("finger", {"target_mud": B, "target_user": "Nobody",
                                       "from_user": "alice", "timeout": 2}),
            -32004, i3_error="unk-user")
        self.assertIsInstance(failure.data["i3_message"], str)
        event = yield m.client_a.event("error_occurred")
        self.assertEqual(event["error_code"], "unk-user")
        self.assertEqual(event["from_mud"], B)
        self.assertEqual(event["to_user"], "alice")
        self.assertEqual(event["context"]["packet_type"], "finger-req")
        yield bystander.call("ping")
        self.assertNotIn("error_occurred", bystander.event_names())

        error = m.received_from(B, "error")[-1]
        self.assertEqual(error[:7], ["error", 5, B, 0, A, "alice", "unk-user"])
        self.assertEqual(error[8], ["finger-req", 5, A, "alice", B, 0, "nobody"])
        self.assertTrue(same_shape(error, vector("error", "A responses")))
        self.assertEqual(m.received_from(B, "finger-reply"), [])

    # -- locate ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_locate_is_answered_by_the_players_own_mud_only(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        # A has a bob too: still it never answers its own question.
        yield self.sync(m.client_a, [ALICE, player("bob")])

        result = yield m.client_a.call("locate", {"target_user": "Bob", "from_user": "alice",
                                                  "timeout": 0.5})
        self.assertEqual(result, {"status": "success", "user_name": "Bob", "locations": [
            {"mud": B, "user": "Bob", "idle": 42, "status": "busy"}]})
        request = ["locate-req", 5, A, "alice", 0, 0, "bob"]
        self.assertEqual(m.received_from(A, "locate-req"), [request])
        self.assertTrue(same_shape(request, vector("locate-req")))
        # The router echoed the broadcast to A too; A did not answer itself.
        self.assertIn(request, m.sent_to(A, "locate-req"))
        self.assertEqual(m.received_from(A, "locate-reply"), [])
        reply = m.received_from(B, "locate-reply")
        self.assertEqual(reply, [["locate-reply", 5, B, 0, A, "alice", B, "Bob", 42, "busy"]])
        self.assertTrue(same_shape(reply[0], vector("locate-reply", conn="ProbeB"), nullable=(3, 5, 9)))

        # The other way round: only A answers for alice.
        result = yield m.client_b.call("locate", {"target_user": "ALICE", "timeout": 0.5})
        self.assertEqual(result["locations"], [{"mud": A, "user": "Alice", "idle": 3, "status": None}])
        self.assertEqual(m.received_from(A, "locate-reply"),
                         [["locate-reply", 5, A, 0, B, 0, A, "Alice", 3, ""]])
        self.assertEqual(len(m.received_from(B, "locate-reply")), 1)

    @defer.inlineCallbacks
    def test_locate_of_nobody_is_an_empty_success(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        yield self.sync(m.client_a, [ALICE])
        result = yield m.client_a.call("locate", {"target_user": "ghost", "timeout": 0.3})
        self.assertEqual(result, {"status": "success", "user_name": "ghost", "locations": []})
        # B heard the question and stayed silent; so did A with its own echo.
        self.assertIn(["locate-req", 5, A, 0, 0, 0, "ghost"], m.sent_to(B, "locate-req"))
        self.assertEqual(m.received_from(B, "locate-reply"), [])
        self.assertEqual(m.received_from(A, "locate-reply"), [])
        self.assertEqual(m.received_from(B, "error"), [])
        self.assertEqual(m.received_from(A, "error"), [])

    # -- channel_who and chan-user ---------------------------------------------------------

    @defer.inlineCallbacks
    def test_channel_who_gathers_the_listed_players(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB, CARL, player("dora", channels=["imud_gossip"])])
        yield self.sync(m.client_a, [ALICE])

        result = yield m.client_a.call("channel_who", {"channel": "dchat", "target_mud": "mudb",
                                                       "from_user": "alice", "timeout": 2})
        self.assertEqual(result, {"status": "success", "channel": "dchat",
                                  "members": [{"mud": B, "users": ["Bob", "Carl"]}],
                                  "users": [f"Bob@{B}", f"Carl@{B}"]})
        request = m.received_from(A, "chan-who-req")[-1]
        self.assertEqual(request, ["chan-who-req", 5, A, "alice", B, 0, "dchat"])
        self.assertTrue(same_shape(request, vector("chan-who-req")))
        reply = m.received_from(B, "chan-who-reply")[-1]
        self.assertEqual(reply, ["chan-who-reply", 5, B, 0, A, "alice", "dchat", ["Bob", "Carl"]])
        self.assertTrue(same_shape(reply, vector("chan-who-reply")))

        # A MUD that is down never answers: what arrived, at the timeout.
        m.router.set_mud("Sleepy", mud_info(state=0))
        yield gateway_sees(m.a, lambda: m.a.gateway.lists.mud_entry("Sleepy"), "Sleepy in the mudlist")
        result = yield m.client_a.call("channel_who", {"channel": "dchat", "target_mud": ["sleepy", B],
                                                       "timeout": 0.3})
        self.assertEqual(result["members"], [{"mud": B, "users": ["Bob", "Carl"]}])

        # A list of MUDs, ourselves included: one request each, all gathered.
        result = yield m.client_a.call("channel_who", {"channel": "dchat", "target_mud": [B, "muda"],
                                                       "timeout": 2})
        members = sorted(result["members"], key=lambda entry: entry["mud"])
        self.assertEqual(members, [{"mud": A, "users": ["Alice"]}, {"mud": B, "users": ["Bob", "Carl"]}])
        self.assertEqual(m.received_from(A, "chan-who-req")[-2:],
                         [["chan-who-req", 5, A, 0, B, 0, "dchat"], ["chan-who-req", 5, A, 0, A, 0, "dchat"]])

        # B asks A about a channel nobody there listens to: an empty list.
        result = yield m.client_b.call("channel_who", {"channel": "imud_gossip", "target_mud": A,
                                                       "timeout": 2})
        self.assertEqual(result["members"], [{"mud": A, "users": []}])

    @defer.inlineCallbacks
    def test_chan_user_req_is_answered_with_gender_or_unk_user(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        m.router.send_packet(B, ["chan-user-req", 5, A, 0, B, 0, "Bob"])
        reply = yield m.wait_received(B, "chan-user-reply")
        self.assertEqual(reply, ["chan-user-reply", 5, B, 0, A, 0, "bob", "Bob", 0])

        m.router.send_packet(B, ["chan-user-req", 5, A, 0, B, 0, "nobody"])
        error = yield m.wait_received(B, "error")
        self.assertEqual(error[:7], ["error", 5, B, 0, A, 0, "unk-user"])
        self.assertEqual(error[8], ["chan-user-req", 5, A, 0, B, 0, "nobody"])
        self.assertTrue(same_shape(error, vector("error", "A responses")))
        self.assertTrue(same_shape(error[8], vector("chan-user-req")))

    # -- presence rules --------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_no_snapshot_tell_emits_the_event_and_answers_nothing(self):
        m = self.muds
        result = yield m.client_a.call("tell", {"target_mud": B, "target_user": "bob",
                                                "from_user": "alice", "message": "hi bob"})
        self.assertIn(result["status"], ("sent", "queued"))
        event = yield m.client_b.event("tell_received")
        self.assertEqual((event["from_mud"], event["from_user"], event["to_user"], event["message"]),
                         (A, "alice", "bob", "hi bob"))
        self.assertEqual((yield m.flush(B)), [])
        # Without a snapshot who still answers, with nobody.
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual(result["users"], [])

    @defer.inlineCallbacks
    def test_snapshot_present_unknown_tell_is_unk_user_and_no_event(self):
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        yield m.client_a.call("tell", {"target_mud": B, "target_user": "zed",
                                       "from_user": "alice", "message": "anyone?"})
        error = yield m.wait_received(B, "error")
        self.assertEqual(error[:7], ["error", 5, B, 0, A, "alice", "unk-user"])
        self.assertEqual(error[8][0], "tell")
        yield m.client_b.call("ping")
        self.assertNotIn("tell_received", m.client_b.event_names())

    # -- B answering the router side ---------------------------------------------------------

    @defer.inlineCallbacks
    def test_unknown_type_is_unk_type_but_never_for_broadcasts_errors_or_routers(self):
        m = self.muds
        odd = ["no-such-type", 5, A, "alice", B, 0]
        m.router.send_packet(B, odd)
        error = yield m.wait_received(B, "error")
        self.assertEqual(error[:7], ["error", 5, B, 0, A, "alice", "unk-type"])
        self.assertEqual(error[8], odd)
        self.assertTrue(same_shape(error, vector("error", "A responses")))
        # The error travels on to A, whose info sessions hear of it.
        event = yield m.client_a.event("error_occurred")
        self.assertEqual((event["error_code"], event["from_mud"]), ("unk-type", B))

        mark = len(m.received_from(B))
        m.router.send_packet(B, ["no-such-type", 5, A, "alice", 0, 0])
        m.router.send_packet(B, ["error", 5, A, 0, B, 0, "no-such-code", "odd", 0])
        m.router.send_packet(B, ["no-such-type", 5, "*other", 0, B, 0])
        m.router.send_packet(B, ["error", 5, "*other", 0, B, 0, "not-imp", "no", ["who-req", 5, B, 0, A, 0]])
        self.assertEqual((yield m.flush(B)), [])
        self.assertEqual(m.received_from(B)[mark:mark + 1][0][0], "auth-mud-reply")

    @defer.inlineCallbacks
    def test_unknown_users_asked_by_broadcast_or_router_get_no_error(self):
        # I3-PROTOCOL.md 4: never answer a broadcast or a router with an
        # error (error loops); unk-user only to a MUD that asked us.
        m = self.muds
        yield self.sync(m.client_b, [BOB])
        for ptype in ("finger-req", "chan-user-req"):
            m.router.send_packet(B, [ptype, 5, A, "alice", 0, 0, "nobody"])
            m.router.send_packet(B, [ptype, 5, "*other", 0, B, 0, "nobody"])
        self.assertEqual((yield m.flush(B)), [])
        # The same questions from a MUD, to us, are answered.
        m.router.send_packet(B, ["finger-req", 5, A, "alice", B, 0, "nobody"])
        error = yield m.wait_received(B, "error")
        self.assertEqual(error[:7], ["error", 5, B, 0, A, "alice", "unk-user"])

    @defer.inlineCallbacks
    def test_auth_mud_req_from_another_mud_gets_an_int_session_key(self):
        m = self.muds
        m.router.send_packet(B, ["auth-mud-req", 5, A, 0, B, 0])
        reply = yield m.wait_received(B, "auth-mud-reply")
        self.assertEqual(reply[:6], ["auth-mud-reply", 5, B, 0, A, 0])
        self.assertEqual(len(reply), 7)
        self.assertIsInstance(reply[6], int)
        self.assertTrue(0 <= reply[6] < 2 ** 31)
        self.assertTrue(same_shape(reply, vector("auth-mud-reply")))
        self.assertIn(reply, m.sent_to(A, "auth-mud-reply"))

    # -- the link dropping under a query -------------------------------------------------------

    @defer.inlineCallbacks
    def test_query_pending_when_the_link_drops_fails_link_down(self):
        m = self.muds
        m.router.set_mud("Sleepy", mud_info(state=0))
        yield gateway_sees(m.a, lambda: m.a.gateway.lists.mud_entry("Sleepy"), "Sleepy in the mudlist")
        pending = m.client_a.call("finger", {"target_mud": "Sleepy", "target_user": "x", "timeout": 10})
        yield m.wait_received(A, "finger-req")
        m.router.refuse_startups = True      # A stays down until we allow it back
        yield m.router.drop(A)
        yield self.assertFails(pending, -32004, reason="link_down")
        self.assertEqual(m.a.gateway.queries.pending_count(), 0)
        # While down, a new query fails at once the same way, and sends nothing.
        sent = len(m.received_from(A))
        yield self.assertFails(m.client_a.call("who", {"target_mud": B}), -32004, reason="link_down")
        m.router.refuse_startups = False
        yield link_ready(m.a)
        self.assertEqual([p[0] for p in m.received_from(A)[sent:]], ["startup-req-3"] * (len(m.received_from(A)) - sent))
        # And after the reconnect queries work again.
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual(result["status"], "success")


class PresenceSettings(unittest.TestCase):
    """B with a short presence.ttl and a small presence.max_users."""

    timeout = 20
    MAX_USERS = 3
    TTL = 1.0       # presence.ttl of MudB

    @defer.inlineCallbacks
    def setUp(self):
        self.muds = TwoMuds(self)
        yield self.muds.start(b_sections={"presence": {"ttl": self.TTL, "max_users": self.MAX_USERS}})

    assertFails = QueriesEndToEnd.assertFails

    @defer.inlineCallbacks
    def test_stale_snapshot_means_no_snapshot(self):
        m = self.muds
        yield m.client_b.call("presence_sync", {"users": [BOB]})
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual([u["name"] for u in result["users"]], ["Bob"])

        # The snapshot goes stale as B's clock passes its ttl: no event, a timer.
        while m.b.gateway.presence.current():
            yield task.deferLater(reactor, self.TTL, lambda: None)
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual(result["users"], [])
        self.assertEqual(m.received_from(B, "who-reply")[-1], ["who-reply", 5, B, 0, A, 0, []])
        # A tell to a player the stale snapshot named, or to anyone: the event, no answer.
        yield m.client_a.call("tell", {"target_mud": B, "target_user": "zed", "message": "late"})
        event = yield m.client_b.event("tell_received")
        self.assertEqual(event["to_user"], "zed")
        self.assertEqual((yield m.flush(B)), [])

    @defer.inlineCallbacks
    def test_presence_bounds(self):
        m = self.muds
        limit = self.MAX_USERS
        result = yield m.client_b.call("presence_sync", {"users": [player(f"p{i}") for i in range(limit)]})
        self.assertEqual(result["count"], limit)
        failure = yield self.assertFails(
            m.client_b.call("presence_sync", {"users": [player(f"p{i}") for i in range(limit + 1)]}),
            -32602)
        self.assertEqual(failure.data["field"], "users")
        yield self.assertFails(m.client_b.call("presence_sync", {"users": [{"visname": "x"}]}), -32602)
        yield self.assertFails(m.client_b.call("presence_sync", {"users": [player("x", gender=5)]}), -32602)
        # A refused snapshot changes nothing: the last good one stays.
        result = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual([u["name"] for u in result["users"]], ["P0", "P1", "P2"])
