"""Packet tables, building and reading (I3-PROTOCOL.md section 3)."""

import pytest
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


def test_every_protocol_packet_type_has_fields():
    assert sorted(FIELDS) == sorted(ALL_TYPES)
    for names in FIELDS.values():
        assert len(set(names)) == len(names)


def test_field_counts_follow_the_protocol():
    assert TTL == 5
    assert 6 + len(FIELDS["startup-req-3"]) == 20
    assert FIELDS["startup-req-3"][0] == "password"
    assert FIELDS["startup-req-3"][-2:] == ("services", "other_data")
    assert FIELDS["who-req"] == () and FIELDS["auth-mud-req"] == ()
    assert len(FIELDS["finger-reply"]) == 9
    assert len(FIELDS["channel-t"]) == 7
    assert FIELDS["error"][:2] == ("error_code", "error_message")


def test_real_packets_have_exactly_the_fields_in_the_table():
    seen = set()
    for v in load_vectors():
        packet = parse(v.decoded)
        if packet.type in FIELDS:
            seen.add(packet.type)
            assert len(packet.fields) == len(FIELDS[packet.type]), f"line {v.line} {packet.type}"
    assert {"startup-req-3", "startup-reply", "mudlist", "chanlist-reply", "error",
            "tell", "channel-m", "who-reply", "locate-reply", "auth-mud-reply"} <= seen


def test_make_reproduces_the_packets_the_router_accepted():
    for v in load_vectors():
        if v.dir == "to-router" and v.decoded[0] in FIELDS:
            ptype, ttl, o_mud, o_user, t_mud, t_user, *fields = v.decoded
            assert ttl == TTL
            assert make(ptype, o_mud, o_user, t_mud, t_user, *fields) == v.decoded


def test_make_writes_the_header_and_none_as_zero():
    assert make("tell", "A", "alice", "B", "bob", "Alice", "hi") == [
        "tell", 5, "A", "alice", "B", "bob", "Alice", "hi"]
    assert make("locate-req", "A", "alice", None, None, "bob") == [
        "locate-req", 5, "A", "alice", 0, 0, "bob"]
    assert make("finger-reply", "A", 0, "B", "x", "X", None, None, None, None, -1, None, None, None) == [
        "finger-reply", 5, "A", 0, "B", "x", "X", 0, 0, 0, 0, -1, 0, 0, 0]


def test_make_refuses_the_wrong_field_count_for_a_known_type():
    with pytest.raises(PacketError, match="tell takes 2 fields"):
        make("tell", "A", "alice", "B", "bob", "hi")
    with pytest.raises(PacketError):
        make("who-req", "A", "alice", "B", 0, "extra")
    assert issubclass(PacketError, ValueError)


def test_make_passes_unknown_types_through():
    assert make("chanlist-req", "A", 0, "*test", 0) == ["chanlist-req", 5, "A", 0, "*test", 0]


def test_parse_exposes_header_fields_and_names():
    value = ["locate-reply", 5, "B", 0, "A", "alice", "B", "Bob", 42, 0]
    packet = parse(value)
    assert isinstance(packet, Packet)
    assert (packet.type, packet.ttl, packet.o_mud, packet.o_user, packet.t_mud, packet.t_user) == (
        "locate-reply", 5, "B", 0, "A", "alice")
    assert packet.fields == ["B", "Bob", 42, 0]
    assert packet.value is value
    assert packet.get("located_visname") == "Bob"
    assert packet.get("idle") == 42
    assert packet.get("status") == 0
    assert packet.get("no_such_field") == 0
    assert packet.get("no_such_field", None) is None


def test_get_gives_the_default_for_short_packets_and_unknown_types():
    short = parse(["tell", 5, "A", "alice", "B", "bob", "Alice"])
    assert short.get("orig_visname") == "Alice"
    assert short.get("message") == 0
    assert short.get("message", "") == ""
    odd = parse(["no-such-type", 5, "A", 0, "B", 0, "x"])
    assert odd.get("message", "none") == "none"
    assert odd.fields == ["x"]


def test_parse_accepts_a_tuple():
    assert parse(("who-req", 5, "A", "a", "B", 0)).value == ["who-req", 5, "A", "a", "B", 0]


@pytest.mark.parametrize("value", [
    0, "tell", {"type": "tell"}, None,
    [], ["tell", 5, "A", 0, "B"],
    [0, 5, "A", 0, "B", 0], ["", 5, "A", 0, "B", 0], [["tell"], 5, "A", 0, "B", 0],
])
def test_parse_refuses_what_is_not_a_packet(value):
    with pytest.raises(PacketError):
        parse(value)


def test_packets_compare_by_value():
    assert parse(["x", 5, 0, 0, 0, 0]) == parse(["x", 5, 0, 0, 0, 0])
    assert parse(["x", 5, 0, 0, 0, 0]) != parse(["y", 5, 0, 0, 0, 0])
    assert "tell" in repr(parse(["tell", 5, 0, 0, 0, 0]))


def test_weight_follows_router_flood_control():
    assert weight("startup-req-3") == 6
    assert weight("channel-listen") == 0
    assert weight("tell") == 1
    assert weight("auth-mud-req") == 1
    assert weight("something-new") == 1


def test_header_names():
    assert packets.HEADER == ("type", "ttl", "o_mud", "o_user", "t_mud", "t_user")


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
