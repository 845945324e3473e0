"""outbound.py's Outbox: sent vs queued, the durable queue, drain, expiry,
client_msg_id retries, restart, outcomes."""


from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3 import packets
from intermud3.outbound import DRAIN_BATCH
from intermud3.outbound.outcomes import OUTCOME_MARGIN, PURGE_INTERVAL
from intermud3.permissions import for_packet
from intermud3.services import failures
from tests.fakes import OUR_MUD, make_gateway, make_outbox, settled


def submit(outbox, kind, packet, session, **kwargs):
    """Outbox.submit of a packet, its Deferred (if any) resolved."""
    return settled(outbox.submit(kind, outbox.encode(packet, "message"), session, **kwargs))


def tell_packet(n=1):
    return packets.make("tell", OUR_MUD, "alice", "OtherMud", "bob", "Alice", f"message {n}")


class OutboxTests(SynchronousTestCase):
    def setUp(self):
        self.gw = make_gateway(self)
        self.outbox = self.gw.outbox = make_outbox(self.gw)
        self.addCleanup(self.outbox.stop)
        self.alice = self.gw.sessions.add()

    def gauge(self):
        return self.gw.metrics.registry.get_sample_value("intermud3_outbound_queue_depth")

    def test_sent_when_link_ready_and_queue_empty(self):
        result = submit(self.outbox, "tell", tell_packet(), self.alice)
        self.assertEqual(result["status"], "sent")
        self.assertIsInstance(result["message_id"], str)
        self.assertEqual(self.gw.link.sent, [tell_packet()])
        self.assertEqual(self.gw.state.queue_depth(), 0)

    def test_sent_ids_are_unique(self):
        ids = {submit(self.outbox, "tell", tell_packet(n), self.alice)["message_id"] for n in range(20)}
        self.assertEqual(len(ids), 20)

    def test_queued_when_link_down(self):
        self.gw.link.ready = False
        result = submit(self.outbox, "tell", tell_packet(), self.alice)
        self.assertEqual(result["status"], "queued")
        self.assertEqual(self.gw.link.sent, [])
        rows = self.gw.state.pending()
        self.assertEqual(len(rows), 1)
        self.assertEqual(result["message_id"], f"q{rows[0].id}")
        self.assertEqual(rows[0].packet, tell_packet())
        self.assertEqual(rows[0].kind, "tell")
        self.assertEqual(rows[0].owner, self.alice.id)
        self.assertEqual(rows[0].expires - rows[0].created, self.gw.config.router.queue.ttl)
        self.assertEqual(self.gauge(), 1)

    def test_queued_when_pacer_busy(self):
        self.gw.link.room = False
        result = submit(self.outbox, "tell", tell_packet(), self.alice)
        self.assertEqual(result["status"], "queued")
        self.assertEqual(self.gw.link.sent, [])

    def test_queued_behind_waiting_messages_even_if_link_could_write(self):
        self.gw.link.ready = False
        submit(self.outbox, "tell", tell_packet(1), self.alice)
        # Link ready again but the try_send of the first one is refused by
        # the pacer: the new message must wait behind it, not overtake it.
        self.gw.link.ready = True
        self.gw.link.room = False
        self.assertEqual(submit(self.outbox, "tell", tell_packet(2), self.alice)["status"], "queued")
        self.gw.link.room = True
        # Now the pacer has room: the old one goes out first, then the new one.
        self.assertEqual(submit(self.outbox, "tell", tell_packet(3), self.alice)["status"], "sent")
        self.assertEqual(self.gw.link.sent, [tell_packet(1), tell_packet(2), tell_packet(3)])

    def test_queue_full(self):
        self.gw.config = with_overrides(self.gw.config, {"router.queue.max_messages": 2})
        self.gw.link.ready = False
        submit(self.outbox, "tell", tell_packet(1), self.alice)
        submit(self.outbox, "tell", tell_packet(2), self.alice)
        with self.assertRaises(failures.Unavailable) as caught:
            submit(self.outbox, "tell", tell_packet(3), self.alice)
        self.assertEqual(caught.exception.reason, "queue_full")
        self.assertEqual(self.gw.state.queue_depth(), 2)

    def test_queue_disabled_link_down(self):
        self.gw.config = with_overrides(self.gw.config, {"router.queue.enabled": False})
        self.gw.link.ready = False
        with self.assertRaises(failures.Unavailable) as caught:
            submit(self.outbox, "tell", tell_packet(), self.alice)
        self.assertEqual(caught.exception.reason, "link_down")
        self.assertEqual(self.gw.state.queue_depth(), 0)

    def test_queue_disabled_pacer_busy_is_queue_full(self):
        self.gw.config = with_overrides(self.gw.config, {"router.queue.enabled": False})
        self.gw.link.room = False
        with self.assertRaises(failures.Unavailable) as caught:
            submit(self.outbox, "tell", tell_packet(), self.alice)
        self.assertEqual(caught.exception.reason, "queue_full")

    def test_queue_disabled_link_up_sends(self):
        self.gw.config = with_overrides(self.gw.config, {"router.queue.enabled": False})
        self.assertEqual(submit(self.outbox, "tell", tell_packet(), self.alice)["status"], "sent")

    def test_drain_on_ready_in_order_with_message_sent(self):
        self.gw.link.ready = False
        ids = [submit(self.outbox, "tell", tell_packet(n), self.alice)["message_id"] for n in range(3)]
        self.gw.link.set_state("ready")
        self.assertEqual(self.gw.link.sent, [tell_packet(0), tell_packet(1), tell_packet(2)])
        self.assertEqual(self.gw.state.queue_depth(), 0)
        self.assertEqual(self.alice.events("message_sent"),
                         [{"message_id": i, "method": "tell", "timestamp": p["timestamp"]}
                          for i, p in zip(ids, self.alice.events("message_sent"))])
        self.assertEqual([p["message_id"] for p in self.alice.events("message_sent")], ids)
        self.assertEqual(self.gauge(), 0)

    def test_drain_stops_when_pacer_full_and_resumes_on_writable(self):
        self.gw.link.ready = False
        for n in range(3):
            submit(self.outbox, "tell", tell_packet(n), self.alice)
        reserved = []

        def room_for_one(ptype, original=self.gw.link.reserve):
            if reserved:
                return False
            reserved.append(ptype)
            return original(ptype)
        self.gw.link.reserve = room_for_one
        self.gw.link.set_state("ready")
        self.assertEqual(self.gw.link.sent, [tell_packet(0)])
        self.assertEqual(self.gw.state.queue_depth(), 2)
        self.assertEqual(len(self.alice.events("message_sent")), 1)
        del self.gw.link.reserve      # back to the plain fake
        self.gw.link.go_writable()
        self.assertEqual(self.gw.link.sent, [tell_packet(0), tell_packet(1), tell_packet(2)])
        self.assertEqual(len(self.alice.events("message_sent")), 3)

    def test_message_sent_goes_only_to_owner(self):
        bob = self.gw.sessions.add()
        self.gw.link.ready = False
        submit(self.outbox, "tell", tell_packet(), self.alice)
        self.gw.link.set_state("ready")
        self.assertEqual(len(self.alice.events("message_sent")), 1)
        self.assertEqual(bob.events("message_sent"), [])

    def test_message_sent_to_permission_holders_when_owner_gone(self):
        tells = self.gw.sessions.add(permissions=["tell"])
        info = self.gw.sessions.add(permissions=["info"])
        admin = self.gw.sessions.add(permissions=["admin"])
        self.gw.link.ready = False
        submit(self.outbox, "tell", tell_packet(), self.alice)
        admin_packet = packets.make("channel-admin", OUR_MUD, 0, "*test", 0, "chat", ["Far"], [])
        submit(self.outbox, "channel_admin", admin_packet, self.alice)
        self.gw.sessions.end(self.alice)
        self.gw.link.set_state("ready")
        self.assertEqual([p["method"] for p in tells.events("message_sent")], ["tell"])
        self.assertEqual([p["method"] for p in admin.events("message_sent")], ["channel_admin"])
        self.assertEqual(info.events("message_sent"), [])

    def test_a_reloaded_configuration_is_used(self):
        new = with_overrides(self.gw.config, {"router.queue.ttl": 5})
        self.gw.config = new
        self.gw.link.ready = False
        submit(self.outbox, "tell", tell_packet(), self.alice)
        self.assertEqual(self.gw.state.pending()[0].expires - self.gw.state.pending()[0].created, 5)
        self.gw.config = with_overrides(new, {"router.queue.enabled": False})
        with self.assertRaises(failures.Unavailable):
            submit(self.outbox, "tell", tell_packet(2), self.alice)

    def test_permission_of_each_message_packet(self):
        # Who hears of a message whose session is gone: by its packet type.
        self.assertEqual(for_packet("tell"), "tell")
        self.assertEqual(for_packet("emoteto"), "tell")
        for ptype in ("channel-m", "channel-e", "channel-t"):
            self.assertEqual(for_packet(ptype), "channel")
        for ptype in ("channel-add", "channel-remove", "channel-admin"):
            self.assertEqual(for_packet(ptype), "admin")

    def test_expiry_by_timer(self):
        self.gw.link.ready = False
        first = submit(self.outbox, "tell", tell_packet(1), self.alice)["message_id"]
        self.gw.clock.advance(100)
        second = submit(self.outbox, "emoteto", tell_packet(2), self.alice)["message_id"]
        self.gw.clock.advance(199)
        self.assertEqual(self.alice.events("message_expired"), [])
        self.gw.clock.advance(1)
        expired = self.alice.events("message_expired")
        self.assertEqual([(p["message_id"], p["method"]) for p in expired], [(first, "tell")])
        self.assertEqual(self.gw.state.queue_depth(), 1)
        self.assertEqual(self.gauge(), 1)
        self.gw.clock.advance(100)
        expired = self.alice.events("message_expired")
        self.assertEqual([(p["message_id"], p["method"]) for p in expired],
                         [(first, "tell"), (second, "emoteto")])
        self.assertEqual(self.gw.state.queue_depth(), 0)
        self.assertEqual(self.gauge(), 0)
        self.assertEqual(self.gw.metrics.registry.get_sample_value("intermud3_outbound_expired_total"), 2)
        self.gw.link.set_state("ready")
        self.assertEqual(self.gw.link.sent, [])
        self.assertEqual(self.alice.events("message_sent"), [])
        # Nothing left but the periodic purge of old outcomes.
        self.assertEqual([c.func for c in self.gw.clock.getDelayedCalls()], [self.outbox.outcomes.purge])

    def test_rows_expired_during_downtime_are_not_sent_after_restart(self):
        self.gw.link.ready = False
        queued = submit(self.outbox, "tell", tell_packet(1), self.alice)["message_id"]
        self.outbox.stop()
        self.gw.store.close()
        gw2 = make_gateway(self, directory=self.gw.store.directory)
        gw2.clock.advance(301)          # the gateway was down past the TTL
        tells = gw2.sessions.add(permissions=["tell"])
        outbox2 = make_outbox(gw2)
        self.addCleanup(outbox2.stop)
        gw2.link.set_state("ready")             # handshake before the timer ran
        self.assertEqual(gw2.link.sent, [])
        self.assertEqual([p["message_id"] for p in tells.events("message_expired")], [queued])
        self.assertEqual(tells.events("message_sent"), [])
        gw2.clock.advance(1)
        self.assertEqual(len(tells.events("message_expired")), 1)

    def test_client_msg_id_repeat_returns_first_result_and_sends_nothing(self):
        first = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        again = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(first, again)
        self.assertEqual(len(self.gw.link.sent), 1)

    def test_client_msg_id_repeat_of_queued(self):
        self.gw.link.ready = False
        first = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        again = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(first, again)
        self.assertEqual(self.gw.state.queue_depth(), 1)
        self.assertEqual(self.gw.state.pending()[0].client_msg_id, "m-1")

    def test_client_msg_id_shared_by_sessions_of_one_key(self):
        other = self.gw.sessions.add(key_id="key0")
        first = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(submit(self.outbox, "tell", tell_packet(), other, client_msg_id="m-1"), first)
        self.assertEqual(len(self.gw.link.sent), 1)

    def test_client_msg_id_is_per_key(self):
        stranger = self.gw.sessions.add(key_id="key1")
        submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        submit(self.outbox, "tell", tell_packet(), stranger, client_msg_id="m-1")
        self.assertEqual(len(self.gw.link.sent), 2)

    def test_client_msg_id_forgotten_after_session_timeout(self):
        submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.gw.clock.advance(self.gw.config.api.session.timeout + 1)
        submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(len(self.gw.link.sent), 2)

    def test_client_msg_id_bounded(self):
        outbox = make_outbox(self.gw, max_remembered=2)
        self.addCleanup(outbox.stop)
        for n in range(3):
            submit(outbox, "tell", tell_packet(n), self.alice, client_msg_id=f"m-{n}")
        submit(outbox, "tell", tell_packet(0), self.alice, client_msg_id="m-0")   # forgotten
        submit(outbox, "tell", tell_packet(2), self.alice, client_msg_id="m-2")   # remembered
        self.assertEqual(len(self.gw.link.sent), 4)

    def test_failed_call_is_not_remembered(self):
        self.gw.config = with_overrides(self.gw.config, {"router.queue.enabled": False})
        self.gw.link.ready = False
        with self.assertRaises(failures.Unavailable):
            submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.gw.link.ready = True
        self.assertEqual(submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="m-1")["status"],
                         "sent")

    def test_restart_drains_rows_of_previous_process(self):
        self.gw.link.ready = False
        ids = [submit(self.outbox, "tell", tell_packet(n), self.alice)["message_id"] for n in range(2)]
        self.outbox.stop()
        self.gw.store.close()
        # A new process: new store over the same files, new sessions.
        gw2 = make_gateway(self, directory=self.gw.store.directory)
        tells = gw2.sessions.add(permissions=["tell"])
        outbox2 = make_outbox(gw2)
        self.addCleanup(outbox2.stop)
        self.assertEqual(gw2.state.queue_depth(), 2)
        gw2.link.ready = False
        gw2.link.set_state("ready")
        self.assertEqual(gw2.link.sent, [tell_packet(0), tell_packet(1)])
        self.assertEqual([p["message_id"] for p in tells.events("message_sent")], ids)
        self.assertEqual(gw2.state.queue_depth(), 0)

    def test_client_msg_id_of_queued_row_survives_restart(self):
        self.gw.link.ready = False
        first = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="keep-me")
        self.outbox.stop()
        self.gw.store.close()
        gw2 = make_gateway(self, directory=self.gw.store.directory)
        outbox2 = make_outbox(gw2)
        self.addCleanup(outbox2.stop)
        alice_again = gw2.sessions.add(key_id="key0")
        self.assertEqual(submit(outbox2, "tell", tell_packet(), alice_again, client_msg_id="keep-me"), first)
        self.assertEqual(gw2.state.queue_depth(), 1)
        gw2.link.set_state("ready")
        self.assertEqual(gw2.link.sent, [tell_packet()])
        self.assertEqual(submit(outbox2, "tell", tell_packet(), alice_again, client_msg_id="other")["status"],
                         "sent")

    def test_new_queued_ids_never_reuse_old_ones(self):
        self.gw.link.ready = False
        first = submit(self.outbox, "tell", tell_packet(1), self.alice)["message_id"]
        self.gw.link.set_state("ready")
        self.gw.link.ready = False
        second = submit(self.outbox, "tell", tell_packet(2), self.alice)["message_id"]
        self.assertNotEqual(first, second)

    def test_marked_sent_before_it_is_written(self):
        self.gw.link.ready = False
        submit(self.outbox, "tell", tell_packet(), self.alice)
        seen = []

        def write_and_look(out, original=self.gw.link.write_reserved):
            seen.append(self.gw.state.queue_depth())
            return original(out)
        self.gw.link.write_reserved = write_and_look
        self.gw.link.set_state("ready")
        self.assertEqual(seen, [0])     # a restart now could not send it again
        self.assertEqual(self.gw.state.queue_depth(), 0)
        self.gw.link.set_state("ready")      # a second handshake sends nothing again
        self.assertEqual(len(self.gw.link.sent), 1)


