"""The in-repo router behaves like the real Dead Souls router.

Every gateway test runs against ``I3Router``; if it drifted from what a real
router does, those tests would prove nothing. Here:

* ``ReplayTests`` drives ``I3Router`` with the very frames two clients,
  ProbeA and ProbeB, sent to a real Dead Souls router (the capture in
  ``../shared/i3-vectors/``), in the same order, from raw MudMode
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

import struct

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import Int32StringReceiver
from twisted.trial import unittest

from intermud3 import lpc
from intermud3.mudmode import frame
from intermud3.testing.router import I3Router
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
