"""The in-repo test router behaves like a real Dead Souls router.

Raw MudMode clients on loopback talk to ``I3Router``; where the captured
frames in ``tests/data/`` show what a real router does, the test
replays the client's bytes and compares the router's answer with them.
"""

import struct

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.testing import MemoryReactor, StringTransport
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial import unittest

from intermud3 import lpc
from intermud3.mudmode import frame
from intermud3.testing import router_tap as tap
from intermud3.testing.router import I3Router
from intermud3.testing.strict_lpc import is_strict_lpc, strict_problem
from tests.vectors import load_records

WAIT = 3.0  # seconds of real time before a test gives up on a frame


# The captured frames as raw JSON records (tests/data/README.md).
VECTORS = [record for _line, record in load_records()]


def vector(conn, direction, ptype, note=None):
    """The whole frame (bytes) of the first vector that matches."""
    for item in VECTORS:
        if (item["conn"] == conn and item["dir"] == direction and item["decoded"][0] == ptype
                and (note is None or item["note"] == note)):
            return bytes.fromhex(item["hex"])
    raise AssertionError(f"no vector {conn} {direction} {ptype} {note}")


def startup(name, password=0, services=None, router="*test", old_mudlist_id=0):
    if services is None:
        services = {"tell": 1, "channel": 1, "who": 1, "locate": 1, "emoteto": 1}
    return ["startup-req-3", 5, name, 0, router, 0, password, old_mudlist_id, 0, 4000, 0, 0,
            "GatewayLib 0.1", "GatewayLib", "Twisted", "Other", "beta testing",
            "admin@example.org", services, 0]


class RawClient(Int32StringReceiver):
    """A bare MudMode peer: writes what it is told, keeps every frame."""

    MAX_LENGTH = 8 * 1024 * 1024

    def __init__(self):
        self.frames = []    # raw frame bodies, NUL included
        self.packets = []   # decoded
        self.lost = defer.Deferred()
        self._waiters = []

    def stringReceived(self, string):
        self.frames.append(string)
        self.packets.append(lpc.decode(string))
        self._check()

    def connectionLost(self, reason):
        self.lost.callback(None)
        self._check()

    def send(self, packet):
        self.transport.write(frame(packet))

    def send_text(self, text):
        self.sendString(text + b"\x00")

    def of_type(self, ptype):
        return [p for p in self.packets if p[0] == ptype]

    def when(self, predicate, timeout=WAIT):
        d = defer.Deferred()
        entry = [predicate, d, reactor.callLater(timeout, self._expire, predicate, d)]
        self._waiters.append(entry)
        self._check()
        return d

    def _expire(self, predicate, d):
        self._waiters = [e for e in self._waiters if e[1] is not d]
        d.errback(defer.TimeoutError(f"client never saw it; got {[p[0] for p in self.packets]}"))

    def _check(self):
        for entry in list(self._waiters):
            if entry[0](self):
                self._waiters.remove(entry)
                entry[2].cancel()
                entry[1].callback(self)

    def count(self, n):
        return self.when(lambda c: len(c.packets) >= n)

    def got(self, ptype, n=1):
        return self.when(lambda c: len(c.of_type(ptype)) >= n)


class RouterTestCase(unittest.TestCase):
    def setUp(self):
        self.router = self.make_router()
        self.router.listen(reactor)
        self.addCleanup(self.router.shutdown)

    def make_router(self):
        return I3Router("*test")

    @defer.inlineCallbacks
    def connect(self):
        client = RawClient()
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.router.port)
        yield connectProtocol(endpoint, client)
        self.addCleanup(self._close, client)
        return client

    def _close(self, client):
        if client.transport.connected:
            client.transport.loseConnection()
        return client.lost

    @defer.inlineCallbacks
    def started(self, name, **kwargs):
        """A client that has done a startup and read the whole answer."""
        client = yield self.connect()
        client.send(startup(name, **kwargs))
        yield self.router.wait_for(lambda r: name in r.connections)
        # The last packet of the answer is the MUD's own mudlist entry to itself.
        yield client.when(lambda c: any(p[0] == "mudlist" and p[4] == name and name in p[7]
                                        and p[6] > c.packets[1][6] for p in c.packets[2:]))
        return client

    def sent_to(self, conn):
        return [p for mud, p in self.router.sent if self.router.connections.get(mud) is conn]


