"""Presence: presence_sync validation, snapshot ttl, and the exact packets
the gateway answers the network with."""

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3.api.errors import INVALID_PARAMS, RPCError
from intermud3.mudmode import frame
from intermud3.outbound import frame_size
from intermud3.services import presence as presence_module
from tests.fakes import OUR_MUD, build_presence, make_gateway, presence_handlers

ALICE = {"name": "Alice", "visname": "Alice the Bold", "title": "the Bold", "level": 20,
         "idle": 30, "race": "elf", "guild": "mage", "location": "Tower", "status": "afk",
         "login_time": 1700000000, "gender": 1, "channels": ["dchat", "ichat"]}
BOB = {"name": "bob", "channels": ["ichat"]}


class PresenceTestCase(SynchronousTestCase):
    def setUp(self):
        self.gateway = make_gateway(self)
        self.link = self.gateway.link
        self.presence = build_presence(self.gateway)
        self.sync = presence_handlers(self.gateway)["presence_sync"]
        self.session = self.gateway.sessions.add("s1", ["presence"])

    def do_sync(self, users):
        return self.sync(self.gateway.call(self.session), {"users": users})

    def assertInvalid(self, field, users):
        with self.assertRaises(RPCError) as caught:
            self.do_sync(users)
        self.assertEqual(caught.exception.code, INVALID_PARAMS)
        self.assertEqual(caught.exception.data["field"], field)
        return caught.exception

    def ask(self, value):
        self.link.sent.clear()
        self.link.receive(value)
        return list(self.link.sent)


class SyncTests(PresenceTestCase):
    def test_result_and_knows_user(self):
        self.assertIsNone(self.presence.knows_user("alice"))
        self.assertEqual(self.do_sync([ALICE, BOB]),
                         {"status": "synchronized", "mud_name": OUR_MUD, "count": 2})
        self.assertIs(self.presence.knows_user("alice"), True)
        self.assertIs(self.presence.knows_user("BOB"), True)
        self.assertIs(self.presence.knows_user("carl"), False)

    def test_snapshot_expires_after_ttl_read_at_check_time(self):
        self.do_sync([ALICE])
        self.gateway.clock.advance(119)
        self.assertIs(self.presence.knows_user("alice"), True)
        self.gateway.clock.advance(2)
        self.assertIsNone(self.presence.knows_user("alice"))
        # A reload that lengthens the ttl applies to the snapshot we hold.
        self.gateway.config = with_overrides(self.gateway.config, {"presence.ttl": 300})
        self.assertIs(self.presence.knows_user("alice"), True)

    def test_a_new_sync_replaces_the_whole_snapshot(self):
        self.do_sync([ALICE, BOB])
        self.assertEqual(self.do_sync([BOB])["count"], 1)
        self.assertIs(self.presence.knows_user("alice"), False)
        self.assertEqual(self.do_sync([])["count"], 0)
        self.assertIs(self.presence.knows_user("bob"), False)

    def test_validation_names_the_field(self):
        self.assertInvalid("users", None)
        self.assertInvalid("users", {"name": "x"})
        self.assertInvalid("users[0]", ["alice"])
        self.assertInvalid("users[1].name", [ALICE, {"visname": "x"}])
        self.assertInvalid("users[0].name", [{"name": "  "}])
        self.assertInvalid("users[0].name", [{"name": 5}])
        self.assertInvalid("users[0].visname", [{"name": "a", "visname": 3}])
        self.assertInvalid("users[0].idle", [{"name": "a", "idle": "long"}])
        self.assertInvalid("users[0].idle", [{"name": "a", "idle": -1}])
        self.assertInvalid("users[0].login_time", [{"name": "a", "login_time": True}])
        self.assertInvalid("users[0].level", [{"name": "a", "level": [1]}])
        self.assertInvalid("users[0].gender", [{"name": "a", "gender": 3}])
        self.assertInvalid("users[0].gender", [{"name": "a", "gender": "male"}])
        self.assertInvalid("users[0].channels", [{"name": "a", "channels": "dchat"}])
        self.assertInvalid("users[0].channels[1]", [{"name": "a", "channels": ["x", 1]}])
        # Nothing of a refused sync was kept.
        self.assertIsNone(self.presence.knows_user("alice"))

    def test_text_is_cleaned_for_the_network(self):
        # API.md: Pinkfish kept, ANSI escapes removed whole, control characters
        # dropped; player fields are one line.
        self.do_sync([{"name": " \x1b[1mEve\x1b[0m\x00", "title": "the\x07 %^RED%^Red%^RESET%^\r\n",
                       "status": "a\nb", "race": "\x1b[31m"}])
        eve = self.presence.user("eve")
        self.assertEqual((eve["name"], eve["visname"], eve["title"], eve["status"], eve["race"]),
                         ("Eve", "Eve", "the %^RED%^Red%^RESET%^", "a b", None))
        self.assertEqual(self.ask(["who-req", 5, "ProbeA", 0, OUR_MUD, 0]), [
            ["who-reply", 5, OUR_MUD, 0, "ProbeA", 0, [["Eve", 0, "the %^RED%^Red%^RESET%^"]]]])
        self.assertInvalid("users[0].name", [{"name": "\x1b[0m\r\n"}])

    def test_too_many_users(self):
        self.gateway.config = with_overrides(self.gateway.config, {"presence.max_users": 2})
        error = self.assertInvalid("users", [{"name": f"u{i}"} for i in range(3)])
        self.assertEqual(error.data["max"], 2)
        self.assertEqual(self.do_sync([{"name": "a"}, {"name": "b"}])["count"], 2)

    @settings(deadline=None, max_examples=100)
    @given(st.lists(st.dictionaries(
        st.sampled_from(["name", "visname", "title", "level", "idle", "gender", "channels"]),
        st.one_of(st.none(), st.integers(), st.text(max_size=5), st.lists(st.text(max_size=3))))))
    def test_any_input_is_accepted_or_refused_cleanly(self, users):
        try:
            self.do_sync(users)
        except RPCError as error:
            self.assertEqual(error.code, INVALID_PARAMS)
            self.assertTrue(error.data["field"].startswith("users"))


