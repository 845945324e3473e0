"""The fast reader of whole request frames (api/wsframes.py): it reads the
common shape exactly as Autobahn would and leaves every other frame to
Autobahn, so a stream of mixed frames gives the same messages, pongs and
close codes with it and without it."""

import os
import random

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.xormasker import create_xor_masker
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from intermud3.api.wsframes import WholeFrameReader, unmask, whole_text_frame

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def client_frame(payload, opcode=1, fin=True, rsv=0, mask=b"\x01\x02\x03\x04", length_bits=None):
    """A client frame as RFC 6455 section 5.2 lays it out (masked unless
    ``mask`` is None); ``length_bits`` forces a (maybe non-minimal) encoding."""
    size = len(payload)
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    bits = length_bits or (7 if size < 126 else 16 if size < 0x10000 else 64)
    masked = 0x80 if mask is not None else 0
    if bits == 7:
        header = bytes((first, masked | size))
    elif bits == 16:
        header = bytes((first, masked | 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, masked | 127)) + size.to_bytes(8, "big")
    if mask is None:
        return header + payload
    return header + mask + unmask(mask, payload)


class Transport(StringTransport):
    """Autobahn unregisters a producer it never registered when it drops the connection."""

    def unregisterProducer(self):
        self.producer = None


class Recorder:
    """What a server protocol was given and what it answered, and how many
    frames Autobahn's own reader began."""

    autobahn_frames = 0

    def onFrameBegin(self):
        self.autobahn_frames += 1
        super().onFrameBegin()

    def onMessage(self, payload, isBinary):
        self.messages.append((payload, isBinary))

    def onPong(self, payload):
        self.messages.append(("pong", payload))


class PlainServer(Recorder, WebSocketServerProtocol):
    pass


class FastServer(Recorder, WholeFrameReader, WebSocketServerProtocol):
    pass


def open_server(protocol_class, max_message=0):
    factory = WebSocketServerFactory()
    factory.setProtocolOptions(maxMessagePayloadSize=max_message, maxFramePayloadSize=max_message,
                               openHandshakeTimeout=0, closeHandshakeTimeout=0,
                               failByDrop=False)
    server = protocol_class()
    server.factory = factory
    server.messages = []
    transport = Transport()
    server.makeConnection(transport)
    server.dataReceived(UPGRADE)
    assert server.state == server.STATE_OPEN, transport.value()
    transport.clear()
    return server, transport


def feed(protocol_class, stream, chunks, max_message=0):
    """Every message and the bytes written back after ``stream`` arrives cut at ``chunks``."""
    server, transport = open_server(protocol_class, max_message)
    start = 0
    for end in chunks + [len(stream)]:
        if server.state == server.STATE_CLOSED:
            break
        server.dataReceived(stream[start:end])
        start = end
    return server.messages, transport.value(), server.state


class WholeTextFrameTests(unittest.TestCase):

    def test_reads_seven_and_sixteen_bit_lengths(self):
        for size in (0, 1, 125, 126, 127, 4096, 65535):
            payload = bytes(random.Random(size).choice(b"abc{}\":") for _ in range(size))
            frame = client_frame(payload, mask=os.urandom(4))
            self.assertEqual(whole_text_frame(b"xx" + frame, 2, 0xFFFF),
                             (payload, 2 + len(frame)), size)

    def test_leaves_every_other_shape_to_autobahn(self):
        good = b'{"jsonrpc":"2.0","method":"ping","id":1}'
        cases = {
            "binary": client_frame(good, opcode=2),
            "continuation": client_frame(good, opcode=0),
            "not final": client_frame(good, fin=False),
            "ping": client_frame(b"hi", opcode=9),
            "close": client_frame(b"\x03\xe8", opcode=8),
            "reserved bit": client_frame(good, rsv=4),
            "unmasked": client_frame(good, mask=None),
            "16-bit length under 126": client_frame(good, length_bits=16),
            "64-bit length": client_frame(b"x" * 70000),
            "64-bit length, small": client_frame(good, length_bits=64),
            "invalid UTF-8": client_frame(b'"\xed\xa0\x80"'),
            "cut short": client_frame(good)[:-1],
            "header cut short": client_frame(b"x" * 300)[:5],
            "over the bound": client_frame(b"x" * 201),
        }
        for name, frame in cases.items():
            self.assertIsNone(whole_text_frame(frame, 0, 200), name)

    def test_unmask_is_autobahns(self):
        rng = random.Random(7)
        for size in (0, 1, 3, 4, 5, 250, 4097):
            mask, payload = rng.randbytes(4), rng.randbytes(size)
            expected = create_xor_masker(mask, size).process(payload) if size else b""
            self.assertEqual(unmask(mask, payload), expected, size)


class SameAsAutobahnTests(unittest.TestCase):
    """Random streams of mixed frames, cut at random points: the fast reader
    gives exactly what Autobahn alone gives."""

    def random_stream(self, rng):
        frames = []
        for _ in range(rng.randint(1, 12)):
            kind = rng.random()
            size = rng.choice((0, 5, 125, 126, 300, 65535, 65536))
            text = "".join(rng.choice("aé€𝄞{}") for _ in range(size // 3)).encode("utf-8")
            mask = rng.randbytes(4)
            if kind < 0.6:
                frames.append(client_frame(text, mask=mask))
            elif kind < 0.7:
                frames.append(client_frame(b"ping!", opcode=9, mask=mask))
            elif kind < 0.8:
                cut = rng.randint(0, len(text))
                frames.append(client_frame(text[:cut], fin=False, mask=mask))
                frames.append(client_frame(b"p", opcode=9, mask=mask))
                frames.append(client_frame(text[cut:], opcode=0, mask=mask))
            elif kind < 0.85:
                frames.append(client_frame(text, opcode=2, mask=mask))
            elif kind < 0.9:
                frames.append(client_frame(text + b"\xc0\xaf", mask=mask))
            elif kind < 0.95:
                frames.append(client_frame(text, length_bits=64, mask=mask))
            else:
                frames.append(client_frame(b"\x03\xe8", opcode=8, mask=mask))
        return b"".join(frames)

    def test_random_streams(self):
        rng = random.Random(2026)
        for case in range(100):
            stream = self.random_stream(rng)
            chunks = sorted(rng.sample(range(1, len(stream)), min(rng.randint(0, 6), len(stream) - 1)))
            bound = rng.choice((0, 200, 70000))
            plain = feed(PlainServer, stream, chunks, bound)
            fast = feed(FastServer, stream, chunks, bound)
            self.assertEqual(fast, plain, f"case {case}, cuts {chunks}, bound {bound}")

    def test_a_burst_of_requests_is_read_without_autobahns_frame_reader(self):
        requests = [b'{"id":%d}' % n for n in range(40)]
        stream = b"".join(client_frame(r, mask=os.urandom(4)) for r in requests)
        server, transport = open_server(FastServer)
        server.dataReceived(stream)
        self.assertEqual(server.messages, [(r, False) for r in requests])
        self.assertEqual(server.autobahn_frames, 0)
        self.assertEqual(transport.value(), b"")
        # A ping among them is Autobahn's; the requests around it are not.
        server.dataReceived(client_frame(b"1") + client_frame(b"p", opcode=9) + client_frame(b"2"))
        self.assertEqual(server.messages[-2:], [(b"1", False), (b"2", False)])
        self.assertEqual(server.autobahn_frames, 1)
        self.assertTrue(transport.value().startswith(b"\x8a\x01p"))   # the pong
