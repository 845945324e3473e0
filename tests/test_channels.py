"""services/channels.py: join/leave and the router listen set, defaults,
re-listen after a handshake, session end, channel_list, history paging,
channel_admin mapping."""

import copy

from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3 import packets
from intermud3.services import failures
from tests.fakes import (make_outbox, settled, assert_invalid, OUR_MUD, ROUTER, add_muds, make_config, make_gateway,
                         build_channels, build_messages, build_presence, channel_handlers,
                         message_handlers)


def listen(channel, flag):
    return ["channel-listen", 5, OUR_MUD, 0, ROUTER, 0, channel, flag]


class ChannelsTestBase:
    defaults = ()

    def setUp(self):
        config = make_config()
        config = with_overrides(config, {"channels.default": list(self.defaults)})
        self.gw = make_gateway(self, config=config)
        self.gw.outbox = make_outbox(self.gw)
        self.addCleanup(self.gw.outbox.stop)
        self.service = build_channels(self.gw)
        self.methods = channel_handlers(self.gw)
        self.alice = self.gw.sessions.add()
        self.bob = self.gw.sessions.add()

    def call(self, method, session=None, **params):
        return settled(self.methods[method](self.gw.call(session or self.alice), params))

    def assertInvalid(self, field, method, **params):
        return assert_invalid(self, field, lambda: self.call(method, **params))

    @property
    def written(self):
        return self.gw.link.sent


class JoinLeaveTests(ChannelsTestBase, SynchronousTestCase):
    def test_first_join_listens_with_integer_flag(self):
        result = self.call("channel_join", channel="dchat")
        self.assertEqual(result, {"status": "joined", "channel": "dchat"})
        self.assertEqual(self.written, [listen("dchat", 1)])
        self.assertIs(type(self.written[0][-1]), int)
        self.assertEqual(self.alice.channels, {"dchat"})

    def test_second_subscriber_sends_nothing(self):
        self.call("channel_join", channel="dchat")
        self.call("channel_join", session=self.bob, channel="dchat")
        self.call("channel_join", channel="dchat")       # again: idempotent
        self.assertEqual(self.written, [listen("dchat", 1)])

    def test_listen_only_accepted(self):
        self.call("channel_join", channel="dchat", listen_only=True)
        self.call("channel_join", channel="other", listen_only=1)
        self.assertEqual(self.alice.channels, {"dchat", "other"})

    def test_case_kept(self):
        self.call("channel_join", channel="Imud_Gossip")
        self.assertEqual(self.written, [listen("Imud_Gossip", 1)])

    def test_last_leave_unlistens(self):
        self.call("channel_join", channel="dchat")
        self.call("channel_join", session=self.bob, channel="dchat")
        self.assertEqual(self.call("channel_leave", channel="dchat"),
                         {"status": "left", "channel": "dchat"})
        self.assertEqual(self.written, [listen("dchat", 1)])
        self.call("channel_leave", session=self.bob, channel="dchat")
        self.assertEqual(self.written, [listen("dchat", 1), listen("dchat", 0)])
        self.assertEqual(self.alice.channels, set())

    def test_leave_of_unjoined_channel_sends_nothing(self):
        self.assertEqual(self.call("channel_leave", channel="dchat")["status"], "left")
        self.assertEqual(self.written, [])

    def test_join_while_link_down_listens_at_ready(self):
        self.gw.link.ready = False
        self.call("channel_join", channel="dchat")
        self.assertEqual(self.written, [])
        self.gw.link.set_state("ready")
        self.assertEqual(self.written, [listen("dchat", 1)])

    def test_listen_goes_before_queued_channel_messages_at_ready(self):
        # A router drops a channel message from a MUD that does not listen
        # to the channel, and it forgets the listening with each connection.
        self.call("channel_join", channel="dchat")
        self.gw.link.ready = False
        message = packets.make("channel-m", OUR_MUD, "alice", 0, 0, "dchat", "Alice", "hi")
        out = self.gw.outbox.encode(message, "message")
        self.assertEqual(settled(self.gw.outbox.submit("channel_send", out, self.alice))["status"],
                         "queued")
        del self.written[:]
        self.gw.link.set_state("ready")
        self.assertEqual(self.written, [listen("dchat", 1)])
        # It waits channels.listen_wait for an unk-channel to that listen.
        self.gw.clock.advance(5)
        self.assertEqual(self.written, [listen("dchat", 1), message])

    def test_relisten_after_every_handshake(self):
        self.call("channel_join", channel="dchat")
        self.call("channel_join", session=self.bob, channel="alpha")
        del self.written[:]
        self.gw.link.ready = False
        self.gw.link.set_state("ready")
        self.gw.link.ready = False
        self.gw.link.set_state("ready")
        self.assertEqual(self.written, [listen("alpha", 1), listen("dchat", 1)] * 2)

    def test_session_end_releases_subscriptions(self):
        self.call("channel_join", channel="dchat")
        self.call("channel_join", channel="solo")
        self.call("channel_join", session=self.bob, channel="dchat")
        del self.written[:]
        self.gw.sessions.end(self.alice)
        self.assertEqual(self.written, [listen("solo", 0)])
        self.assertEqual(self.alice.channels, set())
        self.gw.sessions.end(self.bob)
        self.assertEqual(self.written, [listen("solo", 0), listen("dchat", 0)])
        self.gw.link.ready = False
        self.gw.link.set_state("ready")
        self.assertEqual(self.written, [listen("solo", 0), listen("dchat", 0)])

    def test_bad_names(self):
        self.assertInvalid("channel", "channel_join")
        self.assertInvalid("channel", "channel_join", channel="")
        self.assertInvalid("channel", "channel_join", channel="   ")
        self.assertInvalid("channel", "channel_join", channel="a\nb")
        self.assertInvalid("channel", "channel_join", channel="x" * 65)
        self.assertInvalid("channel", "channel_join", channel=7)
        self.assertEqual(self.written, [])
        self.assertEqual(self.alice.channels, set())


