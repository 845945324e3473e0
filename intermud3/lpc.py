"""LPC text values: a strict writer and a lenient, bounded reader.

Write strictly, read leniently (I3-PROTOCOL.md section 2). The writer
produces exactly what a FluffOS router accepts: no whitespace, every array
element and mapping pair followed by a comma, valid UTF-8 with no NUL and
no control characters except LF. The reader accepts what real peers send
(missing trailing commas, empty slots, whitespace, Latin-1 strings, raw CR
newlines) and turns anything else into an ``LPCError``, never another
exception.

Python values: int, float, str, list (array), dict (mapping); 0 means
"nothing". The writer also takes None (as 0), bool (as int) and tuple (as
array). A mapping key that cannot be hashed (an array) is read as a tuple.
"""

import math
import re

__all__ = ["LPCError", "encode", "decode", "INT_MIN", "INT_MAX", "DEFAULT_MAX_DEPTH"]

# CoffeeMud parses 32-bit ints only, so nothing wider goes on the wire.
INT_MIN = -(2 ** 31)
INT_MAX = 2 ** 31 - 1

# Real packets nest four or five levels deep; 64 leaves room and bounds work.
DEFAULT_MAX_DEPTH = 64

# Python refuses int() on more digits than this (sys.int_info); a number
# token longer than this is rejected as malformed rather than crashing.
_MAX_NUMBER_CHARS = 4000


class LPCError(ValueError):
    """The value cannot be written, or the text cannot be read, as LPC."""


# ---------------------------------------------------------------- writing

# Every Unicode control character (category Cc) except LF is dropped: NUL
# would end the frame early and ANSI escapes must never reach the network.
_STRIP_CONTROLS = {c: None for c in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)) if c != 0x0A}


def _clean_text(text):
    # A CR is a newline on the wire (FluffOS writes one for "\n"); we send LF.
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.translate(_STRIP_CONTROLS)
    return text.replace("\\", "\\\\").replace('"', '\\"')


def encode(value, *, max_depth=DEFAULT_MAX_DEPTH):
    """Write ``value`` as strict FluffOS LPC text (UTF-8 bytes).

    Raises LPCError for an int outside signed 32 bits, a non-finite float,
    a type LPC has no form for, or nesting deeper than ``max_depth``
    (which also catches self-referencing containers).
    """
    parts = []
    _write(value, parts, max_depth)
    # Lone surrogates cannot be UTF-8; they become "?" rather than failing.
    return "".join(parts).encode("utf-8", "replace")


def _write(value, out, depth):
    # bool before int: bool is an int subclass and must be written 1/0.
    if value is None or value is False:
        out.append("0")
    elif value is True:
        out.append("1")
    elif isinstance(value, str):
        out.append('"')
        out.append(_clean_text(value))
        out.append('"')
    elif isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise LPCError(f"int {value} is outside signed 32 bits")
        out.append(str(int(value)))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise LPCError(f"float {value!r} has no LPC form")
        out.append("%f" % value)
    elif isinstance(value, (list, tuple)):
        if depth <= 0:
            raise LPCError("value nested too deeply to encode")
        out.append("({")
        for item in value:
            _write(item, out, depth - 1)
            out.append(",")
        out.append("})")
    elif isinstance(value, dict):
        if depth <= 0:
            raise LPCError("value nested too deeply to encode")
        out.append("([")
        for key, item in value.items():
            _write(key, out, depth - 1)
            out.append(":")
            _write(item, out, depth - 1)
            out.append(",")
        out.append("])")
    else:
        raise LPCError(f"cannot encode {type(value).__name__} as LPC")


# ---------------------------------------------------------------- reading

# The whole text is cut into tokens by one C-level findall; whitespace
# between tokens is skipped and any other byte becomes a one-byte token the
# parser rejects. A string token uses the unrolled form so a long string
# costs one scan, not one Python step per character.
_TOKENS = re.compile(
    rb"""
        "[^"\\]*(?:\\.[^"\\]*)*"
      | [-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
      | \(\{ | \}\) | \(\[ | \]\)
      | \S
    """,
    re.VERBOSE | re.DOTALL,
)
_NUMBER_START = frozenset(b"-+.0123456789")

_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)

# Container frames on the parse stack: [kind, container, state, key].
_ARRAY, _MAPPING = 0, 1
# Array state: whether a value is waiting for its comma (held in slot 3).
# Mapping states:
_WANT_KEY, _HAVE_KEY, _WANT_VALUE, _HAVE_VALUE = range(4)
_NOTHING = object()


