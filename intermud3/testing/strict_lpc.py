"""A strict LPC text checker: what a FluffOS router reads, and nothing more.

The gateway's own reader (``intermud3.lpc.decode``) is lenient on purpose.
A real router is not: the FluffOS driver's value reader drops the whole
packet, without a word, on whitespace between tokens, a missing trailing
comma, or ``([,])`` (I3-PROTOCOL.md section 2). The test router checks
every frame with ``strict_problem`` before decoding it, so a test passes
only when a real router would have accepted the bytes too.

Accepted, as FluffOS accepts them: an empty array slot (``({,})`` and
``({1,,2,})`` read as 0), raw CR or LF inside strings, ``\\X`` escapes for
any X, numbers with a fraction or an exponent. Not accepted: anything
after the top-level value except NUL bytes, and invalid UTF-8 (current
FluffOS drops such a packet).
"""

__all__ = ["strict_problem", "is_strict_lpc", "STRICT_MAX_DEPTH"]

# Real packets nest four or five levels; the checker gives up far later.
STRICT_MAX_DEPTH = 64

_DIGITS = frozenset(b"0123456789")


class _Unreadable(Exception):
    """Carries the reason the text is not strict LPC."""


def is_strict_lpc(text):
    """True when a FluffOS router would read ``text`` (bytes) as one value."""
    return strict_problem(text) is None


def strict_problem(text, *, max_depth=STRICT_MAX_DEPTH):
    """None when ``text`` is strict LPC, else a short reason (a str).

    ``text`` is the frame body: LPC text, optionally followed by NULs.
    Never raises for any bytes.
    """
    data = bytes(text)
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"invalid UTF-8 at byte {exc.start}"
    try:
        end = _value(data, 0, max_depth)
    except _Unreadable as exc:
        return str(exc)
    if data[end:].strip(b"\x00"):
        return f"bytes after the value at {end}"
    return None


def _fail(data, pos, what):
    shown = data[pos:pos + 12]
    raise _Unreadable(f"{what} at byte {pos} ({shown!r})")


def _value(data, pos, depth):
    """Reads one value starting exactly at ``pos``; returns the end offset."""
    if pos >= len(data):
        _fail(data, pos, "text ends where a value should be")
    first = data[pos]
    if first == 0x22:  # '"'
        return _string(data, pos)
    if first == 0x2D or first in _DIGITS:  # '-' or a digit
        return _number(data, pos)
    if data.startswith(b"({", pos):
        return _array(data, pos + 2, depth - 1)
    if data.startswith(b"([", pos):
        return _mapping(data, pos + 2, depth - 1)
    _fail(data, pos, "not the start of a value")


def _string(data, pos):
    i = pos + 1
    size = len(data)
    while i < size:
        byte = data[i]
        if byte == 0x5C:  # backslash: the next byte, whatever it is
            i += 2
            continue
        if byte == 0x22:
            return i + 1
        i += 1
    _fail(data, pos, "unterminated string")


def _digits(data, i):
    start = i
    while i < len(data) and data[i] in _DIGITS:
        i += 1
    return i, i > start


def _number(data, pos):
    i = pos + 1 if data[pos] == 0x2D else pos
    i, any_digit = _digits(data, i)
    if not any_digit:
        _fail(data, pos, "'-' without digits")
    if i < len(data) and data[i] == 0x2E:  # '.'
        i, any_digit = _digits(data, i + 1)
        if not any_digit:
            _fail(data, pos, "float without digits after '.'")
    if i < len(data) and data[i] in b"eE":
        j = i + 1
        if j < len(data) and data[j] in b"+-":
            j += 1
        i, any_digit = _digits(data, j)
        if not any_digit:
            _fail(data, pos, "exponent without digits")
    return i


def _array(data, pos, depth):
    if depth < 0:
        _fail(data, pos, "nesting too deep")
    i = pos
    while True:
        if data.startswith(b"})", i):
            return i + 2
        if i < len(data) and data[i] == 0x2C:  # an empty slot reads as 0
            i += 1
            continue
        i = _value(data, i, depth)
        if i >= len(data) or data[i] != 0x2C:
            _fail(data, i, "array element not followed by ','")
        i += 1


def _mapping(data, pos, depth):
    if depth < 0:
        _fail(data, pos, "nesting too deep")
    i = pos
    while True:
        if data.startswith(b"])", i):
            return i + 2
        i = _value(data, i, depth)
        if i >= len(data) or data[i] != 0x3A:  # ':'
            _fail(data, i, "mapping key not followed by ':'")
        i = _value(data, i + 1, depth)
        if i >= len(data) or data[i] != 0x2C:
            _fail(data, i, "mapping value not followed by ','")
        i += 1