class DurabilityTests(SynchronousTestCase):
    """The queue's promises with the store's COMMITs held back or failing."""

    def setUp(self):
        self.gw = make_gateway(self)
        self.outbox = self.gw.outbox = make_outbox(self.gw)
        self.addCleanup(self.outbox.stop)
        self.alice = self.gw.sessions.add()
        self.writer = self.gw.store.writer

    def queue(self, n=1, **kwargs):
        return self.outbox.submit("tell", self.outbox.encode(tell_packet(n), "message"),
                                  self.alice, **kwargs)

    def test_queued_is_answered_only_after_the_commit(self):
        self.gw.link.ready = False
        self.writer.autorun = False
        d = self.queue()
        self.assertNoResult(d)
        self.assertEqual(self.gw.state.queue_depth(), 0)
        # A repeat waits for the same answer.
        again = self.queue(client_msg_id=None)
        repeat = self.queue(2, client_msg_id="c-1")
        repeat_again = self.queue(2, client_msg_id="c-1")
        self.writer.run_pending()
        first = self.successResultOf(d)
        self.assertEqual(first["status"], "queued")
        self.assertEqual(self.gw.state.queue_depth(), 3)
        self.assertEqual(self.successResultOf(repeat), self.successResultOf(repeat_again))
        self.assertNotEqual(self.successResultOf(again)["message_id"], first["message_id"])

    def test_store_failure_is_store_unavailable_and_nothing_is_queued(self):
        self.gw.link.ready = False
        self.gw.state.db.conn.execute(
            "CREATE TEMP TRIGGER full BEFORE INSERT ON outbound"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        failure = self.failureResultOf(self.queue(client_msg_id="c-1"), failures.StoreUnavailable)
        self.assertEqual(failure.value.reason, "store_unavailable")
        self.assertEqual(self.outbox.depth, 0)
        for n in range(3):
            self.failureResultOf(self.queue(n), failures.StoreUnavailable)
        # Counted each time, reported as one episode (and not ready meanwhile).
        self.assertEqual(self.gw.metrics.registry.get_sample_value(
            "intermud3_store_write_failures_total", {"kind": "queue"}), 4)
        self.assertEqual(self.gw.store.failing, {"queue"})
        self.flushLoggedErrors()
        # Nothing was remembered: once the store works the retry is accepted.
        self.gw.state.db.conn.execute("DROP TRIGGER full")
        self.assertEqual(self.successResultOf(self.queue(client_msg_id="c-1"))["status"], "queued")
        self.assertEqual(self.gw.store.failing, set())

    def test_link_lost_between_mark_and_write_puts_the_message_back(self):
        self.gw.link.ready = False
        self.successResultOf(self.queue())
        self.writer.autorun = False
        self.gw.link.set_state("ready")          # the drain marks it sent...
        self.gw.link.set_state("backoff")        # ...and the link drops before the COMMIT
        self.writer.run_pending()
        self.assertEqual(self.gw.link.sent, [])
        self.assertEqual(self.gw.state.queue_depth(), 1)   # the mark is undone
        self.assertEqual(self.outbox.depth, 1)
        self.writer.autorun = True
        self.gw.link.set_state("ready")
        self.assertEqual(self.gw.link.sent, [tell_packet()])
        self.assertEqual(self.gw.state.queue_depth(), 0)
        self.assertEqual(len(self.alice.events("message_sent")), 1)

    def test_not_expired_while_its_batch_is_being_marked(self):
        self.gw.link.ready = False
        self.successResultOf(self.queue())
        self.writer.autorun = False
        self.gw.link.set_state("ready")          # the drain marks it sent...
        ttl = self.gw.config.router.queue.ttl
        self.gw.clock.advance(ttl + 1)           # ...and its TTL passes before the COMMIT
        self.assertEqual(self.outbox.depth, 1)
        self.writer.run_pending()
        self.assertEqual(self.gw.link.sent, [tell_packet()])
        self.assertEqual(self.alice.events("message_expired"), [])

    def test_a_mark_undone_leaves_the_message_free_to_expire(self):
        self.gw.link.ready = False
        self.successResultOf(self.queue())
        self.writer.autorun = False
        self.gw.link.set_state("ready")
        self.gw.link.set_state("backoff")
        self.writer.run_pending()
        self.writer.autorun = True
        self.gw.clock.advance(self.gw.config.router.queue.ttl + 2)
        self.assertEqual(self.outbox.depth, 0)
        self.assertEqual(len(self.alice.events("message_expired")), 1)

    def test_mark_failure_sends_nothing_until_the_store_works(self):
        self.gw.link.ready = False
        self.successResultOf(self.queue())
        self.gw.state.db.conn.execute(
            "CREATE TEMP TRIGGER full BEFORE UPDATE ON outbound"
            " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        self.gw.link.set_state("ready")
        self.assertEqual(self.gw.link.sent, [])      # never written unmarked
        self.gw.state.db.conn.execute("DROP TRIGGER full")
        self.gw.clock.advance(1)
        self.assertEqual(self.gw.link.sent, [tell_packet()])
        self.assertEqual(self.gw.state.queue_depth(), 0)

    def test_restart_after_the_mark_never_sends_twice(self):
        self.gw.link.ready = False
        self.successResultOf(self.queue())
        self.writer.autorun = False
        self.gw.link.set_state("ready")
        self.writer.run_pending()       # marked, then "killed" before anything else
        self.outbox.stop()
        gw2 = make_gateway(self, directory=self.gw.store.directory)
        outbox2 = make_outbox(gw2)
        self.addCleanup(outbox2.stop)
        gw2.link.set_state("ready")
        self.assertEqual(gw2.link.sent, [])

    def test_a_long_queue_drains_linearly_in_bounded_batches(self):
        self.gw.link.ready = False
        for n in range(1000):
            self.successResultOf(self.queue(n))
        batches = self.writer.batches
        self.gw.link.set_state("ready")
        self.assertEqual(len(self.gw.link.sent), 1000)
        self.assertEqual(self.gw.link.sent[0], tell_packet(0))
        self.assertEqual(self.gw.link.sent[-1], tell_packet(999))
        # One store round trip per DRAIN_BATCH messages, not one per message.
        self.assertLessEqual(self.writer.batches - batches, 1000 // DRAIN_BATCH + 1)


class MessageStatusTests(SynchronousTestCase):
    def setUp(self):
        self.gw = make_gateway(self)
        self.outbox = self.gw.outbox = make_outbox(self.gw)
        self.addCleanup(self.outbox.stop)
        self.alice = self.gw.sessions.add(key_id="key0")
        self.stranger = self.gw.sessions.add(key_id="key1")

    def status(self, session=None, **asked):
        return self.successResultOf(self.outbox.status(session or self.alice, **asked))

    def test_sent_at_once(self):
        result = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="c-1")
        found = self.status(message_id=result["message_id"])
        self.assertEqual((found["status"], found["client_msg_id"]), ("sent", "c-1"))
        self.assertEqual(self.status(client_msg_id="c-1")["message_id"], result["message_id"])
        self.assertIsNone(self.status(self.stranger, message_id=result["message_id"]))

    def test_queued_then_sent_then_known_after_a_restart(self):
        self.gw.link.ready = False
        result = submit(self.outbox, "tell", tell_packet(), self.alice, client_msg_id="c-1")
        self.assertEqual(self.status(message_id=result["message_id"])["status"], "queued")
        self.gw.clock.advance(5)
        self.gw.link.set_state("ready")
        found = self.status(message_id=result["message_id"])
        self.assertEqual((found["status"], found["at"]), ("sent", self.gw.clock.seconds()))
        self.outbox.stop()
        gw2 = make_gateway(self, directory=self.gw.store.directory)
        outbox2 = make_outbox(gw2)
        self.addCleanup(outbox2.stop)
        again = gw2.sessions.add(key_id="key0")
        found = self.successResultOf(outbox2.status(again, client_msg_id="c-1"))
        self.assertEqual((found["message_id"], found["status"]), (result["message_id"], "sent"))
        other = gw2.sessions.add(key_id="key1")
        self.assertIsNone(self.successResultOf(outbox2.status(other, client_msg_id="c-1")))

    def test_expired(self):
        self.gw.link.ready = False
        result = submit(self.outbox, "tell", tell_packet(), self.alice)
        self.gw.clock.advance(self.gw.config.router.queue.ttl)
        self.assertEqual(self.status(message_id=result["message_id"])["status"], "expired")

    def test_outcomes_forgotten_after_ttl_plus_the_margin(self):
        self.gw.link.ready = False
        result = submit(self.outbox, "tell", tell_packet(), self.alice)
        self.gw.link.set_state("ready")
        keep = self.gw.config.router.queue.ttl + OUTCOME_MARGIN
        self.gw.clock.advance(keep + PURGE_INTERVAL)
        row_id = int(result["message_id"][1:])
        self.assertIsNone(self.gw.state.outcome(id=row_id))

    def test_unknown(self):
        self.assertIsNone(self.status(message_id="q999"))
        self.assertIsNone(self.status(message_id="nonsense"))
        self.assertIsNone(self.status(client_msg_id="never-sent"))
