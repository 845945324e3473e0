"""The in-repo router behaves like the real Dead Souls router.

Every gateway test runs against ``I3Router``; if it drifted from what a real
router does, those tests would prove nothing. Here:

* ``ReplayTests`` drives ``I3Router`` with the very frames two clients,
  ProbeA and ProbeB, sent to a real Dead Souls router (the capture in
  ``tests/data/``), in the same order, from raw MudMode
  connections on loopback, with a scripted stand-in for the captured
  Dead Souls MUD "DSTest", and compares what each client gets back with
  what the real router sent, frame by frame: byte for byte where the frame
  holds no mapping (FluffOS orders mapping keys by hash), value for value
  otherwise. Passwords are the captured ones (the router's random source
  is scripted); mudlist ids and the router's port are compared modulo a
  renaming.
* ``StrictnessTests`` checks the reading rules of I3-PROTOCOL.md that
  tests/test_router.py does not already pin down.
* ``GatewayPacketTests`` runs a real gateway pair through every packet
  type the gateway sends, with awkward text, and asserts the strict router
  dropped none of them.
"""


from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial import unittest

from intermud3 import lpc
from intermud3.mudmode import frame
from intermud3.testing.router import I3Router
from tests.integration.harness import RPCFailure
from tests.integration.mudpair import A, B, make_loop, start_pair
from tests.integration.two_muds import player
from tests.integration.waits import gateway_sees
from tests.vectors import load_vectors

WAIT = 5.0

# The passwords the real router handed out, in the order of the startups
# (the stand-in for DSTest starts first).
DSTEST_PASSWORD = 123456789
PROBE_A_PASSWORD = 842758708
PROBE_B_PASSWORD = 186203645


class ScriptedRandom:
    """Stands in for the router's random source: the captured passwords."""

    def __init__(self, numbers):
        self.numbers = list(numbers)

    def randint(self, low, high):
        number = self.numbers.pop(0)
        assert low <= number <= high
        return number


class RawClient(Int32StringReceiver):
    """A bare MudMode peer: writes bytes it is given, keeps every frame body."""

    MAX_LENGTH = 8 * 1024 * 1024

    def __init__(self, name):
        self.name = name
        self.bodies = []        # frame bodies without the trailing NUL
        self.lost = defer.Deferred()
        self._waiters = []

    def stringReceived(self, string):
        self.bodies.append(string[:-1] if string.endswith(b"\x00") else string)
        self.answer(lpc.decode(self.bodies[-1]))
        self._check()

    def answer(self, packet):
        """Hook for scripted peers."""

    def connectionLost(self, reason):
        self.lost.callback(None)

    def write_frame(self, whole_frame):
        self.transport.write(whole_frame)

    def send(self, packet):
        self.transport.write(frame(packet))

    def send_text(self, text):
        self.sendString(text + b"\x00")

    def packets(self):
        return [lpc.decode(body) for body in self.bodies]

    def count(self, n, timeout=WAIT):
        """Fires once ``n`` frames have arrived in all."""
        d = defer.Deferred()
        entry = (n, d)
        self._waiters.append(entry)

        def expire():
            if entry in self._waiters:
                self._waiters.remove(entry)
                d.errback(defer.TimeoutError(
                    f"{self.name} got {len(self.bodies)} frames, not {n}: "
                    f"{[p[0] if isinstance(p, list) else p for p in self.packets()]}"))

        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])
        self._check()
        return d

    def _check(self):
        for entry in list(self._waiters):
            if len(self.bodies) >= entry[0]:
                self._waiters.remove(entry)
                entry[1].callback(self)


class DSTestStandIn(RawClient):
    """Plays the captured Dead Souls MUD: answers each request addressed to
    it with the frame the real DSTest answered (the router forwards those
    unchanged, so the captured from-router frame is what DSTest wrote)."""

    def __init__(self, answers):
        super().__init__("DSTest")
        self.answers = answers  # request type -> whole frame

    def answer(self, packet):
        if isinstance(packet, list) and len(packet) > 4 and packet[4] == "DSTest":
            reply = self.answers.get(packet[0])
            if reply is not None:
                self.write_frame(reply)


