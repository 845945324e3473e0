"""MudMode framing over StringTransport (I3-PROTOCOL.md section 1)."""

import socket
import struct
import tracemalloc

from hypothesis import given, settings, strategies as st

from twisted.internet import defer, protocol as twisted_protocol, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from twisted.logger import Logger
from twisted.trial.unittest import SynchronousTestCase, TestCase

from intermud3 import lpc, mudmode
from intermud3.mudmode import FrameTooLarge, MudModeProtocol, frame
from tests.vectors import load_vectors


class RecordingProtocol(MudModeProtocol):
    def __init__(self):
        self.packets = []
        self.failures = []

    def packetReceived(self, value):
        self.packets.append(value)

    def decodeFailed(self, error, raw):
        self.failures.append((error, raw))


class OptionTransport(StringTransport):
    """A transport that, like a TCP one, takes socket options."""

    def __init__(self, fail=False):
        super().__init__()
        self.options = []
        self.fail = fail

    def setTcpNoDelay(self, enabled):
        if self.fail:
            raise OSError("socket closed")
        self.options.append(("nodelay", enabled))

    def setTcpKeepAlive(self, enabled):
        if self.fail:
            raise OSError("socket closed")
        self.options.append(("keepalive", enabled))


def connected(protocol=None, transport=None):
    protocol = protocol if protocol is not None else RecordingProtocol()
    transport = transport if transport is not None else StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def raw_frame(body):
    return struct.pack("!I", len(body)) + body


class FrameTests(SynchronousTestCase):
    def test_frame_layout(self):
        self.assertEqual(frame(123), bytes.fromhex("0000000431323300"))
        self.assertEqual(frame([]), b"\x00\x00\x00\x05({})\x00")

    def test_frame_reproduces_router_accepted_frames(self):
        for v in load_vectors():
            if v.dir != "to-router":
                continue
            expected = v.frame.replace(b"\r", b"\n")  # we send LF for a newline
            self.assertEqual(frame(v.decoded), expected, f"line {v.line}")

    def test_frame_refuses_values_without_lpc_form(self):
        self.assertRaises(lpc.LPCError, frame, [2 ** 40])


