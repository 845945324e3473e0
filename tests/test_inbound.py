"""InboundDispatcher: routing by type, echo dropping, unk-type answering rules."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import with_overrides
from intermud3 import packets
from intermud3.services.inbound import send_error
from tests.fakes import OUR_MUD, make_gateway


class DispatchTests(SynchronousTestCase):
    def setUp(self):
        self.gateway = make_gateway(self)
        self.link = self.gateway.link
        self.seen = []
        self.gateway.inbound.register("tell", self.seen.append)

    def test_dispatches_by_type_to_every_handler_in_order(self):
        other = []
        self.gateway.inbound.register("tell", lambda pk: other.append((len(self.seen), pk)))
        value = ["tell", 5, "ProbeA", "alice", OUR_MUD, "bob", "Alice", "hi"]
        self.link.receive(value)
        self.assertEqual([pk.value for pk in self.seen], [value])
        self.assertEqual(other, [(1, packets.Packet(value))])
        self.assertEqual(self.link.sent, [])

    def test_handler_exception_is_logged_and_others_still_run(self):
        def broken(packet):
            raise RuntimeError("boom")
        after = []
        self.gateway.inbound.register("who-req", broken)
        self.gateway.inbound.register("who-req", after.append)
        self.link.receive(["who-req", 5, "ProbeA", 0, OUR_MUD, 0])
        self.assertEqual(len(after), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        # The link's observer list never sees the exception.
        self.link.receive(["tell", 5, "ProbeA", "a", OUR_MUD, "b", "A", "x"])
        self.assertEqual(len(self.seen), 1)

    def test_unknown_type_to_us_gets_unk_type_carrying_it(self):
        value = ["no-such-type", 5, "ProbeA", "alice", OUR_MUD, 0, "x"]
        self.link.receive(value)
        self.assertEqual(self.link.sent, [
            ["error", 5, OUR_MUD, 0, "ProbeA", "alice", "unk-type",
             "Unknown packet type: no-such-type", value]])

    def test_target_mud_matched_case_insensitively(self):
        self.link.receive(["odd", 5, "ProbeA", 0, OUR_MUD.lower(), 0])
        self.assertEqual(len(self.link.sent), 1)
        self.assertEqual(self.link.sent[0][6], "unk-type")

    def test_never_answers_broadcast_error_router_or_other_target(self):
        for value in (
            ["odd", 5, "ProbeA", 0, 0, 0],                    # broadcast
            ["error", 5, "ProbeA", 0, OUR_MUD, 0, "x", "y", 0],  # an error
            ["odd", 5, "*test", 0, OUR_MUD, 0],               # from a router
            ["odd", 5, "ProbeA", 0, "SomeoneElse", 0],        # not for us
            ["odd", 5, 0, 0, OUR_MUD, 0],                     # nowhere to answer
        ):
            self.link.receive(value)
        self.assertEqual(self.link.sent, [])

    def test_send_error_refuses_broadcasts_errors_and_routers(self):
        # The rule holds for every service's error answers (unk-user too).
        for value in (
            ["finger-req", 5, "ProbeA", "alice", 0, 0, "nobody"],
            ["error", 5, "ProbeA", 0, OUR_MUD, 0, "x", "y", 0],
            ["finger-req", 5, "*test", 0, OUR_MUD, 0, "nobody"],
            ["finger-req", 5, "ProbeA", 0, "SomeoneElse", 0, "nobody"],
        ):
            self.assertFalse(send_error(self.link, OUR_MUD, packets.parse(value), "unk-user", "no"))
        self.assertEqual(self.link.sent, [])
        value = ["finger-req", 5, "ProbeA", "alice", OUR_MUD, 0, "nobody"]
        self.assertTrue(send_error(self.link, OUR_MUD, packets.parse(value), "unk-user", "no"))
        self.assertEqual(self.link.sent, [["error", 5, OUR_MUD, 0, "ProbeA", "alice", "unk-user", "no", value]])

    def test_unregistered_error_is_not_answered(self):
        gateway = make_gateway(self)  # nobody registered "error"
        gateway.link.receive(["error", 5, "ProbeA", 0, OUR_MUD, 0, "unk-type", "?", 0])
        self.assertEqual(gateway.link.sent, [])

    def test_link_handled_types_get_no_unk_type(self):
        for ptype in ("startup-reply", "mudlist", "chanlist-reply", "auth-mud-req", "auth-mud-reply"):
            self.link.receive([ptype, 5, "ProbeA", 0, OUR_MUD, 0, 0, 0])
        self.assertEqual(self.link.sent, [])

    def test_our_own_broadcast_echo_is_dropped(self):
        locates = []
        self.gateway.inbound.register("locate-req", locates.append)
        self.link.receive(["locate-req", 5, OUR_MUD, "alice", 0, 0, "bob"])
        self.link.receive(["odd", 5, OUR_MUD, 0, 0, 0])
        self.assertEqual(locates, [])
        self.assertEqual(self.link.sent, [])
        # Another MUD's broadcast does get through.
        self.link.receive(["locate-req", 5, "ProbeA", "alice", 0, 0, "bob"])
        self.assertEqual(len(locates), 1)

    def test_unwritable_offending_packet_is_replaced_by_zero(self):
        # A lenient reader takes ints beyond 32 bits and 1e999; the strict
        # writer refuses them, so the error goes out without the packet,
        # and a junk originator user is answered as the MUD itself (0).
        for value in (["odd", 5, "ProbeA", "alice", OUR_MUD, 0, 2 ** 40],
                      ["odd", 5, "ProbeA", float("inf"), OUR_MUD, 0]):
            self.link.sent.clear()
            self.link.receive(value)
            self.assertEqual(self.link.sent, [
                ["error", 5, OUR_MUD, 0, "ProbeA", value[3] if value[3] == "alice" else 0,
                 "unk-type", "Unknown packet type: odd", 0]])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_oversized_offending_packet_is_replaced_by_zero(self):
        self.gateway.config = with_overrides(self.gateway.config, {"router.max_send_bytes": 200})
        value = ["odd", 5, "ProbeA", 0, OUR_MUD, 0, "x" * 500]
        self.link.receive(value)
        self.assertEqual(self.link.sent, [
            ["error", 5, OUR_MUD, 0, "ProbeA", 0, "unk-type", "Unknown packet type: odd", 0]])