class StartupTests(RouterTestCase):

    @defer.inlineCallbacks
    def test_vector_startup_gets_reply_password_mudlist_chanlist(self):
        client = yield self.connect()
        client.transport.write(vector("ProbeA", "to-router", "startup-req-3", "startup"))
        yield client.count(5)
        types = [p[0] for p in client.packets]
        self.assertEqual(types, ["startup-reply", "mudlist", "chanlist-reply", "mudlist", "mudlist"])
        reply = client.packets[0]
        self.assertEqual(reply[:6], ["startup-reply", 5, "*test", 0, "ProbeA", 0])
        self.assertEqual(reply[6], [["*test", f"127.0.0.1 {self.router.port}"]])
        self.assertTrue(100000000 <= reply[7] <= 999999999, reply[7])
        self.assertEqual(self.router.passwords["ProbeA"], reply[7])
        targeted, chanlist, chunk, own = client.packets[1:]
        self.assertEqual(targeted[4], "ProbeA")
        self.assertEqual(targeted[7]["ProbeA"][0], -1)
        self.assertEqual(len(targeted[7]["ProbeA"]), 13)
        self.assertEqual(chanlist[6], self.router.chanlist_id)
        self.assertEqual(chanlist[7]["dead_test4"], ["Frontiers", 0])
        self.assertEqual(chunk[4], 0)           # the full list goes out addressed to 0
        self.assertEqual(own[4], "ProbeA")
        self.assertGreater(own[6], targeted[6])  # a new id for the MUD's own entry
        # Every frame the router writes is one a FluffOS reader accepts.
        for body in client.frames:
            self.assertIsNone(strict_problem(body))

    @defer.inlineCallbacks
    def test_mudlist_split_and_others_told(self):
        a = yield self.started("ProbeA")
        b = yield self.connect()
        b.send(startup("ProbeB"))
        yield b.count(6)
        chunks = [p for p in b.packets if p[0] == "mudlist" and p[4] == 0]
        self.assertEqual(sorted(name for p in chunks for name in p[7]), ["ProbeA", "ProbeB"])
        self.assertTrue(all(len(p[7]) == 1 for p in chunks))
        yield a.when(lambda c: any(p[0] == "mudlist" and "ProbeB" in p[7] for p in c.packets))
        delta = [p for p in a.packets if p[0] == "mudlist" and "ProbeB" in p[7]][0]
        self.assertEqual(delta[4], "ProbeA")
        self.assertEqual(delta[7]["ProbeB"][0], -1)

    @defer.inlineCallbacks
    def test_no_chanlist_without_channel_service(self):
        client = yield self.connect()
        client.send(startup("Quiet", services={"tell": 1}))
        yield self.router.wait_for(lambda r: "Quiet" in r.connections)
        yield client.count(4)
        self.assertEqual(client.of_type("chanlist-reply"), [])

    @defer.inlineCallbacks
    def assertNoAnswer(self, text, reason_part):
        client = yield self.connect()
        before = len(self.router.rejected)
        client.send_text(text)
        yield self.router.wait_for(lambda r: len(r.rejected) > before)
        who, reason, raw = self.router.rejected[-1]
        self.assertIn(reason_part, reason)
        self.assertEqual(self.router.sent, [])
        self.assertEqual(self.router.connections, {})
        self.assertEqual(client.frames, [])

    def test_startup_with_19_fields_is_not_answered(self):
        return self.assertNoAnswer(lpc.encode(startup("Bad")[:-1]), "19 elements")

    def test_startup_with_string_password_is_not_answered(self):
        packet = startup("Bad")
        packet[6] = "123"
        return self.assertNoAnswer(lpc.encode(packet), "element 6 is not an int")

    def test_startup_with_string_port_is_not_answered(self):
        packet = startup("Bad")
        packet[9] = "4000"
        return self.assertNoAnswer(lpc.encode(packet), "element 9")

    def test_startup_with_whitespace_is_not_answered(self):
        text = lpc.encode(startup("Bad")).replace(b',"Bad",', b', "Bad",')
        return self.assertNoAnswer(text, "not strict LPC")

    def test_startup_without_trailing_comma_is_not_answered(self):
        text = lpc.encode(startup("Bad"))
        self.assertTrue(text.endswith(b",0,})"))
        return self.assertNoAnswer(text[:-3] + b"})", "not strict LPC")

    def test_startup_with_array_services_is_not_answered(self):
        packet = startup("Bad")
        packet[18] = ["tell"]
        return self.assertNoAnswer(lpc.encode(packet), "services")

    def test_startup_to_another_router_is_not_answered(self):
        return self.assertNoAnswer(lpc.encode(startup("Bad", router="*i4")), "addressed to")

    def test_refuse_startups_stays_silent(self):
        self.router.refuse_startups = True
        return self.assertNoAnswer(lpc.encode(startup("Good")), "refusing")

    @defer.inlineCallbacks
    def test_password_on_reconnect(self):
        first = yield self.started("ProbeA")
        password = first.packets[0][7]
        yield self.router.drop("ProbeA")
        yield first.lost
        self.assertEqual(self.router.muds["ProbeA"][0], 0)

        wrong = yield self.connect()
        wrong.send(startup("ProbeA", password=password + 1 if password < 999999999 else 100000000))
        yield self.router.wait_for(lambda r: r.rejected and r.rejected[-1][1] == "wrong password")
        self.assertEqual(wrong.frames, [])
        self.assertNotIn("ProbeA", self.router.connections)

        right = yield self.connect()
        right.send(startup("ProbeA", password=password))
        yield right.got("startup-reply")
        self.assertEqual(right.packets[0][7], password)

    @defer.inlineCallbacks
    def test_vector_reconnect_with_password(self):
        # The captured reconnect carries ProbeA's password from that session.
        body = vector("ProbeA", "to-router", "startup-req-3", "startup")
        known = [v for v in VECTORS if v["decoded"][0] == "startup-req-3" and v["decoded"][6]][0]
        self.router.passwords["ProbeA"] = known["decoded"][6]
        client = yield self.connect()
        client.transport.write(bytes.fromhex(known["hex"]))
        yield client.got("startup-reply")
        self.assertEqual(client.packets[0][7], known["decoded"][6])
        self.assertTrue(body)

    @defer.inlineCallbacks
    def test_router_list_override(self):
        self.router.router_list = [["*other", "10.0.0.1 8080"], ["*test", "127.0.0.1 1"]]
        client = yield self.connect()
        client.send(startup("ProbeA"))
        yield client.got("startup-reply")
        self.assertEqual(client.packets[0][6][0], ["*other", "10.0.0.1 8080"])

    @defer.inlineCallbacks
    def test_packets_before_startup_are_dropped(self):
        client = yield self.connect()
        client.send(["tell", 5, "ProbeA", "alice", "ProbeB", "bob", "Alice", "hi"])
        yield self.router.wait_for(lambda r: r.rejected)
        self.assertIn("before startup", self.router.rejected[0][1])
        self.assertEqual(self.router.received, [])