class ReceiveTests(SynchronousTestCase):
    def from_router(self):
        return [v for v in load_vectors() if v.dir == "from-router"]

    def test_vectors_fed_in_bulk(self):
        vectors = self.from_router()
        protocol, transport = connected()
        stream = b"".join(v.frame for v in vectors)
        protocol.dataReceived(stream)
        self.assertEqual(protocol.packets, [v.decoded for v in vectors])
        self.assertEqual(protocol.failures, [])
        self.assertEqual(protocol.bytes_received, len(stream))
        self.assertFalse(transport.disconnecting)

    def test_vectors_fed_one_byte_at_a_time(self):
        vectors = self.from_router()[:12]
        protocol, transport = connected()
        stream = b"".join(v.frame for v in vectors)
        for i in range(len(stream)):
            protocol.dataReceived(stream[i:i + 1])
        self.assertEqual(protocol.packets, [v.decoded for v in vectors])
        self.assertEqual(protocol.bytes_received, len(stream))

    def test_frame_without_trailing_nul_is_accepted(self):
        protocol, _ = connected()
        protocol.dataReceived(raw_frame(b'({"x",1,})'))
        self.assertEqual(protocol.packets, [["x", 1]])

    def test_frame_split_across_the_length_prefix(self):
        protocol, _ = connected()
        data = frame(["a", 1]) + frame(["b", 2])
        protocol.dataReceived(data[:2])
        protocol.dataReceived(data[2:15])
        protocol.dataReceived(data[15:])
        self.assertEqual(protocol.packets, [["a", 1], ["b", 2]])

    def test_malformed_frame_is_skipped_and_the_next_arrives(self):
        protocol, transport = connected()
        bad = raw_frame(b"({1,\x00")
        protocol.dataReceived(bad + frame(["good", 1]))
        self.assertEqual(protocol.packets, [["good", 1]])
        self.assertEqual(len(protocol.failures), 1)
        error, raw = protocol.failures[0]
        self.assertIsInstance(error, lpc.LPCError)
        self.assertEqual(raw, b"({1,\x00")
        self.assertEqual(protocol.decode_failures, 1)
        self.assertFalse(transport.disconnecting)

    def test_empty_frame_is_a_decode_failure(self):
        protocol, transport = connected()
        protocol.dataReceived(b"\x00\x00\x00\x00" + frame(7))
        self.assertEqual(protocol.packets, [7])
        self.assertEqual(protocol.decode_failures, 1)
        self.assertFalse(transport.disconnecting)

    def test_depth_bomb_frame_is_skipped(self):
        protocol, transport = connected()
        protocol.dataReceived(raw_frame(b"({" * 10000 + b"\x00") + frame(1))
        self.assertEqual(protocol.packets, [1])
        self.assertEqual(protocol.decode_failures, 1)
        self.assertFalse(transport.disconnecting)

    def test_default_decode_failed_logs_and_keeps_the_link(self):
        events = []
        self.patch(mudmode, "_log", Logger(observer=events.append))
        protocol = MudModeProtocol()
        transport = StringTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(raw_frame(b"})\x00"))
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["size"], 3)
        self.assertIn("unbalanced", events[0]["error"])
        self.assertFalse(transport.disconnecting)

    def test_a_failing_handler_is_logged_and_the_link_stays_up(self):
        class Fragile(RecordingProtocol):
            def packetReceived(self, value):
                if value == "boom":
                    raise KeyError(value)
                super().packetReceived(value)

        protocol, transport = connected(Fragile())
        protocol.dataReceived(frame("boom") + frame("next"))
        self.assertEqual(protocol.packets, ["next"])
        self.assertEqual(protocol.handler_failures, 1)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_max_frame_bytes_sets_the_receive_bound(self):
        protocol = RecordingProtocol()
        self.assertEqual(protocol.MAX_LENGTH, 2 * 1024 * 1024)
        protocol.max_frame_bytes = 100
        self.assertEqual(protocol.MAX_LENGTH, 100)

    def test_frame_of_exactly_the_limit_is_accepted(self):
        protocol = RecordingProtocol()
        protocol.max_frame_bytes = 20
        connected(protocol)
        body = b'"' + b"x" * 17 + b'"\x00'
        self.assertEqual(len(body), 20)
        protocol.dataReceived(raw_frame(body))
        self.assertEqual(protocol.packets, ["x" * 17])

    def test_oversized_prefix_drops_the_link(self):
        protocol = RecordingProtocol()
        protocol.max_frame_bytes = 100
        _, transport = connected(protocol)
        protocol.dataReceived(frame(1) + struct.pack("!I", 101) + b"({")
        self.assertEqual(protocol.packets, [1])
        self.assertTrue(transport.disconnecting)
        self.assertEqual(protocol._unprocessed, b"")
        # Whatever else arrives while closing is ignored, not buffered.
        protocol.dataReceived(frame(2))
        self.assertEqual(protocol.packets, [1])
        self.assertEqual(protocol._unprocessed, b"")

    def test_huge_prefix_is_refused_without_allocating(self):
        protocol, transport = connected()
        tracemalloc.start()
        try:
            protocol.dataReceived(b"\xff\xff\xff\xff" + b"x" * 100)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        self.assertTrue(transport.disconnecting)
        self.assertLess(peak, 64 * 1024)
        self.assertEqual(protocol.packets, [])