def dstest_startup(info):
    """The startup-req-3 that gives DSTest the captured mudlist entry."""
    return (["startup-req-3", 5, "DSTest", 0, "*test", 0, 0, 0, 0]
            + info[2:5] + info[5:11] + [info[11], info[12]])


class Fidelity(unittest.TestCase):
    """Common plumbing: a router on loopback and raw clients."""

    def start_router(self, **kwargs):
        router = I3Router("*test", **kwargs)
        router.listen(reactor)
        self.addCleanup(router.shutdown)
        return router

    @defer.inlineCallbacks
    def connect(self, client):
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.router.port)
        yield connectProtocol(endpoint, client)
        self.addCleanup(self._close, client)
        return client

    def _close(self, client):
        if client.transport.connected:
            client.transport.loseConnection()
        return client.lost


class ReplayTests(Fidelity):

    def setUp(self):
        self.vectors = load_vectors()
        self.by_line = {v.line: v for v in self.vectors}
        # The order of startups: the stand-in, then ProbeA, then ProbeB.
        self.router = self.start_router(
            channels=(), rng=ScriptedRandom([DSTEST_PASSWORD, PROBE_A_PASSWORD, PROBE_B_PASSWORD]))
        self.mudlist_ids = {}   # captured id -> our id

    def line(self, number, conn=None, direction=None):
        vector = self.by_line[number]
        if conn is not None:
            self.assertEqual((vector.conn, vector.dir), (conn, direction), vector)
        return vector

    def lines(self, conn, first, last):
        """The captured frames the router sent ``conn`` on lines first..last."""
        return [v for v in self.vectors
                if first <= v.line <= last and v.conn == conn and v.dir == "from-router"]

    # ------------------------------------------------------------ comparing

    def normalise(self, packet, mudlist_ids):
        """A copy with what may differ renamed: the router's port in a
        startup-reply, mudlist ids through ``mudlist_ids``."""
        packet = list(packet)
        if packet[0] == "startup-reply":
            packet[6] = [[name, address.rsplit(" ", 1)[0]] for name, address in packet[6]]
        if packet[0] == "mudlist":
            packet[6] = mudlist_ids(packet[6])
        return packet

    def our_id(self, captured_id):
        return self.mudlist_ids.get(captured_id, ("unseen", captured_id))

    def learn_id(self, captured_id, ours):
        # The same captured id always stands for the same id of ours, and
        # two captured ids never for one of ours.
        known = self.mudlist_ids.setdefault(captured_id, ours)
        self.assertEqual(known, ours, f"captured mudlist id {captured_id} is ours {known}, now {ours}")
        owners = [c for c, o in self.mudlist_ids.items() if o == ours]
        self.assertEqual(owners, [captured_id], f"our mudlist id {ours} stands for {owners}")

    @staticmethod
    def mud_by_mud(items, packet_of):
        """``items`` with each run of one-MUD mudlist packets to 0 sorted by
        MUD name: the real router walks a mapping there, in hash order."""
        def key(index):
            packet = packet_of(items[index])
            if packet[0] == "mudlist" and packet[4] == 0 and len(packet[7]) == 1:
                start = index
                while start and key_run(start - 1):
                    start -= 1
                return (start, list(packet[7])[0])
            return (index, "")

        def key_run(index):
            packet = packet_of(items[index])
            return packet[0] == "mudlist" and packet[4] == 0 and len(packet[7]) == 1

        return [items[i] for i in sorted(range(len(items)), key=key)]

    def assertSameFrames(self, bodies, vectors):
        """``bodies`` (ours) are the captured frames of ``vectors``, in order
        (but for the order of a run of one-MUD mudlist packets)."""
        bodies = self.mud_by_mud(list(bodies), lpc.decode)
        vectors = self.mud_by_mud(list(vectors), lambda v: v.decoded)
        ours = [lpc.decode(body) for body in bodies]
        self.assertEqual([p[0] for p in ours], [v.decoded[0] for v in vectors],
                         f"types differ from capture lines {[v.line for v in vectors]}")
        for body, packet, vector in zip(bodies, ours, vectors):
            captured = lpc.decode(vector.text)
            if captured[0] == "mudlist":
                self.learn_id(captured[6], packet[6])
            self.assertEqual(self.normalise(packet, lambda i: i),
                             self.normalise(captured, self.our_id),
                             f"capture line {vector.line} ({vector.note})")
            if b"([" not in vector.text and captured[0] != "startup-reply":
                # No mapping, nothing renamed: the very bytes.
                self.assertEqual(body, vector.text, f"capture line {vector.line}")

    # ------------------------------------------------------------ driving

    @defer.inlineCallbacks
    def step(self, client, number, expect):
        """Sends captured line ``number`` from ``client``; waits for the
        router to accept it and for ``expect`` (client -> frames)."""
        vector = self.line(number, client.name, "to-router")
        before = {c: len(c.bodies) for c in expect}
        accepted = len(self.router.received)
        client.write_frame(vector.frame)
        yield self.router.wait_for(lambda r: len(r.received) > accepted, timeout=WAIT)
        for other, n in expect.items():
            yield other.count(before[other] + n)

    @defer.inlineCallbacks
    def barrier(self, client):
        """Nothing more is on its way to ``client``: an auth-mud-req to
        itself comes back as the very next frame."""
        before = len(client.bodies)
        client.send(["auth-mud-req", 5, client.name, 0, client.name, 0])
        yield client.count(before + 1)
        self.assertEqual(lpc.decode(client.bodies[before])[0], "auth-mud-req")
        del client.bodies[before]

    @defer.inlineCallbacks
    def test_replay_the_captured_conversation(self):
        v = self.line
        dstest_info = v(3).decoded[7]["DSTest"]
        answers = {"who-req": v(51).frame, "finger-req": v(52).frame, "chan-who-req": v(56).frame,
                   "chan-user-req": v(57).frame, "auth-mud-req": v(59).frame}
        dstest = yield self.connect(DSTestStandIn(answers))
        dstest.send(dstest_startup(dstest_info))
        yield self.router.wait_for(lambda r: "DSTest" in r.connections)
        self.assertEqual(self.router.muds["DSTest"], dstest_info)

        a = yield self.connect(RawClient("ProbeA"))
        b = yield self.connect(RawClient("ProbeB"))

        # ProbeA starts up: reply, mudlist to it, chanlist, the whole list
        # again one MUD a packet to 0, then its own entry under a new id.
        yield self.step(a, 1, {a: 6})
        self.assertSameFrames(a.bodies, self.lines("ProbeA", 2, 7))

        # ProbeB starts up; ProbeA hears of it.
        yield self.step(b, 8, {a: 1, b: 7})
        self.assertSameFrames(b.bodies, self.lines("ProbeB", 9, 11) + self.lines("ProbeB", 19, 22))
        self.assertSameFrames(a.bodies[6:], self.lines("ProbeA", 30, 30))
        del a.bodies[:], b.bodies[:]

        # Channels appear (made by "Frontiers", outside the capture): each
        # one announced with the whole chanlist, the new channel's type ({}).
        created = [v(n).decoded for n in range(12, 19)]
        for packet in created:
            name = [c for c, (_, kind) in packet[7].items() if kind == []][0]
            self.router.add_channel(name, owner="Frontiers")
            yield a.count(len(a.bodies) + 1)
            yield b.count(len(b.bodies) + 1)
        self.assertSameFrames(b.bodies, self.lines("ProbeB", 12, 18))
        self.assertSameFrames(a.bodies, self.lines("ProbeA", 23, 29))
        del a.bodies[:], b.bodies[:]

        # The services, one request at a time, as captured.
        script = [(a, 31, {}), (b, 32, {}),
                  (a, 33, {a: 1, b: 1}), (a, 34, {a: 1, b: 1}),   # channel-m/e echo
                  (a, 35, {b: 1}), (a, 36, {b: 1}),               # tell, emoteto
                  (a, 37, {a: 1}), (a, 38, {a: 1}),               # via DSTest
                  (a, 39, {a: 1, b: 1}), (b, 40, {a: 1}),         # locate
                  (a, 41, {a: 1}),                                # unk-dst
                  (a, 42, {a: 1}), (a, 43, {a: 1}),               # via DSTest
                  (a, 44, {a: 1}), (a, 45, {a: 1}),               # auth-mud-req
                  (a, 46, {a: 1}), (a, 47, {a: 1}),               # chanlist-req, not-imp
                  (b, 48, {a: 1})]                                # who-reply
        for client, number, expect in script:
            yield self.step(client, number, expect)
        yield self.barrier(a)
        yield self.barrier(b)
        self.assertSameFrames(a.bodies, self.lines("ProbeA", 49, 62))
        self.assertSameFrames(b.bodies, self.lines("ProbeB", 63, 67))
        del b.bodies[:]

        # ProbeA shuts down and comes back on a new link with its password.
        yield self.step(a, 68, {b: 1})
        yield a.lost
        # Kept on purpose (see the router's docstring): we announce the MUD
        # down at once; the real router batches that announcement, which
        # then shows whatever state the MUD has when it goes out.
        down = lpc.decode(b.bodies.pop(0))
        self.assertEqual((down[0], down[4], down[7]["ProbeA"][0]), ("mudlist", "ProbeB", 0))
        again = yield self.connect(RawClient("ProbeA"))
        yield self.step(again, 69, {again: 7, b: 1})
        self.assertSameFrames(again.bodies, self.lines("ProbeA", 70, 76))
        self.assertSameFrames(b.bodies, self.lines("ProbeB", 77, 77))
        yield self.barrier(again)
        yield self.barrier(b)
        self.assertEqual(len(again.bodies), 7)
        self.assertEqual(len(b.bodies), 1)

        # Every frame of the capture was read; every frame written is strict.
        self.assertEqual(self.router.rejected, [])


