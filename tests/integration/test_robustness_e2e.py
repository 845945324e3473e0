"""Bad input from the router gets counted, logged and skipped; it harms nothing.

A real GatewayService (named ``ProbeA``, so the captured router frames in
``tests/data/`` are addressed to it) on the in-repo router, with
a connected TCP API client. Each case writes something malformed down the
router link (``send_raw``/``send_packet``), then a normal tell. After
every case: the router link is the same connection (except the oversized
length prefix, which must drop and reconnect), the client answers
``ping`` and receives that tell, ``intermud3_packet_decode_errors_total``
counted exactly the undecodable frames, every event that arrived meanwhile
has API.md's field types, and nothing was logged at error level (a handler
that raised shows up there).
"""

import random
import struct

from twisted.internet import defer
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import TestCase

from intermud3 import lpc
from intermud3.packets import FIELDS
from tests.integration.harness import Loopback
from tests.integration.waits import link_ready
from tests.test_inbound_fuzz import event_problem
from tests.vectors import load_vectors

MUD = "ProbeA"          # the name the vectors' frames are addressed to
OTHER = "DSTest"
MAX_FRAME = 65536


def raw_frame(text, nul=True):
    """A MudMode frame around ``text`` as it is (no encoding, no checks)."""
    body = text + (b"\x00" if nul else b"")
    return struct.pack("!I", len(body)) + body


def packet_text(value):
    """Strict LPC text of ``value``, also for ints beyond 32 bits and
    floats (which the strict writer refuses): for writing junk by hand."""
    if isinstance(value, bool) or value is None:
        return b"1" if value else b"0"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        if value in (float("inf"), float("-inf")):
            return b"-1e999" if value < 0 else b"1e999"   # what a reader takes as infinity
        return repr(value).encode()
    if isinstance(value, (list, tuple)):
        return b"({" + b"".join(packet_text(v) + b"," for v in value) + b"})"
    if isinstance(value, dict):
        return b"([" + b"".join(packet_text(k) + b":" + packet_text(v) + b","
                                for k, v in value.items()) + b"])"
    return lpc.encode(value)


def tell(text, to_user="alice"):
    return ["tell", 5, OTHER, "bob", MUD, to_user, "Bob", text]


# -- malformed frames: (name, frame bytes, decode errors it counts) --------------------

_good_tell = packet_text(tell("fine"))
_noise = bytes(random.Random(3).randrange(256) for _ in range(300))