class SendTests(SynchronousTestCase):
    def test_send_packet_writes_one_frame_and_returns_its_size(self):
        protocol, transport = connected()
        packet = ["tell", 5, "A", "alice", "B", "bob", "Alice", "hi"]
        size = protocol.sendPacket(packet)
        self.assertEqual(transport.value(), frame(packet))
        self.assertEqual(size, len(frame(packet)))
        self.assertEqual(protocol.bytes_sent, size)
        protocol.sendPacket(1)
        self.assertEqual(protocol.bytes_sent, size + 6)

    def test_send_packet_over_the_bound_writes_nothing(self):
        protocol, transport = connected()
        packet = ["tell", 5, "A", "alice", "B", "bob", "Alice", "x" * 9000]
        with self.assertRaises(FrameTooLarge) as caught:
            protocol.sendPacket(packet)
        self.assertEqual(caught.exception.limit, 8192)
        self.assertEqual(caught.exception.size, len(frame(packet)))
        self.assertIsInstance(caught.exception, ValueError)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(protocol.bytes_sent, 0)

    def test_send_bound_counts_the_whole_frame(self):
        protocol, transport = connected()
        protocol.max_send_bytes = len(frame("abc"))
        protocol.sendPacket("abc")
        self.assertRaises(FrameTooLarge, protocol.sendPacket, "abcd")
        self.assertEqual(transport.value(), frame("abc"))

    def test_send_packet_refuses_unencodable_values_without_writing(self):
        protocol, transport = connected()
        self.assertRaises(lpc.LPCError, protocol.sendPacket, ["x", 2 ** 40])
        self.assertEqual(transport.value(), b"")


class ConnectionTests(SynchronousTestCase):
    def test_socket_options_set_on_connect(self):
        transport = OptionTransport()
        connected(transport=transport)
        self.assertEqual(sorted(transport.options), [("keepalive", True), ("nodelay", True)])

    def test_transports_without_socket_options_are_fine(self):
        _, transport = connected()
        self.assertFalse(transport.disconnecting)

    def test_failing_socket_options_do_not_break_the_connection(self):
        protocol, transport = connected(transport=OptionTransport(fail=True))
        protocol.dataReceived(frame(1))
        self.assertEqual(protocol.packets, [1])


class ChunkingTests(SynchronousTestCase):
    @settings(deadline=None, max_examples=100)
    @given(st.lists(st.integers(1, 400), max_size=40), st.integers(0, 2))
    def test_any_chunking_delivers_the_same_packets(self, cuts, pause_every):
        values = [["tell", 5, "A", "a", "B", "b", "A", "x" * 300], 7, {"k": [1, 2.5]}, ["y" * 900], []]
        stream = b"".join(frame(v) for v in values) + raw_frame(b"({bad\x00") + frame("last")
        protocol, transport = connected()
        at = 0
        for i, size in enumerate(cuts + [len(stream)]):
            chunk = stream[at:at + size]
            at += size
            protocol.dataReceived(chunk)
            if pause_every and i % pause_every == 0:
                # A paused protocol holds what arrives and resumes where it was.
                protocol.pauseProducing()
                protocol.dataReceived(b"")
                protocol.resumeProducing()
        self.assertEqual(protocol.packets, values + ["last"])
        self.assertEqual(protocol.decode_failures, 1)
        self.assertEqual(protocol.bytes_received, len(stream))
        self.assertFalse(transport.disconnecting)
        self.assertEqual((protocol._unprocessed, protocol._awaiting), (b"", 0))


class LargeFrameTests(SynchronousTestCase):
    def test_large_frame_in_small_reads_is_held_as_chunks(self):
        protocol, _ = connected()
        value = ["mudlist", 5, "*r", 0, "A", 0, 1, {f"Mud{i}": [-1, "127.0.0.1", i] for i in range(3000)}]
        data = frame(value)
        self.assertGreater(len(data), 60000)
        protocol.sliced_decode_bytes = len(data)  # decoded at once (SlicedDecodeTests: slices)
        for i in range(0, len(data) - 1, 1460):
            protocol.dataReceived(data[i:min(i + 1460, len(data) - 1)])
            # The partial frame waits in a list, not in one growing buffer.
            self.assertEqual(protocol._unprocessed, b"")
        self.assertEqual(protocol.packets, [])
        protocol.dataReceived(data[-1:])
        self.assertEqual(protocol.packets, [value])
        self.assertEqual(protocol._awaiting, 0)


def big_mudlist(muds):
    """A mudlist packet of `muds` entries, about 100 bytes of LPC each."""
    entries = {f"Mud{i:05d}": [-1, "127.0.0.1", 4000 + i, 0, 0, "Lib", "Lib 1", "FluffOS",
                               "LP", "open", "admin@example.org", {"tell": 1, "who": 1}, 0]
               for i in range(muds)}
    return ["mudlist", 5, "*r", 0, "A", 0, 1, entries]


