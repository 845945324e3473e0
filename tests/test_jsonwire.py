"""intermud3.jsonwire: orjson when present, the standard library's answers always."""

import importlib
import json
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import jsonwire

# What the gateway writes: replies, errors, events (non-ASCII, controls,
# U+2028, nulls, floats as results carry them, ints of every size).
WRITTEN = [
    {"jsonrpc": "2.0", "result": {"status": "sent", "message_id": "0f3e4a"}, "id": 7},
    {"jsonrpc": "2.0", "result": {"pong": True, "timestamp": "2026-01-01T00:00:00.000Z"}, "id": "ünï"},
    {"jsonrpc": "2.0", "error": {"code": -32001, "message": "Rate limit exceeded",
                                 "data": {"retry_after": 0.1}}, "id": None},
    {"jsonrpc": "2.0", "method": "tell_received", "params": {
        "from_mud": "Dead Souls", "from_user": "zed", "visname": "Zed \u2603",
        "message": "tab\there \"quoted\" back\\slash \u2028 \x00\x1f\x7f caf\u00e9 \U0001f600",
        "timestamp": "2026-01-01T00:00:00.123Z"}},
    {"jsonrpc": "2.0", "result": {"uptime": 12.345, "session_uptime": 0.0, "count": 0,
                                  "ids": [2 ** 31 - 1, -2 ** 31, 2 ** 63 - 1, 2 ** 64, 10 ** 30]}, "id": 2 ** 70},
    {"jsonrpc": "2.0", "result": {"info": {1: "int key", "s": [1.5, -0.0, 1e15, 123.456]}}, "id": 1},
    {"jsonrpc": "2.0", "result": {"lone": "\ud800 surrogate"}, "id": 3},
    {"jsonrpc": "2.0", "result": [True, False, None, [], {}, ""], "id": 4},
]


class EncodeTests(SynchronousTestCase):
    def test_same_bytes_as_the_standard_library(self):
        for value in WRITTEN:
            self.assertEqual(jsonwire.encode(value), jsonwire.encode_stdlib(value), value)

    def test_compact_utf8_not_ascii_escaped(self):
        self.assertEqual(jsonwire.encode({"a": "é", "b": [1, None]}), '{"a":"é","b":[1,null]}'.encode())

    def test_lone_surrogate_escaped_not_refused(self):
        self.assertEqual(jsonwire.encode({"x": "\ud800"}), b'{"x":"\\ud800"}')

    def test_nan_and_infinity_refused(self):
        for bad in (float("nan"), float("inf"), -float("inf")):
            self.assertRaises(ValueError, jsonwire.encode, {"x": bad})

    def test_unknown_types_refused(self):
        import datetime
        for bad in ({1, 2}, object(), datetime.datetime(2026, 1, 1), b"bytes"):
            self.assertRaises(TypeError, jsonwire.encode, {"x": bad})

    @settings(deadline=None, max_examples=300)
    @given(st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False,
                                                              min_value=-1e15, max_value=1e15)
        .filter(lambda f: f == 0 or abs(f) >= 1e-4) | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=16))
    def test_random_values_same_bytes(self, value):
        self.assertEqual(jsonwire.encode(value), jsonwire.encode_stdlib(value))


    @settings(deadline=None, max_examples=300)
    @given(st.floats(allow_nan=False, allow_infinity=False))
    def test_any_float_same_number(self, value):
        # Spelled differently below 1e-4 and from 1e16 up (see the module).
        self.assertEqual(json.loads(jsonwire.encode([value])), [value])


class DecodeTests(SynchronousTestCase):
    def check_same(self, data):
        try:
            expected = ("ok", jsonwire.decode_stdlib(data))
        except ValueError as error:
            expected = ("error", type(error))
        try:
            got = ("ok", jsonwire.decode(data))
        except ValueError as error:
            got = ("error", type(error))
        # repr: a NaN-free value compares exactly, floats and ints kept apart.
        self.assertEqual(repr(got), repr(expected), data)
        return got

    def test_big_integers_stay_integers(self):
        for data in (b"123456789012345678901234567890", b'{"id":-99999999999999999999}', b"18446744073709551616"):
            kind, value = self.check_same(data)
            self.assertEqual(kind, "ok")
        self.assertEqual(jsonwire.decode(b'{"id":123456789012345678901234567890}'),
                         {"id": 123456789012345678901234567890})

    def test_what_orjson_refuses_the_standard_library_decides(self):
        self.assertEqual(jsonwire.decode(b'{"a":"\\ud800"}'), {"a": "\ud800"})
        self.assertEqual(jsonwire.decode(b"[1e400]"), [float("inf")])
        # Far too deep for either.
        self.assertRaises(jsonwire.NotJSON, jsonwire.decode, b"[" * 2000 + b"]" * 2000)

    def test_errors(self):
        self.assertRaises(jsonwire.NotUTF8, jsonwire.decode, b'{"a":1}\xff')
        self.assertRaises(jsonwire.NotUTF8, jsonwire.decode, b'"\xed\xa0\x80"')  # encoded surrogate
        for bad in (b"", b"{", b"NaN", b"[Infinity]", b"[-Infinity]", b'{"a":1}x', b"\xef\xbb\xbf{}",
                    b'"\x00"', b"[" * 100000, b"[" * 1000000 + b"]" * 1000000):
            self.assertRaises(jsonwire.NotJSON, jsonwire.decode, bad)

    def test_duplicate_keys_last_wins(self):
        self.assertEqual(jsonwire.decode(b'{"a":1,"a":2}'), {"a": 2})

    @settings(deadline=None, max_examples=300)
    @given(st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
        max_leaves=16))
    def test_random_values_same_value(self, value):
        self.check_same(json.dumps(value).encode())
        self.check_same(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))

    @settings(deadline=None, max_examples=300)
    @given(st.binary(max_size=64))
    def test_random_bytes_same_verdict(self, data):
        self.check_same(data)


    def test_in_use_when_recent_enough(self):
        # The gateway's dependency: an old orjson (no nesting limit) is never used.
        if jsonwire.orjson is not None:
            self.assertGreaterEqual(tuple(int(p) for p in jsonwire.orjson.__version__.split(".")[:3]),
                                    jsonwire.MIN_ORJSON)

    def test_old_orjson_not_used(self):
        class Old:
            __version__ = "3.8.3"

        class Odd:
            __version__ = "dev"

        self.assertFalse(jsonwire._usable(Old))
        self.assertFalse(jsonwire._usable(Odd))


class WithoutOrjsonTests(SynchronousTestCase):
    """The module imported where orjson is missing is the standard library."""

    def setUp(self):
        self.saved = sys.modules.get("orjson")
        sys.modules["orjson"] = None  # makes `import orjson` raise ImportError
        self.addCleanup(self.restore)
        self.module = importlib.reload(jsonwire)

    def restore(self):
        if self.saved is None:
            sys.modules.pop("orjson", None)
        else:
            sys.modules["orjson"] = self.saved
        importlib.reload(jsonwire)

    def test_fallback_is_the_standard_library(self):
        self.assertIsNone(self.module.orjson)
        self.assertIs(self.module.encode, self.module.encode_stdlib)
        self.assertIs(self.module.decode, self.module.decode_stdlib)
        for value in WRITTEN:
            self.assertEqual(self.module.encode(value), self.module.encode_stdlib(value))
        self.assertEqual(self.module.decode(b'{"id":1}'), {"id": 1})
        self.assertRaises(self.module.NotJSON, self.module.decode, b"NaN")