MALFORMED_FRAMES = [
    ("unbalanced array", raw_frame(b'({"tell",5,"DSTest","bob","ProbeA","alice","Bob","x",'), 1),
    ("unbalanced closers", raw_frame(b'({"tell",5,})})])'), 1),   # a 2-element "packet"
    ("unbalanced mapping", raw_frame(b'({"mudlist",5,"*test",0,"ProbeA",0,1,(["X":({-1,}),'), 1),
    ("closer of the wrong kind", raw_frame(b'({"tell",5,"DSTest",])'), 1),
    ("string never closed", raw_frame(b'({"tell",5,"DSTest","bob","ProbeA","alice","Bob","x\\"})'), 1),
    ("a lone backslash", raw_frame(b'({"tell",5,"DSTest","bob","ProbeA","alice","Bob","x\\'), 1),
    ("deep nesting bomb", raw_frame(b"({" * 30000), 1),
    ("mapping nesting bomb", raw_frame(b"([1:" * 5000), 1),
    ("number too long to read", raw_frame(b"({" + b"9" * 5000 + b",})"), 1),
    ("empty frame", struct.pack("!I", 0), 1),
    ("only a NUL", raw_frame(b""), 1),
    ("random bytes", raw_frame(_noise), 1),
    ("random bytes without NUL", raw_frame(_noise, nul=False), 1),
    ("a colon in an array", raw_frame(b'({"tell":5,})'), 1),
    ("an int", raw_frame(b"42"), 1),
    ("a string", raw_frame(b'"tell"'), 1),
    ("a mapping", raw_frame(b'(["tell":5,])'), 1),
    ("a list of 3", raw_frame(b'({"tell",5,"DSTest",})'), 1),
    ("an empty array", raw_frame(b"({})"), 1),
    ("a packet whose type is an int", raw_frame(b"({7,5,0,0,0,0,})"), 1),
    ("a packet whose type is empty", raw_frame(b'({"",5,0,0,0,0,})'), 1),
    # Readable, leniently: these decode and must be handled, not counted.
    ("trailing garbage", raw_frame(_good_tell + b"})garbage\xff"), 0),
    ("no trailing NUL", raw_frame(_good_tell, nul=False), 0),
    ("whitespace and no trailing commas", raw_frame(
        b' ({ "tell" , 5 , "DSTest" , "bob" , "ProbeA" , "alice" , "Bob" , "x" }) '), 0),
    ("bad escapes read as the letter", raw_frame(
        b'({"tell",5,"DSTest","bob","ProbeA","alice","B\\ob","\\q\\n\\\\",})'), 0),
    ("invalid UTF-8 read as Latin-1", raw_frame(
        b'({"tell",5,"DSTest","bob","ProbeA","alice","B\xf6b","caf\xe9 \xff",})'), 0),
    ("huge ints", raw_frame(
        b'({"tell",5,"DSTest",' + b"9" * 3000 + b',"ProbeA","alice",-' + b"9" * 40 + b","
        + b"1" * 4000 + b",})"), 0),
    ("floats with exponents", raw_frame(
        b'({"locate-reply",5,"DSTest",0,"ProbeA","alice","DSTest","Bob",1.5e+2,-2E-3,})'), 0),
    ("infinite floats", raw_frame(
        b'({"who-reply",5,"DSTest",0,"ProbeA",1e999,({({"Bob",1e999,-1e999,}),}),})'), 0),
    ("arrays as mapping keys", raw_frame(
        b'({"mudlist",5,"*test",0,"ProbeA",0,3,([({1,2,}):({-1,}),"Junk":({-1,({1,}),1e999,}),'
        b'(["k":1,]):0,]),})'), 0),
    ("empty slots and pairs", raw_frame(
        b'({"chanlist-reply",5,"*test",0,"ProbeA",0,4,(["c":({,}),,"d":,]),})'), 0),
]


# -- every packet type with fields of the wrong type or count --------------------------

HANDLED_TYPES = sorted({
    "tell", "emoteto", "channel-m", "channel-e", "channel-t", "who-req", "who-reply",
    "finger-req", "finger-reply", "locate-req", "locate-reply", "chan-who-req",
    "chan-who-reply", "chan-user-req", "chan-user-reply", "ucache-update", "error",
    "auth-mud-req", "auth-mud-reply", "mudlist", "chanlist-reply", "startup-reply",
    "chan-filter-req", "shutdown", "channel-listen", "no-such-type",
})

_JUNK = [{"a": [1, {"b": [[], {}]}]}, [[[-1]]]]


def wrong_packets(ptype):
    """(variant, packet value) pairs: ``ptype`` with fields of the wrong
    type or count, addressed to us by another MUD."""
    count = len(FIELDS.get(ptype, ("x",)))
    header = [ptype, 5, OTHER, "bob", MUD, "alice"]
    return [
        ("0 everywhere", [ptype, 0, 0, 0, 0, 0] + [0] * count),
        ("ints for strings", [ptype, 5, 1, 2, 3, 4] + [7] * count),
        ("lists for strings", [ptype, 5, [OTHER], ["bob"], [MUD], ["alice"]] + [["x"]] * count),
        ("header only", header),
        ("a field short", header + [0] * (count - 1)),
        ("extra fields", header + ["x"] * count + [1, "extra", [2]]),
        ("negative numbers", header + [-1] * count),
        ("nested junk", header + [_JUNK[i % 2] for i in range(count)]),
        ("huge ints and infinities", [ptype, 2 ** 70, OTHER, 2 ** 40, MUD, float("-inf")]
         + [float("inf") if i % 2 else -(2 ** 90) for i in range(count)]),
        ("broadcast of mappings", [ptype, 5, OTHER, 0, 0, 0] + [{1: 2}] * count),
    ]


