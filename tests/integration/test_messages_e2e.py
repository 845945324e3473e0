"""Tells and emotes between two gateways on one router, and the durable queue.

Every outbound packet is checked as the router received it (I3-PROTOCOL.md
section 3, and the shapes of the real frames in ``tests/data/``),
every inbound one as the event the other MUD's client got (API.md "Events").
"""

import signal
from pathlib import Path

import yaml
from twisted.internet import defer, protocol, reactor, task
from twisted.trial.unittest import TestCase

from intermud3.config import with_overrides
from intermud3.testing.router import I3Router
from tests.integration.harness import API_KEY, JSONLineClient, RPCFailure, assert_rpc_error
from tests.integration.mudpair import (
    A, B, FAST_LINK, assert_shaped_like_vector, listen_router, make_loop, start_pair,
    state_dir)
from tests.integration.process import free_port, output_on_failure, twistd_gateway
from tests.integration.waits import gateway_sees, link_down, link_ready

RED_ANSI = "\x1b[1;31m"
RESET_ANSI = "\x1b[0m"


class TellEmotetoTests(TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.pair = yield start_pair(self.loop)

    @defer.inlineCallbacks
    def _direct(self, sender, receiver, from_mud, to_mud, method, text_param):
        """One tell/emoteto from ``sender`` to ``receiver``; returns (result, packet, event)."""
        pair = self.pair
        before = len(pair.received(from_mud, method))
        params = {
            "target_mud": to_mud.lower(),   # the mudlist's case must go out
            "target_user": "BoB",
            text_param: f"{RED_ANSI}hi%^RED%^ there{RESET_ANSI}\x07 $N",
            "from_user": "AlIce",
            "visname": "Alice the Great",
        }
        event_name = "tell_received" if method == "tell" else "emoteto_received"
        event = receiver.event(event_name)
        result = yield sender.call(method, params)
        packets = yield pair.wait_received(from_mud, method, count=before + 1)
        params = yield event
        return result, packets[-1], params

    @defer.inlineCallbacks
    def _check_both_ways(self, method, text_param):
        pair = self.pair
        for sender, receiver, from_mud, to_mud in ((pair.ca, pair.cb, A, B), (pair.cb, pair.ca, B, A)):
            result, packet, event = yield self._direct(
                sender, receiver, from_mud, to_mud, method, text_param)
            self.assertEqual(result["status"], "sent")
            self.assertIsInstance(result["message_id"], str)
            self.assertEqual(packet, [method, 5, from_mud, "alice", to_mud, "bob",
                                      "Alice the Great", "hi%^RED%^ there $N"])
            assert_shaped_like_vector(self, packet)
            timestamp = event.pop("timestamp")
            self.assertTrue(timestamp.endswith("Z"), timestamp)
            self.assertEqual(event, {
                "from_mud": from_mud, "from_user": "alice", "to_mud": to_mud,
                "to_user": "bob", "message": "hi%^RED%^ there $N",
                "visname": "Alice the Great"})
        self.assertEqual(pair.router.rejected, [])

    def test_tell_both_ways(self):
        return self._check_both_ways("tell", "message")

    def test_emoteto_both_ways_with_emote(self):
        return self._check_both_ways("emoteto", "emote")

    def test_emoteto_both_ways_with_message(self):
        return self._check_both_ways("emoteto", "message")

    @defer.inlineCallbacks
    def test_defaults_from_user_and_visname(self):
        pair = self.pair
        yield pair.ca.call("tell", {"target_mud": B, "target_user": "bob", "message": "x"})
        yield pair.ca.call("tell", {"target_mud": B, "target_user": "bob", "message": "y",
                                    "from_user": "Zed"})
        first, second = yield pair.wait_received(A, "tell", count=2)
        self.assertEqual(first, ["tell", 5, A, "someone", B, "bob", "someone", "x"])
        self.assertEqual(second, ["tell", 5, A, "zed", B, "bob", "Zed", "y"])

    @defer.inlineCallbacks
    def test_tell_to_unknown_mud_gives_unk_dst_to_the_sender(self):
        pair = self.pair
        other = yield self.loop.tcp_client(pair.a)
        error = pair.ca.event("error_occurred")
        result = yield pair.ca.call("tell", {"target_mud": "NoSuchMud", "target_user": "x",
                                             "message": "hi", "from_user": "alice"})
        self.assertEqual(result["status"], "sent")
        (packet,) = yield pair.wait_received(A, "tell")
        self.assertEqual(packet, ["tell", 5, A, "alice", "NoSuchMud", "x", "alice", "hi"])
        params = yield error
        params.pop("timestamp")
        self.assertEqual(params, {
            "error_code": "unk-dst", "error_message": "destination unknown",
            "from_mud": "*test", "to_mud": A, "to_user": "alice",
            "context": {"packet_type": "tell", "target_mud": "NoSuchMud", "target_user": "x"}})
        # Only the session that sent the tell hears about it.
        yield pair.ca.call("ping")
        yield other.call("ping")
        self.assertNotIn("error_occurred", other.event_names())

    @defer.inlineCallbacks
    def test_tell_to_user_missing_from_presence_gives_unk_user(self):
        pair = self.pair
        synced = yield pair.cb.call("presence_sync", {"users": [{"name": "Carol"}]})
        self.assertEqual(synced["count"], 1)
        error = pair.ca.event("error_occurred")
        yield pair.ca.call("tell", {"target_mud": B, "target_user": "bob",
                                    "message": "anyone?", "from_user": "alice"})
        params = yield error
        self.assertEqual(params["error_code"], "unk-user")
        self.assertEqual((params["from_mud"], params["to_mud"], params["to_user"]),
                         (B, A, "alice"))
        self.assertEqual(params["context"],
                         {"packet_type": "tell", "target_mud": B, "target_user": "bob"})
        (answer,) = pair.received(B, "error")
        self.assertEqual(answer[:8], ["error", 5, B, 0, A, "alice", "unk-user", answer[7]])
        self.assertEqual(answer[8], ["tell", 5, A, "alice", B, "bob", "alice", "anyone?"])
        # A tell to a user who is there arrives; nothing came for bob before it.
        carol = pair.cb.event("tell_received")
        yield pair.ca.call("tell", {"target_mud": B, "target_user": "carol",
                                    "message": "hello carol", "from_user": "alice"})
        params = yield carol
        self.assertEqual(params["message"], "hello carol")
        self.assertNotIn("tell_received", pair.cb.event_names())

    @defer.inlineCallbacks
    def test_message_too_large_is_invalid_params(self):
        pair = self.pair
        limit = pair.a.gateway.config.router.max_send_bytes
        for method, field in (("tell", "message"), ("emoteto", "emote"), ("emoteto", "message")):
            with self.assertRaises(RPCFailure) as caught:
                yield pair.ca.call(method, {"target_mud": B, "target_user": "bob",
                                            field: "x" * limit})
            self.assertEqual(caught.exception.code, -32602)
            self.assertEqual(caught.exception.data["field"], field)
            self.assertEqual(caught.exception.data["max_bytes"], limit)
        yield pair.ca.call("ping")
        self.assertEqual(pair.received(A, "tell") + pair.received(A, "emoteto"), [])
        self.assertEqual(pair.a.gateway.outbox.depth, 0)

    @defer.inlineCallbacks
    def test_client_msg_id_retry_returns_first_result_and_sends_once(self):
        pair = self.pair
        params = {"target_mud": B, "target_user": "bob", "message": "once",
                  "client_msg_id": "retry-1"}
        first = yield pair.ca.call("tell", params)
        again = yield pair.ca.call("tell", params)
        self.assertEqual(again, first)
        # The same id from another connection of the same key: still once.
        other = yield self.loop.tcp_client(pair.a)
        third = yield other.call("tell", params)
        self.assertEqual(third, first)
        # A different id is a new message: it is the second tell to arrive.
        yield pair.ca.call("tell", dict(params, client_msg_id="retry-2", message="twice"))
        tells = yield pair.wait_received(A, "tell", count=2)
        self.assertEqual([t[7] for t in tells], ["once", "twice"])


class DurableQueueTests(TestCase):
    """API.md "Messages": "queued" while the link is down, out once later."""

    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.pair = yield start_pair(self.loop, a={"router": FAST_LINK})

    @defer.inlineCallbacks
    def _cut_a(self):
        """Drop MudA's link and keep it down: the router refuses startups."""
        pair = self.pair
        pair.router.refuse_startups = True
        yield pair.router.drop(A)
        yield link_down(pair.a)

    def _tell(self, client, message, **extra):
        return client.call("tell", {"target_mud": B, "target_user": "bob",
                                    "message": message, "from_user": "alice", **extra})

    @defer.inlineCallbacks
    def test_queued_while_down_then_delivered_once_with_message_sent(self):
        pair = self.pair
        yield self._cut_a()
        result = yield self._tell(pair.ca, "while down")
        self.assertEqual(result["status"], "queued")
        status = yield pair.ca.call("stats")
        self.assertEqual(status["queued_outbound"], 1)
        sent = pair.ca.event("message_sent", lambda e: e["message_id"] == result["message_id"])
        received = pair.cb.event("tell_received")
        pair.router.refuse_startups = False
        event = yield sent
        self.assertEqual(event["method"], "tell")
        self.assertEqual((yield received)["message"], "while down")
        # A later tell goes straight out, and the queued one never again.
        yield self._tell(pair.ca, "after")
        yield pair.wait_received(A, "tell", count=2)
        self.assertEqual([t[7] for t in pair.received(A, "tell")], ["while down", "after"])
        self.assertEqual(pair.a.gateway.outbox.depth, 0)

    @defer.inlineCallbacks
    def test_router_restarted_on_the_same_port(self):
        pair = self.pair
        port = pair.router.port
        yield pair.router.shutdown()
        yield link_down(pair.a, pair.b)
        result = yield self._tell(pair.ca, "across a router restart")
        self.assertEqual(result["status"], "queued")
        sent = pair.ca.event("message_sent", lambda e: e["message_id"] == result["message_id"])
        received = pair.cb.event("tell_received")
        # The new router takes MudA only once MudB is there, so the tell
        # cannot race MudB's own startup.
        router = listen_router(self.loop, port, WaitsForRouter, first=B)
        yield sent
        self.assertEqual((yield received)["message"], "across a router restart")
        yield pair.ca.call("ping")
        self.assertEqual(len([p for m, p in router.received if p[0] == "tell"]), 1)

    @defer.inlineCallbacks
    def test_expired_message_is_reported_and_never_sent(self):
        pair = self.pair
        pair.a.gateway.apply(with_overrides(pair.a.gateway.config, {"router.queue.ttl": 0.2}))
        yield self._cut_a()
        result = yield self._tell(pair.ca, "too late")
        self.assertEqual(result["status"], "queued")
        event = yield pair.ca.event("message_expired", timeout=3)
        self.assertEqual(event["message_id"], result["message_id"])
        self.assertEqual(event["method"], "tell")
        pair.router.refuse_startups = False
        yield link_ready(pair.a)
        received = pair.cb.event("tell_received")
        yield self._tell(pair.ca, "on time")
        self.assertEqual((yield received)["message"], "on time")
        self.assertEqual([t[7] for t in pair.received(A, "tell")], ["on time"])
        self.assertNotIn("message_sent", pair.ca.event_names())

    @defer.inlineCallbacks
    def test_queue_full(self):
        pair = self.pair
        pair.a.gateway.apply(with_overrides(pair.a.gateway.config, {"router.queue.max_messages": 2}))
        yield self._cut_a()
        for n in range(2):
            result = yield self._tell(pair.ca, f"m{n}")
            self.assertEqual(result["status"], "queued")
        with self.assertRaises(RPCFailure) as caught:
            yield self._tell(pair.ca, "one too many")
        self.assertEqual(caught.exception.code, -32004)
        self.assertEqual(caught.exception.data["reason"], "queue_full")
        pair.router.refuse_startups = False
        yield pair.wait_received(A, "tell", count=2)
        yield pair.ca.call("ping")
        self.assertEqual([t[7] for t in pair.received(A, "tell")], ["m0", "m1"])

    @defer.inlineCallbacks
    def test_queue_disabled_and_link_down(self):
        pair = self.pair
        pair.a.gateway.apply(with_overrides(pair.a.gateway.config, {"router.queue.enabled": False}))
        yield self._cut_a()
        with self.assertRaises(RPCFailure) as caught:
            yield self._tell(pair.ca, "nowhere to go")
        self.assertEqual(caught.exception.code, -32004)
        self.assertEqual(caught.exception.data["reason"], "link_down")
        self.assertEqual(pair.a.gateway.outbox.depth, 0)

    @defer.inlineCallbacks
    def test_client_msg_id_retry_while_queued(self):
        pair = self.pair
        yield self._cut_a()
        first = yield self._tell(pair.ca, "retried", client_msg_id="q-retry")
        again = yield self._tell(pair.ca, "retried", client_msg_id="q-retry")
        self.assertEqual(again, first)
        self.assertEqual(first["status"], "queued")
        self.assertEqual(pair.a.gateway.outbox.depth, 1)
        pair.router.refuse_startups = False
        yield pair.ca.event("message_sent")
        # Retried after it went out: still the first answer, nothing new.
        late = yield self._tell(pair.ca, "retried", client_msg_id="q-retry")
        self.assertEqual(late, first)
        yield pair.ca.call("ping")
        self.assertEqual(len(pair.received(A, "tell")), 1)

    @defer.inlineCallbacks
    def test_queued_tell_survives_a_gateway_restart(self):
        pair = self.pair
        state_dir = pair.a.gateway.config.state.directory
        yield self._cut_a()
        result = yield self._tell(pair.ca, "across a restart", client_msg_id="restart-1")
        self.assertEqual(result["status"], "queued")
        yield pair.ca.disconnect()
        yield self.loop.stop_gateway(pair.a)
        pair.router.refuse_startups = False
        received = pair.cb.event("tell_received")
        again = self.loop.gateway(A, [pair.router], state_dir=state_dir, router=FAST_LINK)
        self.assertEqual((yield received)["message"], "across a restart")
        yield gateway_sees(again, lambda: again.gateway.outbox.depth == 0, "the outbox drained")
        client = yield self.loop.tcp_client(again)
        # A retry across the restart is recognised: nothing is sent twice.
        retry = yield self._tell(client, "across a restart", client_msg_id="restart-1")
        self.assertEqual(retry, result)
        yield client.call("ping")
        self.assertEqual([t[7] for t in pair.received(A, "tell")], ["across a restart"])
        # Its fate is known to the key after the restart, by either id.
        for asked in ({"message_id": result["message_id"]}, {"client_msg_id": "restart-1"}):
            status = yield client.call("message_status", asked)
            self.assertEqual((status["message_id"], status["client_msg_id"], status["status"]),
                             (result["message_id"], "restart-1", "sent"))
            self.assertTrue(status["at"].endswith("Z"))

    @defer.inlineCallbacks
    def test_message_status_follows_a_queued_tell(self):
        pair = self.pair
        yield self._cut_a()
        result = yield self._tell(pair.ca, "watch me", client_msg_id="watched")
        status = yield pair.ca.call("message_status", {"message_id": result["message_id"]})
        self.assertEqual((status["status"], status["client_msg_id"]), ("queued", "watched"))
        sent = pair.ca.event("message_sent")
        pair.router.refuse_startups = False
        yield sent
        status = yield pair.ca.call("message_status", {"client_msg_id": "watched"})
        self.assertEqual(status["status"], "sent")
        direct = yield self._tell(pair.ca, "at once")
        status = yield pair.ca.call("message_status", {"message_id": direct["message_id"]})
        self.assertEqual(status["status"], "sent")
        for asked, field in (({"message_id": "q424242"}, "message_id"),
                             ({"client_msg_id": "never"}, "client_msg_id"), ({}, "message_id")):
            yield assert_rpc_error(self, pair.ca.call("message_status", asked), -32602, field=field)


class WaitsForRouter(I3Router):
    """A router that refuses every startup but ``first``'s until ``first`` is on."""

    def __init__(self, name, *, first, **kwargs):
        super().__init__(name, **kwargs)
        self.first = first

    def _refusal(self, conn, packet):
        if packet[2] != self.first and self.first not in self.connections:
            return f"waiting for {self.first}"
        return super()._refusal(conn, packet)


class PacingTests(TestCase):
    """CONFIG.md "Pacing": a burst stays under the router's flood control."""

    timeout = 20

    @defer.inlineCallbacks
    def test_burst_of_tells_is_paced_queued_and_delivered_in_order(self):
        loop = make_loop(self)
        paced = {"router": {"send_rate": 5}}
        pair = yield start_pair(loop, a=paced, b=paced, flood_control=True)
        # The handshake's startup-req-3 (weight 6) drained the bucket; the
        # burst starts once a tell may go at once.
        pacer = pair.a.gateway.link.pacer
        while not pacer.can_send("tell"):
            yield task.deferLater(reactor, pacer.next_opening("tell"), lambda: None)
        count = 30
        texts = [f"burst {n:02d}" for n in range(count)]
        results = yield defer.gatherResults([
            pair.ca.call("tell", {"target_mud": B, "target_user": "bob", "message": text})
            for text in texts])
        statuses = [r["status"] for r in results]
        first_queued = statuses.index("queued")
        self.assertGreater(first_queued, 0, statuses)
        self.assertEqual(set(statuses[first_queued:]), {"queued"}, statuses)
        queued_ids = {r["message_id"] for r in results if r["status"] == "queued"}
        yield pair.cb.inbox.wait_count("tell_received", count, timeout=10)
        delivered = [e["params"]["message"] for e in pair.cb.events
                     if e["method"] == "tell_received"]
        self.assertEqual(delivered, texts)
        self.assertEqual([t[7] for t in pair.received(A, "tell")], texts)
        sent = yield pair.ca.inbox.wait_count("message_sent", len(queued_ids))
        self.assertEqual({e["message_id"] for e in sent}, queued_ids)
        self.assertEqual(pair.router.flood_blocked, {})
        self.assertEqual(pair.router.rejected, [])
        self.assertEqual(pair.a.gateway.outbox.depth, 0)


    @defer.inlineCallbacks
    def test_queue_built_while_down_drains_paced_after_the_handshake(self):
        loop = make_loop(self)
        paced = {"router": {"send_rate": 5, **FAST_LINK}}
        pair = yield start_pair(loop, a=paced, b=paced, flood_control=True)
        yield pair.cb.call("channel_join", {"channel": "dchat"})
        yield pair.ca.call("channel_join", {"channel": "dchat"})
        pair.router.refuse_startups = True
        yield pair.router.drop(A)
        yield link_down(pair.a)
        texts = [f"backlog {n:02d}" for n in range(8)]
        for text in texts:
            result = yield pair.ca.call("tell", {"target_mud": B, "target_user": "bob",
                                                 "message": text})
            self.assertEqual(result["status"], "queued")
        pair.router.refuse_startups = False
        yield pair.cb.inbox.wait_count("tell_received", len(texts), timeout=10)
        self.assertEqual([e["params"]["message"] for e in pair.cb.events
                          if e["method"] == "tell_received"], texts)
        self.assertEqual(pair.router.flood_blocked, {})
        self.assertLessEqual({reason for _, reason, _ in pair.router.rejected},
                             {"refusing every startup"})
        self.assertEqual([p for m, p in pair.router.sent if m == A and p[0] == "error"], [])
        self.assertIn(A, pair.router.listening["dchat"])


class KillTests(TestCase):
    """API.md: the durable queue survives a kill of the gateway process."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = make_loop(self)
        self.router = self.loop.router()
        self.b = yield self.loop.ready_gateway(B, [self.router], state_dir(self.loop, B))
        self.cb = yield self.loop.tcp_client(self.b)
        self.tcp_port = free_port()
        config = {
            "mud": {"name": A},
            "routers": [{"name": self.router.name, "host": "127.0.0.1", "port": self.router.port}],
            "router": {"send_rate": 0, **FAST_LINK},
            "api": {"host": "127.0.0.1", "port": free_port(), "tcp": {"port": self.tcp_port},
                    "auth": {"api_keys": [{"key": API_KEY, "permissions": ["*"]}]}},
            "state": {"directory": state_dir(self.loop, A)},
        }
        self.config_path = Path(self.loop.root) / "muda.yaml"
        self.config_path.write_text(yaml.safe_dump(config))

    def spawn(self):
        """`twistd -n intermud3` for MudA; killed at cleanup if still alive."""
        return twistd_gateway(self, self.config_path, cwd=self.loop.root)

    @defer.inlineCallbacks
    def client(self):
        client = yield protocol.ClientCreator(reactor, JSONLineClient).connectTCP(
            "127.0.0.1", self.tcp_port)
        self.addCleanup(client.disconnect)
        yield client.welcomed
        yield client.call("authenticate", {"api_key": API_KEY})
        return client

    def tells_from_a(self):
        return [p[7] for m, p in self.router.received if m == A and p[0] == "tell"]

    @defer.inlineCallbacks
    def test_queued_tell_survives_kill_9(self):
        self.router.refuse_startups = True
        with output_on_failure(self.spawn()) as first:
            # The API listens before the link starts: a refused startup means
            # the process is up.
            yield self.router.wait_for(
                lambda r: any(who != B for who, _, _ in r.rejected), timeout=20)
            client = yield self.client()
            result = yield client.call("tell", {"target_mud": B, "target_user": "bob",
                                                "message": "survives kill -9"})
            self.assertEqual(result["status"], "queued")
            yield client.disconnect()
            first.transport.signalProcess("KILL")
            yield first.ended
            self.assertEqual(first.signal, signal.SIGKILL)

        self.router.refuse_startups = False
        received = self.cb.event("tell_received", timeout=20)
        with output_on_failure(self.spawn()) as second:
            self.assertEqual((yield received)["message"], "survives kill -9")
            client = yield self.client()
            after = self.cb.event("tell_received")
            yield client.call("tell", {"target_mud": B, "target_user": "bob", "message": "after"})
            yield after
            self.assertEqual(self.tells_from_a(), ["survives kill -9", "after"])
            yield client.disconnect()
            second.transport.signalProcess("TERM")
            self.assertEqual((yield second.ended), 0)