class AnswerTests(PresenceTestCase):
    def setUp(self):
        super().setUp()
        self.do_sync([ALICE, BOB])

    def test_who_reply(self):
        self.assertEqual(self.ask(["who-req", 5, "ProbeA", "carl", OUR_MUD, 0]), [
            ["who-reply", 5, OUR_MUD, 0, "ProbeA", "carl",
             [["Alice the Bold", 30, "the Bold"], ["bob", 0, ""]]]])

    def test_who_reply_without_snapshot_is_empty(self):
        self.gateway.clock.advance(121)
        self.assertEqual(self.ask(["who-req", 5, "ProbeA", 0, OUR_MUD, 0]),
                         [["who-reply", 5, OUR_MUD, 0, "ProbeA", 0, []]])

    def test_long_who_list_trimmed_to_max_send_bytes(self):
        for limit in (300, 1000, 8192):
            self.gateway.config = with_overrides(self.gateway.config, {"router.max_send_bytes": limit})
            users = [{"name": f"player{i}", "title": "é" * (i % 7) + "x" * (i % 13)}
                     for i in range(600)]
            self.do_sync(users)
            calls = []

            def counted(packet):
                calls.append(packet)
                return frame_size(packet)
            self.patch(presence_module, "frame_size", counted)
            reply = self.ask(["who-req", 5, "ProbeA", 0, OUR_MUD, 0])[0]
            entries = reply[6]
            self.assertLessEqual(len(frame(reply)), limit)
            self.assertLess(len(entries), 600)
            # Nothing more would have fitted, and the order is the MUD's.
            self.assertEqual([e[0] for e in entries], [f"player{i}" for i in range(len(entries))])
            bigger = reply[:6] + [entries + [[f"player{len(entries)}", 0, users[len(entries)]["title"]]]]
            self.assertGreater(len(frame(bigger)), limit)
            # Estimated once, verified with few frame builds (not one per entry).
            self.assertLessEqual(len(calls), 2)

    def test_finger_reply(self):
        self.assertEqual(self.ask(["finger-req", 5, "ProbeA", "carl", OUR_MUD, 0, "alice"]), [
            ["finger-reply", 5, OUR_MUD, 0, "ProbeA", "carl",
             "Alice the Bold", "the Bold", "", "", "Tue Nov 14 22:13:20 2023", 30, "", "20",
             "Race: elf, Guild: mage, Location: Tower, Status: afk"]])

    def test_finger_reply_fields_not_given_are_empty_by_type(self):
        # Strings "" (login time included: I3 types it a string), idle 0.
        self.assertEqual(self.ask(["finger-req", 5, "ProbeA", 0, OUR_MUD, 0, "BOB"]), [
            ["finger-reply", 5, OUR_MUD, 0, "ProbeA", 0, "bob", "", "", "", "", 0, "", "", ""]])

    def test_finger_unknown_user_gets_unk_user(self):
        request = ["finger-req", 5, "ProbeA", "carl", OUR_MUD, 0, "nobody"]
        self.assertEqual(self.ask(request), [
            ["error", 5, OUR_MUD, 0, "ProbeA", "carl", "unk-user", "nobody is not online.", request]])

    def test_finger_without_snapshot_gets_unk_user(self):
        self.gateway.clock.advance(121)
        sent = self.ask(["finger-req", 5, "ProbeA", 0, OUR_MUD, 0, "alice"])
        self.assertEqual(sent[0][6], "unk-user")

    def test_locate_reply_for_our_player(self):
        self.assertEqual(self.ask(["locate-req", 5, "ProbeA", "carl", 0, 0, "Alice"]), [
            ["locate-reply", 5, OUR_MUD, 0, "ProbeA", "carl", OUR_MUD, "Alice the Bold", 30, "afk"]])
        self.assertEqual(self.ask(["locate-req", 5, "ProbeA", "carl", 0, 0, "bob"]), [
            ["locate-reply", 5, OUR_MUD, 0, "ProbeA", "carl", OUR_MUD, "bob", 0, ""]])

    def test_locate_silent_for_unknown_stale_or_our_own(self):
        self.assertEqual(self.ask(["locate-req", 5, "ProbeA", "carl", 0, 0, "nobody"]), [])
        self.assertEqual(self.ask(["locate-req", 5, OUR_MUD, "carl", 0, 0, "alice"]), [])
        self.gateway.clock.advance(121)
        self.assertEqual(self.ask(["locate-req", 5, "ProbeA", "carl", 0, 0, "alice"]), [])

    def test_chan_who_from_channels(self):
        self.assertEqual(self.ask(["chan-who-req", 5, "ProbeA", "carl", OUR_MUD, 0, "ichat"]), [
            ["chan-who-reply", 5, OUR_MUD, 0, "ProbeA", "carl", "ichat", ["Alice the Bold", "bob"]]])
        self.assertEqual(self.ask(["chan-who-req", 5, "ProbeA", 0, OUR_MUD, 0, "dchat"]), [
            ["chan-who-reply", 5, OUR_MUD, 0, "ProbeA", 0, "dchat", ["Alice the Bold"]]])
        self.assertEqual(self.ask(["chan-who-req", 5, "ProbeA", 0, OUR_MUD, 0, "quiet"]), [
            ["chan-who-reply", 5, OUR_MUD, 0, "ProbeA", 0, "quiet", []]])

    def test_chan_user_reply_with_gender(self):
        self.assertEqual(self.ask(["chan-user-req", 5, "ProbeA", 0, OUR_MUD, 0, "Alice"]), [
            ["chan-user-reply", 5, OUR_MUD, 0, "ProbeA", 0, "alice", "Alice the Bold", 1]])
        self.assertEqual(self.ask(["chan-user-req", 5, "ProbeA", 0, OUR_MUD, 0, "bob"]), [
            ["chan-user-reply", 5, OUR_MUD, 0, "ProbeA", 0, "bob", "bob", 2]])

    def test_chan_user_unknown_gets_unk_user(self):
        request = ["chan-user-req", 5, "ProbeA", 0, OUR_MUD, 0, "nobody"]
        sent = self.ask(request)
        self.assertEqual(sent, [["error", 5, OUR_MUD, 0, "ProbeA", 0, "unk-user",
                                 "nobody is not a valid player.", request]])

    def test_unknown_user_asked_by_broadcast_or_router_gets_no_error(self):
        # I3-PROTOCOL.md 4: never an error answer to a broadcast or a router.
        for ptype in ("finger-req", "chan-user-req"):
            self.assertEqual(self.ask([ptype, 5, "ProbeA", "carl", 0, 0, "nobody"]), [])
            self.assertEqual(self.ask([ptype, 5, "*test", 0, OUR_MUD, 0, "nobody"]), [])

    def test_malformed_requests_never_crash(self):
        for value in (["finger-req", 5, "ProbeA", 0, OUR_MUD, 0],
                      ["finger-req", 5, "ProbeA", 0, OUR_MUD, 0, ["x"]],
                      ["chan-who-req", 5, "ProbeA", 0, OUR_MUD, 0, 7],
                      ["chan-user-req", 5, "ProbeA", 0, OUR_MUD, 0, 0],
                      ["who-req", 5, 0, 0, OUR_MUD, 0]):
            self.link.receive(value)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([(p[0], p[6]) for p in self.link.sent], [("error", "bad-pkt")] * 4)

    def test_fields_no_lpc_writer_takes_never_crash_an_answer(self):
        # A lenient reader hands over what the strict writer refuses: the
        # answer goes to the MUD itself and carries 0 instead of the packet.
        request = ["chan-who-req", 5, "ProbeA", 2 ** 40, OUR_MUD, 0, float("inf")]
        self.assertEqual(self.ask(request), [
            ["error", 5, OUR_MUD, 0, "ProbeA", 0, "bad-pkt", "chan-who-req needs a channel", 0]])
        request = ["who-req", 5, "ProbeA", [1], OUR_MUD, float("-inf")]
        self.assertEqual(self.ask(request)[0][:6], ["who-reply", 5, OUR_MUD, 0, "ProbeA", 0])
        request = ["finger-req", 5, "ProbeA", "carl", OUR_MUD, 0, "nobody", 2 ** 40]
        self.assertEqual(self.ask(request), [
            ["error", 5, OUR_MUD, 0, "ProbeA", "carl", "unk-user", "nobody is not online.", 0]])
        self.assertEqual(self.flushLoggedErrors(), [])


