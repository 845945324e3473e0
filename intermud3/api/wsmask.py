"""Unmasking of the frames WebSocket clients send (RFC 6455 section 5.3).

Every client frame is XOR-masked with a 4-byte key. Autobahn builds a masker
per frame; with its native (NVX) build that object costs more to make than
unmasking a small frame does, and our frames are small (one JSON-RPC
request each). `install()` makes Autobahn use `create_masker`: small
payloads are unmasked with one big-integer XOR (C speed, no per-frame
allocation beyond the result), larger ones by Autobahn's own masker, which
is faster in bulk.
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


def install():
    """Make Autobahn's frame parser use `create_masker` (idempotent)."""
    _autobahn_protocol.create_xor_masker = create_masker