class ListenSetSurvivesRouterResetTests(ChannelsTestBase, SynchronousTestCase):
    """API.md: the listen set survives what the router forgets; a channel
    message queued for a channel the router does not know waits."""

    def setUp(self):
        super().setUp()
        self.call("channel_join", channel="dchat")
        self.gw.link.ready = False
        self.message = packets.make("channel-m", OUR_MUD, "alice", 0, 0, "dchat", "Alice", "hi")
        self.assertEqual(settled(self.gw.outbox.submit(
            "channel_send", self.gw.outbox.encode(self.message, "message"), self.alice))["status"],
                         "queued")
        del self.written[:]

    def chanlist(self, delta, list_id=9):
        self.gw.link.receive(["chanlist-reply", 5, ROUTER, 0, OUR_MUD, 0, list_id, delta])

    def unk_channel(self, packet):
        self.gw.link.receive(["error", 5, ROUTER, 0, OUR_MUD, 0, "unk-channel",
                              f"Unknown channel: {packet[6]}", packet])

    def test_unk_channel_holds_the_message_until_the_chanlist_shows_the_channel(self):
        self.gw.link.set_state("ready")          # a router restarted clean
        self.chanlist({})                        # ... with no channels yet
        self.unk_channel(listen("dchat", 1))
        self.gw.clock.advance(60)
        self.assertEqual(self.written, [listen("dchat", 1)])
        self.assertEqual(self.gw.state.queue_depth(), 1)
        self.chanlist({"dchat": ["Frontiers", []]})
        self.assertEqual(self.written, [listen("dchat", 1), listen("dchat", 1), self.message])
        self.assertEqual(self.alice.events("message_sent")[0]["method"], "channel_send")

    def test_startup_chanlist_listing_the_channel_lets_it_go_at_once(self):
        # The router listed it before reading our listen: no second listen.
        self.gw.link.set_state("ready")
        self.chanlist({"dchat": ["Frontiers", 0], "other": ["X", 0]})
        self.assertEqual(self.written, [listen("dchat", 1), self.message])

    def test_other_packets_and_channels_are_not_held(self):
        self.gw.link.set_state("ready")
        self.unk_channel(listen("dchat", 1))
        tell = packets.make("tell", OUR_MUD, "alice", "Far", "bob", "Alice", "hi")
        other = packets.make("channel-m", OUR_MUD, "alice", 0, 0, "ichat", "Alice", "yo")
        self.gw.clock.advance(5)
        self.assertEqual(settled(self.gw.outbox.submit("tell", self.gw.outbox.encode(tell, "message"), self.alice))["status"], "sent")
        self.assertEqual(settled(self.gw.outbox.submit(
            "channel_send", self.gw.outbox.encode(other, "message"), self.alice))["status"], "sent")
        late = packets.make("channel-m", OUR_MUD, "alice", 0, 0, "dchat", "Alice", "later")
        self.assertEqual(settled(self.gw.outbox.submit(
            "channel_send", self.gw.outbox.encode(late, "message"), self.alice))["status"], "queued")
        self.chanlist({"dchat": ["Frontiers", 0]})
        self.assertEqual(self.written[-2:], [self.message, late])    # in order

    def test_held_message_still_expires(self):
        self.gw.link.set_state("ready")
        self.unk_channel(listen("dchat", 1))
        self.gw.clock.advance(301)
        self.assertEqual(self.gw.state.queue_depth(), 0)
        self.assertEqual(len(self.alice.events("message_expired")), 1)
        self.assertNotIn(self.message, self.written)

    def test_chanlist_readding_a_channel_of_the_listen_set_listens_again(self):
        self.gw.link.set_state("ready")
        self.gw.clock.advance(5)
        del self.written[:]
        self.chanlist({"dchat": ["Frontiers", 0], "notours": ["X", 0], "gone": 0})
        self.assertEqual(self.written, [listen("dchat", 1)])
        # The whole list again (as a Dead Souls router sends it): no change.
        self.chanlist({"dchat": ["Frontiers", 0], "notours": ["X", 0]})
        self.assertEqual(self.written, [listen("dchat", 1)])
        self.chanlist({"dchat": 0})              # deleted: nothing to listen to
        self.assertEqual(self.written, [listen("dchat", 1)])
        self.chanlist({"dchat": ["Frontiers", 0]})   # and re-created
        self.assertEqual(self.written, [listen("dchat", 1)] * 2)
        # After a new handshake the first listing counts again.
        self.gw.link.ready = False
        self.gw.link.set_state("ready")
        self.gw.clock.advance(5)
        self.chanlist({"dchat": ["Frontiers", 0]})
        self.assertEqual(self.written, [listen("dchat", 1)] * 4)

    def test_unk_channel_for_others_or_for_an_unlisten_changes_nothing(self):
        self.gw.link.set_state("ready")
        self.unk_channel(listen("dchat", 0))
        self.unk_channel(["channel-listen", 5, "SomeoneElse", 0, ROUTER, 0, "dchat", 1])
        self.unk_channel(listen("notjoined", 1))
        self.gw.clock.advance(5)
        self.assertIn(self.message, self.written)

    def test_stop_cancels_the_wait(self):
        self.gw.link.set_state("ready")
        self.service.stop()
        # Only the outbox's own timers are left.
        self.gw.outbox.stop()
        self.assertEqual(self.gw.clock.getDelayedCalls(), [])