def startup(name, password=0, services=None):
    if services is None:
        services = {"tell": 1, "channel": 1, "who": 1, "locate": 1, "emoteto": 1}
    return ["startup-req-3", 5, name, 0, "*test", 0, password, 0, 0, 4000, 0, 0,
            "GatewayLib 0.1", "GatewayLib", "Twisted", "Other", "beta testing",
            "admin@example.org", services, 0]


def lpc_array(*encoded):
    """An LPC array written from already encoded elements."""
    return b"({" + b"".join(item + b"," for item in encoded) + b"})"


class RawPair(Fidelity):
    """Two raw clients, ProbeA and ProbeB, started up on one router."""

    def make_router(self):
        return self.start_router()

    @defer.inlineCallbacks
    def setUp(self):
        self.router = self.make_router()
        self.a = yield self.started("ProbeA")
        self.b = yield self.started("ProbeB")
        yield self.barrier(self.a)
        del self.a.bodies[:], self.b.bodies[:]

    @defer.inlineCallbacks
    def started(self, name):
        client = yield self.connect(RawClient(name))
        client.send(startup(name))
        yield self.router.wait_for(lambda r: name in r.connections)
        yield self.barrier(client)
        return client

    @defer.inlineCallbacks
    def barrier(self, client):
        """Every frame already on its way to ``client`` has arrived; the
        barrier's own echo is taken out again."""
        before = len(client.bodies)
        marker = ["auth-mud-req", 5, client.name, "barrier", client.name, 0]
        client.send(marker)
        while True:
            yield client.count(len(client.bodies) + 1)
            if lpc.decode(client.bodies[-1]) == marker:
                break
        client.bodies.pop()
        return client.bodies[before:]

    @defer.inlineCallbacks
    def assertDroppedSilently(self, sender, texts):
        """Each of ``texts`` from ``sender`` is dropped whole: recorded as not
        strict, nothing forwarded, nothing answered."""
        rejected = len(self.router.rejected)
        sent = len(self.router.sent)
        for text in texts:
            sender.send_text(text)
        yield self.router.wait_for(lambda r: len(r.rejected) >= rejected + len(texts))
        reasons = [reason for _, reason, _ in self.router.rejected[rejected:]]
        self.assertEqual(len(reasons), len(texts), reasons)
        for reason, text in zip(reasons, texts):
            self.assertTrue(reason.startswith("not strict LPC"), (reason, text))
        self.assertEqual(self.router.sent[sent:], [])
        for client in (self.a, self.b):
            got = yield self.barrier(client)
            self.assertEqual(got, [])