SHAPED_WRONG = [
    ("who-reply negative idle", ["who-reply", 5, OTHER, 0, MUD, "alice",
                                 [["Bob", -5, "x"], ["Ann", -(2 ** 40), 0], "junk", []]]),
    ("locate-reply negative idle", ["locate-reply", 5, OTHER, 0, MUD, "alice",
                                    OTHER, "Bob", -1, ["status"]]),
    ("finger-reply offline", ["finger-reply", 5, OTHER, 0, MUD, "alice",
                              "Bob", 0, 0, 0, "yesterday", -1, 0, "Wizard", {"x": 1}]),
    ("mudlist of junk entries", ["mudlist", 5, "*test", 0, MUD, 0, -7, {
        "Junk1": [-1], "Junk2": [0, 1, 2, 3], "Junk3": "up", "Junk4": [[-1]] * 20}]),
    ("mudlist flips junk entries", ["mudlist", 5, "*test", 0, MUD, 0, 8, {
        "Junk1": [0, ["h"], [1], {}, 0, 0, 0, 0, 0, 0, 0, {"tell": "x", "who": 1}, 0],
        "Junk2": [-1, 0, "p", 0, 0, [0], 0, 0, 0, 0, 0, [], 0]}]),
    ("chanlist of junk entries", ["chanlist-reply", 5, "*test", 0, MUD, 0, "id", {
        "c1": [[OTHER], [0]], "c2": "x", "c3": [], "c4": [OTHER, -1, "extra"]}]),
    ("startup-reply with a junk router list", ["startup-reply", 5, "*test", 0, MUD, 0,
                                               [["*test"], ["*x", 7], [0, "1.2.3.4 5"], "z"], "pw"]),
    ("error carrying junk", ["error", 5, OTHER, 0, MUD, "alice", ["unk-user"], {"m": 1},
                             ["tell", 5, MUD, ["alice"]]]),
    ("error carrying a packet of junk", ["error", 5, OTHER, 0, MUD, "alice", "unk-user", "x",
                                         ["tell", 5, MUD, 0, 0, 0, {}, {}]]),
    ("channel message to a joined channel", ["channel-m", 5, OTHER, "bob", 0, 0, "dchat",
                                             ["Bob"], {"text": 1}]),
    ("channel-t of junk", ["channel-t", 5, OTHER, "bob", 0, 0, "dchat", 0, [1], 2, 3, 4.5, {}]),
]


class _ErrorLog:
    """Every event logged at error level or above (a failure included)."""

    def __init__(self, testcase):
        self.events = []
        globalLogPublisher.addObserver(self)
        testcase.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event):
        if event.get("log_level", LogLevel.info) >= LogLevel.error or "log_failure" in event:
            self.events.append(event.get("log_format") or repr(event.get("log_failure")))

    def take(self):
        taken, self.events = self.events, []
        return taken


class RouterRobustnessTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.loop = Loopback(self)
        self.router = self.loop.router()
        self.svc = yield self.loop.ready_gateway(
            MUD, [self.router], router={"max_frame_bytes": MAX_FRAME})
        self.gateway = self.svc.gateway
        self.client = yield self.loop.tcp_client(self.svc)
        yield self.client.call("channel_join", {"channel": "dchat"})
        yield self.router.wait_for(lambda r: MUD in r.connections)
        self.errors = _ErrorLog(self)
        self.markers = 0

    def decode_errors(self):
        value = self.gateway.metrics.registry.get_sample_value(
            "intermud3_packet_decode_errors_total")
        return int(value or 0)

    @defer.inlineCallbacks
    def survives(self, name, send, decode_errors=None, reconnects=False):
        """Run ``send()`` (which writes the bad input) and check that it
        harmed nothing. ``decode_errors``: how many the metric must count."""
        connection = self.router.connections[MUD]
        counted = self.decode_errors()
        self.client.events.clear()
        send()
        if reconnects:
            yield self.router.wait_for(lambda r: r.connections.get(MUD) not in (None, connection))
            yield link_ready(self.svc)
        # A tell after the bad input arrives: the link read past it, in order.
        self.markers += 1
        marker = f"marker {self.markers} after {name}"
        arrived = self.client.event("tell_received", lambda p: p["message"] == marker)
        self.router.send_packet(MUD, tell(marker))
        event = yield arrived
        self.assertEqual((event["from_mud"], event["to_user"], event["visname"]),
                         (OTHER, "alice", "Bob"), name)
        pong = yield self.client.call("ping")
        self.assertIs(pong["pong"], True, name)
        self.assertTrue(self.svc.running, name)
        self.assertTrue(self.gateway.link.ready, name)
        if not reconnects:
            self.assertIs(self.router.connections[MUD], connection, f"{name}: the link was dropped")
        if decode_errors is not None:
            self.assertEqual(self.decode_errors() - counted, decode_errors, name)
        problems = [problem for problem in map(event_problem, self.client.events) if problem]
        self.assertEqual(problems, [], name)
        self.assertEqual(self.errors.take(), [], name)

    # -- the tests ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_malformed_lpc_frames_are_counted_and_skipped(self):
        for name, data, errors in MALFORMED_FRAMES:
            yield self.survives(name, lambda: self.router.send_raw(MUD, data), errors)

    @defer.inlineCallbacks
    def test_leniently_read_frames_reach_the_client_as_text(self):
        arrived = self.client.event("tell_received", lambda p: p["visname"] == "Böb")
        self.router.send_raw(MUD, dict((n, d) for n, d, _ in MALFORMED_FRAMES)[
            "invalid UTF-8 read as Latin-1"])
        event = yield arrived
        self.assertEqual(event["message"], "café ÿ")
        arrived = self.client.event("tell_received", lambda p: p["visname"] == "Bob"
                                    and p["message"] == "qn\\")
        self.router.send_raw(MUD, dict((n, d) for n, d, _ in MALFORMED_FRAMES)[
            "bad escapes read as the letter"])
        yield arrived
        arrived = self.client.event("tell_received", lambda p: p["message"] == "1" * 4000)
        self.router.send_raw(MUD, dict((n, d) for n, d, _ in MALFORMED_FRAMES)["huge ints"])
        event = yield arrived
        self.assertEqual((event["from_mud"], event["from_user"]), (OTHER, "9" * 3000))

    @defer.inlineCallbacks
    def test_oversized_length_prefix_drops_and_reconnects(self):
        link = self.gateway.link
        reconnects = link.reconnects
        disconnected = self.client.event("gateway_disconnected")
        connected = self.client.event("gateway_connected")
        for size in (MAX_FRAME + 1, 2 ** 32 - 1):
            # Only the prefix is sent: the link must drop without waiting for
            # (or allocating) the body it announces.
            yield self.survives(f"a length prefix of {size}",
                                lambda: self.router.send_raw(MUD, struct.pack("!I", size)),
                                reconnects=True)
        yield disconnected
        yield connected
        self.assertEqual(link.reconnects, reconnects + 2)
        # The channel is listened to again on each new connection.
        yield self.router.wait_for(lambda r: MUD in r.listening.get("dchat", ()) and sum(
            1 for mud, p in r.received if mud == MUD and p[0] == "channel-listen") == 3)

    @defer.inlineCallbacks
    def test_every_router_frame_of_the_vectors(self):
        frames = [v for v in load_vectors() if v.dir == "from-router"]
        self.assertTrue(frames)
        for vector in frames:
            yield self.survives(f"vector line {vector.line} ({vector.note})",
                                lambda: self.router.send_raw(MUD, vector.frame), 0)

    @defer.inlineCallbacks
    def test_every_packet_type_with_wrong_fields(self):
        for ptype in HANDLED_TYPES:
            for variant, value in wrong_packets(ptype):
                yield self.survives(f"{ptype}: {variant}",
                                    lambda: self.router.send_raw(MUD, raw_frame(packet_text(value))),
                                    0 if isinstance(value[0], str) and value[0] else 1)

    @defer.inlineCallbacks
    def test_packets_of_the_right_shape_with_wrong_values(self):
        for name, value in SHAPED_WRONG:
            yield self.survives(name, lambda: self.router.send_raw(MUD, raw_frame(packet_text(value))), 0)
        # The junk MUDs are in the mudlist in API.md's types.
        muds = yield self.client.call("mudlist", {"filter": {"name": "junk"}})
        self.assertEqual(sorted(m["name"] for m in muds["muds"]), ["Junk1", "Junk2", "Junk4"])
        for entry in muds["muds"]:
            self.assertTrue(all(isinstance(entry[k], str) for k in ("host", "driver", "mudlib")))
            self.assertTrue(all(isinstance(entry[k], int) for k in ("port", "tcp_port")))
        channels = yield self.client.call("channel_list")
        self.assertTrue(all(isinstance(c["type"], int) for c in channels["channels"]))
