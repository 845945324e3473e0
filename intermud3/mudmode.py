"""MudMode framing: one LPC value per length-prefixed, NUL-terminated frame.

A frame is a 4-byte unsigned big-endian length (counting the trailing
NUL), the LPC text, then NUL (I3-PROTOCOL.md section 1). Twisted's
Int32StringReceiver does the framing; this module bounds it, decodes each
frame with ``lpc.decode`` and keeps a bad frame from taking the link down.

A big frame (a full mudlist can reach the 2 MiB receive bound) would hold
the reactor for tens of milliseconds even in C, so a frame over
``sliced_decode_bytes`` is decoded in slices, one per reactor turn, while
the transport's reading is paused; the frames behind it wait, in order.
"""

import struct

from twisted.internet.task import Cooperator, TaskStopped
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.protocols.basic import Int32StringReceiver

from intermud3 import lpc

__all__ = ["frame", "FrameTooLarge", "MudModeProtocol",
           "DEFAULT_MAX_FRAME_BYTES", "DEFAULT_MAX_SEND_BYTES",
           "DEFAULT_SLICED_DECODE_BYTES", "DEFAULT_DECODE_SLICE_BYTES"]

_log = Logger()

# Length prefixes that are really the first bytes of another protocol's
# answer: a router address that points at a web or SSH server.
_FOREIGN_PREFIXES = {
    b"HTTP": "the peer answered in HTTP: check the host and port",
    b"SSH-": "the peer is an SSH server: check the host and port",
}


def foreign_protocol(length):
    """Words for a length prefix that spells another protocol's greeting
    (1213486160 is "HTTP"), or None."""
    return _FOREIGN_PREFIXES.get(_PREFIX.pack(length)) if 0 <= length < 2 ** 32 else None


# A full mudlist can run to hundreds of KB; Twisted's default 99,999 is too small.
DEFAULT_MAX_FRAME_BYTES = 2 * 1024 * 1024
# Dead Souls peers drop the link on frames over 10,000 bytes.
DEFAULT_MAX_SEND_BYTES = 8192

_PREFIX = struct.Struct("!I")

# Frames over this are decoded in slices; smaller ones at once (a 64 KiB
# frame takes well under a millisecond in C, about 15 ms in pure Python).
DEFAULT_SLICED_DECODE_BYTES = 64 * 1024
# Bytes decoded per reactor turn, under 1 ms of work with either codec
# (3 ms on a busy machine), well inside a 20 ms turn: C reads some 20 times
# faster than pure Python.
DEFAULT_DECODE_SLICE_BYTES = 32 * 1024 if lpc.IMPLEMENTATION == "c" else 4 * 1024
# The delay between slices: above zero, so each slice gets a turn of its own
# on any clock (twisted's Clock runs a zero-delay call scheduled while it
# advances in the same advance), as Twisted's own Cooperator does.
_NEXT_TURN = 0.00001


def frame(value):
    """The whole MudMode frame for ``value``: length, LPC text, NUL."""
    payload = lpc.encode(value) + b"\x00"
    return _PREFIX.pack(len(payload)) + payload


class FrameTooLarge(ValueError):
    """A frame is bigger than the bound that applies to it."""

    def __init__(self, size, limit):
        super().__init__(f"frame of {size} bytes is over the limit of {limit}")
        self.size = size
        self.limit = limit


