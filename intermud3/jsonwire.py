"""JSON as the API writes and reads it: `encode(value) -> bytes`,
`decode(data: bytes) -> value`.

orjson (3.11.6 or later) does the work when it is importable (a request
line parses about four times faster, a reply serialises about ten times
faster); the standard library's `json` is the reference and the fallback. Where the two differ,
the standard library's answer is the one given:

* decode: anything orjson refuses goes to the standard library, which
  refuses it too (not UTF-8, not JSON, NaN/Infinity) or accepts it as
  before (a lone surrogate escape, 1e400, nesting orjson finds too deep).
  orjson turns integers beyond 64 bits into floats, so a text with a run of
  20 digits or more is read by the standard library alone.
* encode: anything orjson cannot write (a big integer, a non-string key, a
  lone surrogate, an unknown type) is written by the standard library, or
  refused by it as before. orjson writes NaN and Infinity as null, so an
  output holding "null" is written again by the standard library, which
  refuses them.

Two differences remain, neither a rule of JSON: a float below 1e-4 or
from 1e16 up is spelled as orjson spells it (0.00001, 1e16 rather than
1e-05, 1e+16), the same number; and orjson reads nesting up to 1,024
levels where the standard library stops a little short of 1,000 (a limit
of its stack, not of the text).
"""

import json

# orjson before 3.11.6 has no nesting limit in loads (before 3.9.15) or dumps:
# a deep enough text crashes the process. Such a version is not used.
MIN_ORJSON = (3, 11, 6)


def _usable(module):
    try:
        version = tuple(int(part) for part in module.__version__.split(".")[:3])
    except (AttributeError, ValueError):
        return False
    return version >= MIN_ORJSON


try:
    import orjson
except ImportError:  # optional: the standard library alone gives the same answers
    orjson = None
if orjson is not None and not _usable(orjson):
    orjson = None

__all__ = ["NotUTF8", "NotJSON", "encode", "decode", "encode_stdlib", "decode_stdlib"]


class NotUTF8(ValueError):
    """The bytes are not UTF-8."""


class NotJSON(ValueError):
    """The text is not JSON (or holds NaN/Infinity, or nests too deep)."""


def _refuse_constant(name):
    raise NotJSON(f"{name} is not valid JSON")


def encode_stdlib(value):
    """Compact UTF-8 JSON, not ASCII-escaped. A string holding a lone
    surrogate (legal in JSON text, not in UTF-8) falls back to \\u escapes
    for that message rather than failing. Raises TypeError/ValueError for
    what JSON cannot hold (NaN, Infinity, other types)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False).encode("ascii")


def decode_stdlib(data):
    """The value of one JSON text in UTF-8 bytes; NotUTF8 or NotJSON."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotUTF8("not UTF-8") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as error:
        raise NotJSON(str(error)) from None


# Digits to "0", everything else to a space: a run of 20 zeros in the
# translated text is a number orjson would read as a float.
_DIGIT_RUNS = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_TWENTY_DIGITS = b"0" * 20

if orjson is not None:
    # Types the standard library refuses stay refused.
    _ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

    def encode(value):
        """`encode_stdlib`'s bytes and errors, faster."""
        try:
            data = orjson.dumps(value, option=_ORJSON_OPTIONS)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            return encode_stdlib(value)
        if b"null" in data:
            return encode_stdlib(value)
        return data

    def decode(data):
        """`decode_stdlib`'s value and errors, faster."""
        if _TWENTY_DIGITS not in data.translate(_DIGIT_RUNS):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass
        return decode_stdlib(data)
else:
    encode = encode_stdlib
    decode = decode_stdlib
