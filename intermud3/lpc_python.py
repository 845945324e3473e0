"""LPC text values in pure Python: the reference codec and the fallback.

``intermud3.lpc`` is the module to use: it picks the compiled codec
(``_intermud3_lpc``, built from ext/) when it is installed and falls back
to this one. Both follow the rules written here; the tests hold the
compiled one to this one's output.

A strict writer and a lenient, bounded reader.

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

__all__ = ["LPCError", "encode", "decode", "Decoder", "int_or_zero", "INT_MIN", "INT_MAX",
           "DEFAULT_MAX_DEPTH"]

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


def int_or_zero(value):
    """``value`` when it is an int LPC can write back (signed 32 bits; a bool
    is no int to LPC), else 0. For numbers a peer sent that we must return
    on the wire later, like a router's password and list ids: the reader
    takes ints of any size, the writer refuses them."""
    if isinstance(value, int) and not isinstance(value, bool) and INT_MIN <= value <= INT_MAX:
        return value
    return 0


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
            # Past 64 bits the digits may be too many even to print.
            shown = value if -2 ** 63 <= value < 2 ** 63 else f"of {value.bit_length()} bits"
            raise LPCError(f"int {shown} is outside signed 32 bits")
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
# parser rejects. A string token uses the unrolled form, so a long string
# costs one scan rather than a Python step per character; an unterminated
# string runs to the end of the text as one token (and is then refused), so
# no input makes the scan quadratic. Commas, the commonest token, go first.
_TOKENS = re.compile(
    rb"""
        [,:]
      | "[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)
      | [-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?
      | \(\{ | \}\) | \(\[ | \]\)
      | \S
    """,
    re.VERBOSE | re.DOTALL,
)
_NUMBER_START = frozenset(b"-+.0123456789")
_DIGITS = frozenset(b"0123456789")
_FLOAT_MARKS = re.compile(rb"[.eE]")

_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)

# What the parser is inside: the top level, an array or a mapping.
_TOP, _ARRAY, _MAPPING = 0, 1, 2
# Where a mapping is in its current pair.
_WANT_KEY, _HAVE_KEY, _WANT_VALUE, _HAVE_VALUE = range(4)


def _string_token(token):
    """The text of a string token, quotes included; LPCError if unterminated."""
    if len(token) < 2 or token[-1] != 0x22:
        raise LPCError("unterminated string")
    raw = token[1:-1]
    if 0x5C in raw:  # backslash
        if raw.endswith(b"\\") and (len(raw) - len(raw.rstrip(b"\\"))) % 2:
            raise LPCError("unterminated string")  # the last quote was escaped
        raw = _UNESCAPE.sub(rb"\1", raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        # Encoding is undefined on the wire (CoffeeMud sends Latin-1);
        # fall back for this string alone.
        text = raw.decode("latin-1")
    if "\r" in text:
        # FluffOS writes a newline as a raw CR.
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _number_token(token):
    if len(token) > _MAX_NUMBER_CHARS:
        raise LPCError(f"number of {len(token)} characters is too long")
    if _FLOAT_MARKS.search(token):
        return float(token)
    return int(token)


def _hashable(value):
    # LPC allows an array (or mapping) as a mapping key; Python needs a
    # hashable stand-in, so arrays become tuples, all the way down.
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple((k, _hashable(v)) for k, v in value.items())
    return value


def _as_bytes(data):
    """``data`` as bytes; LPCError for anything that is not bytes-like."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise LPCError(f"cannot decode {type(data).__name__}; bytes expected")
    return bytes(data)


def _strip_nul(data):
    # A MudMode frame ends in one NUL; lpc text never holds a raw one.
    return data[:-1] if data.endswith(b"\x00") else data


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
    data = _as_bytes(data)
    if max_length is not None and len(data) > max_length:
        raise LPCError(f"{len(data)} bytes is over the limit of {max_length}")
    parser = _Parser(max_depth)
    if _read(parser, _TOKENS.findall(_strip_nul(data))):
        return parser.value
    raise LPCError("LPC text ended before the value was complete")


class Decoder:
    """``decode`` in slices: each ``step(max_bytes)`` reads on through about
    ``max_bytes`` more of the text (a token is never cut, so a long string is
    read whole) and returns True once the value is complete, in ``.value``.
    Same rules and errors as ``decode`` (no ``max_length``: the caller has
    the whole text already). After an LPCError every further step raises.
    """

    def __init__(self, data, *, max_depth=DEFAULT_MAX_DEPTH):
        self._text = _strip_nul(_as_bytes(data))
        self._matches = _TOKENS.finditer(self._text)
        self._parser = _Parser(max_depth)
        self._position = 0
        self._failed = False
        self.value = None

    def step(self, max_bytes):
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if self._parser.done:
            return True
        if self._failed:
            raise LPCError("this decoder already failed")
        tokens = []
        limit = self._position + max_bytes
        exhausted = False
        while self._position < limit:
            match = next(self._matches, None)
            if match is None:
                exhausted = True
                break
            tokens.append(match.group())
            self._position = match.end()
        try:
            if _read(self._parser, tokens):
                self.value = self._parser.value
                return True
            if exhausted or self._position >= len(self._text):
                raise LPCError("LPC text ended before the value was complete")
        except LPCError:
            self._failed = True
            raise
        return False


def _read(parser, tokens):
    """``parser.feed(tokens)``, any failure raised as an LPCError."""
    try:
        return parser.feed(tokens)
    except LPCError:
        raise
    except (RecursionError, MemoryError, ValueError, TypeError, IndexError) as exc:
        # A safety net: the parser is meant never to get here.
        raise LPCError(f"unreadable LPC text: {exc}") from exc


class _Parser:
    """The reader between tokens, so a text can be read in several parts.

    The innermost container is in ``frame``; enclosing ones wait on an
    explicit stack, so depth never recurses. A frame is
      (kind, container, state, held):
      kind:      _TOP, _ARRAY or _MAPPING
      container: the list or dict being filled
      state:     array: 1 while an element waits for its comma;
                 mapping: where the current pair is (_WANT_KEY...)
      held:      array: that waiting element; mapping: the current key
    """

    def __init__(self, max_depth):
        self.max_depth = max_depth
        self.stack = []
        self.frame = (_TOP, None, 0, None)
        self.done = False
        self.value = None

    def feed(self, tokens):
        """Read ``tokens``; True once the top-level value is complete (then
        in ``.value``; the tokens after it are never looked at)."""
        stack = self.stack
        max_depth = self.max_depth
        number_start = _NUMBER_START
        kind, container, state, held = self.frame
        for token in tokens:
            if token == b",":
                if kind == _ARRAY:
                    # An empty slot, as in ({1,,2,}) or ({,}), reads as 0.
                    container.append(held if state else 0)
                    state, held = 0, None
                elif kind == _MAPPING:
                    state = _end_pair(container, state, held)
                else:
                    raise LPCError("',' outside any container")
                continue

            first = token[0]
            if first == 0x22:  # '"'
                value = _string_token(token)
            elif first in number_start and (len(token) > 1 or first in _DIGITS):
                value = _number_token(token)
            elif token == b"({" or token == b"([":
                if len(stack) >= max_depth:
                    raise LPCError(f"nesting deeper than {max_depth}")
                stack.append((kind, container, state, held))
                if token == b"({":
                    kind, container, state, held = _ARRAY, [], 0, None
                else:
                    kind, container, state, held = _MAPPING, {}, _WANT_KEY, None
                continue
            elif token == b"})":
                if kind != _ARRAY:
                    raise LPCError("unbalanced '})'")
                if state:  # the trailing comma is optional
                    container.append(held)
                value = container
                kind, container, state, held = stack.pop()
            elif token == b"])":
                if kind != _MAPPING:
                    raise LPCError("unbalanced '])'")
                _end_pair(container, state, held)
                value = container
                kind, container, state, held = stack.pop()
            elif token == b":":
                if kind != _MAPPING or state != _HAVE_KEY:
                    raise LPCError("unexpected ':'")
                state = _WANT_VALUE
                continue
            else:
                raise LPCError(f"unexpected {token[:20]!r}")

            # A complete value: hand it to the enclosing container, or finish.
            if kind == _ARRAY:
                if state:
                    raise LPCError("missing ',' between array elements")
                state, held = 1, value
            elif kind == _MAPPING:
                if state == _WANT_VALUE:
                    container[held] = value
                    state = _HAVE_VALUE
                elif state == _WANT_KEY:
                    try:
                        hash(value)
                    except TypeError:
                        value = _hashable(value)
                    state, held = _HAVE_KEY, value
                else:
                    raise LPCError("missing ',' or ':' in mapping")
            else:
                # Bytes after the top-level value are ignored.
                self.value, self.done = value, True
                self.stack, self.frame = [], None
                return True
        self.frame = (kind, container, state, held)
        return False


def _end_pair(mapping, state, key):
    # Ends the pair being read at ',' or '])' and returns the next state.
    # An empty pair (([,]) or a doubled comma) is skipped; a key with ':'
    # but no value reads as 0, like an empty array slot; a key with no ':'
    # is an error.
    if state == _WANT_VALUE:
        mapping[key] = 0
    elif state == _HAVE_KEY:
        raise LPCError("mapping key without ':'")
    return _WANT_KEY
