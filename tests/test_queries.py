"""Queries (who, finger, locate, channel_who) and ErrorRouter: correlation,
timeouts, link drops, bounds, events; inbound frames from the real router
vectors where they fit."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3 import lpc

from intermud3.api.errors import GATEWAY_ERROR, RPCError
from intermud3.permissions import for_packet as permission_for
from intermud3.services import failures
from tests import coffeemud_frames as coffeemud
from tests.fakes import (assert_invalid, build_errors, build_presence, build_queries, make_config,
                         make_gateway, presence_handlers, query_handlers)
from tests.vectors import load_vectors

PROBE_A = "ProbeA"


def from_router(ptype, origin=None):
    """Decoded frames the router sent ProbeA, of one type (and origin)."""
    return [v.decoded for v in load_vectors()
            if v.dir == "from-router" and isinstance(v.decoded, list) and v.decoded[0] == ptype
            and v.decoded[4] == PROBE_A and (origin is None or v.decoded[2] == origin)]


class QueryTestCase(SynchronousTestCase):
    mud = PROBE_A

    def setUp(self):
        self.gateway = make_gateway(self, make_config(mud={"name": self.mud}))
        self.link = self.gateway.link
        build_presence(self.gateway)
        self.queries = build_queries(self.gateway)
        self.errors = build_errors(self.gateway)
        self.handlers = query_handlers(self.gateway)
        sessions = self.gateway.sessions
        self.alice = sessions.add("s-alice", ["info", "tell"])
        self.bob = sessions.add("s-bob", ["info"])
        self.teller = sessions.add("s-tell", ["tell"])
        self.nobody = sessions.add("s-none", [])

    def ask(self, method, session=None, **params):
        return self.handlers[method](self.gateway.call(session or self.alice), params)

    def outcome(self, result):
        """(True, value) or (False, RPCError) of a fired Deferred."""
        out = []
        result.addCallbacks(lambda v: out.append((True, v)), lambda f: out.append((False, f.value)))
        self.assertEqual(len(out), 1, "the Deferred has not fired")
        return out[0]

    def assertPending(self, result):
        fired = []
        result.addBoth(lambda r: (fired.append(r), r)[1])
        self.assertEqual(fired, [])

    def assertGatewayError(self, result, **data):
        ok, error = self.outcome(result)
        self.assertFalse(ok)
        self.assertIsInstance(error, RPCError)
        self.assertEqual(error.code, GATEWAY_ERROR)
        self.assertEqual(error.data, data)

    def assertInvalid(self, field, method, **params):
        return assert_invalid(self, field, lambda: self.ask(method, **params))


class WhoTests(QueryTestCase):
    def test_request_packet(self):
        self.gateway.lists.apply_mudlist("*test", "OurMud", 1, {"DSTest": [-1] + [0] * 12})
        result = self.ask("who", target_mud="dstest", from_user="Alice")
        self.assertEqual(self.link.sent, [["who-req", 5, PROBE_A, "alice", "DSTest", 0]])
        self.assertPending(result)

    def test_unknown_mud_sent_as_given_and_from_user_defaults_to_zero(self):
        self.assertPending(self.ask("who", target_mud="NoSuchMud"))
        self.assertEqual(self.link.sent, [["who-req", 5, PROBE_A, 0, "NoSuchMud", 0]])

    def test_reply_from_vectors_completes_and_goes_to_asker(self):
        reply = from_router("who-reply", "ProbeB")[0]
        result = self.ask("who", target_mud="ProbeB", from_user="alice")
        self.link.receive(reply)
        ok, value = self.outcome(result)
        self.assertTrue(ok)
        self.assertEqual(value, {"status": "success", "mud_name": "ProbeB", "users": [
            {"name": "Bob", "idle": 0, "level": 0, "extra": "the tester"},
            {"name": "Carl", "idle": 125, "level": 0, "extra": ""}]})
        events = self.alice.events("who_reply")
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["from_mud"], "ProbeB")
        self.assertEqual(events[0]["to_mud"], PROBE_A)
        self.assertEqual(events[0]["to_user"], "alice")
        self.assertEqual(events[0]["users"], value["users"])
        self.assertEqual(self.bob.events(), [])
        self.assertEqual(self.queries.pending_count(), 0)

    def test_empty_who_reply_vector(self):
        reply = from_router("who-reply", "DSTest")[0]
        result = self.ask("who", target_mud="DSTest", from_user="alice")
        self.link.receive(reply)
        self.assertEqual(self.outcome(result), (True, {"status": "success", "mud_name": "DSTest", "users": []}))

    def test_two_pending_to_same_mud_complete_oldest_first(self):
        first = self.ask("who", target_mud="ProbeB", from_user="alice")
        second = self.ask("who", session=self.bob, target_mud="probeb", from_user="alice")
        reply = ["who-reply", 5, "ProbeB", 0, PROBE_A, "alice", [["One", 1, ""]]]
        self.link.receive(reply)
        self.assertEqual(self.outcome(first)[1]["users"][0]["name"], "One")
        self.assertPending(second)
        self.assertEqual(len(self.alice.events("who_reply")), 1)
        self.assertEqual(self.bob.events("who_reply"), [])
        reply[6] = [["Two", 2, "x"]]
        self.link.receive(reply)
        self.assertEqual(self.outcome(second)[1]["users"][0]["name"], "Two")
        self.assertEqual(len(self.bob.events("who_reply")), 1)

    def test_asking_user_must_match(self):
        mine = self.ask("who", target_mud="ProbeB", from_user="alice")
        anon = self.ask("who", session=self.bob, target_mud="ProbeB")
        # Answer to the MUD itself (t_user 0) completes the one sent with user 0.
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, 0, []])
        self.assertTrue(self.outcome(anon)[0])
        self.assertPending(mine)

    def test_unmatched_reply_goes_to_every_info_session(self):
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, "carl", [["X", 0, ""]]])
        self.assertEqual(len(self.alice.events("who_reply")), 1)
        self.assertEqual(len(self.bob.events("who_reply")), 1)
        self.assertEqual(self.teller.events(), [])
        self.assertEqual(self.nobody.events(), [])

    def test_timeout(self):
        result = self.ask("who", target_mud="ProbeB", timeout=2)
        self.gateway.clock.advance(1.9)
        self.assertPending(result)
        self.gateway.clock.advance(0.2)
        self.assertGatewayError(result, reason="timeout")
        self.assertEqual(self.queries.pending_count(), 0)
        # A late reply matches nothing: it goes to every info session.
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, 0, []])
        self.assertEqual(len(self.bob.events("who_reply")), 1)

    def test_default_timeout_is_five_and_cap_sixty(self):
        result = self.ask("who", target_mud="ProbeB")
        self.gateway.clock.advance(4.9)
        self.assertPending(result)
        self.gateway.clock.advance(0.2)
        self.assertGatewayError(result, reason="timeout")
        result = self.ask("who", target_mud="ProbeB", timeout=1000)
        self.gateway.clock.advance(59.9)
        self.assertPending(result)
        self.gateway.clock.advance(0.2)
        self.assertGatewayError(result, reason="timeout")

    def test_bad_params(self):
        self.assertInvalid("target_mud", "who")
        self.assertInvalid("target_mud", "who", target_mud="  ")
        self.assertInvalid("target_mud", "who", target_mud=7)
        self.assertInvalid("timeout", "who", target_mud="X", timeout=0)
        self.assertInvalid("timeout", "who", target_mud="X", timeout=-1)
        self.assertInvalid("timeout", "who", target_mud="X", timeout="5")
        self.assertInvalid("from_user", "who", target_mud="X", from_user=3)
        self.assertInvalid("wait", "who", target_mud="X", wait="no")
        self.assertEqual(self.link.sent, [])

    def test_link_not_ready(self):
        self.link.ready = False
        with self.assertRaises(RPCError) as caught:
            self.ask("who", target_mud="ProbeB")
        self.assertEqual(caught.exception.code, GATEWAY_ERROR)
        self.assertEqual(caught.exception.data, {"reason": "link_down"})
        self.assertEqual(self.queries.pending_count(), 0)

    def test_link_drop_fails_every_pending(self):
        first = self.ask("who", target_mud="ProbeB")
        second = self.ask("finger", session=self.bob, target_mud="ProbeB", target_user="x")
        self.link.set_state("backoff", "connection lost")
        self.assertGatewayError(first, reason="link_down")
        self.assertGatewayError(second, reason="link_down")
        self.assertEqual(self.queries.pending_count(), 0)
        self.gateway.clock.advance(10)  # the timers were cancelled
        self.assertEqual(self.gateway.clock.getDelayedCalls(), [])

    def test_ready_state_fails_nothing(self):
        result = self.ask("who", target_mud="ProbeB")
        self.link.set_state("ready", "startup-reply")
        self.assertPending(result)

    def test_wait_false_returns_at_once_and_answer_is_event(self):
        result = self.ask("who", target_mud="ProbeB", wait=False)
        self.assertEqual(result, {"status": "requested", "mud_name": "ProbeB"})
        self.assertEqual(self.queries.pending_count(self.alice), 1)
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, 0, [["Z", 3, "t"]]])
        self.assertEqual(self.alice.events("who_reply")[0]["users"],
                         [{"name": "Z", "idle": 3, "level": 0, "extra": "t"}])
        self.assertEqual(self.bob.events(), [])
        self.assertEqual(self.queries.pending_count(), 0)

    def test_wait_false_timeout_is_silent(self):
        self.ask("who", target_mud="ProbeB", wait=False)
        self.gateway.clock.advance(6)
        self.assertEqual(self.queries.pending_count(), 0)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_pending_bound_per_session(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.session.max_pending_queries": 2})
        self.ask("who", target_mud="A", wait=False)
        self.assertPending(self.ask("who", target_mud="B"))
        with self.assertRaises(RPCError) as caught:
            self.ask("who", target_mud="C")
        self.assertEqual(caught.exception.code, GATEWAY_ERROR)
        self.assertEqual(caught.exception.data, {"reason": "too_many_pending"})
        self.assertEqual(len(self.link.sent), 2)
        # Another session has its own bound.
        self.assertPending(self.ask("who", session=self.bob, target_mud="C"))
        # An answer frees a place.
        self.link.receive(["who-reply", 5, "A", 0, PROBE_A, 0, []])
        self.assertPending(self.ask("who", target_mud="D"))

    def test_session_end_cancels_its_requests(self):
        mine = self.ask("who", target_mud="ProbeB")
        theirs = self.ask("who", session=self.bob, target_mud="ProbeB")
        self.gateway.sessions.end(self.alice)
        self.assertGatewayError(mine, reason="cancelled")
        self.assertPending(theirs)
        self.assertEqual(self.queries.pending_count(self.alice), 0)
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, 0, []])
        self.assertTrue(self.outcome(theirs)[0])

    def test_error_fails_who_with_i3_error(self):
        result = self.ask("who", target_mud="Down", from_user="alice")
        self.link.receive(["error", 5, "*test", 0, PROBE_A, "alice", "unk-dst", "destination unknown",
                           ["who-req", 5, PROBE_A, "alice", "Down", 0]])
        self.assertGatewayError(result, i3_error="unk-dst", i3_message="destination unknown")
        self.assertEqual(self.queries.pending_count(), 0)

    def test_error_for_a_wait_false_query_is_only_an_event(self):
        self.assertEqual(self.ask("who", target_mud="Down", wait=False)["status"], "requested")
        self.link.receive(["error", 5, "*test", 0, PROBE_A, 0, "unk-dst", "?", self.link.sent[0]])
        self.assertEqual(len(self.alice.events("error_occurred")), 1)
        self.assertEqual(self.bob.events(), [])
        self.assertEqual(self.queries.pending_count(), 0)
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_zero_pending_bound_refuses_and_leaks_nothing(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.session.max_pending_queries": 0})
        with self.assertRaises(RPCError):
            self.ask("who", target_mud="A")
        self.assertEqual(self.queries._calls_by_session, {})
        self.assertEqual(self.link.sent, [])

    def test_malformed_reply_is_read_leniently(self):
        result = self.ask("who", target_mud="ProbeB")
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, 0,
                           [["A"], "junk", [], [0, "x", 7, 12], ["B", 4, "e", "Wizard"]]])
        self.assertEqual(self.outcome(result)[1]["users"], [
            {"name": "A", "idle": 0, "level": 0, "extra": ""},
            {"name": "", "idle": 0, "level": 12, "extra": "7"},
            {"name": "B", "idle": 4, "level": "Wizard", "extra": "e"}])


    def test_junk_numbers_and_containers_read_as_nothing(self):
        # What a lenient reader hands over for 1e999, or an array where text belongs.
        result = self.ask("who", target_mud="ProbeB")
        self.link.receive(["who-reply", 5, "ProbeB", 0, PROBE_A, 0,
                           [[["A"], float("inf"), {"x": 1}], ["B", float("-inf"), 3.5]]])
        self.assertEqual(self.outcome(result)[1]["users"], [
            {"name": "", "idle": 0, "level": 0, "extra": ""},
            {"name": "B", "idle": 0, "level": 0, "extra": "3.5"}])
        self.assertEqual(self.flushLoggedErrors(), [])


class FingerTests(QueryTestCase):
    def test_request_and_reply(self):
        result = self.ask("finger", target_mud="ProbeB", target_user="Bob", from_user="Alice")
        self.assertEqual(self.link.sent, [["finger-req", 5, PROBE_A, "alice", "ProbeB", 0, "bob"]])
        self.link.receive(["finger-reply", 5, "ProbeB", 0, PROBE_A, "alice",
                           "Bob", "the tester", 0, "bob@example.org", "Mon Nov 28", 42,
                           0, 20, "more"])
        info = {"name": "Bob", "title": "the tester", "real_name": None,
                "email": "bob@example.org", "login_time": "Mon Nov 28", "idle_time": 42,
                "ip_address": None, "level": 20, "extra": "more"}
        self.assertEqual(self.outcome(result), (True, {
            "status": "success", "mud_name": "ProbeB", "user_name": "Bob", "user_info": info}))
        event = self.alice.events("finger_reply")[0]
        self.assertEqual(event["user_info"], info)
        self.assertEqual((event["from_mud"], event["to_mud"], event["to_user"]),
                         ("ProbeB", PROBE_A, "alice"))

    def test_error_vector_unk_user_fails_with_i3_error(self):
        error = from_router("error", "DSTest")
        error = [e for e in error if e[8][0] == "finger-req"][0]
        result = self.ask("finger", target_mud="DSTest", target_user="nobody", from_user="alice")
        self.assertEqual(self.link.sent[0], error[8])
        self.link.receive(error)
        self.assertGatewayError(result, i3_error="unk-user", i3_message="Nobody is not involved.")
        # error_occurred goes to the asker only.
        events = self.alice.events("error_occurred")
        self.assertEqual(events, [{
            "error_code": "unk-user", "error_message": "Nobody is not involved.",
            "from_mud": "DSTest", "to_mud": PROBE_A, "to_user": "alice",
            "context": {"packet_type": "finger-req", "target_mud": "DSTest", "target_user": None},
            "timestamp": events[0]["timestamp"]}])
        self.assertEqual(self.bob.events(), [])

    def test_error_event_comes_before_the_calls_reply(self):
        result = self.ask("finger", target_mud="ProbeB", target_user="nobody", from_user="alice")
        seen_at_reply = []
        result.addErrback(lambda f: seen_at_reply.append(len(self.alice.events("error_occurred"))))
        self.link.receive(["error", 5, "ProbeB", 0, PROBE_A, "alice", "unk-user", "no one",
                           self.link.sent[0]])
        self.assertEqual(seen_at_reply, [1])

    def test_error_completes_the_request_it_carries_not_the_oldest(self):
        first = self.ask("finger", target_mud="ProbeB", target_user="one", from_user="alice")
        second = self.ask("finger", session=self.bob, target_mud="ProbeB", target_user="two",
                          from_user="alice")
        self.link.receive(["error", 5, "ProbeB", 0, PROBE_A, "alice", "unk-user", "no two",
                           self.link.sent[1]])
        self.assertGatewayError(second, i3_error="unk-user", i3_message="no two")
        self.assertPending(first)
        self.assertEqual(len(self.bob.events("error_occurred")), 1)
        self.assertEqual(self.alice.events("error_occurred"), [])

    def test_missing_target_user(self):
        self.assertInvalid("target_user", "finger", target_mud="X")

    def test_names_are_cleaned_and_lower_cased_for_the_network(self):
        # API.md "Methods": ANSI escapes removed whole; user names lower-cased.
        result = self.ask("finger", target_mud="\x1b[1mProbeB\x1b[0m",
                          target_user="\x1b[1;31mBoB\x1b[0m", from_user="\x1b[32mAlIce\x1b[0m")
        self.assertEqual(self.link.sent, [["finger-req", 5, PROBE_A, "alice", "ProbeB", 0, "bob"]])
        self.link.receive(["finger-reply", 5, "ProbeB", 0, PROBE_A, "alice",
                           "Bob", 0, 0, 0, 0, 0, 0, 0, 0])
        self.assertEqual(self.outcome(result)[1]["user_name"], "BoB")
        self.assertInvalid("target_user", "finger", target_mud="X", target_user="\x1b[0m")

    def test_default_timeout_is_five(self):
        result = self.ask("finger", target_mud="ProbeB", target_user="bob")
        self.gateway.clock.advance(4.9)
        self.assertPending(result)
        self.gateway.clock.advance(0.2)
        self.assertGatewayError(result, reason="timeout")


class LocateTests(QueryTestCase):
    def test_gathers_every_reply_until_timeout(self):
        result = self.ask("locate", target_user="Bob", from_user="alice")
        self.assertEqual(self.link.sent, [["locate-req", 5, PROBE_A, "alice", 0, 0, "bob"]])
        self.link.receive(from_router("locate-reply")[0])
        self.link.receive(["locate-reply", 5, "Other", 0, PROBE_A, "alice", "Other", "bob", 5, "afk"])
        self.gateway.clock.advance(2.9)
        self.assertPending(result)
        self.gateway.clock.advance(0.2)
        self.assertEqual(self.outcome(result), (True, {
            "status": "success", "user_name": "Bob", "locations": [
                {"mud": "ProbeB", "user": "Bob", "idle": 42, "status": None},
                {"mud": "Other", "user": "bob", "idle": 5, "status": "afk"}]}))
        events = self.alice.events("locate_reply")
        self.assertEqual([(e["located_mud"], e["located_user"], e["idle"], e["status"]) for e in events],
                         [("ProbeB", "Bob", 42, None), ("Other", "bob", 5, "afk")])
        self.assertEqual(events[0]["from_mud"], "ProbeB")
        self.assertEqual(self.bob.events(), [])

    def test_nobody_answers_gives_empty_list(self):
        result = self.ask("locate", target_user="ghost")
        self.gateway.clock.advance(3.1)
        self.assertEqual(self.outcome(result),
                         (True, {"status": "success", "user_name": "ghost", "locations": []}))

    def test_replies_go_to_the_locate_for_that_user(self):
        first = self.ask("locate", target_user="carl", from_user="alice")
        second = self.ask("locate", session=self.bob, target_user="bob", from_user="alice")
        self.link.receive(["locate-reply", 5, "ProbeB", 0, PROBE_A, "alice", "ProbeB", "Bob", 1, 0])
        self.gateway.clock.advance(3.1)
        self.assertEqual(self.outcome(first)[1]["locations"], [])
        self.assertEqual(len(self.outcome(second)[1]["locations"]), 1)

    def test_one_error_does_not_end_a_locate(self):
        result = self.ask("locate", target_user="bob")
        sent = self.link.sent[0]
        self.link.receive(["error", 5, "Broken", 0, PROBE_A, 0, "not-imp", "no locate", sent])
        self.link.receive(["locate-reply", 5, "ProbeB", 0, PROBE_A, 0, "ProbeB", "Bob", 1, 0])
        self.gateway.clock.advance(3.1)
        self.assertEqual(len(self.outcome(result)[1]["locations"]), 1)
        self.assertEqual(len(self.alice.events("error_occurred")), 1)


class ChannelWhoTests(QueryTestCase):
    def test_default_timeout_is_five(self):
        result = self.ask("channel_who", channel="dchat", target_mud=["A", "B"])
        self.gateway.clock.advance(4.9)
        self.assertPending(result)
        self.gateway.clock.advance(0.2)
        self.assertGatewayError(result, reason="timeout")

    def test_single_mud_with_vector_reply(self):
        result = self.ask("channel_who", channel="dchat", target_mud="DSTest", from_user="alice")
        self.assertEqual(self.link.sent, [["chan-who-req", 5, PROBE_A, "alice", "DSTest", 0, "dchat"]])
        self.link.receive(from_router("chan-who-reply")[0])
        self.assertEqual(self.outcome(result), (True, {
            "status": "success", "channel": "dchat", "members": [{"mud": "DSTest", "users": []}],
            "users": []}))
        self.assertEqual(self.alice.events("chan_who_reply")[0]["from_mud"], "DSTest")
        self.assertEqual(self.alice.events("chan_who_reply")[0]["users"], [])

    def test_several_muds_gathered(self):
        result = self.ask("channel_who", channel="dchat", target_mud=["A", "B", "a"])
        self.assertEqual([p[4] for p in self.link.sent], ["A", "B"])
        self.link.receive(["chan-who-reply", 5, "B", 0, PROBE_A, 0, "dchat", ["Bee"]])
        self.assertPending(result)
        self.link.receive(["chan-who-reply", 5, "A", 0, PROBE_A, 0, "dchat", ["Ay", 0, "Cee"]])
        self.assertEqual(self.outcome(result)[1]["members"],
                         [{"mud": "B", "users": ["Bee"]}, {"mud": "A", "users": ["Ay", "Cee"]}])

    def test_flat_users_list_for_older_clients(self):
        result = self.ask("channel_who", channel="dchat", target_mud=["A", "B"])
        self.link.receive(["chan-who-reply", 5, "A", 0, PROBE_A, 0, "dchat", ["Ay", "Cee"]])
        self.link.receive(["chan-who-reply", 5, "B", 0, PROBE_A, 0, "dchat", ["Bee"]])
        self.assertEqual(self.outcome(result)[1]["users"], ["Ay@A", "Cee@A", "Bee@B"])

    def test_without_target_mud_asks_the_channel_owner(self):
        self.gateway.lists.apply_chanlist("*test", PROBE_A, 7, {"dchat": ["Host", 0]})
        result = self.ask("channel_who", channel="dchat")
        self.assertEqual(self.link.sent, [["chan-who-req", 5, PROBE_A, 0, "Host", 0, "dchat"]])
        self.link.receive(["chan-who-reply", 5, "Host", 0, PROBE_A, 0, "dchat", ["Zed"]])
        self.assertEqual(self.outcome(result)[1], {
            "status": "success", "channel": "dchat",
            "members": [{"mud": "Host", "users": ["Zed"]}], "users": ["Zed@Host"]})

    def test_channel_must_match(self):
        result = self.ask("channel_who", channel="dchat", target_mud="A")
        self.link.receive(["chan-who-reply", 5, "A", 0, PROBE_A, 0, "other", ["X"]])
        self.assertPending(result)
        self.assertEqual(len(self.bob.events("chan_who_reply")), 1)  # unmatched: all info

    def test_partial_answer_at_timeout_succeeds_none_fails(self):
        result = self.ask("channel_who", channel="c", target_mud=["A", "B"], timeout=1)
        self.link.receive(["chan-who-reply", 5, "A", 0, PROBE_A, 0, "c", ["X"]])
        self.gateway.clock.advance(1.1)
        self.assertEqual(self.outcome(result)[1]["members"], [{"mud": "A", "users": ["X"]}])
        result = self.ask("channel_who", channel="c", target_mud=["A", "B"], timeout=1)
        self.gateway.clock.advance(1.1)
        self.assertGatewayError(result, reason="timeout")

    def test_error_for_the_only_target_fails(self):
        result = self.ask("channel_who", channel="c", target_mud="Gone")
        self.link.receive(["error", 5, "*test", 0, PROBE_A, 0, "unk-dst", "destination unknown",
                           self.link.sent[0]])
        self.assertGatewayError(result, i3_error="unk-dst", i3_message="destination unknown")

    def test_target_list_bounds(self):
        # No target_mud and a channel the chanlist does not know.
        self.assertInvalid("target_mud", "channel_who", channel="c")
        self.assertInvalid("target_mud", "channel_who", channel="c", target_mud=[])
        self.assertInvalid("target_mud", "channel_who", channel="c",
                           target_mud=[f"M{i}" for i in range(11)])
        self.assertInvalid("target_mud[1]", "channel_who", channel="c", target_mud=["A", 3])
        self.assertInvalid("channel", "channel_who", target_mud="A")
        self.assertEqual(self.link.sent, [])


class ErrorRouterTests(QueryTestCase):
    def test_permission_of_each_packet_kind(self):
        self.assertEqual(permission_for("tell"), "tell")
        self.assertEqual(permission_for("emoteto"), "tell")
        self.assertEqual(permission_for("channel-m"), "channel")
        self.assertEqual(permission_for("channel-listen"), "channel")
        self.assertEqual(permission_for("channel-admin"), "admin")
        self.assertEqual(permission_for("channel-add"), "admin")
        self.assertEqual(permission_for("channel-remove"), "admin")
        self.assertEqual(permission_for("who-req"), "info")
        self.assertEqual(permission_for(None), "info")

    def test_unknown_tell_error_goes_to_tell_sessions(self):
        error = from_router("error", "*test")
        error = [e for e in error if e[6] == "unk-dst"][0]
        self.link.receive(error)
        for session in (self.alice, self.teller):
            events = session.events("error_occurred")
            self.assertEqual(len(events), 1)
            self.assertEqual(events[0]["context"], {
                "packet_type": "tell", "target_mud": "NoSuchMud", "target_user": "x"})
            self.assertEqual(events[0]["from_mud"], "*test")
        self.assertEqual(self.bob.events(), [])
        self.assertEqual(self.link.sent, [])  # errors are never answered

    def test_remembered_message_error_goes_to_its_sender_while_it_exists(self):
        tell = ["tell", 5, PROBE_A, "alice", "NoSuchMud", "x", "Alice", "hi"]
        self.errors.remember(tell, self.teller)
        error = ["error", 5, "*test", 0, PROBE_A, "alice", "unk-dst", "destination unknown", tell]
        self.link.receive(error)
        self.assertEqual(len(self.teller.events("error_occurred")), 1)
        self.assertEqual(self.alice.events(), [])
        self.gateway.sessions.end(self.teller)
        self.link.receive(error)
        self.assertEqual(len(self.alice.events("error_occurred")), 1)

    def test_remembered_entries_expire_and_are_bounded(self):
        tell = ["tell", 5, PROBE_A, "alice", "Far", "x", "Alice", "hi"]
        self.errors.remember(tell, self.teller)
        self.gateway.clock.advance(3601)
        self.link.receive(["error", 5, "*test", 0, PROBE_A, "alice", "unk-dst", "?", tell])
        self.assertEqual(len(self.alice.events("error_occurred")), 1)  # by permission
        self.errors.max_remembered = 3
        for i in range(5):
            self.errors.remember(["tell", 5, PROBE_A, "alice", f"M{i}", "x", "A", "hi"], self.teller)
        self.assertEqual(len(self.errors._remembered), 3)
        self.assertIsNone(self.errors.remembered_session(
            packets_parse(["tell", 5, PROBE_A, "alice", "M0", "x", "A", "hi"])))
        self.assertIs(self.errors.remembered_session(
            packets_parse(["tell", 5, PROBE_A, "Alice", "m4", "X", "A", "other text"])), self.teller)

    def test_notice_codes_without_packet_go_to_info(self):
        self.link.receive(["error", 5, "*test", 0, PROBE_A, 0, "bad-mojo", "someone claims your name", 0])
        self.link.receive(["error", 5, "*test", 0, PROBE_A, 0, "warning", "slow down", 0])
        events = self.bob.events("error_occurred")
        self.assertEqual([e["error_code"] for e in events], ["bad-mojo", "warning"])
        self.assertEqual(events[0]["context"],
                         {"packet_type": None, "target_mud": None, "target_user": None})
        self.assertEqual(events[0]["to_user"], None)
        self.assertEqual(self.teller.events(), [])

    def test_junk_error_fields_read_as_text_or_nothing(self):
        self.link.receive(["error", 5, ["*x"], 0, PROBE_A, {"a": 1}, [1], 2 ** 40, 0])
        event = self.bob.events("error_occurred")[0]
        self.assertEqual((event["error_code"], event["error_message"], event["from_mud"],
                          event["to_user"]), ("unknown", str(2 ** 40), None, None))

    def test_chan_user_error_vector_goes_to_info(self):
        error = [e for e in from_router("error", "DSTest") if e[8][0] == "chan-user-req"][0]
        self.link.receive(error)
        self.assertEqual(self.bob.events("error_occurred")[0]["context"]["packet_type"], "chan-user-req")


def packets_parse(value):
    from intermud3.packets import parse
    return parse(value)


class RoutersThatDropWhatMatchingNeedsTests(QueryTestCase):
    """Frames as CoffeeMud's router writes them (tests/coffeemud_frames.py):
    errors with 0 for their packet, a chan-who-reply with its channel
    emptied, our user's name in upper case."""

    def receive_raw(self, text):
        self.link.receive(lpc.decode(text))

    def sync_amy(self):
        presence_handlers(self.gateway)["presence_sync"](
            self.gateway.call(self.alice), {"users": [{"name": "Amy", "visname": "Amy"}]})

    def test_unk_user_without_packet_fails_the_finger_it_answers(self):
        result = self.ask("finger", target_mud="CoffeeMUD", target_user="zed", from_user="amy")
        self.receive_raw(coffeemud.ERROR_UNK_USER_WITHOUT_PACKET)
        self.assertGatewayError(result, i3_error="unk-user", i3_message="zed is not online.")
        event = self.alice.events("error_occurred")[0]
        self.assertEqual(event["context"], {"packet_type": "finger-req", "target_mud": "CoffeeMUD",
                                            "target_user": "zed"})
        self.assertEqual(event["to_user"], "amy")
        self.assertEqual(self.bob.events(), [])

    def test_bare_error_needs_the_same_mud_user_and_a_code_that_answers(self):
        result = self.ask("finger", target_mud="CoffeeMUD", target_user="zed", from_user="amy")
        # Another asking user, another MUD, a code a finger cannot get that way.
        for error in (["error", 5, "CoffeeMUD", 0, PROBE_A, "carl", "unk-user", "?", 0],
                      ["error", 5, "OtherMUD", 0, PROBE_A, "amy", "unk-user", "?", 0],
                      ["error", 5, "CoffeeMUD", 0, PROBE_A, "amy", "unk-channel", "?", 0]):
            self.link.receive(error)
            self.assertPending(result)
        self.assertEqual(self.alice.events("error_occurred")[0]["context"]["packet_type"], None)

    def test_unk_user_without_packet_reaches_the_sender_of_the_tell(self):
        tell = ["tell", 5, PROBE_A, "amy", "CoffeeMUD", "zed", "Amy", "hi"]
        self.errors.remember(tell, self.teller)
        self.receive_raw(coffeemud.ERROR_UNK_USER_WITHOUT_PACKET)
        events = self.teller.events("error_occurred")
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["context"], {"packet_type": "tell", "target_mud": "CoffeeMUD",
                                                "target_user": "zed"})
        self.assertEqual(self.alice.events(), [])

    def test_unk_channel_without_packet_fails_the_chan_who(self):
        result = self.ask("channel_who", channel="dchat", target_mud="CoffeeMUD", from_user="amy")
        self.receive_raw(coffeemud.ERROR_UNK_CHANNEL_WITHOUT_PACKET)
        self.assertGatewayError(result, i3_error="unk-channel", i3_message="Unknown channel.")

    def test_chan_who_reply_with_empty_channel_matches_the_only_request_to_that_mud(self):
        result = self.ask("channel_who", channel="dchat", target_mud="CoffeeMUD", from_user="amy")
        self.receive_raw(coffeemud.CHAN_WHO_REPLY_EMPTY_CHANNEL)
        self.assertEqual(self.outcome(result)[1]["members"],
                         [{"mud": "CoffeeMUD", "users": ["Bob", "Carol"]}])
        self.assertEqual(self.alice.events("chan_who_reply")[0]["channel"], "dchat")

    def test_chan_who_reply_with_empty_channel_and_two_requests_matches_neither(self):
        first = self.ask("channel_who", channel="dchat", target_mud="CoffeeMUD", from_user="amy")
        second = self.ask("channel_who", channel="ichat", target_mud="CoffeeMUD", from_user="amy")
        self.receive_raw(coffeemud.CHAN_WHO_REPLY_EMPTY_CHANNEL)
        self.assertPending(first)
        self.assertPending(second)

    def test_upper_case_user_matches_and_events_name_the_snapshots_player(self):
        self.sync_amy()
        result = self.ask("who", target_mud="CoffeeMUD", from_user="Amy")
        self.link.receive(["who-reply", 5, "CoffeeMUD", 0, PROBE_A, "AMY", [["Bob", 1, ""]]])
        self.assertTrue(self.outcome(result)[0])
        self.assertEqual(self.alice.events("who_reply")[0]["to_user"], "Amy")

    def test_without_snapshot_the_user_is_case_folded(self):
        result = self.ask("who", target_mud="CoffeeMUD", from_user="amy")
        self.link.receive(["who-reply", 5, "CoffeeMUD", 0, PROBE_A, "AMY", []])
        self.assertTrue(self.outcome(result)[0])
        self.assertEqual(self.alice.events("who_reply")[0]["to_user"], "amy")


