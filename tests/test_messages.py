"""services/messages.py: exact outbound packets, size limits, local channel
delivery and history, inbound tells/channel packets, unk-user answers."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3.api.errors import GATEWAY_ERROR, RPCError
from intermud3.outbound import frame_size
from intermud3.services import failures
from tests.fakes import (make_outbox, settled, assert_invalid, OUR_MUD, add_muds, make_gateway, build_channels,
                         build_messages, build_presence, message_handlers,
                         presence_handlers)


class MessagesTestBase:
    def setUp(self):
        self.gw = make_gateway(self)
        add_muds(self.gw, "OtherMud", "DSTest")
        self.gw.outbox = make_outbox(self.gw)
        self.addCleanup(self.gw.outbox.stop)
        build_presence(self.gw)
        build_channels(self.gw)
        self.service = build_messages(self.gw)
        self.methods = message_handlers(self.gw)
        self.alice = self.gw.sessions.add()

    def call(self, method, session=None, **params):
        return settled(self.methods[method](self.gw.call(session or self.alice), params))

    def sync_players(self, *names):
        """A current presence snapshot holding just these players."""
        presence_handlers(self.gw)["presence_sync"](
            self.gw.call(self.alice), {"users": [{"name": name} for name in names]})

    def assertInvalid(self, field, method, **params):
        return assert_invalid(self, field, lambda: self.call(method, **params))

    @property
    def written(self):
        return self.gw.link.sent


class OutboundTellTests(MessagesTestBase, SynchronousTestCase):
    def test_tell_exact_packet(self):
        result = self.call("tell", target_mud="othermud", target_user="Bob",
                           message="hello %^RED%^bob%^RESET%^", from_user="Alice")
        self.assertEqual(result["status"], "sent")
        self.assertEqual(self.written, [
            ["tell", 5, OUR_MUD, "alice", "OtherMud", "bob", "Alice", "hello %^RED%^bob%^RESET%^"]])

    def test_tell_defaults_from_user_someone(self):
        self.call("tell", target_mud="OtherMud", target_user="bob", message="hi")
        self.assertEqual(self.written[0][3], "someone")
        self.assertEqual(self.written[0][6], "someone")

    def test_tell_visname_keeps_case(self):
        self.call("tell", target_mud="OtherMud", target_user="bob", message="hi",
                  from_user="ALICE", visname="Alice the Great")
        self.assertEqual(self.written[0][3], "alice")
        self.assertEqual(self.written[0][6], "Alice the Great")

    def test_unknown_mud_sent_as_given(self):
        self.call("tell", target_mud="NoSuchMud", target_user="x", message="hi")
        self.assertEqual(self.written[0][4], "NoSuchMud")

    def test_ansi_and_controls_removed(self):
        self.call("tell", target_mud="OtherMud", target_user="bob",
                  message="\x1b[1;31mred\x1b[0m\r\nnext\x00\x07", visname="\x1b[1mAl\x1b[0m")
        self.assertEqual(self.written[0][7], "red\nnext")
        self.assertEqual(self.written[0][6], "Al")

    def test_emoteto_with_emote_or_message(self):
        self.call("emoteto", target_mud="OtherMud", target_user="Bob", emote="$N smiles.",
                  from_user="Alice")
        self.call("emoteto", target_mud="OtherMud", target_user="Bob", message="$N waves.",
                  from_user="Alice")
        self.assertEqual(self.written, [
            ["emoteto", 5, OUR_MUD, "alice", "OtherMud", "bob", "Alice", "$N smiles."],
            ["emoteto", 5, OUR_MUD, "alice", "OtherMud", "bob", "Alice", "$N waves."]])

    def test_missing_params(self):
        self.assertInvalid("target_mud", "tell", target_user="bob", message="hi")
        self.assertInvalid("target_user", "tell", target_mud="OtherMud", message="hi")
        self.assertInvalid("message", "tell", target_mud="OtherMud", target_user="bob")
        self.assertInvalid("message", "tell", target_mud="OtherMud", target_user="bob",
                           message="\x1b[31m")
        self.assertInvalid("emote", "emoteto", target_mud="OtherMud", target_user="bob", emote=5)
        self.assertInvalid("message", "emoteto", target_mud="OtherMud", target_user="bob")
        self.assertInvalid("target_user", "tell", target_mud="OtherMud", target_user="\x1b[0m",
                           message="hi")
        self.assertEqual(self.written, [])

    def test_too_long_is_invalid_params_with_max_bytes(self):
        limit = self.gw.config.router.max_send_bytes
        error = self.assertInvalid("message", "tell", target_mud="OtherMud", target_user="bob",
                                   message="x" * limit)
        self.assertEqual(error.data["max_bytes"], limit)
        error = self.assertInvalid("emote", "emoteto", target_mud="OtherMud", target_user="bob",
                                   emote="x" * limit)
        self.assertEqual(error.data["max_bytes"], limit)

    def test_too_long_is_refused_before_queueing(self):
        self.gw.link.ready = False
        self.assertInvalid("message", "tell", target_mud="OtherMud", target_user="bob",
                           message="x" * 9000)
        self.assertEqual(self.gw.state.queue_depth(), 0)

    def test_just_fits(self):
        limit = self.gw.config.router.max_send_bytes
        overhead = frame_size(
            ["tell", 5, OUR_MUD, "someone", "OtherMud", "bob", "someone", ""])
        self.call("tell", target_mud="OtherMud", target_user="bob", message="y" * (limit - overhead))
        self.assertEqual(len(self.written), 1)
        self.assertInvalid("message", "tell", target_mud="OtherMud", target_user="bob",
                           message="y" * (limit - overhead + 1))

    def test_queued_when_link_down_and_errors_remembered(self):
        self.gw.link.ready = False
        result = self.call("tell", target_mud="OtherMud", target_user="bob", message="hi")
        self.assertEqual(result["status"], "queued")
        self.assertEqual(self.gw.errors.remembered,
                         [(self.gw.state.pending()[0].packet, self.alice)])

    def test_client_msg_id_retry_sends_once(self):
        first = self.call("tell", target_mud="OtherMud", target_user="bob", message="hi",
                          client_msg_id="abc")
        second = self.call("tell", target_mud="OtherMud", target_user="bob", message="hi",
                           client_msg_id="abc")
        self.assertEqual(first, second)
        self.assertEqual(len(self.written), 1)
        self.assertEqual(len(self.gw.errors.remembered), 1)

    def test_queue_full_passes_through(self):
        self.gw.link.ready = False
        self.gw.config = with_overrides(self.gw.config, {"router.queue.max_messages": 0})
        with self.assertRaises(RPCError) as caught:
            self.call("tell", target_mud="OtherMud", target_user="bob", message="hi")
        self.assertEqual(caught.exception.code, GATEWAY_ERROR)
        self.assertEqual(self.gw.errors.remembered, [])


class OutboundChannelTests(MessagesTestBase, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        self.bob = self.gw.sessions.add()
        self.carol = self.gw.sessions.add()
        self.no_perm = self.gw.sessions.add(permissions=["tell"])
        for s in (self.alice, self.bob, self.no_perm):
            s.channels.add("dchat")

    def test_channel_send_exact_packet(self):
        result = self.call("channel_send", channel="dchat", message="Hi all", from_user="Alice")
        self.assertEqual(result["status"], "sent")
        self.assertEqual(self.written, [
            ["channel-m", 5, OUR_MUD, "alice", 0, 0, "dchat", "Alice", "Hi all"]])

    def test_channel_emote_exact_packet(self):
        self.call("channel_emote", channel="dchat", emote="$N waves.", from_user="Alice")
        self.call("channel_emote", channel="dchat", message="$N bows.", from_user="Alice",
                  visname="Lady Alice")
        self.assertEqual(self.written, [
            ["channel-e", 5, OUR_MUD, "alice", 0, 0, "dchat", "Alice", "$N waves."],
            ["channel-e", 5, OUR_MUD, "alice", 0, 0, "dchat", "Lady Alice", "$N bows."]])

    def test_channel_target_exact_packet(self):
        self.call("channel_target", channel="dchat", target_mud="othermud", target_user="Bob",
                  message_others="$N pokes $O.", message_target="$N pokes you.",
                  from_user="Alice", target_visname="Bobby")
        self.assertEqual(self.written, [
            ["channel-t", 5, OUR_MUD, "alice", 0, 0, "dchat", "OtherMud", "bob",
             "$N pokes $O.", "$N pokes you.", "Alice", "Bobby"]])

    def test_channel_target_visname_defaults(self):
        self.call("channel_target", channel="dchat", target_mud="OtherMud", target_user="Bob",
                  message_others="o", message_target="t")
        self.assertEqual(self.written[0][-2:], ["someone", "Bob"])

    def test_channel_target_too_long(self):
        error = self.assertInvalid("message_target", "channel_target", channel="dchat",
                                   target_mud="OtherMud", target_user="Bob", message_others="o",
                                   message_target="t" * 9000)
        self.assertIn("max_bytes", error.data)

    def test_channel_send_too_long(self):
        error = self.assertInvalid("message", "channel_send", channel="dchat", message="z" * 9000)
        self.assertEqual(error.data["max_bytes"], 8192)

    def test_bad_channel_names(self):
        self.assertInvalid("channel", "channel_send", message="hi")
        self.assertInvalid("channel", "channel_send", channel="", message="hi")
        self.assertInvalid("channel", "channel_send", channel="a\x1bb", message="hi")
        self.assertInvalid("channel", "channel_send", channel="c" * 65, message="hi")
        self.assertInvalid("channel", "channel_send", channel=["x"], message="hi")

    def test_local_delivery_to_other_subscribers_only(self):
        self.call("channel_send", channel="dchat", message="Hi all", from_user="Alice")
        self.assertEqual(self.alice.events("channel_message"), [])
        self.assertEqual(self.carol.events("channel_message"), [])     # not joined
        self.assertEqual(self.no_perm.events("channel_message"), [])   # no channel permission
        [event] = self.bob.events("channel_message")
        history = self.gw.state.history("dchat")
        self.assertEqual(len(history), 1)
        self.assertEqual(event["history_id"], history[0]["id"])
        self.assertEqual({k: event[k] for k in ("channel", "from_mud", "from_user", "visname", "message")},
                         {"channel": "dchat", "from_mud": OUR_MUD, "from_user": "alice",
                          "visname": "Alice", "message": "Hi all"})

    def test_local_delivery_when_queued(self):
        self.gw.link.ready = False
        result = self.call("channel_emote", channel="dchat", emote="$N waves.", from_user="Alice")
        self.assertEqual(result["status"], "queued")
        [event] = self.bob.events("channel_emote")
        self.assertEqual(event["message"], "$N waves.")
        self.assertEqual(self.gw.state.history("dchat")[0]["type"], "emote")

    def test_targeted_local_delivery_and_history(self):
        self.call("channel_target", channel="dchat", target_mud="OtherMud", target_user="Bob",
                  message_others="$N pokes $O.", message_target="$N pokes you.", from_user="Alice")
        [event] = self.bob.events("channel_targeted")
        self.assertEqual(event["target_mud"], "OtherMud")
        self.assertEqual(event["target_user"], "bob")
        self.assertEqual(event["message_others"], "$N pokes $O.")
        [entry] = self.gw.state.history("dchat")
        self.assertEqual(entry["type"], "targeted")
        self.assertEqual(entry["message"], "$N pokes $O.")
        self.assertEqual(entry["target_visname"], "Bob")
        self.assertEqual(entry["id"], event["history_id"])

    def test_no_history_no_delivery_when_refused(self):
        self.gw.link.ready = False
        self.gw.config = with_overrides(self.gw.config, {"router.queue.enabled": False})
        with self.assertRaises(RPCError):
            self.call("channel_send", channel="dchat", message="Hi")
        self.assertEqual(self.gw.state.history("dchat"), [])
        self.assertEqual(self.bob.received, [])

    def test_retry_with_client_msg_id_records_once(self):
        for _ in range(2):
            self.call("channel_send", channel="dchat", message="Hi", client_msg_id="c1")
        self.assertEqual(len(self.gw.state.history("dchat")), 1)
        self.assertEqual(len(self.bob.events("channel_message")), 1)
        self.assertEqual(len(self.written), 1)

    def test_history_disabled(self):
        self.gw.config = with_overrides(self.gw.config, {"channels.history.enabled": False})
        self.call("channel_send", channel="dchat", message="Hi")
        self.assertEqual(self.gw.state.history("dchat"), [])
        self.assertIsNone(self.bob.events("channel_message")[0]["history_id"])

    def test_history_bounded_per_channel(self):
        self.gw.config = with_overrides(self.gw.config, {"channels.history.max_per_channel": 3})
        for n in range(5):
            self.call("channel_send", channel="dchat", message=f"m{n}")
        self.assertEqual([e["message"] for e in self.gw.state.history("dchat")], ["m2", "m3", "m4"])


class InboundTests(MessagesTestBase, SynchronousTestCase):
    def setUp(self):
        super().setUp()
        self.teller = self.gw.sessions.add(permissions=["tell"])
        self.info = self.gw.sessions.add(permissions=["info", "channel"])
        self.info.channels.add("dchat")

    def receive(self, *value):
        self.gw.link.receive(value)

    def test_tell_received_to_tell_holders(self):
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, "alice", "Bob", "hello alice")
        expected = {"from_mud": "OtherMud", "from_user": "bob", "to_mud": OUR_MUD, "to_user": "alice",
                    "message": "hello alice", "visname": "Bob"}
        for session in (self.alice, self.teller):
            [event] = session.events("tell_received")
            self.assertEqual({k: event[k] for k in expected}, expected)
            self.assertTrue(event["timestamp"].endswith("Z"))
        self.assertEqual(self.info.received, [])
        self.assertEqual(self.gw.link.sent, [])

    def test_emoteto_received(self):
        self.receive("emoteto", 5, "OtherMud", "bob", OUR_MUD, "alice", "Bob", "$N smiles.")
        [event] = self.teller.events("emoteto_received")
        self.assertEqual(event["message"], "$N smiles.")

    def test_tell_to_user_missing_from_snapshot_gets_unk_user(self):
        self.sync_players("carol")
        tell = ["tell", 5, "OtherMud", "bob", OUR_MUD, "alice", "Bob", "hello alice"]
        self.receive(*tell)
        self.assertEqual(self.gw.link.sent, [
            ["error", 5, OUR_MUD, 0, "OtherMud", "bob", "unk-user", "alice is not online.", tell]])
        self.assertEqual(self.teller.received, [])

    def test_unknown_user_tell_from_a_router_is_not_answered(self):
        self.sync_players()
        self.receive("tell", 5, "*test", 0, OUR_MUD, "alice", "Router", "hi")
        self.assertEqual(self.gw.link.sent, [])
        self.assertEqual(self.teller.received, [])

    def test_unk_user_answer_without_room_for_the_packet(self):
        self.sync_players()
        self.gw.config = with_overrides(self.gw.config, {"router.max_send_bytes": 200})
        tell = ["tell", 5, "OtherMud", "bob", OUR_MUD, "alice", "Bob", "x" * 300]
        self.receive(*tell)
        self.assertEqual(self.gw.link.sent, [
            ["error", 5, OUR_MUD, 0, "OtherMud", "bob", "unk-user", "alice is not online.", 0]])

    def test_unk_user_answer_to_a_tell_no_lpc_writer_takes(self):
        # A lenient reader hands over ints beyond 32 bits: the answer goes
        # without the packet rather than failing in the handler.
        self.sync_players()
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, "alice", "Bob", 2 ** 40)
        self.assertEqual(self.gw.link.sent, [
            ["error", 5, OUR_MUD, 0, "OtherMud", "bob", "unk-user", "alice is not online.", 0]])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_tell_to_user_in_snapshot(self):
        self.sync_players("alice")
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, "Alice", "Bob", "hi")
        self.assertEqual(len(self.teller.events("tell_received")), 1)
        self.assertEqual(self.gw.link.sent, [])

    def test_tell_to_upper_case_name_names_the_snapshots_player(self):
        # CoffeeMud's router sends user names in their own case.
        self.sync_players("Amy")
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, "AMY", "Bob", "hi")
        self.assertEqual(self.teller.events("tell_received")[0]["to_user"], "Amy")
        self.gw.clock.advance(10000)     # no current snapshot: folded
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, "AMY", "Bob", "hi")
        self.assertEqual(self.teller.events("tell_received")[1]["to_user"], "amy")

    def test_tell_without_snapshot_emits_and_answers_nothing(self):
        self.receive("emoteto", 5, "OtherMud", "bob", OUR_MUD, "ghost", "Bob", "$N waves.")
        self.assertEqual(len(self.teller.events("emoteto_received")), 1)
        self.assertEqual(self.gw.link.sent, [])

    def test_malformed_tells_do_not_crash(self):
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, 0, "Bob", "hi")
        self.receive("tell", 5, "OtherMud", "bob", OUR_MUD, "alice")
        [event] = self.teller.events("tell_received")
        self.assertEqual((event["message"], event["visname"]), ("", "bob"))

    def test_channel_m_recorded_and_published_to_subscribers(self):
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0, "dchat", "Zed", "Hi \"all\"\nnew line")
        [event] = self.info.events("channel_message")
        self.assertEqual(self.alice.received, [])      # not joined
        self.assertEqual(self.teller.received, [])
        [entry] = self.gw.state.history("dchat")
        self.assertEqual(event["history_id"], entry["id"])
        self.assertEqual({k: event[k] for k in ("channel", "from_mud", "from_user", "visname", "message")},
                         {"channel": "dchat", "from_mud": "DSTest", "from_user": "zed",
                          "visname": "Zed", "message": "Hi \"all\"\nnew line"})
        self.assertEqual(entry["type"], "message")
        self.assertEqual(entry["from_mud"], "DSTest")
        self.assertEqual(entry["message"], "Hi \"all\"\nnew line")
        self.assertRegex(entry["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_channel_e(self):
        self.receive("channel-e", 5, "DSTest", "zed", 0, 0, "dchat", "Zed", "$N waves.")
        [event] = self.info.events("channel_emote")
        self.assertEqual(event["message"], "$N waves.")
        self.assertEqual(self.gw.state.history("dchat")[0]["type"], "emote")

    def test_channel_t(self):
        self.receive("channel-t", 5, "DSTest", "zed", 0, 0, "dchat", OUR_MUD, "alice",
                     "$N pokes $O.", "$N pokes you.", "Zed", "Alice")
        [event] = self.info.events("channel_targeted")
        self.assertEqual({k: v for k, v in event.items() if k != "timestamp"}, {
            "channel": "dchat", "from_mud": "DSTest", "from_user": "zed", "visname": "Zed",
            "target_mud": OUR_MUD, "target_user": "alice", "target_visname": "Alice",
            "message_others": "$N pokes $O.", "message_target": "$N pokes you.",
            "history_id": event["history_id"]})
        [entry] = self.gw.state.history("dchat")
        self.assertEqual(entry["type"], "targeted")
        self.assertEqual(entry["target_user"], "alice")

    def test_channel_we_do_not_listen_to_is_dropped(self):
        # A router sends only listened channels; a misbehaving one must not
        # grow the history of any channel it likes.
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0, "elsewhere", "Zed", "hi")
        self.receive("channel-e", 5, "DSTest", "zed", 0, 0, "elsewhere", "Zed", "$N waves.")
        self.receive("channel-t", 5, "DSTest", "zed", 0, 0, "elsewhere", OUR_MUD, "alice",
                     "$N pokes $O.", "$N pokes you.", "Zed", "Alice")
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0, "DCHAT", "Zed", "names are exact")
        self.assertEqual(self.service.unlistened_dropped, 4)
        for channel in ("elsewhere", "DCHAT"):
            self.assertEqual(self.gw.state.history(channel), [])
        for session in (self.alice, self.teller, self.info):
            self.assertEqual(session.received, [])
        self.assertEqual(self.gw.link.sent, [])

    def test_default_channel_without_subscribers_is_recorded(self):
        self.gw.config = with_overrides(self.gw.config, {"channels.default": ["imud_gossip"]})
        self.gw.channels.reconfigure(self.gw.config)
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0, "imud_gossip", "Zed", "hi")
        self.assertEqual(len(self.gw.state.history("imud_gossip")), 1)
        self.assertEqual(self.service.unlistened_dropped, 0)

    def test_channel_left_by_its_last_subscriber_is_dropped(self):
        self.info.channels.discard("dchat")
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0, "dchat", "Zed", "late")
        self.assertEqual(self.gw.state.history("dchat"), [])
        self.assertEqual(self.service.unlistened_dropped, 1)

    def test_own_echo_dropped(self):
        self.receive("channel-m", 5, OUR_MUD, "alice", 0, 0, "dchat", "Alice", "echo")
        self.receive("channel-e", 5, OUR_MUD, "alice", 0, 0, "dchat", "Alice", "echo")
        self.receive("channel-t", 5, OUR_MUD, "alice", 0, 0, "dchat", "X", "y", "a", "b", "c", "d")
        self.assertEqual(self.info.received, [])
        self.assertEqual(self.gw.state.history("dchat"), [])

    def test_send_then_echo_gives_one_event_and_one_history_entry(self):
        bob = self.gw.sessions.add(permissions=["channel"])
        bob.channels.add("dchat")
        self.call("channel_send", channel="dchat", message="Hi", from_user="Alice")
        self.gw.link.receive(self.gw.link.sent[0])   # the router's echo
        self.assertEqual(len(bob.events("channel_message")), 1)
        self.assertEqual(len(self.gw.state.history("dchat")), 1)

    def test_channel_packet_without_channel_ignored(self):
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0, 0, "Zed", "hi")
        self.receive("channel-m", 5, "DSTest", "zed", 0, 0)
        self.assertEqual(self.info.received, [])


class DomainTests(MessagesTestBase, SynchronousTestCase):
    """The service itself takes checked values and refuses in domain terms."""

    def test_direct_sends_in_the_mudlists_case(self):
        result = self.service.direct("tell", self.alice, "othermud", "bob", "Hi", "alice",
                                     "Alice", None, "message")
        self.assertEqual(result["status"], "sent")
        self.assertEqual(self.written,
                         [["tell", 5, OUR_MUD, "alice", "OtherMud", "bob", "Alice", "Hi"]])

    def test_unknown_message(self):
        d = self.service.message_status(self.alice, message_id="nothing")
        error = self.failureResultOf(d, failures.UnknownMessage).value
        self.assertEqual(error.field, "message_id")