class RoutingTests(RouterTestCase):

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.a = yield self.started("ProbeA")
        self.b = yield self.started("ProbeB")
        # A hears of B's arrival; after that both links are quiet.
        yield self.a.when(lambda c: any(p[0] == "mudlist" and "ProbeB" in p[7] for p in c.packets))
        self.a.packets.clear()
        self.a.frames.clear()
        self.b.packets.clear()
        self.b.frames.clear()

    @defer.inlineCallbacks
    def listen_both(self, channel="dchat"):
        self.a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, channel, 1])
        self.b.send(["channel-listen", 5, "ProbeB", 0, "*test", 0, channel, 1])
        yield self.router.wait_for(lambda r: r.listening.get(channel) == {"ProbeA", "ProbeB"})

    @defer.inlineCallbacks
    def test_vector_channel_m_and_e_echo_to_sender_and_listener(self):
        yield self.listen_both()
        self.a.transport.write(vector("ProbeA", "to-router", "channel-m"))
        self.a.transport.write(vector("ProbeA", "to-router", "channel-e"))
        yield self.a.count(2)
        yield self.b.count(2)
        expected = [vector("ProbeA", "from-router", "channel-m")[4:],
                    vector("ProbeA", "from-router", "channel-e")[4:]]
        # Byte for byte what the real router wrote, CR newline included.
        self.assertEqual(self.a.frames, expected)
        self.assertEqual(self.b.frames, expected)
        self.assertEqual(self.a.packets[0][8], 'Hi "all" \\o/\nnew line, café')

    @defer.inlineCallbacks
    def test_channel_message_reaches_listeners_only(self):
        c = yield self.started("ProbeC")
        c.packets.clear()
        yield self.listen_both()
        self.a.send(["channel-m", 5, "ProbeA", "alice", 0, 0, "dchat", "Alice", "hi"])
        yield self.b.got("channel-m")
        yield self.a.got("channel-m")
        self.assertEqual(c.of_type("channel-m"), [])

    @defer.inlineCallbacks
    def test_channel_emote_without_sender_gets_from_suffix(self):
        yield self.listen_both()
        self.a.send(["channel-e", 5, "ProbeA", "alice", 0, 0, "dchat", "Alice", "waves"])
        yield self.b.got("channel-e")
        self.assertEqual(self.b.packets[0][8], "waves (from alice@ProbeA)")

    @defer.inlineCallbacks
    def test_channel_message_while_not_listening_warns_and_listens(self):
        self.a.send(["channel-m", 5, "ProbeA", "alice", 0, 0, "dchat", "Alice", "hi"])
        yield self.a.got("error")
        self.assertEqual(self.a.packets[0][6], "warning")
        self.assertIn("ProbeA", self.router.listening["dchat"])
        self.assertEqual(self.b.of_type("channel-m"), [])

    @defer.inlineCallbacks
    def test_channel_listen_with_string_flag_is_dropped(self):
        self.a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "dchat", "1"])
        yield self.router.wait_for(lambda r: r.rejected)
        self.assertIn("int flag", self.router.rejected[-1][1])
        self.assertFalse(self.router.listening.get("dchat"))

    @defer.inlineCallbacks
    def test_channel_listen_to_unknown_channel(self):
        self.a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "nosuch", 1])
        yield self.a.got("error")
        self.assertEqual(self.a.packets[0][6:8], ["unk-channel", "Unknown channel: nosuch"])

    @defer.inlineCallbacks
    def test_channel_add_and_remove(self):
        self.a.send(["channel-add", 5, "ProbeA", "admin", "*test", 0, "newchan", 0])
        yield self.b.got("chanlist-reply")
        yield self.a.got("chanlist-reply")
        listing = self.b.of_type("chanlist-reply")[0][7]
        self.assertEqual(listing["newchan"], ["ProbeA", []])  # the real router's quirk
        self.assertEqual(self.router.channels["newchan"].owner, "ProbeA")

        self.b.send(["channel-remove", 5, "ProbeB", "bob", "*test", 0, "newchan"])
        yield self.b.got("error")
        self.assertEqual(self.b.of_type("error")[0][6], "not-allowed")

        self.a.send(["channel-remove", 5, "ProbeA", "admin", "*test", 0, "newchan"])
        yield self.b.got("chanlist-reply", 2)
        self.assertEqual(self.b.of_type("chanlist-reply")[1][7], {"newchan": 0})
        self.assertNotIn("newchan", self.router.channels)

    @defer.inlineCallbacks
    def test_channel_admin_ban_unlistens(self):
        self.router.add_channel("owned", owner="ProbeA")
        yield self.listen_both("owned")
        self.a.send(["channel-admin", 5, "ProbeA", 0, "*test", 0, "owned", ["ProbeB"], 0])
        yield self.router.wait_for(lambda r: r.listening["owned"] == {"ProbeA"})
        self.b.send(["channel-listen", 5, "ProbeB", 0, "*test", 0, "owned", 1])
        yield self.b.got("error")
        self.assertEqual(self.b.of_type("error")[0][6:8], ["not-allowed", "Banned from owned"])

    @defer.inlineCallbacks
    def test_vector_tell_and_emoteto_are_forwarded_unchanged(self):
        self.a.transport.write(vector("ProbeA", "to-router", "tell", "tell"))
        self.a.transport.write(vector("ProbeA", "to-router", "emoteto"))
        yield self.b.count(2)
        self.assertEqual(self.b.frames, [vector("ProbeB", "from-router", "tell")[4:],
                                         vector("ProbeB", "from-router", "emoteto")[4:]])
        self.assertEqual(self.a.packets, [])

    @defer.inlineCallbacks
    def test_vector_unknown_mud_gets_unk_dst(self):
        self.a.transport.write(vector("ProbeA", "to-router", "tell", "tell to unknown mud"))
        yield self.a.got("error")
        self.assertEqual(self.a.frames, [self._unk_dst_vector()])

    def _unk_dst_vector(self):
        for item in VECTORS:
            decoded = item["decoded"]
            if decoded[0] == "error" and decoded[6] == "unk-dst":
                return bytes.fromhex(item["hex"])[4:]
        raise AssertionError("no unk-dst vector")

    @defer.inlineCallbacks
    def test_vector_unknown_type_to_router_gets_not_imp(self):
        self.a.transport.write(vector("ProbeA", "to-router", "no-such-type"))
        yield self.a.got("error")
        expected = [v for v in VECTORS if v["decoded"][0] == "error" and v["decoded"][6] == "not-imp"]
        self.assertEqual(self.a.frames, [bytes.fromhex(expected[0]["hex"])[4:]])

    @defer.inlineCallbacks
    def test_vector_locate_req_broadcast_includes_sender(self):
        self.a.transport.write(vector("ProbeA", "to-router", "locate-req"))
        yield self.a.got("locate-req")
        yield self.b.got("locate-req")
        self.assertEqual(self.a.frames, [vector("ProbeA", "from-router", "locate-req")[4:]])
        self.assertEqual(self.b.frames, [vector("ProbeB", "from-router", "locate-req")[4:]])

    @defer.inlineCallbacks
    def test_chanlist_req_answered(self):
        self.a.transport.write(vector("ProbeA", "to-router", "chanlist-req"))
        yield self.a.got("chanlist-reply")
        self.assertEqual(self.a.packets[0][7]["dchat"], ["Frontiers", 0])

    @defer.inlineCallbacks
    def test_known_but_down_target_is_dropped_silently(self):
        info = list(self.router.muds["ProbeB"])
        info[0] = 0
        self.router.set_mud("Sleepy", info)
        yield self.a.got("mudlist")
        self.a.send(["tell", 5, "ProbeA", "alice", "Sleepy", "bob", "Alice", "hi"])
        yield self.router.wait_for(lambda r: r.rejected)
        self.assertIn("Sleepy is down", self.router.rejected[-1][1])
        self.assertEqual(self.a.of_type("error"), [])

    @defer.inlineCallbacks
    def test_originator_must_be_the_links_mud(self):
        self.a.send(["tell", 5, "ProbeB", "bob", "ProbeA", "alice", "Bob", "spoof"])
        yield self.router.wait_for(lambda r: r.rejected)
        self.assertIn("originator", self.router.rejected[-1][1])

    @defer.inlineCallbacks
    def test_mud_cannot_send_router_packets(self):
        self.a.send(["mudlist", 5, "ProbeA", 0, "ProbeB", 0, 1, {}])
        yield self.a.got("error")
        self.assertEqual(self.a.packets[0][6], "not-allowed")
        self.assertEqual(self.b.packets, [])

    @defer.inlineCallbacks
    def test_vector_shutdown_marks_down_and_closes(self):
        self.a.transport.write(vector("ProbeA", "to-router", "shutdown"))
        yield self.a.lost
        yield self.b.when(lambda c: any(p[0] == "mudlist" and p[7].get("ProbeA", [None])[0] == 0
                                        for p in c.packets))
        self.assertNotIn("ProbeA", self.router.connections)

    @defer.inlineCallbacks
    def test_drop_marks_down_and_tells_others(self):
        yield self.router.drop("ProbeA")
        yield self.a.lost
        yield self.b.got("mudlist")
        self.assertEqual(self.b.packets[0][7]["ProbeA"][0], 0)
        self.assertEqual(self.router.muds["ProbeA"][0], 0)

    @defer.inlineCallbacks
    def test_set_mud_and_remove_mud_send_deltas(self):
        info = [-1, "10.0.0.9", 5000, 0, 0, "lib", "lib", "drv", "LPMud", "open", "x@y", {"tell": 1}, 0]
        self.router.set_mud("Elsewhere", info)
        yield self.a.got("mudlist")
        self.assertEqual(self.a.packets[0][7], {"Elsewhere": info})
        self.router.remove_mud("Elsewhere")
        yield self.b.got("mudlist", 2)
        self.assertEqual(self.b.of_type("mudlist")[1][7], {"Elsewhere": 0})
        self.assertGreater(self.b.of_type("mudlist")[1][6], self.b.of_type("mudlist")[0][6])

    @defer.inlineCallbacks
    def test_silent_router_reads_but_never_writes(self):
        self.router.silent = True
        before = len(self.router.received)
        self.a.send(["auth-mud-req", 5, "ProbeA", 0, "ProbeA", 0])
        self.a.send(["no-such-type", 5, "ProbeA", 0, "*test", 0])
        yield self.router.wait_for(lambda r: len(r.received) >= before + 2)
        self.assertEqual([p[0] for _, p in self.router.received[-2:]], ["auth-mud-req", "no-such-type"])
        sent_before = len(self.router.sent)
        # A round trip on the other link proves nothing was written meanwhile.
        self.router.silent = False
        self.b.send(["auth-mud-req", 5, "ProbeB", 0, "ProbeB", 0])
        yield self.b.got("auth-mud-req")
        self.assertEqual(len(self.router.sent), sent_before + 1)
        self.assertEqual(self.a.packets, [])

    @defer.inlineCallbacks
    def test_send_raw_and_send_packet(self):
        self.router.send_raw("ProbeA", struct.pack("!I", 4) + b"123\x00")
        self.router.send_packet("ProbeA", ["who-req", 5, "ProbeB", "bob", "ProbeA", 0])
        yield self.a.count(2)
        self.assertEqual(self.a.packets, [123, ["who-req", 5, "ProbeB", "bob", "ProbeA", 0]])

    @defer.inlineCallbacks
    def test_malformed_frame_is_dropped_and_link_stays(self):
        self.a.send_text(b'({"tell",5,"ProbeA"')          # unbalanced
        self.a.send_text(b'({"tell" ,5,})')                # whitespace
        self.a.send_text(b'([,])')                          # unreadable for FluffOS
        self.a.send_text(b"\xff\xfe")                       # not UTF-8
        self.a.send(["auth-mud-req", 5, "ProbeA", 0, "ProbeA", 0])
        yield self.a.got("auth-mud-req")
        self.assertEqual(len(self.router.rejected), 4)

    @defer.inlineCallbacks
    def test_empty_slot_reads_as_zero(self):
        # ({,}) is ({0,}) to FluffOS: this tell has 0 as its target user.
        self.a.send_text(b'({"tell",5,"ProbeA","alice","ProbeB",,"Alice","hi",})')
        yield self.b.got("tell")
        self.assertEqual(self.b.packets[0][5], 0)

    @defer.inlineCallbacks
    def test_oversized_frame_drops_the_link(self):
        self.a.transport.write(struct.pack("!I", 3 * 1024 * 1024) + b"({")
        yield self.a.lost
        self.assertIn("over", self.router.rejected[-1][1])
        yield self.b.got("mudlist")  # the others see ProbeA go down

    @defer.inlineCallbacks
    def test_listening_is_per_connection(self):
        yield self.listen_both()
        yield self.router.drop("ProbeB")
        yield self.b.lost
        self.assertEqual(self.router.listening["dchat"], {"ProbeA"})


