"""Two places where Autobahn spends CPU per frame or per connection that our
use of it does not need; `install()` (called by the WebSocket factory)
replaces them in Autobahn's protocol module, behaviour unchanged.

* Unmasking client frames (RFC 6455 section 5.3). Every client frame is
  XOR-masked with a 4-byte key. Autobahn builds a masker per frame; with its
  native (NVX) build that object costs more to make than unmasking a small
  frame does, and our frames are small (one JSON-RPC request each).
  `create_masker` unmasks small payloads with one big-integer XOR (C speed)
  and leaves larger ones to Autobahn's own masker, faster in bulk.
* A debug line. On every new connection Autobahn pretty-prints its ~40
  protocol options for a debug log line, whether debug is on or not; under
  a burst of connects that `pprint.pformat` was about 18% of the gateway's
  CPU. `plain_format` hands the logger an object that writes the same line
  with `repr` only if the line is ever written (at debug level).
"""

from autobahn.websocket import protocol as _autobahn_protocol
from autobahn.websocket import xormasker as _autobahn_xormasker

# Up to here the integer XOR is cheaper than Autobahn's masker (measured:
# about 2x at 250 bytes, even at a few KiB, 5x slower at 1 MiB).
SMALL_PAYLOAD = 4096


class SmallUnmasker:
    """Autobahn's masker interface (`process`, `pointer`, `reset`) for one frame."""

    __slots__ = ("_mask", "_position")

    def __init__(self, mask):
        self._mask = bytes(mask)
        self._position = 0

    def pointer(self):
        return self._position

    def reset(self):
        self._position = 0

    def process(self, data):
        size = len(data)
        # A frame may arrive in pieces: the key continues where the last one ended.
        start = self._position & 3
        key = (self._mask[start:] + self._mask[:start]) * (size // 4 + 1)
        self._position += size
        return (int.from_bytes(data, "big") ^ int.from_bytes(key[:size], "big")).to_bytes(size, "big")


_autobahn_create = _autobahn_xormasker.create_xor_masker


def create_masker(mask, length=None):
    if length is not None and length <= SMALL_PAYLOAD:
        return SmallUnmasker(mask)
    return _autobahn_create(mask, length)


class _Repr:
    """Formats as `repr(value)`, but only when formatted."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __format__(self, spec):
        return format(repr(self.value), spec)

    __str__ = __repr__ = lambda self: repr(self.value)


def plain_format(value, *args, **kwargs):
    """`pprint.pformat`'s signature; `repr`'s (one-line) text, made lazily."""
    return _Repr(value)


def install():
    """Make Autobahn's protocol module use `create_masker` and
    `plain_format` (idempotent)."""
    _autobahn_protocol.create_xor_masker = create_masker
    _autobahn_protocol.pformat = plain_format
