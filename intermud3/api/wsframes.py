"""Reading the common client frame without Autobahn's per-frame machinery.

Nearly every frame a client sends is one JSON-RPC request: a final,
masked, uncompressed text frame of a few hundred bytes, whole in the
receive buffer. Autobahn reads each one through a header object, a masker,
an incremental UTF-8 validator, four hooks and a signal, which cost more
than the request's own dispatch. `whole_text_frame` reads that one shape
in a few operations; anything else (control frames, fragments, binary,
reserved bits, non-minimal lengths, invalid UTF-8, a frame not yet whole,
a payload over the bound) is left to Autobahn, which applies RFC 6455 and
its close codes exactly as before.
"""

_FIN_TEXT = 0x81        # FIN set, RSV1-3 clear, opcode 1 (text)
_MASKED = 0x80
_LEN16 = 126            # the payload length follows in 16 bits
_SHORT_HEADER = 6       # 2 bytes + 4-byte mask
_LONG_HEADER = 8        # 2 bytes + 16-bit length + 4-byte mask


def unmask(mask, payload):
    """RFC 6455 section 5.3: XOR the payload with the 4-byte key, repeated.
    One big-integer XOR runs at C speed for the payload sizes we read here."""
    size = len(payload)
    if not size:
        return b""
    key = (mask * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(size, "big")


def whole_text_frame(data, offset, limit):
    """The payload of the frame at ``data[offset:]`` and the offset after it,
    when that frame is the common shape and at most ``limit`` bytes; else
    None (Autobahn reads it). The payload is checked to be UTF-8."""
    if len(data) - offset < _SHORT_HEADER or data[offset] != _FIN_TEXT:
        return None
    second = data[offset + 1]
    if not second & _MASKED:
        return None
    size = second & 0x7F
    if size < _LEN16:
        start = offset + _SHORT_HEADER
    elif size == _LEN16:
        if len(data) - offset < _LONG_HEADER:
            return None
        size = (data[offset + 2] << 8) | data[offset + 3]
        if size < _LEN16:   # not the minimal encoding: a protocol error
            return None
        start = offset + _LONG_HEADER
    else:
        return None         # 64-bit lengths: larger than we read here
    end = start + size
    if size > limit or end > len(data):
        return None
    payload = unmask(data[start - 4:start], data[start:end])
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return None         # Autobahn closes with 1007
    return payload, end


class WholeFrameReader:
    """Mixed into an Autobahn protocol before it: `processData` (Autobahn's
    hook for buffered bytes) reads whole request frames here, the rest the
    Autobahn way. Delivers each payload to `onMessage(payload, False)`."""

    def processData(self):
        """True while buffered bytes remain to be read (Autobahn's contract)."""
        open_ = self.STATE_OPEN
        if (self.state != open_ or self.current_frame is not None
                or self.inside_message or self._perMessageCompress is not None):
            return super().processData()
        limit = min((bound for bound in (self.maxFramePayloadSize, self.maxMessagePayloadSize)
                     if bound), default=0xFFFF)
        data = self.data
        offset = 0
        while self.state == open_:
            frame = whole_text_frame(data, offset, limit)
            if frame is None:
                break
            payload, offset = frame
            self.onMessage(payload, False)
        if not offset:
            return super().processData()
        self.data = data[offset:]
        return bool(self.data)
