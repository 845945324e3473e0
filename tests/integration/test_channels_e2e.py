"""Channels between two gateways on one router (API.md "Channels", "Events").

What the router received is checked packet by packet against I3-PROTOCOL.md
and the shapes of the real frames in ``tests/data/``; what each
MUD's clients got is checked event by event.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.integration.harness import RPCFailure
from tests.integration.mudpair import (
    A, B, FAST_LINK, assert_shaped_like_vector, listen_router, make_loop, start_pair, state_dir)
from tests.integration.waits import gateway_sees, link_down, link_ready

CHANNEL = "dchat"


def listens(pair, mud, channel=None):
    """The (channel, flag) of every channel-listen MudX sent, in order."""
    return [(p[6], p[7]) for p in pair.received(mud, "channel-listen")
            if channel is None or p[6] == channel]


class ChannelTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.pair = yield start_pair(self.loop)
        # A second and a third client on MudA: one joins, one does not.
        self.ca2 = yield self.loop.tcp_client(self.pair.a)
        self.ca3 = yield self.loop.tcp_client(self.pair.a)

    @defer.inlineCallbacks
    def join_all(self, channel=CHANNEL):
        pair = self.pair
        for client in (pair.ca, self.ca2, pair.cb):
            result = yield client.call("channel_join", {"channel": channel})
            self.assertEqual(result, {"status": "joined", "channel": channel})
        yield pair.router.wait_for(
            lambda r: r.listening.get(channel, set()) >= {A, B})

    @defer.inlineCallbacks
    def test_join_sends_listen_once_per_channel_to_the_router(self):
        pair = self.pair
        yield self.join_all()
        yield pair.ca.call("channel_join", {"channel": "dead_test4", "listen_only": True})
        packets = yield pair.wait_received(A, "channel-listen", count=2)
        self.assertEqual(packets, [
            ["channel-listen", 5, A, 0, "*test", 0, CHANNEL, 1],
            ["channel-listen", 5, A, 0, "*test", 0, "dead_test4", 1]])
        for packet in packets:
            self.assertIs(type(packet[7]), int)
            assert_shaped_like_vector(self, packet)
        self.assertEqual(pair.received(B, "channel-listen"),
                         [["channel-listen", 5, B, 0, "*test", 0, CHANNEL, 1]])
        # Joining again, from the same or another session, sends nothing more.
        yield self.ca2.call("channel_join", {"channel": "dead_test4"})
        yield pair.ca.call("channel_join", {"channel": CHANNEL})
        yield pair.cb.call("channel_join", {"channel": "imud_gossip"})
        yield pair.wait_received(B, "channel-listen", count=2)
        self.assertEqual(listens(pair, A), [(CHANNEL, 1), ("dead_test4", 1)])
        self.assertEqual(pair.router.rejected, [])

    @defer.inlineCallbacks
    def _exchange(self, sender, from_mud, others, outsiders, to_mud):
        """Message, emote (both names) and targeted from ``sender``: the packets
        and the events the other subscribers got. Returns the history ids."""
        pair = self.pair
        calls = [
            ("channel_send", {"message": "\x1b[1;31mhello %^RED%^all\x1b[0m"},
             "channel-m", ["Alice", "hello %^RED%^all"], "channel_message"),
            ("channel_emote", {"emote": "$N waves."},
             "channel-e", ["Alice", "$N waves."], "channel_emote"),
            ("channel_emote", {"message": "$N bows."},
             "channel-e", ["Alice", "$N bows."], "channel_emote"),
            ("channel_target", {"target_mud": to_mud.upper(), "target_user": "Bob",
                                "target_visname": "Bob the Brave",
                                "message_others": "$N pokes $O.", "message_target": "$N pokes you."},
             "channel-t", [to_mud, "bob", "$N pokes $O.", "$N pokes you.", "Alice", "Bob the Brave"],
             "channel_targeted"),
        ]
        ids = []
        for method, params, ptype, fields, event_name in calls:
            waits = [client.event(event_name) for client in others]
            before = len(pair.received(from_mud, ptype))
            result = yield sender.call(method, {"channel": CHANNEL, "from_user": "ALICE",
                                                "visname": "Alice", **params})
            self.assertEqual(result["status"], "sent")
            packets = yield pair.wait_received(from_mud, ptype, count=before + 1)
            packet = packets[-1]
            self.assertEqual(packet, [ptype, 5, from_mud, "alice", 0, 0, CHANNEL, *fields])
            if ptype != "channel-t":   # the vectors hold no channel-t
                assert_shaped_like_vector(self, packet)
            events = yield defer.gatherResults(waits)
            expected = {"channel": CHANNEL, "from_mud": from_mud, "from_user": "alice",
                        "visname": "Alice"}
            if ptype == "channel-t":
                expected.update({"target_mud": to_mud, "target_user": "bob",
                                 "target_visname": "Bob the Brave",
                                 "message_others": "$N pokes $O.",
                                 "message_target": "$N pokes you."})
            else:
                expected["message"] = fields[1]
            history_ids = set()
            for event in events:
                event.pop("timestamp")
                history_ids.add(event.pop("history_id"))
                self.assertEqual(event, expected)
            ids.append(history_ids)
        # A marker from the other side: once it has arrived everywhere, any
        # echo of ours would have arrived too.
        marker_from = pair.cb if from_mud == A else pair.ca
        marker_to = [c for c in (pair.ca, self.ca2, pair.cb) if c is not marker_from]
        waits = [c.event("channel_message", lambda e: e["message"] == "marker") for c in marker_to]
        yield marker_from.call("channel_send", {"channel": CHANNEL, "message": "marker"})
        yield defer.gatherResults(waits)
        for client in (sender, *outsiders):
            self.assertEqual([n for n in client.event_names() if n.startswith("channel_")], [])
        for client in others:
            self.assertEqual([n for n in client.event_names() if n.startswith("channel_")], [])
        return ids

    @defer.inlineCallbacks
    def test_messages_emotes_and_targeted_both_ways(self):
        pair = self.pair
        yield self.join_all()
        # A -> B: MudB's subscriber and MudA's other subscriber hear it once;
        # the sender and the client that did not join hear nothing.
        ids_a = yield self._exchange(pair.ca, A, [pair.cb, self.ca2], [self.ca3], B)
        for ids in ids_a:
            # One history id per gateway: the two gateways' stores are separate.
            self.assertTrue(all(isinstance(i, int) for i in ids), ids)
        ids_b = yield self._exchange(pair.cb, B, [pair.ca, self.ca2], [self.ca3], A)
        self.assertEqual(len(ids_b), 4)
        self.assertEqual(pair.router.rejected, [])

    @defer.inlineCallbacks
    def test_retry_with_client_msg_id_and_too_large(self):
        pair = self.pair
        yield self.join_all()
        params = {"channel": CHANNEL, "message": "only once", "client_msg_id": "chan-1"}
        first = yield pair.ca.call("channel_send", params)
        again = yield pair.ca.call("channel_send", params)
        self.assertEqual(again, first)
        limit = pair.a.gateway.config.router.max_send_bytes
        for method, field in (("channel_send", "message"), ("channel_emote", "emote")):
            with self.assertRaises(RPCFailure) as caught:
                yield pair.ca.call(method, {"channel": CHANNEL, field: "x" * limit})
            self.assertEqual(caught.exception.code, -32602)
            self.assertEqual(caught.exception.data, {"field": field, "max_bytes": limit})
        marker = self.ca2.event("channel_message", lambda e: e["message"] == "marker")
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "message": "marker"})
        yield marker
        self.assertEqual([p[8] for p in pair.received(A, "channel-m")], ["only once"])
        self.assertEqual([p[0] for p in pair.received(A, "channel-e")], [])
        self.assertEqual([e["params"]["message"] for e in self.ca2.events], ["only once"])
        for client in (pair.ca, pair.cb):
            history = yield client.call("channel_history", {"channel": CHANNEL})
            self.assertEqual([m["message"] for m in history["messages"]], ["only once", "marker"])

    @defer.inlineCallbacks
    def test_history_on_both_sides(self):
        pair = self.pair
        yield self.join_all()
        texts = ["one", "Two", "three HELLO", "four", "five hello"]
        for n, text in enumerate(texts):
            sender = pair.ca if n % 2 == 0 else pair.cb
            receiver = pair.cb if n % 2 == 0 else pair.ca
            arrived = receiver.event("channel_message", lambda e, t=text: e["message"] == t)
            yield sender.call("channel_send", {"channel": CHANNEL, "message": text,
                                               "from_user": "u%d" % n})
            yield arrived
        for client, mud in ((pair.ca, A), (pair.cb, B)):
            full = yield client.call("channel_history", {"channel": CHANNEL})
            self.assertEqual((full["status"], full["channel"], full["count"]),
                             ("success", CHANNEL, 5))
            messages = full["messages"]
            self.assertEqual([m["message"] for m in messages], texts)
            self.assertEqual([m["from_mud"] for m in messages], [A, B, A, B, A])
            first = messages[0]
            self.assertEqual(set(first), {"id", "channel", "type", "from_mud", "from_user",
                                          "visname", "message", "timestamp"})
            self.assertEqual((first["type"], first["channel"], first["from_user"], first["visname"]),
                             ("message", CHANNEL, "u0", "u0"))
            ids = [m["id"] for m in messages]
            self.assertEqual(ids, sorted(ids))
            page = yield client.call("channel_history", {"channel": CHANNEL, "limit": 2})
            self.assertEqual([m["message"] for m in page["messages"]], texts[3:])
            older = yield client.call("channel_history",
                                      {"channel": CHANNEL, "limit": 2, "before": ids[3]})
            self.assertEqual([m["message"] for m in older["messages"]], texts[1:3])
            newer = yield client.call("channel_history",
                                      {"channel": CHANNEL, "limit": 2, "after": ids[1]})
            self.assertEqual([m["message"] for m in newer["messages"]], texts[2:4])
            found = yield client.call("channel_history", {"channel": CHANNEL, "query": "hElLo"})
            self.assertEqual([m["message"] for m in found["messages"]], ["three HELLO", "five hello"])
            self.assertEqual(found["count"], 2)

    @defer.inlineCallbacks
    def test_history_ids_match_the_events(self):
        pair = self.pair
        yield self.join_all()
        heard_b = pair.cb.event("channel_message")
        heard_a2 = self.ca2.event("channel_message")
        yield pair.ca.call("channel_send", {"channel": CHANNEL, "message": "tracked"})
        event_b, event_a2 = yield defer.gatherResults([heard_b, heard_a2])
        (on_a,) = (yield pair.ca.call("channel_history", {"channel": CHANNEL}))["messages"]
        (on_b,) = (yield pair.cb.call("channel_history", {"channel": CHANNEL}))["messages"]
        self.assertEqual(event_a2["history_id"], on_a["id"])
        self.assertEqual(event_b["history_id"], on_b["id"])

    @defer.inlineCallbacks
    def test_leave_of_the_last_subscriber_sends_flag_0(self):
        pair = self.pair
        yield self.join_all()
        result = yield pair.ca.call("channel_leave", {"channel": CHANNEL})
        self.assertEqual(result, {"status": "left", "channel": CHANNEL})
        # Another session is still there: the router keeps sending.
        yield self.ca2.call("ping")
        self.assertEqual(listens(pair, A, CHANNEL), [(CHANNEL, 1)])
        yield self.ca2.call("channel_leave", {"channel": CHANNEL})
        yield pair.wait_received(A, "channel-listen", count=2)
        self.assertEqual(pair.received(A, "channel-listen")[-1],
                         ["channel-listen", 5, A, 0, "*test", 0, CHANNEL, 0])
        yield pair.router.wait_for(lambda r: A not in r.listening.get(CHANNEL, ()))
        # The router sends the channel to MudB (the sender's echo) and not to MudA.
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "message": "still here?"})
        yield pair.router.wait_for(lambda r: any(
            m == B and p[0] == "channel-m" and p[8] == "still here?" for m, p in r.sent))
        self.assertEqual([m for m, p in pair.router.sent if p[0] == "channel-m"], [B])

    @defer.inlineCallbacks
    def test_default_channels_are_listened_without_join(self):
        loop = self.loop
        router = self.pair.router
        svc = yield loop.ready_gateway("MudC", [router], state_dir(loop, "MudC"),
                                       channels={"default": ["imud_gossip"]})
        yield router.wait_for(lambda r: "MudC" in r.listening.get("imud_gossip", ()))
        self.assertEqual([p for m, p in router.received if m == "MudC" and p[0] == "channel-listen"],
                         [["channel-listen", 5, "MudC", 0, "*test", 0, "imud_gossip", 1]])
        # Joining and leaving a default channel keeps the router listening.
        client = yield loop.tcp_client(svc)
        yield client.call("channel_join", {"channel": "imud_gossip"})
        yield client.call("channel_leave", {"channel": "imud_gossip"})
        yield client.call("ping")
        self.assertEqual(len([p for m, p in router.received
                              if m == "MudC" and p[0] == "channel-listen"]), 1)
        self.assertIn("MudC", router.listening["imud_gossip"])

    @defer.inlineCallbacks
    def test_listen_is_sent_again_after_a_reconnect(self):
        pair = self.pair
        yield self.join_all()
        yield pair.ca.call("channel_join", {"channel": "dead_test4"})
        yield pair.wait_received(A, "channel-listen", count=2)
        startups = len(pair.received(A, "startup-req-3"))
        yield pair.router.drop(A)
        yield pair.wait_received(A, "startup-req-3", count=startups + 1)
        yield pair.router.wait_for(
            lambda r: A in r.listening.get(CHANNEL, ()) and A in r.listening.get("dead_test4", ()))
        self.assertEqual(sorted(listens(pair, A)[2:]), [(CHANNEL, 1), ("dead_test4", 1)])
        # And the channel flows to MudA again.
        heard = self.ca2.event("channel_message", lambda e: e["message"] == "welcome back")
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "message": "welcome back"})
        yield heard

    @defer.inlineCallbacks
    def test_channel_list(self):
        pair = self.pair
        yield self.join_all()
        listing = yield self.ca2.call("channel_list")
        self.assertEqual(set(listing), {"status", "channels", "count", "subscribed_channels"})
        self.assertEqual(listing["status"], "success")
        self.assertEqual(listing["subscribed_channels"], [CHANNEL])
        self.assertEqual(listing["count"], len(listing["channels"]))
        by_name = {c["name"]: c for c in listing["channels"]}
        self.assertEqual(set(by_name), set(pair.router.channels))
        self.assertEqual(by_name[CHANNEL],
                         {"name": CHANNEL, "owner": "Frontiers", "type": 0, "member_count": 2})
        self.assertEqual(by_name["dead_test4"]["member_count"], 0)
        on_b = yield pair.cb.call("channel_list", {"filter": {"owner": "frontiers", "type": 0}})
        self.assertEqual({c["name"]: c["member_count"] for c in on_b["channels"]},
                         {"dead_test4": 0, CHANNEL: 1, "imud_gossip": 0})
        none = yield pair.cb.call("channel_list", {"filter": {"type": 1}})
        self.assertEqual((none["channels"], none["count"]), ([], 0))

    @defer.inlineCallbacks
    def test_channel_admin_add_ban_remove(self):
        pair = self.pair
        name = "muda_chat"
        result = yield pair.ca.call("channel_admin", {"channel": name, "action": "add", "type": 0})
        self.assertEqual(result["status"], "sent")
        (add,) = yield pair.wait_received(A, "channel-add")
        self.assertEqual(add, ["channel-add", 5, A, 0, "*test", 0, name, 0])
        self.assertEqual(pair.router.channels[name].owner, A)
        # The chanlist delta reaches both gateways (its type ({}) counts as 0).
        for svc in (pair.a, pair.b):
            yield gateway_sees(svc, lambda: name in svc.gateway.lists.channels, f"chanlist has {name}")
        listing = yield pair.cb.call("channel_list", {"filter": {"owner": A}})
        self.assertEqual(listing["channels"],
                         [{"name": name, "owner": A, "type": 0, "member_count": 0}])

        result = yield pair.ca.call("channel_admin", {"channel": name, "action": "ban",
                                                      "muds": ["mudb"]})
        (admin,) = yield pair.wait_received(A, "channel-admin")
        self.assertEqual(admin, ["channel-admin", 5, A, 0, "*test", 0, name, [B], []])
        self.assertEqual(pair.router.channels[name].members, {B})
        # Banned: MudB's join gets no listening from the router.
        yield pair.cb.call("channel_join", {"channel": name})
        yield pair.wait_received(B, "channel-listen")
        self.assertNotIn(B, pair.router.listening.get(name, ()))
        with self.assertRaises(RPCFailure) as caught:
            yield pair.ca.call("channel_admin", {"channel": name, "action": "admit",
                                                 "muds": [B]})
        self.assertEqual(caught.exception.code, -32602)

        yield pair.ca.call("channel_admin", {"channel": name, "action": "unban", "muds": [B]})
        yield pair.wait_received(A, "channel-admin", count=2)
        self.assertEqual(pair.received(A, "channel-admin")[-1],
                         ["channel-admin", 5, A, 0, "*test", 0, name, [], [B]])
        self.assertEqual(pair.router.channels[name].members, set())

        yield pair.ca.call("channel_admin", {"channel": name, "action": "remove"})
        (remove,) = yield pair.wait_received(A, "channel-remove")
        self.assertEqual(remove, ["channel-remove", 5, A, 0, "*test", 0, name])
        self.assertNotIn(name, pair.router.channels)
        yield gateway_sees(pair.b, lambda: name not in pair.b.gateway.lists.channels, f"{name} removed")
        listing = yield pair.cb.call("channel_list", {"filter": {"owner": A}})
        self.assertEqual(listing["channels"], [])
        self.assertEqual(pair.router.rejected, [])


class QueuedChannelTests(TestCase):
    """A channel message sent while the link is down goes out after the
    handshake, and the router, which forgot our listening, delivers it."""

    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.pair = yield start_pair(self.loop, a={"router": FAST_LINK})
        self.ca2 = yield self.loop.tcp_client(self.pair.a)
        for client in (self.pair.ca, self.ca2, self.pair.cb):
            yield client.call("channel_join", {"channel": CHANNEL})
        yield self.pair.router.wait_for(lambda r: r.listening.get(CHANNEL, set()) >= {A, B})

    @defer.inlineCallbacks
    def test_queued_channel_message_is_delivered_after_reconnect(self):
        pair = self.pair
        pair.router.refuse_startups = True
        yield pair.router.drop(A)
        yield link_down(pair.a)
        local = self.ca2.event("channel_message")
        result = yield pair.ca.call("channel_send", {"channel": CHANNEL, "message": "queued hi",
                                                     "from_user": "alice"})
        self.assertEqual(result["status"], "queued")
        # API.md: the other local sessions hear it when it is queued.
        event = yield local
        self.assertEqual(event["message"], "queued hi")
        remote = pair.cb.event("channel_message", timeout=3)
        sent = pair.ca.event("message_sent", lambda e: e["message_id"] == result["message_id"])
        pair.router.refuse_startups = False
        event = yield remote
        self.assertEqual((event["from_mud"], event["message"]), (A, "queued hi"))
        self.assertEqual((yield sent)["method"], "channel_send")
        # Nothing was refused on the way, and the echo is not shown twice.
        self.assertEqual([p for m, p in pair.router.sent if m == A and p[0] == "error"], [])
        marker = self.ca2.event("channel_message", lambda e: e["message"] == "marker")
        yield pair.cb.call("channel_send", {"channel": CHANNEL, "message": "marker"})
        yield marker
        self.assertEqual([n for n in self.ca2.event_names() if n.startswith("channel_")], [])
        history = yield pair.ca.call("channel_history", {"channel": CHANNEL})
        self.assertEqual([m["message"] for m in history["messages"]], ["queued hi", "marker"])


class RouterCleanRestartTests(TestCase):
    """The Dead Souls router restarted from a clean state: it closes a
    connection accepted within a second of the one before, and re-creates
    its channels only some seconds after start (about 15 s; 3 s here),
    answering listens before that with unk-channel. The gateways must hear
    their channel again at the chanlist update that brings it back, and a
    message queued in the outage must wait for that listen."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        fast = {"router": FAST_LINK, "channels": {"listen_wait": 0.5}}
        self.pair = yield start_pair(self.loop, a=fast, b=fast)

    @defer.inlineCallbacks
    def test_channel_heard_again_after_a_clean_restart_with_late_channels(self):
        pair = self.pair
        for client in (pair.ca, pair.cb):
            yield client.call("channel_join", {"channel": CHANNEL})
        yield pair.router.wait_for(lambda r: r.listening.get(CHANNEL, set()) >= {A, B})
        port = pair.router.port
        yield pair.router.shutdown()
        yield link_down(pair.a, pair.b)
        queued = yield pair.ca.call("channel_send", {"channel": CHANNEL, "message": "from the outage"})
        self.assertEqual(queued["status"], "queued")
        sent = pair.ca.event("message_sent", lambda e: e["message_id"] == queued["message_id"],
                             timeout=10)

        router = listen_router(self.loop, port, channel_delay=3.0, accept_gap=1.0)
        yield link_ready(pair.a, pair.b)
        self.assertTrue(router.refused_connections)      # the second came too soon, and retried
        # Both listened at once and were told the channel does not exist.
        yield router.wait_for(lambda r: len(unk_channel_answers(r)) >= 2)
        self.assertEqual(router.channels, {})
        self.assertEqual([p for m, p in router.received if p[0] == "channel-m"], [])
        # The channels come back, one chanlist update each: at dchat's, both
        # gateways listen again (no second update needed) and the queued
        # message goes, after the listen.
        yield router.wait_for(lambda r: CHANNEL in r.channels, timeout=5)
        yield router.wait_for(lambda r: r.listening.get(CHANNEL, set()) >= {A, B})
        yield sent
        # Relayed to the listeners (MudB may or may not have listened again
        # yet: each gateway hears the update on its own link).
        self.assertIn(A, [m for m, p in router.sent if p[0] == "channel-m" and p[8] == "from the outage"])
        from_a = [p[0] for m, p in router.received if m == A and p[0] in ("channel-listen", "channel-m")]
        self.assertEqual(from_a, ["channel-listen", "channel-listen", "channel-m"])
        # Nothing of ours was refused for its channel, and the channel lives.
        self.assertEqual([p for p in unk_channel_answers(router) if p[8][0] != "channel-listen"], [])
        for speaker, hearer, text in ((pair.cb, pair.ca, "heard you"), (pair.ca, pair.cb, "me too")):
            heard = hearer.event("channel_message", lambda e, text=text: e["message"] == text)
            result = yield speaker.call("channel_send", {"channel": CHANNEL, "message": text})
            self.assertEqual(result["status"], "sent")
            yield heard
        listed = yield pair.ca.call("channel_list")
        self.assertIn(CHANNEL, listed["subscribed_channels"])


def unk_channel_answers(router):
    """The unk-channel errors the router sent, whatever they answered."""
    return [p for m, p in router.sent if p[0] == "error" and p[6] == "unk-channel"]