class CleanRestartTests(RouterTestCase):
    """A real router restarted from a clean state: its channels come back
    some seconds after start, and it closes a connection accepted within a
    second of the previous one."""

    def make_router(self):
        self.clock = task.Clock()
        return I3Router("*test", clock=self.clock, channel_delay=15, accept_gap=1.0)

    @defer.inlineCallbacks
    def test_channels_appear_after_the_delay_with_a_chanlist_update(self):
        a = yield self.started("ProbeA", services={"channel": 1})
        self.assertEqual([p[7] for p in a.of_type("chanlist-reply")], [{}])
        a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "dchat", 1])
        yield a.got("error")
        self.assertEqual(a.of_type("error")[0][6:8], ["unk-channel", "Unknown channel: dchat"])
        self.clock.advance(14.9)
        self.assertEqual(self.router.channels, {})
        self.clock.advance(0.2)
        self.assertEqual(sorted(self.router.channels), ["dchat", "dead_test4", "imud_gossip"])
        yield a.when(lambda c: any("imud_gossip" in p[7] for p in c.of_type("chanlist-reply")))
        a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "dchat", 1])
        yield self.router.wait_for(lambda r: "ProbeA" in r.listening.get("dchat", ()))

    @defer.inlineCallbacks
    def test_second_connection_within_a_second_is_closed(self):
        first = yield self.connect()
        second = yield self.connect()
        yield second.lost
        self.assertEqual(len(self.router.refused_connections), 1)
        self.assertTrue(first.transport.connected)
        self.clock.advance(1.0)
        third = yield self.connect()
        third.send(startup("ProbeC"))
        yield self.router.wait_for(lambda r: "ProbeC" in r.connections)
        self.assertEqual(len(self.router.refused_connections), 1)

    def test_shutdown_cancels_the_channel_timer(self):
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        d = self.router.shutdown()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        return d