class StrictnessTests(RawPair):
    """I3-PROTOCOL.md section 2: the router reads like FluffOS."""

    TELL = [b'"tell"', b"5", b'"ProbeA"', b'"alice"', b'"ProbeB"', b'"bob"', b'"Alice"', b'"hi"']

    def spaced_variants(self, elements):
        """The array of ``elements`` with one whitespace byte put in each gap
        between tokens, in turn."""
        variants = []
        for gap in range(len(elements) + 1):
            for blank in (b" ", b"\t", b"\n", b"\r"):
                items = [item + b"," for item in elements]
                items.insert(gap, blank)
                variants.append(b"({" + b"".join(items) + b"})")
        return variants

    @defer.inlineCallbacks
    def test_whitespace_between_any_tokens_drops_the_packet(self):
        yield self.assertDroppedSilently(self.a, self.spaced_variants(self.TELL))
        # Around the separators of a nested array and a mapping too.
        users = lpc_array(b'"Bob"', b"0", b'"x"')
        reply = [b'"who-reply"', b"5", b'"ProbeA"', b"0", b'"ProbeB"', b'"bob"']
        yield self.assertDroppedSilently(self.a, [
            lpc_array(*reply, b"({ " + users[2:] + b",})"),
            lpc_array(*reply, b"({" + users + b" ,})"),
            lpc_array(*reply, b'({"Bob", 0,"x",})'),
            lpc_array(*reply, b'([ "k":1,])'),
            lpc_array(*reply, b'(["k" :1,])'),
            lpc_array(*reply, b'(["k": 1,])'),
        ])
        # The clean packet goes through.
        self.a.send_text(lpc_array(*self.TELL))
        yield self.b.count(1)
        yield self.barrier(self.b)
        self.assertEqual(self.b.bodies, [lpc.encode(["tell", 5, "ProbeA", "alice", "ProbeB", "bob", "Alice", "hi"])])

    @defer.inlineCallbacks
    def test_a_missing_trailing_comma_drops_the_packet(self):
        whole = lpc_array(*self.TELL)
        reply = [b'"who-reply"', b"5", b'"ProbeA"', b"0", b'"ProbeB"', b'"bob"']
        yield self.assertDroppedSilently(self.a, [
            whole[:-3] + b"})",                                  # last element
            lpc_array(*reply, b'({({"Bob",0,"x"}),})'),         # inner array
            lpc_array(*reply, b'({({"Bob",0,"x",})})'),         # outer array
            lpc_array(*reply, b'(["k":1])'),                     # mapping
        ])

    @defer.inlineCallbacks
    def test_an_empty_array_slot_reads_as_zero(self):
        self.a.send_text(b'({"who-reply",5,"ProbeA",0,"ProbeB","bob",({,}),})')
        self.a.send_text(b'({"tell",5,"ProbeA","alice","ProbeB","bob",,"hi",})')
        yield self.b.count(2)
        self.assertEqual(self.b.bodies, [b'({"who-reply",5,"ProbeA",0,"ProbeB","bob",({0,}),})',
                                         b'({"tell",5,"ProbeA","alice","ProbeB","bob",0,"hi",})'])
        self.assertEqual(self.router.rejected, [])

    @defer.inlineCallbacks
    def test_an_empty_mapping_slot_makes_the_packet_unreadable(self):
        yield self.assertDroppedSilently(self.a, [
            b'({"tell",5,"ProbeA","alice","ProbeB","bob",([,]),"hi",})',
            b'({"who-reply",5,"ProbeA",0,"ProbeB","bob",({([,]),}),})',
        ])
        text = lpc.encode(startup("Newcomer")).replace(b'(["tell":1,', b"([,")
        self.assertIn(b"([,", text)
        newcomer = yield self.connect(RawClient("Newcomer"))
        sent = len(self.router.sent)
        newcomer.send_text(text)
        yield self.router.wait_for(lambda r: r.rejected and "not strict" in r.rejected[-1][1])
        self.assertEqual(self.router.sent[sent:], [])
        self.assertNotIn("Newcomer", self.router.connections)

    @defer.inlineCallbacks
    def test_a_malformed_startup_gets_no_answer_at_all(self):
        variants = {"19 fields": startup("Newcomer")[:-1],
                    "21 fields": startup("Newcomer") + [0],
                    "services 0": startup("Newcomer", services=0),
                    "services a string": startup("Newcomer", services="tell"),
                    "services an array": startup("Newcomer", services=["tell"]),
                    "other_data a string": startup("Newcomer")[:-1] + ["x"]}
        for index in range(6, 12):                   # password .. imud_udp_port
            packet = startup("Newcomer")
            packet[index] = str(packet[index])
            variants[f"string at {index}"] = packet
        for index in range(12, 18):                  # mudlib .. admin_email
            packet = startup("Newcomer")
            packet[index] = 7
            variants[f"int at {index}"] = packet
        newcomer = yield self.connect(RawClient("Newcomer"))
        sent = len(self.router.sent)
        for label, packet in variants.items():
            rejected = len(self.router.rejected)
            newcomer.send(packet)
            yield self.router.wait_for(lambda r: len(r.rejected) > rejected)
            self.assertIn("startup-req-3", self.router.rejected[-1][1], label)
        self.assertEqual(self.router.sent[sent:], [])
        self.assertEqual(newcomer.bodies, [])
        self.assertNotIn("Newcomer", self.router.muds)
        # The link is still open: a good startup on it is answered.
        newcomer.send(startup("Newcomer"))
        yield newcomer.count(1)
        self.assertEqual(lpc.decode(newcomer.bodies[0])[0], "startup-reply")

    @defer.inlineCallbacks
    def test_a_wrong_password_from_a_known_mud_gets_no_answer(self):
        password = self.router.passwords["ProbeB"]
        yield self.router.drop("ProbeB")
        yield self.b.lost
        impostor = yield self.connect(RawClient("ProbeB"))
        sent = len(self.router.sent)
        for wrong in (password + 1, -password, 999999999999 % 2 ** 31):
            impostor.send(startup("ProbeB", password=wrong))
        yield self.router.wait_for(lambda r: len([x for x in r.rejected if x[1] == "wrong password"]) == 3)
        self.assertEqual(self.router.sent[sent:], [])
        self.assertNotIn("ProbeB", self.router.connections)
        self.assertEqual(self.router.passwords["ProbeB"], password)