def _read_string(raw):
    if b"\\" in raw:
        raw = _UNESCAPE.sub(rb"\1", raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Encoding is undefined on the wire (CoffeeMud sends Latin-1);
        # fall back for this string alone.
        text = raw.decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _read_number(raw):
    if len(raw) > _MAX_NUMBER_CHARS:
        raise LPCError(f"number of {len(raw)} characters is too long")
    try:
        if b"." in raw or b"e" in raw or b"E" in raw:
            return float(raw)
        return int(raw)
    except ValueError as exc:  # pragma: no cover - the regex admits only valid forms
        raise LPCError(f"bad number {raw[:40]!r}") from exc


def _hashable(value):
    # LPC allows an array (or mapping) as a mapping key; Python needs a
    # hashable stand-in, so arrays become tuples, all the way down.
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def decode(data, *, max_depth=DEFAULT_MAX_DEPTH, max_length=None):
    """Read one LPC value from ``data`` (bytes) and return it.

    Lenient: whitespace between tokens, optional trailing commas, empty
    array slots read as 0, ``\\X`` read as X for any X, strings decoded as
    UTF-8 with a Latin-1 fallback per string, raw CR (and CRLF) read as LF,
    one trailing NUL and any bytes after the value ignored.

    Bounded: containers nest at most ``max_depth`` deep and, when
    ``max_length`` is given, ``data`` may be at most that many bytes.
    Raises LPCError, and only LPCError, for anything it cannot read.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LPCError(f"cannot decode {type(data).__name__}; bytes expected")
    data = bytes(data)
    if max_length is not None and len(data) > max_length:
        raise LPCError(f"{len(data)} bytes is over the limit of {max_length}")
    if data.endswith(b"\x00"):
        data = data[:-1]
    try:
        return _parse(data, max_depth)
    except LPCError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, IndexError) as exc:
        # A safety net: the parser is meant never to get here.
        raise LPCError(f"unreadable LPC text: {exc}") from exc


def _parse(data, max_depth):
    stack = []
    nothing = _NOTHING
    for token in _TOKENS.findall(data):
        first = token[0]
        if first == 0x22:  # '"'
            if len(token) < 2 or token[-1] != 0x22:
                raise LPCError("unterminated string")
            value = _read_string(token[1:-1])
        elif first == 0x2C:  # ','
            if not stack:
                raise LPCError("',' outside any container")
            top = stack[-1]
            if top[0] == _ARRAY:
                held = top[3]
                # An empty slot, as in ({1,,2,}) or ({,}), reads as 0.
                top[1].append(0 if held is nothing else held)
                top[3] = nothing
            else:
                _close_pair(top)
            continue
        elif first in _NUMBER_START and (len(token) > 1 or 0x30 <= first <= 0x39):
            value = _read_number(token)
        elif token == b"({" or token == b"([":
            if len(stack) >= max_depth:
                raise LPCError(f"nesting deeper than {max_depth}")
            if token == b"({":
                stack.append([_ARRAY, [], None, nothing])
            else:
                stack.append([_MAPPING, {}, _WANT_KEY, None])
            continue
        elif token == b"})":
            if not stack or stack[-1][0] != _ARRAY:
                raise LPCError("unbalanced '})'")
            top = stack.pop()
            if top[3] is not nothing:  # the trailing comma is optional
                top[1].append(top[3])
            value = top[1]
        elif token == b"])":
            if not stack or stack[-1][0] != _MAPPING:
                raise LPCError("unbalanced '])'")
            top = stack.pop()
            _close_pair(top)
            value = top[1]
        elif token == b":":
            if not stack or stack[-1][0] != _MAPPING or stack[-1][2] != _HAVE_KEY:
                raise LPCError("unexpected ':'")
            stack[-1][2] = _WANT_VALUE
            continue
        else:
            raise LPCError(f"unexpected {token[:20]!r}")

        # A complete value: hand it to the enclosing container, or finish.
        if not stack:
            return value  # bytes after the top-level value are ignored
        top = stack[-1]
        if top[0] == _ARRAY:
            if top[3] is not nothing:
                raise LPCError("missing ',' between array elements")
            top[3] = value
        else:
            state = top[2]
            if state == _WANT_KEY:
                try:
                    hash(value)
                except TypeError:
                    value = _hashable(value)
                top[3] = value
                top[2] = _HAVE_KEY
            elif state == _WANT_VALUE:
                top[1][top[3]] = value
                top[2] = _HAVE_VALUE
            else:
                raise LPCError("missing ',' or ':' in mapping")
    raise LPCError("LPC text ended before the value was complete")


def _close_pair(top):
    # Ends the pair being read in a mapping at ',' or '])'. An empty pair
    # (([,]) or a doubled comma) is skipped; a key with ':' but no value
    # reads as 0, like an empty array slot; a key with no ':' is an error.
    state = top[2]
    if state == _HAVE_VALUE or state == _WANT_KEY:
        pass
    elif state == _WANT_VALUE:
        top[1][top[3]] = 0
    else:
        raise LPCError("mapping key without ':'")
    top[2] = _WANT_KEY
    top[3] = None