class FloodTests(RouterTestCase):

    def make_router(self):
        self.clock = task.Clock()
        self.clock.advance(1000.25)
        return I3Router("*test", clock=self.clock, flood_control=True)

    def auth(self, name="ProbeA"):
        return ["auth-mud-req", 5, name, 0, name, 0]

    @defer.inlineCallbacks
    def test_startup_counts_six_and_the_eleventh_is_blocked(self):
        client = yield self.started("ProbeA")          # 6
        for _ in range(20):                              # channel-listen counts 0
            client.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "dchat", 1])
        for _ in range(4):                               # 10 in all: allowed
            client.send(self.auth())
        yield client.got("auth-mud-req", 4)
        self.assertEqual(self.router.flood_blocked, {})
        client.send(self.auth())                         # the 11th
        yield client.got("error")
        error = client.of_type("error")[0]
        self.assertEqual(error[6:8], ["not-allowed", "Flood detected! Your packets will be temporarily ignored."])
        self.assertIn("ProbeA", self.router.flood_blocked)
        self.assertIn("flood", self.router.rejected[-1][1])

        # Next second: still blocked, told once.
        self.clock.advance(1)
        client.send(self.auth())
        client.send(self.auth())
        yield client.got("error", 2)
        yield self.router.wait_for(lambda r: r.rejected[-1][1] == "flood: blocked"
                                   and len([x for x in r.rejected if x[1] == "flood: blocked"]) == 2)
        self.assertEqual(len(client.of_type("auth-mud-req")), 4)

        # After the block: packets flow again.
        self.clock.advance(self.router.block_seconds)
        client.send(self.auth())
        yield client.got("auth-mud-req", 5)
        self.assertEqual(self.router.flood_blocked, {})

    @defer.inlineCallbacks
    def test_counts_reset_each_second(self):
        client = yield self.started("ProbeA")
        for _ in range(4):
            client.send(self.auth())
        yield client.got("auth-mud-req", 4)
        self.clock.advance(1)
        for _ in range(10):
            client.send(self.auth())
        yield client.got("auth-mud-req", 14)
        self.assertEqual(self.router.flood_blocked, {})

    @defer.inlineCallbacks
    def test_off_by_default(self):
        self.router.flood_control = False
        client = yield self.started("ProbeA")
        for _ in range(30):
            client.send(self.auth())
        yield client.got("auth-mud-req", 30)