class DomainFailureTests(QueryTestCase):
    """Queries itself, without the API layer: it refuses with the failures
    of services/failures.py, which know nothing of JSON-RPC."""

    def test_link_down(self):
        self.link.ready = False
        with self.assertRaises(failures.LinkDown):
            self.queries.who(self.alice, "ProbeB", 0, 5.0, True)

    def test_too_many_pending(self):
        self.gateway.config = with_overrides(self.gateway.config, {"api.session.max_pending_queries": 1})
        self.queries.who(self.alice, "ProbeB", 0, 5.0, False)
        with self.assertRaises(failures.TooManyPending) as caught:
            self.queries.who(self.alice, "ProbeB", 0, 5.0, True)
        self.assertEqual(caught.exception.reason, "too_many_pending")

    def test_timeout_and_remote_error_fail_the_deferred(self):
        d = self.queries.who(self.alice, "ProbeB", 0, 1.0, True)
        self.gateway.clock.advance(1.1)
        self.assertIsInstance(self.failureResultOf(d).value, failures.TimedOut)
        d = self.queries.finger(self.alice, "ProbeB", "Zed", "alice", 5.0, True)
        request = self.link.sent[-1]
        self.link.receive(["error", 5, "ProbeB", 0, PROBE_A, "alice", "unk-user", "no Zed", request])
        error = self.failureResultOf(d).value
        self.assertIsInstance(error, failures.RemoteError)
        self.assertEqual((error.code, error.text), ("unk-user", "no Zed"))

    def test_channel_who_without_a_known_owner(self):
        with self.assertRaises(failures.UnknownChannel) as caught:
            self.queries.channel_who(self.alice, "nowhere", None, 0, 5.0, True)
        self.assertEqual((caught.exception.field, caught.exception.details),
                         ("target_mud", {"channel": "nowhere"}))
