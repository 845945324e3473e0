"""Last-chance reading of frames whose strings hold an unescaped quote.

CoffeeMud's Java router writes strings without escaping them, so a player
saying ``he said "hi"`` arrives as ``"he said "hi""`` and the strict parse
fails ("unexpected b'h'"). In LPC text the quote that really ends a string
is always followed by a delimiter: ``,`` (every element and pair has one),
``:`` (after a mapping key), or, from a writer that drops trailing commas,
``})`` or ``])``. A quote followed by anything else is taken as part of
the text and escaped, and the frame is decoded again.

Only called after ``lpc.decode`` has refused a frame (the link's
decode-failure path): a frame that parses is never touched. When the
repaired text does not parse either, the frame stays undecodable.
"""

from intermud3 import lpc

__all__ = ["escape_stray_quotes", "recover"]

_QUOTE = 0x22
_BACKSLASH = 0x5C
# What may follow a quote that closes a string.
_CLOSERS = (b",", b":", b"})", b"])")


def _closes_string(data, after):
    """Whether the quote just before index ``after`` can end its string."""
    return after >= len(data) or data.startswith(_CLOSERS, after)


def escape_stray_quotes(data):
    """``data`` with a backslash before every quote inside a string that is
    not followed by a delimiter; None when there is no such quote."""
    if data.endswith(b"\x00"):
        data = data[:-1]
    out = bytearray()
    changed = False
    in_string = False
    index = 0
    while index < len(data):
        byte = data[index]
        if in_string and byte == _BACKSLASH:
            out += data[index:index + 2]     # an escape pair, kept as it is
            index += 2
            continue
        if byte == _QUOTE:
            if not in_string:
                in_string = True
            elif _closes_string(data, index + 1):
                in_string = False
            else:
                out.append(_BACKSLASH)
                changed = True
        out.append(byte)
        index += 1
    return bytes(out) if changed else None


def recover(data, *, max_depth=lpc.DEFAULT_MAX_DEPTH):
    """The value of a frame the strict parse refused, read with its stray
    quotes escaped; None when that does not make it readable."""
    repaired = escape_stray_quotes(data)
    if repaired is None:
        return None
    try:
        return lpc.decode(repaired, max_depth=max_depth)
    except lpc.LPCError:
        return None