class FuzzTests(unittest.SynchronousTestCase):
    """Whatever arrives, the router neither raises nor writes garbage."""

    def connected(self, router):
        conn = router.buildProtocol(IPv4Address("TCP", "127.0.0.1", 4000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 4000))
        conn.makeConnection(transport)
        return conn, transport

    @settings(deadline=None, max_examples=200)
    @given(st.lists(st.binary(max_size=80), max_size=6))
    def test_random_frames(self, bodies):
        router = I3Router(clock=task.Clock())
        conn, transport = self.connected(router)
        conn.dataReceived(frame(startup("Fuzz")))
        transport.clear()
        for body in bodies:
            conn.dataReceived(struct.pack("!I", len(body)) + body)
        self.assertEqual(router.connections, {"Fuzz": conn})
        # Whatever it answered is strict LPC a FluffOS peer reads.
        written = transport.value()
        while written:
            (size,) = struct.unpack("!I", written[:4])
            self.assertTrue(is_strict_lpc(written[4:4 + size]))
            written = written[4 + size:]

    @settings(deadline=None, max_examples=200)
    @given(st.lists(st.one_of(st.integers(-3, 3), st.text(max_size=8), st.just({}), st.just([])),
                    min_size=0, max_size=22))
    def test_random_packets_before_and_after_startup(self, packet):
        router = I3Router(clock=task.Clock())
        conn, transport = self.connected(router)
        conn.dataReceived(frame(packet))
        conn.dataReceived(frame(startup("Fuzz")))
        conn.dataReceived(frame(["x", 5, "Fuzz", 0] + packet))
        self.assertIn("Fuzz", router.connections)


