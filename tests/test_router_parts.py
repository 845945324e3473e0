"""The in-repo router's parts on their own (test_router.py drives the
whole router over loopback): startup checks, flood counting, the mudlist
and the writer."""

from types import SimpleNamespace

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import lpc
from intermud3.testing.router_flood import FloodControl
from intermud3.testing.router_mudlist import RouterMudlist
from intermud3.testing.router_startup import header_problem, startup_problem
from intermud3.testing.router_wire import RouterWriter
from tests.test_router import startup


def link(mud=None):
    return SimpleNamespace(mud=mud, peer="127.0.0.1:1", transport=StringTransport(),
                           max_send_bytes=1 << 20)


def frames(conn):
    """The packets written to ``conn``."""
    data, packets = conn.transport.value(), []
    while data:
        size = int.from_bytes(data[:4], "big")
        packets.append(lpc.decode(data[4:4 + size].rstrip(b"\x00")))
        data = data[4 + size:]
    return packets


class StartupChecksTests(SynchronousTestCase):
    def test_a_good_startup_passes(self):
        self.assertIsNone(startup_problem(startup("ProbeA"), "*test"))

    def test_each_problem_is_named(self):
        self.assertIn("19 elements", startup_problem(startup("ProbeA")[:-1], "*test"))
        self.assertIn("addressed to", startup_problem(startup("ProbeA"), "*other"))
        bad = startup("ProbeA")
        bad[6] = "0"
        self.assertIn("element 6 is not an int", startup_problem(bad, "*test"))
        bad = startup("ProbeA")
        bad[18] = 0
        self.assertIn("services", startup_problem(bad, "*test"))

    def test_header(self):
        self.assertIsNone(header_problem(["tell", 5, "A", "a", "B", "b"]))
        self.assertIn("ttl", header_problem(["tell", "5", "A", "a", "B", "b"]))
        self.assertIn("originator_mud", header_problem(["tell", 5, "", "a", "B", "b"]))
        self.assertIn("target_mud", header_problem(["tell", 5, "A", "a", 1, "b"]))


class FloodControlTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.rejected = []
        self.out = RouterWriter("*test")
        self.flood = FloodControl(self.clock, self.out,
                                  lambda conn, reason, raw: self.rejected.append(reason))
        self.conn = link("ProbeA")

    def tell(self):
        return self.flood.flooded(self.conn, ["tell", 5, "ProbeA", "a", "B", "b"], b"")

    def test_over_the_limit_in_one_second_blocks_for_block_seconds(self):
        self.assertEqual([self.tell() for _ in range(self.flood.limit)], [False] * self.flood.limit)
        self.assertTrue(self.tell())
        self.assertEqual(self.flood.blocked, {"ProbeA": self.flood.block_seconds})
        self.assertEqual([p[6] for p in frames(self.conn)], ["not-allowed"])
        self.clock.advance(1)
        self.assertTrue(self.tell())           # still blocked
        self.clock.advance(self.flood.block_seconds)
        self.assertFalse(self.tell())
        self.assertEqual(self.flood.blocked, {})

    def test_the_count_starts_again_each_second(self):
        for _ in range(3):
            for _ in range(self.flood.limit):
                self.assertFalse(self.tell())
            self.clock.advance(1)
        self.assertEqual(self.rejected, [])


class RouterMudlistTests(SynchronousTestCase):
    def test_changes_since_an_id_and_announcements_to_every_connection(self):
        one, two = link("One"), link("Two")
        changed = []
        mudlist = RouterMudlist({"One": one, "Two": two}, RouterWriter("*test"),
                                lambda: changed.append(1))
        mudlist.started("One", [-1] + [0] * 12)
        first = mudlist.mudlist_id
        mudlist.started("Two", [-1] + [0] * 12)
        self.assertEqual([name for name, _ in mudlist.changes_since(first)], ["Two"])
        mudlist.mark("One", 0)
        self.assertEqual(mudlist.mudlist_id, 3)
        for conn in (one, two):
            [packet] = frames(conn)
            self.assertEqual(packet[0], "mudlist")
            self.assertEqual(packet[6:], [3, {"One": [0] + [0] * 12}])
        self.assertEqual(changed, [1])


class RouterWriterTests(SynchronousTestCase):
    def test_silent_writes_nothing_unless_forced(self):
        out = RouterWriter("*test")
        conn = link("A")
        out.silent = True
        self.assertFalse(out.write(conn, out.packet("mudlist", "A", 0, 1, {})))
        self.assertTrue(out.write(conn, out.packet("mudlist", "A", 0, 1, {}), force=True))
        self.assertEqual(len(out.sent), 1)

    def test_a_newline_goes_out_as_a_raw_cr(self):
        out = RouterWriter("*test")
        conn = link("A")
        out.write(conn, ["tell", 5, "*test", 0, "A", "a", "B", "line one\nline two"])
        self.assertIn(b"line one\rline two", conn.transport.value())

    def test_too_large_is_not_sent(self):
        out = RouterWriter("*test")
        conn = link("A")
        conn.max_send_bytes = 20
        self.assertFalse(out.write(conn, out.packet("mudlist", "A", 0, 1, {"x" * 50: 0})))
        self.assertEqual(conn.transport.value(), b"")