class FloodControlTests(RawPair):
    """Weighted packets per wall-clock second, as the Dead Souls router counts."""

    def make_router(self):
        self.clock = task.Clock()
        self.clock.advance(1000.5)
        return self.start_router(clock=self.clock, flood_control=True)

    def auth(self, client, user=0):
        return ["auth-mud-req", 5, client.name, user, client.name, 0]

    @defer.inlineCallbacks
    def test_the_count_restarts_at_each_wall_clock_second(self):
        # Late in one second, then early in the next: 20 packets within
        # 0.2 s, yet never more than 10 in one wall-clock second.
        self.clock.advance(1001.9 - self.clock.seconds())
        for _ in range(10):
            self.a.send(self.auth(self.a, "one"))
        yield self.a.count(10)
        self.clock.advance(0.2)
        for _ in range(10):
            self.a.send(self.auth(self.a, "two"))
        yield self.a.count(20)
        self.assertEqual(self.router.flood_blocked, {})
        self.assertEqual(self.router.rejected, [])

    @defer.inlineCallbacks
    def test_a_second_startup_in_one_second_counts_six_more(self):
        self.clock.advance(1003.0 - self.clock.seconds())
        self.a.send(self.auth(self.a))                  # 1
        self.a.send(startup("ProbeA", password=self.router.passwords["ProbeA"]))  # 7
        yield self.a.count(1)
        replies = yield self.a.count(4)                  # the startup's answer
        self.assertIn("startup-reply", [lpc.decode(b)[0] for b in replies.bodies])
        sent = len(self.router.sent)
        self.a.send(startup("ProbeA", password=self.router.passwords["ProbeA"]))  # 13: blocked
        yield self.router.wait_for(lambda r: "ProbeA" in r.flood_blocked)
        yield self.a.count(len(self.a.bodies) + 1)
        error = lpc.decode(self.a.bodies[-1])
        self.assertEqual(error[6], "not-allowed")
        self.assertEqual([p[0] for _, p in self.router.sent[sent:]], ["error"])

    @defer.inlineCallbacks
    def test_channel_listen_counts_nothing(self):
        self.clock.advance(1005.0 - self.clock.seconds())
        for _ in range(50):
            self.a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "dchat", 1])
            self.a.send(["channel-listen", 5, "ProbeA", 0, "*test", 0, "dchat", 0])
        for _ in range(10):
            self.a.send(self.auth(self.a))
        yield self.a.count(10)
        self.assertEqual(self.router.flood_blocked, {})
        self.a.send(self.auth(self.a))                  # the 11th counted
        yield self.router.wait_for(lambda r: "ProbeA" in r.flood_blocked)


