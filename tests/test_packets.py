"""Packet tables, building and reading (I3-PROTOCOL.md section 3)."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3 import packets
from intermud3.packets import FIELDS, TTL, Packet, PacketError, make, parse, weight
from tests.vectors import load_vectors

ALL_TYPES = [
    "startup-req-3", "startup-reply", "mudlist", "chanlist-reply", "shutdown",
    "error", "tell", "emoteto", "who-req", "who-reply", "finger-req",
    "finger-reply", "locate-req", "locate-reply", "channel-m", "channel-e",
    "channel-t", "channel-listen", "channel-add", "channel-remove",
    "channel-admin", "chan-who-req", "chan-who-reply", "chan-user-req",
    "chan-user-reply", "ucache-update", "auth-mud-req", "auth-mud-reply",
    "chan-filter-req", "chan-filter-reply",
]


class FieldTableTests(SynchronousTestCase):
    """FIELDS is the one field table: it follows the protocol and real packets."""

    def test_every_protocol_packet_type_has_fields(self):
        self.assertEqual(sorted(FIELDS), sorted(ALL_TYPES))
        for ptype, names in FIELDS.items():
            self.assertEqual(len(set(names)), len(names), ptype)

    def test_field_counts_follow_the_protocol(self):
        self.assertEqual(TTL, 5)
        self.assertEqual(6 + len(FIELDS["startup-req-3"]), 20)
        self.assertEqual(FIELDS["startup-req-3"][0], "password")
        self.assertEqual(FIELDS["startup-req-3"][-2:], ("services", "other_data"))
        self.assertEqual(FIELDS["who-req"], ())
        self.assertEqual(FIELDS["auth-mud-req"], ())
        self.assertEqual(len(FIELDS["finger-reply"]), 9)
        self.assertEqual(len(FIELDS["channel-t"]), 7)
        self.assertEqual(FIELDS["error"][:2], ("error_code", "error_message"))

    def test_real_packets_have_exactly_the_fields_in_the_table(self):
        seen = set()
        for v in load_vectors():
            packet = parse(v.decoded)
            if packet.type in FIELDS:
                seen.add(packet.type)
                self.assertEqual(len(packet.fields), len(FIELDS[packet.type]), f"line {v.line} {packet.type}")
        self.assertLessEqual({"startup-req-3", "startup-reply", "mudlist", "chanlist-reply", "error",
                              "tell", "channel-m", "who-reply", "locate-reply", "auth-mud-reply"}, seen)

    def test_header_names(self):
        self.assertEqual(packets.HEADER, ("type", "ttl", "o_mud", "o_user", "t_mud", "t_user"))


class MakeTests(SynchronousTestCase):
    def test_make_reproduces_the_packets_the_router_accepted(self):
        for v in load_vectors():
            if v.dir == "to-router" and v.decoded[0] in FIELDS:
                ptype, ttl, o_mud, o_user, t_mud, t_user, *fields = v.decoded
                self.assertEqual(ttl, TTL, f"line {v.line}")
                self.assertEqual(make(ptype, o_mud, o_user, t_mud, t_user, *fields), v.decoded, f"line {v.line}")

    def test_make_writes_the_header_and_none_as_zero(self):
        self.assertEqual(make("tell", "A", "alice", "B", "bob", "Alice", "hi"),
                         ["tell", 5, "A", "alice", "B", "bob", "Alice", "hi"])
        self.assertEqual(make("locate-req", "A", "alice", None, None, "bob"),
                         ["locate-req", 5, "A", "alice", 0, 0, "bob"])
        self.assertEqual(
            make("finger-reply", "A", 0, "B", "x", "X", None, None, None, None, -1, None, None, None),
            ["finger-reply", 5, "A", 0, "B", "x", "X", 0, 0, 0, 0, -1, 0, 0, 0])

    def test_make_refuses_the_wrong_field_count_for_a_known_type(self):
        with self.assertRaisesRegex(PacketError, "tell takes 2 fields"):
            make("tell", "A", "alice", "B", "bob", "hi")
        with self.assertRaises(PacketError):
            make("who-req", "A", "alice", "B", 0, "extra")
        self.assertTrue(issubclass(PacketError, ValueError))

    def test_make_passes_unknown_types_through(self):
        self.assertEqual(make("chanlist-req", "A", 0, "*test", 0), ["chanlist-req", 5, "A", 0, "*test", 0])


class ParseTests(SynchronousTestCase):
    def test_parse_exposes_header_fields_and_names(self):
        value = ["locate-reply", 5, "B", 0, "A", "alice", "B", "Bob", 42, 0]
        packet = parse(value)
        self.assertIsInstance(packet, Packet)
        self.assertEqual(
            (packet.type, packet.ttl, packet.o_mud, packet.o_user, packet.t_mud, packet.t_user),
            ("locate-reply", 5, "B", 0, "A", "alice"))
        self.assertEqual(packet.fields, ["B", "Bob", 42, 0])
        self.assertIs(packet.value, value)
        self.assertEqual(packet.get("located_visname"), "Bob")
        self.assertEqual(packet.get("idle"), 42)
        self.assertEqual(packet.get("status"), 0)
        self.assertEqual(packet.get("no_such_field"), 0)
        self.assertIsNone(packet.get("no_such_field", None))

    def test_get_gives_the_default_for_short_packets_and_unknown_types(self):
        short = parse(["tell", 5, "A", "alice", "B", "bob", "Alice"])
        self.assertEqual(short.get("orig_visname"), "Alice")
        self.assertEqual(short.get("message"), 0)
        self.assertEqual(short.get("message", ""), "")
        odd = parse(["no-such-type", 5, "A", 0, "B", 0, "x"])
        self.assertEqual(odd.get("message", "none"), "none")
        self.assertEqual(odd.fields, ["x"])

    def test_parse_accepts_a_tuple(self):
        self.assertEqual(parse(("who-req", 5, "A", "a", "B", 0)).value, ["who-req", 5, "A", "a", "B", 0])

    def test_parse_refuses_what_is_not_a_packet(self):
        for value in (0, "tell", {"type": "tell"}, None,
                      [], ["tell", 5, "A", 0, "B"],
                      [0, 5, "A", 0, "B", 0], ["", 5, "A", 0, "B", 0], [["tell"], 5, "A", 0, "B", 0]):
            with self.assertRaises(PacketError, msg=repr(value)):
                parse(value)

    def test_packets_compare_by_value(self):
        self.assertEqual(parse(["x", 5, 0, 0, 0, 0]), parse(["x", 5, 0, 0, 0, 0]))
        self.assertNotEqual(parse(["x", 5, 0, 0, 0, 0]), parse(["y", 5, 0, 0, 0, 0]))
        self.assertIn("tell", repr(parse(["tell", 5, 0, 0, 0, 0])))


class WeightTests(SynchronousTestCase):
    def test_weight_follows_router_flood_control(self):
        self.assertEqual(weight("startup-req-3"), 6)
        self.assertEqual(weight("channel-listen"), 0)
        self.assertEqual(weight("tell"), 1)
        self.assertEqual(weight("auth-mud-req"), 1)
        self.assertEqual(weight("something-new"), 1)


class FieldTypeTests(SynchronousTestCase):
    """Replies built from presence carry each field as I3 types it."""

    def test_every_typed_reply_has_one_type_per_field(self):
        for ptype, kinds in packets.FIELD_TYPES.items():
            self.assertEqual(len(kinds), len(FIELDS[ptype]), ptype)

    def test_missing_values_are_empty_by_type(self):
        self.assertEqual(packets.typed_fields("finger-reply", *[None] * 9),
                         ["", "", "", "", "", 0, "", "", ""])
        self.assertEqual(packets.typed_fields("locate-reply", "M", "Bob", None, None),
                         ["M", "Bob", 0, ""])
        self.assertEqual(packets.typed_fields("chan-user-reply", "bob", None, None), ["bob", "", 0])

    def test_who_entries_are_typed_one_by_one(self):
        self.assertEqual(packets.typed_fields("who-reply", [["Carol", 0, None], ["Bob"], "junk"]),
                         [[["Carol", 0, ""], ["Bob", 0, ""], ["", 0, ""]]])
        self.assertEqual(packets.typed_fields("chan-who-reply", "dchat", ["Bob", None]),
                         ["dchat", ["Bob", ""]])

    def test_ints_in_string_fields_are_written_out_and_junk_is_empty(self):
        fields = packets.typed_fields("finger-reply", "Bob", 0, "", None, "Mon", "12", None, 20, True)
        self.assertEqual(fields, ["Bob", "0", "", "", "Mon", 0, "", "20", ""])

    def test_wrong_field_count_is_refused(self):
        with self.assertRaises(PacketError):
            packets.typed_fields("locate-reply", "M")