class SlicedDecodeTests(SynchronousTestCase):
    """Frames over sliced_decode_bytes: a slice per clock turn, in order."""

    def setUp(self):
        self.clock = Clock()
        self.protocol = RecordingProtocol()
        self.protocol.clock = self.clock
        self.protocol.sliced_decode_bytes = 64 * 1024
        self.protocol.decode_slice_bytes = 16 * 1024
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.big = big_mudlist(2000)
        self.big_frame = frame(self.big)
        self.assertGreater(len(self.big_frame), 200 * 1024)

    def turn(self):
        """One turn of the reactor: the calls due next, not the ones they schedule."""
        self.clock.advance(mudmode._NEXT_TURN)

    def turns_until_delivered(self, count):
        turns = 0
        while len(self.protocol.packets) + len(self.protocol.failures) < count:
            self.assertTrue(self.clock.getDelayedCalls(), "nothing left to run")
            self.turn()
            turns += 1
        return turns

    def test_a_big_frame_is_decoded_one_slice_per_turn(self):
        self.protocol.dataReceived(self.big_frame)
        self.assertEqual(self.protocol.packets, [])
        self.assertEqual(self.transport.producerState, "paused")
        turns = self.turns_until_delivered(1)
        # Each turn reads one slice (a token is never cut, so a little more).
        slices = len(self.big_frame) / self.protocol.decode_slice_bytes
        self.assertTrue(slices - 1 <= turns <= slices + 1, (turns, slices))
        self.assertEqual(self.protocol.packets, [self.big])
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_frames_at_or_under_the_bound_are_decoded_at_once(self):
        body = b'"' + b"x" * (self.protocol.sliced_decode_bytes - 3) + b'"\x00'
        self.assertEqual(len(body), self.protocol.sliced_decode_bytes)
        self.protocol.dataReceived(raw_frame(body))
        self.assertEqual(self.protocol.packets, ["x" * (len(body) - 3)])
        self.protocol.dataReceived(raw_frame(b'"y' + body[1:]))
        self.assertEqual(len(self.protocol.packets), 1)
        self.turns_until_delivered(2)

    def test_later_frames_wait_for_the_big_one_and_keep_their_order(self):
        self.protocol.dataReceived(frame("before") + self.big_frame + frame("after") + frame(1)[:3])
        self.assertEqual(self.protocol.packets, ["before"])
        self.turn()
        # More arrives while the big frame is decoded: it waits too.
        self.protocol.dataReceived(frame(1)[3:] + frame(big_mudlist(1000)) + frame("last"))
        self.turn()
        self.assertEqual(self.protocol.packets, ["before"])
        self.turns_until_delivered(4)
        self.assertEqual(self.protocol.packets, ["before", self.big, "after", 1])
        # The second big frame paused reading again and came in its turn.
        self.assertEqual(self.transport.producerState, "paused")
        self.turns_until_delivered(6)
        self.assertEqual(self.protocol.packets[4:], [big_mudlist(1000), "last"])
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(self.protocol._unprocessed, b"")

    def test_a_big_frame_arriving_in_small_reads(self):
        data = self.big_frame + frame("next")
        for at in range(0, len(data), 1460):
            self.protocol.dataReceived(data[at:at + 1460])
        self.turns_until_delivered(2)
        self.assertEqual(self.protocol.packets, [self.big, "next"])

    def test_a_malformed_big_frame_goes_to_decode_failed_like_a_small_one(self):
        body = lpc.encode(self.big)
        middle = body.index(b",", 150000) + 1  # no string here holds a comma
        broken = body[:middle] + b"@" + body[middle:] + b"\x00"
        cut_short = body[:150000] + b"\x00"
        self.protocol.dataReceived(raw_frame(broken) + raw_frame(cut_short) + frame("next"))
        self.turns_until_delivered(3)
        self.assertEqual(self.protocol.packets, ["next"])
        [(error, raw), (error2, raw2)] = self.protocol.failures
        self.assertIsInstance(error, lpc.LPCError)
        self.assertIn("unexpected b'@'", str(error))
        self.assertEqual(raw, broken)
        self.assertIsInstance(error2, lpc.LPCError)
        self.assertEqual(raw2, cut_short)
        self.assertEqual(self.protocol.decode_failures, 2)
        self.assertFalse(self.transport.disconnecting)
        self.assertEqual(self.transport.producerState, "producing")

    def test_a_depth_bomb_big_frame_is_a_decode_failure(self):
        self.protocol.dataReceived(raw_frame(b"({" * 100000 + b"\x00") + frame(2))
        self.turns_until_delivered(2)
        self.assertEqual(self.protocol.packets, [2])
        self.assertIn("deeper", str(self.protocol.failures[0][0]))

    def test_a_failing_handler_of_a_big_packet_keeps_the_link(self):
        class Fragile(RecordingProtocol):
            def packetReceived(self, value):
                if value and value[0] == "mudlist":
                    raise KeyError("mudlist")
                super().packetReceived(value)

        self.protocol = Fragile()
        self.protocol.clock = self.clock
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(self.big_frame + frame("next"))
        self.turns_until_delivered(1)
        self.assertEqual(self.protocol.packets, ["next"])
        self.assertEqual(self.protocol.handler_failures, 1)
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)

    def test_the_connection_closing_mid_decode_leaves_nothing_running(self):
        self.protocol.dataReceived(self.big_frame + frame("after"))
        self.turn()
        self.turn()
        self.assertTrue(self.clock.getDelayedCalls())
        self.protocol.connectionLost(Failure(ConnectionError("gone")))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.protocol._unprocessed, b"")
        self.clock.advance(60)
        self.assertEqual(self.protocol.packets, [])
        self.assertEqual(self.protocol.failures, [])