# Text a MUD may well hand the gateway: quotes and backslashes, a newline,
# non-ASCII, Pinkfish colour, the $N/$O markers, and nothing at all.
AWKWARD = ['say "hi" \\o/ \\"q\\"', "line one\nline two", "café ☕ 日本語 Ærø",
           "%^RED%^red%^RESET%^ %^B_BLUE%^%^BOLD%^x%^RESET%^", "$N waves at $O.", ""]

# Every packet type the gateway writes, and what makes it write one below.
GATEWAY_TYPES = {
    "startup-req-3", "channel-listen", "tell", "emoteto", "channel-m", "channel-e", "channel-t",
    "who-req", "who-reply", "finger-req", "finger-reply", "locate-req", "locate-reply",
    "chan-who-req", "chan-who-reply", "chan-user-reply", "error", "auth-mud-req",
    "auth-mud-reply", "channel-add", "channel-admin", "channel-remove", "shutdown"}


class GatewayPacketTests(unittest.TestCase):
    """Whatever the gateway writes, a strict FluffOS router reads."""

    @defer.inlineCallbacks
    def call_text(self, client, method, params):
        """Calls ``method``; an empty text the API refuses is no failure
        here (nothing reached the router), anything else must succeed."""
        try:
            result = yield client.call(method, params)
        except RPCFailure as failure:
            if failure.code == -32602 and "" in params.values():
                return None
            raise
        return result

    @defer.inlineCallbacks
    def test_every_packet_the_gateway_sends_is_read_by_the_strict_router(self):
        loop = make_loop(self)
        awkward_mud = {"mudlib": AWKWARD[0], "base_mudlib": AWKWARD[2], "driver": AWKWARD[3],
                       "mud_type": "", "open_status": AWKWARD[1], "admin_email": AWKWARD[4]}
        fast_keepalive = {"router": {"keepalive_interval": 0.2, "keepalive_timeout": 5}}
        pair = yield start_pair(loop, a=fast_keepalive, b=dict(fast_keepalive, mud=awkward_mud))
        ca, cb, router = pair.ca, pair.cb, pair.router

        bob = player("bob", visname=AWKWARD[2], title=AWKWARD[0], race=AWKWARD[1],
                     guild=AWKWARD[3], location="", status="", level="", channels=["dchat"])
        bare = {"name": "zed"}  # every optional field missing: sent as 0
        yield cb.call("presence_sync", {"users": [bob, bare]})
        for client in (ca, cb):
            yield client.call("channel_join", {"channel": "dchat"})
        yield router.wait_for(lambda r: r.listening.get("dchat") == {A, B})

        for text in AWKWARD:
            base = {"from_user": "alice", "visname": text}
            yield self.call_text(ca, "tell", dict(base, target_mud=B, target_user="bob", message=text))
            yield self.call_text(ca, "emoteto", dict(base, target_mud=B, target_user="bob", emote=text))
            yield self.call_text(ca, "channel_send", dict(base, channel="dchat", message=text))
            yield self.call_text(ca, "channel_emote", dict(base, channel="dchat", emote=text))
            yield self.call_text(ca, "channel_target", dict(
                base, channel="dchat", target_mud=B, target_user="bob", target_visname=text,
                message_others=text, message_target=text))

        # An empty visname with a message.
        yield self.call_text(ca, "tell", {"target_mud": B, "target_user": "bob", "from_user": "alice",
                                          "visname": "", "message": "x"})
        yield self.call_text(ca, "channel_send", {"channel": "dchat", "from_user": "alice",
                                                  "visname": "", "message": "x"})

        # Queries one way, answers (from the presence snapshot) the other.
        for target_user in ("bob", "zed", "nobody"):
            try:
                yield ca.call("finger", {"target_mud": B, "target_user": target_user,
                                         "from_user": "alice", "timeout": 2})
            except RPCFailure as failure:   # nobody: error unk-user from MudB
                self.assertEqual(target_user, "nobody", failure.error)
        yield ca.call("who", {"target_mud": B, "from_user": "alice", "timeout": 2})
        yield ca.call("locate", {"target_user": "bob", "from_user": "alice", "timeout": 0.5})
        yield ca.call("channel_who", {"channel": "dchat", "target_mud": B, "timeout": 2})
        yield self.call_text(ca, "tell", {"target_mud": B, "target_user": "nobody", "from_user": "alice",
                                          "visname": "Alice", "message": "hi"})

        # Requests only other MUDs send: the router writes them to MudB.
        for request in (["chan-user-req", 5, A, 0, B, 0, "bob"],
                        ["chan-user-req", 5, A, 0, B, 0, "zed"],
                        ["chan-user-req", 5, A, 0, B, 0, "nobody"],
                        ["auth-mud-req", 5, A, 0, B, 0],
                        ["no-such-type", 5, A, "alice", B, 0]):
            router.send_packet(B, request)
        yield pair.wait_received(B, "chan-user-reply", 2)
        yield pair.wait_received(B, "auth-mud-reply")
        yield router.wait_for(lambda r: len([p for m, p in r.received if m == B and p[0] == "error"]) >= 4)

        # Channel administration, then leaving.
        yield ca.call("channel_admin", {"channel": "awk_chan", "action": "add", "type": 0})
        yield router.wait_for(lambda r: "awk_chan" in r.channels)
        yield gateway_sees(pair.a, lambda: "awk_chan" in pair.a.gateway.lists.channels, "chanlist has awk_chan")
        yield ca.call("channel_admin", {"channel": "awk_chan", "action": "ban", "muds": [B]})
        yield ca.call("channel_admin", {"channel": "awk_chan", "action": "unban", "muds": [B]})
        yield ca.call("channel_admin", {"channel": "awk_chan", "action": "remove"})
        yield ca.call("channel_leave", {"channel": "dchat"})
        yield pair.wait_received(A, "channel-remove")
        yield pair.wait_received(A, "channel-admin", 2)
        yield router.wait_for(lambda r: r.listening.get("dchat") == {B})

        # The keepalive to ourselves, then a graceful stop.
        yield pair.wait_received(A, "auth-mud-req")
        yield loop.stop_gateway(pair.b)
        yield pair.wait_received(B, "shutdown")

        self.assertEqual(router.rejected, [])
        sent_types = {p[0] for mud, p in router.received if mud in (A, B)}
        self.assertEqual(GATEWAY_TYPES - sent_types, set())
        # Every awkward text reached the router, and MudB's listeners, intact.
        messages = [p[8] for p in pair.received(A, "channel-m")]
        self.assertEqual([m for m in AWKWARD if m] + ["x"], messages)

    @defer.inlineCallbacks
    def test_a_filtered_channel_the_gateway_hosts_carries_other_muds_messages(self):
        loop = make_loop(self)
        pair = yield start_pair(loop)
        ca, cb, router = pair.ca, pair.cb, pair.router
        yield ca.call("channel_admin", {"channel": "hosted", "action": "add", "type": 2})
        # The router announces a new channel with type ({}), read as 0; the
        # next chanlist (here: another channel made) shows the real type.
        yield ca.call("channel_admin", {"channel": "another", "action": "add", "type": 0})
        yield gateway_sees(pair.a, lambda: "another" in pair.a.gateway.lists.channels, "chanlist has another")
        yield ca.call("channel_admin", {"channel": "hosted", "action": "admit", "muds": [B]})
        yield pair.wait_received(A, "channel-admin")
        for client in (ca, cb):
            yield client.call("channel_join", {"channel": "hosted"})
        yield router.wait_for(lambda r: r.listening.get("hosted") == {A, B})

        # MudB speaks: the router asks MudA, the host, which passes it on.
        yield cb.call("channel_send", {"channel": "hosted", "from_user": "bob", "visname": "Bob",
                                       "message": 'filtered "text" \\ café'})
        event = yield ca.inbox.wait("channel_message", lambda e: e["channel"] == "hosted")
        self.assertEqual((event["from_mud"], event["message"]), (B, 'filtered "text" \\ café'))
        [reply] = pair.received(A, "chan-filter-reply")
        self.assertEqual(reply[:7], ["chan-filter-reply", 5, A, 0, router.name, 0, "hosted"])
        self.assertEqual(reply[7], pair.received(B, "channel-m")[-1])
        self.assertEqual(router.rejected, [])