class WaitForTests(unittest.SynchronousTestCase):

    def test_wait_for_times_out_on_the_clock(self):
        clock = task.Clock()
        router = I3Router(clock=clock)
        d = router.wait_for(lambda r: r.received, timeout=2)
        clock.advance(2)
        self.failureResultOf(d, defer.TimeoutError)

    def test_wait_for_fires_now_when_true(self):
        router = I3Router(clock=task.Clock())
        self.assertEqual(self.successResultOf(router.wait_for(lambda r: r.name)), "*test")

    def test_cancel_leaves_no_timer(self):
        clock = task.Clock()
        router = I3Router(clock=clock)
        d = router.wait_for(lambda r: False)
        d.cancel()
        self.failureResultOf(d, defer.CancelledError)
        self.assertEqual(clock.getDelayedCalls(), [])


class StrictLPCTests(unittest.SynchronousTestCase):

    def test_every_vector_is_strict(self):
        for item in VECTORS:
            body = bytes.fromhex(item["hex"])[4:]
            self.assertIsNone(strict_problem(body), item["note"])

    def test_what_fluffos_drops(self):
        for text in [b"({1})", b'(["a":1])', b"({ 1,})", b"({1, })", b"([,])", b'(["a":,])',
                     b"({1,})x", b"-", b"1.", b'"open', b"({", b"", b'"\xff"', b"({" * 100]:
            self.assertFalse(is_strict_lpc(text), text)

    def test_what_fluffos_reads(self):
        for text in [b"({1,})", b"({})", b"([])", b"({,})", b"({1,,2,})", b'(["a":({1,}),])',
                     b'"a\\"b\\\\c\rd"', b"-42", b"3.250000", b"1.5e+2", b"({})\x00", b'"caf\xc3\xa9"']:
            self.assertTrue(is_strict_lpc(text), text)

    def test_encoder_output_is_strict(self):
        value = ["x", 5, {"k": [1, 2.5, "s\n\"q\""], 3: {}}, [], 0, -7]
        self.assertTrue(is_strict_lpc(lpc.encode(value)))