class JoinFirstTests(ChannelsTestBase, SynchronousTestCase):
    """channel_send, channel_emote and channel_target join first."""

    def setUp(self):
        super().setUp()
        build_presence(self.gw)
        build_messages(self.gw)
        self.messages = message_handlers(self.gw)

    def send(self, method, **params):
        return self.messages[method](self.gw.call(self.alice), params)

    def test_each_method_joins_an_unjoined_channel_before_speaking(self):
        add_muds(self.gw, "Far")
        calls = [("channel_send", {"message": "hi"}), ("channel_emote", {"emote": "$N waves"}),
                 ("channel_target", {"target_mud": "Far", "target_user": "bob",
                                     "message_others": "$N pokes $O", "message_target": "$N pokes you"})]
        for index, (method, params) in enumerate(calls):
            channel = f"chan{index}"
            del self.written[:]
            result = self.send(method, channel=channel, **params)
            self.assertEqual((result["status"], result.get("joined")), ("sent", True))
            self.assertEqual(self.written[0], listen(channel, 1))
            self.assertEqual(self.written[1][6], channel)
            self.assertIn(channel, self.alice.channels)
            again = self.send(method, channel=channel, **params)
            self.assertNotIn("joined", again)

    def test_joined_channel_sends_no_listen(self):
        self.call("channel_join", channel="dchat")
        del self.written[:]
        result = self.send("channel_send", channel="dchat", message="hi")
        self.assertNotIn("joined", result)
        self.assertEqual([p[0] for p in self.written], ["channel-m"])