class MudModeProtocol(Int32StringReceiver):
    """A MudMode peer. Subclasses override ``packetReceived(value)``.

    ``max_frame_bytes`` bounds what we accept: a larger length prefix is a
    protocol error and drops the link before anything is allocated.
    ``max_send_bytes`` bounds what we write, prefix included.
    ``bytes_received`` / ``bytes_sent`` count raw bytes on this connection;
    ``decode_failures`` counts frames skipped as undecodable and
    ``handler_failures`` packets whose ``packetReceived`` raised (logged;
    the link stays up).

    A frame over ``sliced_decode_bytes`` is decoded ``decode_slice_bytes``
    at a time, one slice per turn of ``clock`` (the global reactor when
    None), with reading paused until its packet is delivered, so the frames
    after it keep their order. Subclasses overriding ``connectionLost`` call
    the base one, which stops such a decode.
    """

    max_frame_bytes = DEFAULT_MAX_FRAME_BYTES
    max_send_bytes = DEFAULT_MAX_SEND_BYTES
    max_depth = lpc.DEFAULT_MAX_DEPTH
    sliced_decode_bytes = DEFAULT_SLICED_DECODE_BYTES
    decode_slice_bytes = DEFAULT_DECODE_SLICE_BYTES
    # The IReactorTime that runs the slices; None: the global reactor.
    clock = None

    bytes_received = 0
    bytes_sent = 0
    decode_failures = 0
    handler_failures = 0
    _overflowed = False
    # A partial frame held as chunks: bytes needed in all, chunks, their size.
    _awaiting = 0
    _parts = ()
    _parts_size = 0
    # The CooperativeTask decoding a big frame, while there is one.
    _slicing = None

    @property
    def MAX_LENGTH(self):
        # Int32StringReceiver compares each length prefix with MAX_LENGTH
        # before waiting for the body, so this bound never allocates.
        return self.max_frame_bytes

    def connectionMade(self):
        # Nagle would hold small packets for the peer's delayed ACK; keepalive
        # lets the kernel notice a dead router. Test transports have neither.
        for name in ("setTcpNoDelay", "setTcpKeepAlive"):
            setter = getattr(self.transport, name, None)
            if setter is None:
                continue
            try:
                setter(True)
            except (OSError, AttributeError, NotImplementedError) as exc:
                _log.debug("Cannot {option} on this transport: {error}", option=name, error=exc)

    def dataReceived(self, data):
        if self._overflowed:
            return  # the link is closing; keep nothing more
        self.bytes_received += len(data)
        # Int32StringReceiver joins its whole buffer to every new chunk,
        # which is quadratic for a big frame arriving in small reads. While
        # the rest of a frame of known length is awaited, collect the chunks
        # in a list and hand them over joined once the frame is complete.
        if self._awaiting:
            self._parts.append(data)
            self._parts_size += len(data)
            if self._parts_size < self._awaiting:
                return
            data = b"".join(self._parts)
            self._parts, self._parts_size, self._awaiting = [], 0, 0
        super().dataReceived(data)
        buffered = self._unprocessed
        if len(buffered) >= _PREFIX.size and not self.paused and not self._overflowed:
            needed = _PREFIX.size + _PREFIX.unpack_from(buffered)[0]
            if len(buffered) < needed:
                self._unprocessed = b""
                self._parts, self._parts_size, self._awaiting = [buffered], len(buffered), needed

    def lengthLimitExceeded(self, length):
        self._overflowed = True
        self._unprocessed = b""
        self._parts, self._parts_size, self._awaiting = [], 0, 0
        _log.warn(
            "Peer announced a frame of {length} bytes, over the limit of {limit}; dropping the link{hint}",
            length=length, limit=self.max_frame_bytes,
            hint=f" ({foreign_protocol(length)})" if foreign_protocol(length) else "")
        self.transport.loseConnection()

    def stringReceived(self, string):
        # One trailing NUL is stripped (and its absence tolerated) by lpc.decode.
        if len(string) > self.sliced_decode_bytes:
            self._decodeInSlices(string)
            return
        try:
            value = lpc.decode(string, max_depth=self.max_depth)
        except lpc.LPCError as error:
            self._undecodable(error, string)
            return
        self._deliver(value)

    def _deliver(self, value):
        try:
            self.packetReceived(value)
        except Exception:
            # A handler's bug on one odd packet must not cost the link and
            # the frames already buffered behind it.
            self.handler_failures += 1
            _log.failure("Handling a received packet failed")

    def _undecodable(self, error, raw):
        self.decode_failures += 1
        self.decodeFailed(error, raw)

    def _decodeInSlices(self, string):
        # Pausing stops Int32StringReceiver's loop after this frame (what
        # follows stays in _unprocessed) and the transport's reading.
        self.pauseProducing()
        decoder = lpc.Decoder(string, max_depth=self.max_depth)
        self._slicing = self._cooperator().cooperate(self._slices(decoder))
        self._slicing.whenDone().addBoth(self._slicesDone, decoder, string)

    def _slices(self, decoder):
        while not decoder.step(self.decode_slice_bytes):
            yield None

    def _cooperator(self):
        clock = self.clock
        if clock is None:
            from twisted.internet import reactor as clock
        # One slice per turn: the predicate ends each turn after one step.
        return Cooperator(terminationPredicateFactory=lambda: lambda: True,
                          scheduler=lambda work: clock.callLater(_NEXT_TURN, work))

    def _slicesDone(self, result, decoder, raw):
        self._slicing = None
        if not isinstance(result, Failure):
            self._deliver(decoder.value)
        elif result.check(TaskStopped):
            return  # the connection is gone; read nothing more
        elif result.check(lpc.LPCError):
            self._undecodable(result.value, raw)
        else:
            self.decode_failures += 1
            _log.failure("Decoding a big frame failed", result)
        # Read on: the frames that waited behind this one, then the socket.
        # Not self.dataReceived: subclasses count what that gets as traffic.
        self.paused = False
        self.transport.resumeProducing()
        MudModeProtocol.dataReceived(self, b"")

    def connectionLost(self, reason):
        """Stops a sliced decode under way. Subclasses call this one."""
        if self._slicing is not None:
            self._slicing.stop()
        self._unprocessed = b""
        self._parts, self._parts_size, self._awaiting = [], 0, 0
        super().connectionLost(reason)

    def packetReceived(self, value):
        """Called with each decoded LPC value. Override."""

    def decodeFailed(self, error, raw):
        """Called with the LPCError and the raw frame that caused it.

        The frame is skipped and the link stays up. Override to count it.
        """
        _log.warn("Skipped an undecodable frame of {size} bytes: {error}",
                  size=len(raw), error=str(error))

    def sendPacket(self, value):
        """Write ``value`` as one frame and return the frame's size in bytes.

        Raises FrameTooLarge (over ``max_send_bytes``) or lpc.LPCError (no
        LPC form) and then writes nothing.
        """
        data = frame(value)
        if len(data) > self.max_send_bytes:
            raise FrameTooLarge(len(data), self.max_send_bytes)
        self.transport.write(data)
        self.bytes_sent += len(data)
        return len(data)