class LoopbackTests(TestCase):
    """One real TCP connection on 127.0.0.1: socket options and a round trip."""

    def setUp(self):
        self.server_lost = defer.Deferred()
        self.client_lost = defer.Deferred()
        self.received = defer.Deferred()
        test = self

        class Server(MudModeProtocol):
            def packetReceived(self, value):
                test.received.callback(value)

            def connectionLost(self, reason):
                test.server_lost.callback(None)

        class Client(MudModeProtocol):
            def connectionLost(self, reason):
                test.client_lost.callback(None)

        factory = twisted_protocol.Factory.forProtocol(Server)
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.Client = Client

    @defer.inlineCallbacks
    def test_socket_options_and_a_frame_over_tcp(self):
        creator = twisted_protocol.ClientCreator(reactor, self.Client)
        client = yield creator.connectTCP("127.0.0.1", self.port.getHost().port)
        self.addCleanup(self.close, client)
        handle = client.transport.getHandle()
        self.assertTrue(handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        self.assertTrue(handle.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE))
        packet = ["tell", 5, "A", "alice", "B", "bob", "Alice", "caf\u00e9\r\nok"]
        size = client.sendPacket(packet)
        value = yield self.received
        self.assertEqual(value, packet[:-1] + ["caf\u00e9\nok"])
        self.assertEqual(size, client.bytes_sent)

    @defer.inlineCallbacks
    def test_a_big_frame_over_tcp_is_decoded_in_slices_on_the_reactor(self):
        creator = twisted_protocol.ClientCreator(reactor, self.Client)
        client = yield creator.connectTCP("127.0.0.1", self.port.getHost().port)
        self.addCleanup(self.close, client)
        client.max_send_bytes = mudmode.DEFAULT_MAX_FRAME_BYTES
        packet = big_mudlist(3000)
        self.assertGreater(len(frame(packet)), 4 * mudmode.DEFAULT_SLICED_DECODE_BYTES)
        client.sendPacket(packet)
        value = yield self.received
        self.assertEqual(value, packet)

    def close(self, client):
        # Wait for both ends to go, pass or fail, so the reactor stays clean.
        client.transport.loseConnection()
        return defer.gatherResults([self.client_lost, self.server_lost])
