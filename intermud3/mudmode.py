"""MudMode framing: one LPC value per length-prefixed, NUL-terminated frame.

A frame is a 4-byte unsigned big-endian length (counting the trailing
NUL), the LPC text, then NUL (I3-PROTOCOL.md section 1). Twisted's
Int32StringReceiver does the framing; this module bounds it, decodes each
frame with ``lpc.decode`` and keeps a bad frame from taking the link down.
"""

import struct

from twisted.logger import Logger
from twisted.protocols.basic import Int32StringReceiver

from intermud3 import lpc

__all__ = ["frame", "FrameTooLarge", "MudModeProtocol",
           "DEFAULT_MAX_FRAME_BYTES", "DEFAULT_MAX_SEND_BYTES"]

_log = Logger()

# A full mudlist can run to hundreds of KB; Twisted's default 99,999 is too small.
DEFAULT_MAX_FRAME_BYTES = 2 * 1024 * 1024
# Dead Souls peers drop the link on frames over 10,000 bytes.
DEFAULT_MAX_SEND_BYTES = 8192

_PREFIX = struct.Struct("!I")


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
    """

    max_frame_bytes = DEFAULT_MAX_FRAME_BYTES
    max_send_bytes = DEFAULT_MAX_SEND_BYTES
    max_depth = lpc.DEFAULT_MAX_DEPTH

    bytes_received = 0
    bytes_sent = 0
    decode_failures = 0
    handler_failures = 0
    _overflowed = False
    # A partial frame held as chunks: bytes needed in all, chunks, their size.
    _awaiting = 0
    _parts = ()
    _parts_size = 0

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
            "Peer announced a frame of {length} bytes, over the limit of {limit}; dropping the link",
            length=length, limit=self.max_frame_bytes)
        self.transport.loseConnection()

    def stringReceived(self, string):
        # One trailing NUL is stripped (and its absence tolerated) by lpc.decode.
        try:
            value = lpc.decode(string, max_depth=self.max_depth)
        except lpc.LPCError as error:
            self.decode_failures += 1
            self.decodeFailed(error, string)
            return
        try:
            self.packetReceived(value)
        except Exception:
            # A handler's bug on one odd packet must not cost the link and
            # the frames already buffered behind it.
            self.handler_failures += 1
            _log.failure("Handling a received packet failed")

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