class UserCacheTests(PresenceTestCase):
    def test_ucache_update_and_lookup(self):
        self.link.receive(["ucache-update", 5, "ProbeB", 0, 0, 0, "bob", "Bob", 0])
        self.assertEqual(self.presence.lookup("probeb", "BOB"),
                         {"mud": "ProbeB", "user": "bob", "visname": "Bob", "gender": 0})
        self.assertIsNone(self.presence.lookup("ProbeC", "bob"))
        self.assertEqual(self.link.sent, [])

    def test_our_own_ucache_update_is_ignored(self):
        self.link.receive(["ucache-update", 5, OUR_MUD, 0, 0, 0, "alice", "Alice", 1])
        self.assertIsNone(self.presence.lookup(OUR_MUD, "alice"))

    def test_chan_user_reply_feeds_the_cache(self):
        self.link.receive(["chan-user-reply", 5, "ProbeB", 0, OUR_MUD, 0, "bob", "Bob", 7])
        self.assertEqual(self.presence.lookup("ProbeB", "bob")["gender"], 2)
        self.assertEqual(self.link.sent, [])

    def test_cache_is_lru_bounded(self):
        self.presence.max_ucache = 3
        for name in ("a", "b", "c"):
            self.link.receive(["ucache-update", 5, "M", 0, 0, 0, name, name.upper(), 2])
        self.assertIsNotNone(self.presence.lookup("M", "a"))  # now the most recent
        self.link.receive(["ucache-update", 5, "M", 0, 0, 0, "d", "D", 2])
        self.assertIsNone(self.presence.lookup("M", "b"))
        self.assertIsNotNone(self.presence.lookup("M", "a"))
        self.assertIsNotNone(self.presence.lookup("M", "d"))

    def test_our_own_addressed_ucache_update_is_ignored_too(self):
        self.link.receive(["ucache-update", 5, OUR_MUD, 0, OUR_MUD, 0, "alice", "Alice", 1])
        self.assertIsNone(self.presence.lookup(OUR_MUD, "alice"))
        self.assertEqual(self.link.sent, [])