class DefaultChannelTests(ChannelsTestBase, SynchronousTestCase):
    defaults = ("dead_test4", "imud_code")

    def test_defaults_listened_at_every_ready(self):
        self.gw.link.ready = False
        self.gw.link.set_state("ready")
        self.assertEqual(self.written, [listen("dead_test4", 1), listen("imud_code", 1)])
        self.gw.link.ready = False
        self.gw.link.set_state("ready")
        self.assertEqual(len(self.written), 4)

    def test_join_of_default_sends_nothing_and_leave_keeps_listening(self):
        self.call("channel_join", channel="dead_test4")
        self.call("channel_leave", channel="dead_test4")
        self.gw.sessions.end(self.alice)
        self.assertEqual(self.written, [])

    def test_reconfigure_listens_and_unlistens_the_difference(self):
        self.call("channel_join", channel="imud_code")       # stays: subscribed
        new = with_overrides(self.gw.config, {"channels.default": ["dead_test4", "fresh"]})
        self.service.reconfigure(new)
        self.assertEqual(self.written, [listen("fresh", 1)])
        new = with_overrides(new, {"channels.default": []})
        self.service.reconfigure(new)
        self.assertEqual(self.written, [listen("fresh", 1), listen("dead_test4", 0), listen("fresh", 0)])
        self.call("channel_leave", channel="imud_code")
        self.assertEqual(self.written[-1], listen("imud_code", 0))