class TapTests(unittest.SynchronousTestCase):

    def test_options_and_service(self):
        options = tap.Options()
        options.parseOptions(["--port", "8899", "--name", "*local", "--flood-control"])
        fake = MemoryReactor()
        service = tap.build(options, reactor=fake)
        service.startService()
        port, factory, _, interface = fake.tcpServers[0]
        self.assertEqual((port, interface), (8899, "127.0.0.1"))
        self.assertIs(factory, service.router)
        self.assertEqual(service.router.name, "*local")
        self.assertTrue(service.router.flood_control)
        service.stopService()

    def test_late_channels_and_accept_gap_options(self):
        from twisted.internet.testing import MemoryReactorClock
        from twisted.python import usage
        options = tap.Options()
        options.parseOptions(["--channel-delay", "15", "--accept-gap", "1"])
        clock = MemoryReactorClock()
        service = tap.build(options, reactor=clock)
        self.assertEqual((service.router.channels, service.router.accept_gap), ({}, 1.0))
        clock.advance(15)
        self.assertEqual(sorted(service.router.channels), ["dchat", "dead_test4", "imud_gossip"])
        for name in ("--channel-delay", "--accept-gap"):
            self.assertRaises(usage.UsageError, tap.Options().parseOptions, [name, "-1"])

    def test_router_name_must_start_with_star(self):
        from twisted.python import usage
        self.assertRaises(usage.UsageError, tap.Options().parseOptions, ["--name", "plain"])

    def test_plugin_is_found(self):
        from twisted.application.service import IServiceMaker
        from twisted.plugin import getPlugins
        import twisted.plugins
        names = [p.tapname for p in getPlugins(IServiceMaker, twisted.plugins)]
        self.assertIn("i3router", names)