class ListTests(ChannelsTestBase, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        self.gw.lists.channels.update({
            "dchat": ("DSTest", 0),
            "imud_gossip": ("*i4", 0),
            "secret": ("OtherMud", 1),
            "filtered": ("DSTest", 2),
        })
        self.call("channel_join", channel="dchat")
        self.call("channel_join", session=self.bob, channel="dchat")
        self.call("channel_join", session=self.bob, channel="secret")

    def test_list_all(self):
        result = self.call("channel_list")
        self.assertEqual(result["status"], "success")
        self.assertEqual(result["count"], 4)
        self.assertEqual(result["channels"][0], {"name": "dchat", "owner": "DSTest", "type": 0,
                                                 "member_count": 2})
        counts = {c["name"]: c["member_count"] for c in result["channels"]}
        self.assertEqual(counts, {"dchat": 2, "imud_gossip": 0, "secret": 1, "filtered": 0})
        self.assertEqual(result["subscribed_channels"], ["dchat"])
        self.assertEqual(self.call("channel_list", session=self.bob)["subscribed_channels"],
                         ["dchat", "secret"])

    def test_filters(self):
        by_type = self.call("channel_list", filter={"type": 0})
        self.assertEqual(sorted(c["name"] for c in by_type["channels"]), ["dchat", "imud_gossip"])
        by_owner = self.call("channel_list", filter={"owner": "dstest"})
        self.assertEqual(sorted(c["name"] for c in by_owner["channels"]), ["dchat", "filtered"])
        both = self.call("channel_list", filter={"owner": "DSTest", "type": 2})
        self.assertEqual([c["name"] for c in both["channels"]], ["filtered"])
        self.assertEqual(both["count"], 1)

    def test_bad_filter(self):
        self.assertInvalid("filter", "channel_list", filter="x")
        self.assertInvalid("type", "channel_list", filter={"type": "0"})
        self.assertInvalid("type", "channel_list", filter={"type": 7})


class HistoryTests(ChannelsTestBase, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        build_presence(self.gw)
        self.messages = build_messages(self.gw)
        self.bob.channels.update({"dchat", "other"})
        for n in range(10):
            self.gw.link.receive(
                ["channel-m", 5, "DSTest", "zed", 0, 0, "dchat", "Zed", f"message {n}"])
        self.gw.link.receive(["channel-e", 5, "DSTest", "amy", 0, 0, "dchat", "Amy", "$N SHOUTS"])
        self.gw.link.receive(["channel-m", 5, "DSTest", "zed", 0, 0, "other", "Zed", "elsewhere"])

    def history(self, **params):
        return self.call("channel_history", channel="dchat", **params)

    def test_default_is_newest_oldest_first(self):
        result = self.history()
        self.assertEqual(result["status"], "success")
        self.assertEqual(result["channel"], "dchat")
        self.assertEqual(result["count"], 11)
        self.assertEqual(result["messages"][0]["message"], "message 0")
        self.assertEqual(result["messages"][-1]["type"], "emote")
        ids = [m["id"] for m in result["messages"]]
        self.assertEqual(ids, sorted(ids))
        first = result["messages"][0]
        self.assertEqual({k: first[k] for k in ("channel", "type", "from_mud", "from_user", "visname")},
                         {"channel": "dchat", "type": "message", "from_mud": "DSTest",
                          "from_user": "zed", "visname": "Zed"})
        self.assertIn("timestamp", first)

    def test_limit_and_paging(self):
        newest = self.history(limit=3)
        self.assertEqual([m["message"] for m in newest["messages"]],
                         ["message 8", "message 9", "$N SHOUTS"])
        older = self.history(limit=3, before=newest["messages"][0]["id"])
        self.assertEqual([m["message"] for m in older["messages"]],
                         ["message 5", "message 6", "message 7"])
        later = self.history(limit=2, after=older["messages"][0]["id"])
        self.assertEqual([m["message"] for m in later["messages"]], ["message 6", "message 7"])

    def test_query_case_insensitive(self):
        result = self.history(query="shouts")
        self.assertEqual([m["message"] for m in result["messages"]], ["$N SHOUTS"])
        self.assertEqual(self.history(query="MESSAGE 3")["count"], 1)

    def test_bad_params(self):
        self.assertInvalid("limit", "channel_history", channel="dchat", limit=0)
        self.assertInvalid("limit", "channel_history", channel="dchat", limit=1001)
        self.assertInvalid("limit", "channel_history", channel="dchat", limit="5")
        self.assertInvalid("before", "channel_history", channel="dchat", before="x")
        self.assertInvalid("after", "channel_history", channel="dchat", after=-1)
        self.assertInvalid("query", "channel_history", channel="dchat", query=5)
        self.assertEqual(self.history(limit=1000)["count"], 11)

    def test_unknown_channel_is_empty(self):
        result = self.call("channel_history", channel="nothing")
        self.assertEqual((result["messages"], result["count"]), ([], 0))


class AdminTests(ChannelsTestBase, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        add_muds(self.gw, "OtherMud", "DSTest")
        self.gw.lists.channels.update({
            "open": ("OurMud", 0), "closed": ("OurMud", 1), "filtered": ("OurMud", 2)})

    def header(self, ptype):
        return [ptype, 5, OUR_MUD, 0, ROUTER, 0]

    def test_add(self):
        result = self.call("channel_admin", channel="newchan", action="add", type=1)
        self.assertEqual(result["status"], "sent")
        self.assertEqual(self.written, [self.header("channel-add") + ["newchan", 1]])

    def test_add_needs_type(self):
        self.assertInvalid("type", "channel_admin", channel="newchan", action="add")
        self.assertInvalid("type", "channel_admin", channel="newchan", action="add", type=3)

    def test_remove(self):
        self.call("channel_admin", channel="open", action="remove")
        self.assertEqual(self.written, [self.header("channel-remove") + ["open"]])

    def test_ban_unban_on_type_0(self):
        self.call("channel_admin", channel="open", action="ban", muds=["othermud", "Strangers"])
        self.call("channel_admin", channel="open", action="unban", muds=["dstest"])
        self.assertEqual(self.written, [
            self.header("channel-admin") + ["open", ["OtherMud", "Strangers"], []],
            self.header("channel-admin") + ["open", [], ["DSTest"]]])

    def test_admit_unadmit_on_type_1_and_2(self):
        self.call("channel_admin", channel="closed", action="admit", muds=["OtherMud"])
        self.call("channel_admin", channel="filtered", action="unadmit", muds="OtherMud")
        self.assertEqual(self.written, [
            self.header("channel-admin") + ["closed", ["OtherMud"], []],
            self.header("channel-admin") + ["filtered", [], ["OtherMud"]]])

    def test_type_mismatch(self):
        error = self.assertInvalid("action", "channel_admin", channel="closed", action="ban",
                                   muds=["OtherMud"])
        self.assertEqual(error.data["channel_type"], 1)
        self.assertInvalid("action", "channel_admin", channel="filtered", action="unban", muds=["X"])
        self.assertInvalid("action", "channel_admin", channel="open", action="admit", muds=["X"])
        self.assertInvalid("action", "channel_admin", channel="open", action="unadmit", muds=["X"])
        self.assertEqual(self.written, [])

    def test_a_channel_we_just_created_is_checked_against_the_type_we_asked(self):
        self.call("channel_admin", channel="newchan", action="add", type=1)
        # The router announces a new channel's type as ({}), which reads as 0.
        self.gw.lists.channels["newchan"] = (OUR_MUD, 0)
        self.call("channel_admin", channel="newchan", action="admit", muds=["OtherMud"])
        self.assertInvalid("action", "channel_admin", channel="newchan", action="ban", muds=["X"])
        self.call("channel_admin", channel="newchan", action="remove")
        self.assertInvalid("action", "channel_admin", channel="newchan", action="admit",
                           muds=["X"])
        self.assertEqual([packet[0] for packet in self.written],
                         ["channel-add", "channel-admin", "channel-remove"])

    def test_unknown_channel_for_list_actions(self):
        self.assertInvalid("channel", "channel_admin", channel="nothing", action="ban", muds=["X"])

    def test_the_service_refuses_in_domain_terms(self):
        # The API layer turns these into -32602 (api/errors.py).
        with self.assertRaises(failures.WrongChannelType) as caught:
            self.service.admin(self.alice, "closed", "ban", None, muds=["OtherMud"])
        self.assertEqual(caught.exception.details, {"channel_type": 1})
        with self.assertRaises(failures.UnknownChannel):
            self.service.admin(self.alice, "nothing", "ban", None, muds=["X"])
        self.assertEqual(self.written, [])

    def test_bad_action_and_muds(self):
        self.assertInvalid("action", "channel_admin", channel="open", action="destroy")
        self.assertInvalid("action", "channel_admin", channel="open")
        self.assertInvalid("muds", "channel_admin", channel="open", action="ban")
        self.assertInvalid("muds", "channel_admin", channel="open", action="ban", muds=[])
        self.assertInvalid("muds", "channel_admin", channel="open", action="ban", muds=[1])
        self.assertInvalid("muds", "channel_admin", channel="open", action="ban",
                           muds=["m"] * 101)

    def test_queued_when_link_down_and_sent_later(self):
        self.gw.link.ready = False
        result = self.call("channel_admin", channel="open", action="ban", muds=["OtherMud"])
        self.assertEqual(result["status"], "queued")
        self.gw.link.set_state("ready")
        self.assertEqual(self.written, [self.header("channel-admin") + ["open", ["OtherMud"], []]])
        [event] = self.alice.events("message_sent")
        self.assertEqual((event["message_id"], event["method"]), (result["message_id"], "channel_admin"))

    def test_errors_remembered(self):
        self.call("channel_admin", channel="open", action="remove")
        self.assertEqual(self.gw.errors.remembered, [(self.written[0], self.alice)])


class FilterTests(ChannelsTestBase, SynchronousTestCase):
    """A filtered channel we host: the router's chan-filter-req is passed."""

    MESSAGE = ["channel-m", 5, "OtherMud", "bob", 0, 0, "filtered", "Bob", "hi\nthere"]

    def request(self, origin=ROUTER, channel="filtered", message=None):
        return ["chan-filter-req", 5, origin, 0, OUR_MUD, 0, channel,
                copy.deepcopy(self.MESSAGE) if message is None else message]

    def test_message_goes_back_unchanged(self):
        self.gw.link.receive(self.request())
        self.assertEqual(self.written, [
            ["chan-filter-reply", 5, OUR_MUD, 0, ROUTER, 0, "filtered", self.MESSAGE]])

    def test_only_the_router_we_are_on_is_answered(self):
        self.gw.link.receive(self.request(origin="OtherMud"))
        self.gw.link.receive(self.request(origin="*elsewhere"))
        self.assertEqual(self.written, [])

    def test_malformed_requests_are_ignored(self):
        self.gw.link.receive(self.request(channel=0))
        self.gw.link.receive(self.request(message="not a packet"))
        self.gw.link.receive(["chan-filter-req", 5, ROUTER, 0, OUR_MUD, 0])
        self.assertEqual(self.written, [])

    def test_a_message_with_no_lpc_form_is_not_passed(self):
        # Read leniently from the router, but too big for a 32-bit LPC int.
        self.gw.link.receive(self.request(message=["channel-m", 2 ** 40]))
        self.assertEqual(self.written, [])
        self.assertEqual(self.flushLoggedErrors(), [])


class WiringTests(SynchronousTestCase):
    """Each service is built from the collaborators it is handed."""

    def test_built_from_its_collaborators(self):
        gw = make_gateway(self)
        gw.outbox = make_outbox(gw)
        self.addCleanup(gw.outbox.stop)
        build_presence(gw)
        build_channels(gw)
        build_messages(gw)
        self.assertIs(gw.messages.outbox, gw.outbox)
        self.assertIs(gw.channels.outbox, gw.outbox)
        self.assertEqual(set(message_handlers(gw)) | set(channel_handlers(gw)), {
            "tell", "emoteto", "channel_send", "channel_emote", "channel_target",
            "channel_join", "channel_leave", "channel_list", "channel_history", "channel_admin",
            "message_status"})
        for ptype in ("tell", "emoteto", "channel-m", "channel-e", "channel-t", "chan-filter-req"):
            self.assertTrue(gw.inbound.known(ptype), ptype)
