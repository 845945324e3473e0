"""The LPC codec: strict writer, lenient bounded reader (I3-PROTOCOL.md s.2),
both implementations: pure Python (the reference) and C."""

import math
import re

from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import lpc, lpc_python
from intermud3.lpc import LPCError
from tests import codecs
from tests.vectors import load_vectors


def same(a, b):
    """Equal, and int/float/str kinds agree (plain == says 1 == 1.0 == True)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------ cases

STRICT_FORMS = [
    (0, b"0"),
    (-42, b"-42"),
    (2 ** 31 - 1, b"2147483647"),
    (-(2 ** 31), b"-2147483648"),
    (3.25, b"3.250000"),
    (-0.5, b"-0.500000"),
    (1e-7, b"0.000000"),
    (150.0, b"150.000000"),
    ("", b'""'),
    ('a "b" \\c', b'"a \\"b\\" \\\\c"'),
    ("caf\u00e9", b'"caf\xc3\xa9"'),
    ("line\nnext", b'"line\nnext"'),
    ([], b"({})"),
    ([1, "a"], b'({1,"a",})'),
    ((1, 2), b"({1,2,})"),
    ({}, b"([])"),
    ({"k": 1}, b'(["k":1,])'),
    ({1: [2, {}]}, b"([1:({2,([]),}),])"),
    (None, b"0"),
    (True, b"1"),
    (False, b"0"),
    ([None, True, [[]]], b"({0,1,({({}),}),})"),
    ({(1, "x"): 0}, b'([({1,"x",}):0,])'),
]


INTS_OUTSIDE_32_BITS = [2 ** 31, -(2 ** 31) - 1, 10 ** 20, [1, 2 ** 40], [10 ** 5000]]


INT_OR_ZERO = [
    (2 ** 31 - 1, 2 ** 31 - 1), (-(2 ** 31), -(2 ** 31)), (842758708, 842758708), (0, 0),
    (2 ** 31, 0), (-(2 ** 31) - 1, 0), (True, 0), (1.0, 0), ("7", 0), (None, 0), ([1], 0)]


NON_FINITE_FLOATS = [math.nan, math.inf, -math.inf]


NO_LPC_FORM = [b"bytes", object(), {1, 2}, 1j, ["ok", b"bad"]]


CLEANED_TEXT = [
    ("nul\x00inside", b'"nulinside"'),
    ("\x1b[31mred\x1b[0m", b'"[31mred[0m"'),  # no raw ANSI on the wire
    ("tab\there", b'"tabhere"'),
    ("bell\x07 del\x7f c1\x85", b'"bell del c1"'),
    ("cr\rlf", b'"cr\nlf"'),
    ("crlf\r\nend", b'"crlf\nend"'),
    ("lf\nkept", b'"lf\nkept"'),
    ("lone \ud800 surrogate", b'"lone ? surrogate"'),
]


LENIENT_READINGS = [
    (b"0", 0),
    (b"-42", -42),
    (b"+7", 7),
    (b"3.250000", 3.25),
    (b"1.5e+2", 150.0),
    (b"-2.5E-1", -0.25),
    (b"1e3", 1000.0),
    (b".5", 0.5),
    (b"99999999999999999999999", 99999999999999999999999),
    (b'"plain"', "plain"),
    (b'""', ""),
    (b'"a\\"b"', 'a"b'),
    (b'"back\\\\slash"', "back\\slash"),
    (b'"\\n is n"', "n is n"),         # \X is X for any X
    (b'"\\q\\%"', "q%"),
    (b'"raw\rcr"', "raw\ncr"),
    (b'"raw\r\ncrlf"', "raw\ncrlf"),
    (b'"esc\\\rcr"', "esc\ncr"),
    (b'"caf\xc3\xa9"', "caf\u00e9"),
    (b'"caf\xe9"', "caf\u00e9"),        # Latin-1 fallback
    (b"({})", []),
    (b"({1,2,})", [1, 2]),
    (b"({1,2})", [1, 2]),              # trailing comma optional
    (b"({1,,2,})", [1, 0, 2]),          # empty slot reads 0
    (b"({,})", [0]),
    (b"({,,})", [0, 0]),
    (b"([])", {}),
    (b'(["k":1,])', {"k": 1}),
    (b'(["k":1])', {"k": 1}),
    (b'(["a":1,"a":2,])', {"a": 2}),
    (b'(["k":,])', {"k": 0}),
    (b"([,])", {}),
    (b"([1:({}),2:([]),])", {1: [], 2: {}}),
    (b' ({ 1 , "a" , ([ "k" : 2 , ]) , }) ', [1, "a", {"k": 2}]),
    (b"\t\r\n({\n1\n})", [1]),
    (b"({1,})trailing junk )}({", [1]),
    (b"5\x00", 5),
    (b"5", 5),
    (b'({"x",})\x00', ["x"]),
]


MALFORMED_TEXT = [
    b"", b"   ", b"\x00",
    b"({", b"({1,", b"([", b'(["k":1,',
    b'"unterminated', b'"ends in backslash\\"', b'"\\',
    b"})", b"])", b":", b",",
    b"({1 2})", b'({"a""b"})', b"({1])", b"([1})",
    b"([1])", b"([1,])", b'(["a" 1])', b"([1:2:3])", b"([:1])",
    b"abc", b"-", b"+", b".", b"({1.2.3})", b"({-})", b"({1x})",
    b"({0x10})", b"(", b"({)", b"({ } )", b"( {})", b"1" * 5000,
]


DECODER_FAILURES = [b"({1,", b"({1 2})", b"", b"   ", b"({" * 100, b'({"open']


# ---------------------------------------------------------- value strategies

_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)
_keys = st.one_of(_text, st.integers(lpc.INT_MIN, lpc.INT_MAX))
_scalars = st.one_of(
    st.integers(lpc.INT_MIN, lpc.INT_MAX),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    _text,
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.dictionaries(_keys, inner, max_size=6),
    ),
    max_leaves=40,
)


def _as_sent(value):
    """What the peer should read back: floats carry six decimals."""
    if isinstance(value, float):
        return float("%f" % value)
    if isinstance(value, list):
        return [_as_sent(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_sent(v) for k, v in value.items()}
    return value


_alphabet = st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\",
                             b"1", b"-", b".", b"e", b" ", b"\r", b"\x00", b"\xe9", b"x"])


def _tokens_outside_strings(text):
    """The encoded text with every string literal replaced by S."""
    return re.sub(rb'"(?:[^"\\]|\\.)*"', b"S", text, flags=re.DOTALL)


_anything = st.recursive(
    st.one_of(st.none(), st.booleans(), _scalars, st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(_keys, inner, max_size=5),
    ),
    max_leaves=30,
)


# An independent cut of strict encoder output into its tokens.
_STRICT_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|\(\{|\}\)|\(\[|\]\)|[,:]', re.DOTALL)


# The same property runs in both codec classes below: hypothesis sees one
# function called from two executors, which is meant (and a failing example
# found on one codec is worth replaying on the other).
BOTH_CODECS = [HealthCheck.differing_executors]


class CodecTests:
    """The rules both codecs follow; `codec` is the module under test."""

    codec = None

    def refused(self, case, match=""):
        """assertRaises for one case of a loop: the failure names the case."""
        try:
            shown = repr(case)
        except ValueError:      # an int too long for repr (10 ** 5000)
            shown = f"a {type(case).__name__}"
        return self.assertRaisesRegex(LPCError, match, msg=f"accepted {shown}")

    # ------------------------------------------------------- vectors

    def test_every_vector_decodes_to_its_reading(self):
        vectors = load_vectors()
        self.assertEqual(len(vectors), 78)
        for v in vectors:
            self.assertTrue(same(self.codec.decode(v.frame[4:]), v.decoded), f"line {v.line} ({v.note})")

    def test_vectors_decode_without_the_trailing_nul_too(self):
        for v in load_vectors():
            self.assertTrue(same(self.codec.decode(v.text), v.decoded), f"line {v.line}")

    def test_to_router_vectors_are_reproduced_byte_for_byte(self):
        cr_frames = 0
        for v in load_vectors():
            if v.dir != "to-router":
                continue
            ours = self.codec.encode(v.decoded)
            if b"\r" in v.text:
                # The capture wrote a newline as a raw CR (as FluffOS does); we
                # send LF. That is the only permitted difference.
                cr_frames += 1
                self.assertEqual(ours, v.text.replace(b"\r", b"\n"), f"line {v.line}")
                self.assertNotEqual(ours, v.text)
            else:
                self.assertEqual(ours, v.text, f"line {v.line} ({v.note})")
        self.assertEqual(cr_frames, 1)  # the channel-m with "Hi \"all\" \\o/<CR>new line"

    def test_every_vector_re_encodes_and_re_decodes_to_the_same_value(self):
        for v in load_vectors():
            value = self.codec.decode(v.frame[4:])
            self.assertTrue(same(self.codec.decode(self.codec.encode(value)), value), f"line {v.line}")

    def test_router_cr_newline_reads_as_lf(self):
        for v in load_vectors():
            if b"\r" in v.text:
                message = self.codec.decode(v.text)[-1]
                self.assertNotIn("\r", message)
                self.assertEqual(message, 'Hi "all" \\o/\nnew line, caf\u00e9')

    # ------------------------------------------------------- writing

    def test_encode_writes_strict_fluffos_form(self):
        for value, text in STRICT_FORMS:
            self.assertEqual(self.codec.encode(value), text, repr((value, text)))

    def test_encode_refuses_ints_outside_32_bits(self):
        for value in INTS_OUTSIDE_32_BITS:
            with self.refused(value, "32 bits"):
                self.codec.encode(value)

    def test_int_or_zero_keeps_only_what_encode_writes_as_an_int(self):
        for value, kept in INT_OR_ZERO:
            self.assertEqual(lpc.int_or_zero(value), kept, repr((value, kept)))
            self.assertIs(type(lpc.int_or_zero(value)), int, repr((value, kept)))
            self.codec.encode(lpc.int_or_zero(value))

    def test_encode_refuses_non_finite_floats(self):
        for value in NON_FINITE_FLOATS:
            with self.refused(value):
                self.codec.encode(value)

    def test_encode_refuses_types_without_an_lpc_form(self):
        for value in NO_LPC_FORM:
            with self.refused(value, "cannot encode"):
                self.codec.encode(value)

    def test_encode_bounds_nesting_and_catches_cycles(self):
        cycle = []
        cycle.append(cycle)
        with self.assertRaisesRegex(LPCError, "deeply"):
            self.codec.encode(cycle)
        nested = 0
        for _ in range(10):
            nested = [nested]
        self.assertEqual(self.codec.encode(nested, max_depth=10), b"({" * 10 + b"0," + b"})," * 9 + b"})")
        with self.assertRaises(LPCError):
            self.codec.encode(nested, max_depth=9)

    def test_encode_sends_only_clean_utf8(self):
        for text, sent in CLEANED_TEXT:
            self.assertEqual(self.codec.encode(text), sent, repr((text, sent)))

    def test_encode_cleans_mapping_keys_too(self):
        self.assertEqual(self.codec.encode({"a\x00b": "c\rd"}), b'(["ab":"c\nd",])')

    # ------------------------------------------------------- reading

    def test_decode_reads_leniently(self):
        for text, value in LENIENT_READINGS:
            self.assertTrue(same(self.codec.decode(text), value), repr((text, value)))

    def test_decode_falls_back_to_latin1_per_string(self):
        self.assertEqual(self.codec.decode(b'({"caf\xe9","caf\xc3\xa9",})'), ["caf\u00e9", "caf\u00e9"])

    def test_decode_turns_unhashable_keys_into_tuples(self):
        self.assertEqual(self.codec.decode(b"([({1,({2,}),}):3,])"), {(1, (2,)): 3})
        self.assertEqual(self.codec.decode(b'([(["a":({1,}),]):4,])'), {(("a", (1,)),): 4})

    def test_decode_accepts_bytearray_and_memoryview(self):
        self.assertEqual(self.codec.decode(bytearray(b"({1,})")), [1])
        self.assertEqual(self.codec.decode(memoryview(b"({1,})")), [1])

    def test_decode_rejects_malformed_text_with_lpcerror(self):
        for text in MALFORMED_TEXT:
            with self.refused(text):
                self.codec.decode(text)

    def test_an_escaped_final_quote_leaves_the_string_open(self):
        with self.assertRaisesRegex(LPCError, "unterminated"):
            self.codec.decode(b'"abc\\"')
        with self.assertRaisesRegex(LPCError, "unterminated"):
            self.codec.decode(b'({"abc\\\\\\"')
        self.assertEqual(self.codec.decode(b'"abc\\\\"'), "abc\\")

    def test_unterminated_strings_cannot_make_the_scan_quadratic(self):
        # Each '"' would rescan to the end if a failed string match were
        # retried from every quote; 400 KB of them would then take minutes
        # (the run's own timeout catches that: no timed assertion here).
        with self.assertRaises(LPCError):
            self.codec.decode(b'"' + b'\\"' * 200000)
        with self.assertRaises(LPCError):
            self.codec.decode(b'({"' + b'\\"' * 200000 + b"\\")

    def test_decode_rejects_non_bytes(self):
        with self.assertRaises(LPCError):
            self.codec.decode("({1,})")
        with self.assertRaises(LPCError):
            self.codec.decode(None)

    def test_depth_bomb_raises_lpcerror(self):
        with self.assertRaisesRegex(LPCError, "deeper"):
            self.codec.decode(b"({" * 10000)
        with self.assertRaisesRegex(LPCError, "deeper"):
            self.codec.decode(b"([" * 10000 + b"])" * 10000)

    def test_depth_bound_is_exact_and_configurable(self):
        def nested(n):
            return b"({" * n + b"})" * n
        self.assertIsNotNone(self.codec.decode(nested(lpc.DEFAULT_MAX_DEPTH)))
        with self.assertRaises(LPCError):
            self.codec.decode(nested(lpc.DEFAULT_MAX_DEPTH + 1))
        self.assertEqual(self.codec.decode(nested(3), max_depth=3), [[[]]])
        with self.assertRaises(LPCError):
            self.codec.decode(nested(3), max_depth=2)
        # A generous bound is still safe: the reader keeps its own stack.
        self.assertIsNotNone(self.codec.decode(nested(5000), max_depth=10000))

    def test_max_length_bounds_the_input(self):
        self.assertEqual(self.codec.decode(b"({1,})", max_length=6), [1])
        with self.assertRaisesRegex(LPCError, "limit"):
            self.codec.decode(b"({1,})", max_length=5)

    def test_decoded_floats_and_ints_keep_their_kind(self):
        value = self.codec.decode(b"({1,1.0,1e0,})")
        self.assertEqual([type(x) for x in value], [int, float, float])

    # ---------------------------------------------------- properties

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(_values)
    def test_round_trip(self, value):
        self.assertTrue(same(self.codec.decode(self.codec.encode(value)), _as_sent(value)))

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(st.binary(max_size=200))
    def test_random_bytes_raise_only_lpcerror(self, data):
        try:
            self.codec.decode(data)
        except LPCError:
            pass

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(st.lists(_alphabet, max_size=60))
    def test_lpc_shaped_garbage_raises_only_lpcerror(self, parts):
        try:
            self.codec.decode(b"".join(parts))
        except LPCError:
            pass

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(_values, st.data())
    def test_mutated_frames_raise_only_lpcerror(self, value, data):
        text = bytearray(self.codec.encode(value))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, max(len(text) - 1, 0)))
            text[at:at + 1] = data.draw(st.binary(max_size=2))
        try:
            self.codec.decode(bytes(text))
        except LPCError:
            pass

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(_anything)
    def test_encoded_text_is_strict(self, value):
        text = self.codec.encode(value)
        text.decode("utf-8")  # always valid UTF-8
        self.assertNotIn(b"\x00", text)
        self.assertFalse(any(c < 0x20 and c != 0x0A for c in text))
        skeleton = _tokens_outside_strings(text)
        self.assertFalse(re.search(rb"\s", skeleton), skeleton)
        # Every element and pair is followed by a comma: a closer follows only
        # a comma or its own opener, and no container starts with a comma.
        for closer, opener in ((b"})", b"({"), (b"])", b"([")):
            for at in [m.start() for m in re.finditer(re.escape(closer), skeleton)]:
                self.assertTrue(skeleton[at - 1:at] == b"," or skeleton[at - 2:at] == opener, skeleton)
        self.assertTrue(b"({," not in skeleton and b"([," not in skeleton)
        self.assertNotIn(b",,", skeleton)

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(_values, st.data())
    def test_reader_tolerates_whitespace_and_missing_trailing_commas(self, value, data):
        tokens = _STRICT_TOKENS.findall(self.codec.encode(value))
        self.assertEqual(b"".join(tokens), self.codec.encode(value))
        loose = []
        for i, token in enumerate(tokens):
            following = tokens[i + 1] if i + 1 < len(tokens) else b""
            if token == b"," and following in (b"})", b"])") and data.draw(st.booleans()):
                continue  # the trailing comma is optional
            loose.append(data.draw(st.sampled_from([b"", b" ", b"\n", b"\t ", b"\r\n"])))
            loose.append(token)
        self.assertTrue(same(self.codec.decode(b"".join(loose)), _as_sent(value)))

    @settings(deadline=None, max_examples=200, suppress_health_check=BOTH_CODECS)
    @given(st.data())
    def test_mutated_router_frames_raise_only_lpcerror(self, data):
        vectors = load_vectors()
        text = bytearray(data.draw(st.sampled_from(vectors)).text)
        for _ in range(data.draw(st.integers(1, 6))):
            at = data.draw(st.integers(0, len(text) - 1))
            if data.draw(st.booleans()):
                text[at:at + data.draw(st.integers(1, 8))] = b""
            else:
                text[at:at] = data.draw(st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\", b"\xff", b"9" * 30]))
        try:
            self.codec.decode(bytes(text))
        except LPCError:
            pass

    def test_array_and_mapping_keys_survive_a_round_trip(self):
        value = {(1, "a"): 2, ((1,), ()): 3, 4: {"x": (5,)}}
        self.assertEqual(self.codec.decode(self.codec.encode(value)), {(1, "a"): 2, ((1,), ()): 3, 4: {"x": [5]}})

    def test_trailing_bytes_after_the_value_are_never_read(self):
        self.assertEqual(self.codec.decode(b'({1,}) "unterminated \\'), [1])
        self.assertEqual(self.codec.decode(b"7 " + b"({" * 10000), 7)

    # -------------------------------------------------------- bounds

    def test_number_tokens_are_bounded_at_4000_characters(self):
        self.assertEqual(self.codec.decode(b"7" * 4000), int("7" * 4000))
        self.assertEqual(self.codec.decode(b"-" + b"7" * 3999), -int("7" * 3999))
        self.assertEqual(self.codec.decode(b"1." + b"0" * 3998), 1.0)
        for text in (b"7" * 4001, b"-" + b"7" * 4000, b"1." + b"0" * 3999, b"({" + b"5" * 4001 + b",})"):
            with self.assertRaisesRegex(LPCError, "too long"):
                self.codec.decode(text)

    def test_numbers_read_as_python_reads_them(self):
        self.assertTrue(same(self.codec.decode(b"123456789012345678"), 123456789012345678))
        self.assertTrue(same(self.codec.decode(b"-1234567890123456789012"), -1234567890123456789012))
        self.assertTrue(same(self.codec.decode(b"+007"), 7))
        self.assertTrue(same(self.codec.decode(b"1e400"), math.inf))   # as float(): no error, an infinity
        self.assertTrue(same(self.codec.decode(b"-1e400"), -math.inf))
        self.assertTrue(same(self.codec.decode(b"1e-400"), 0.0))
        self.assertTrue(same(self.codec.decode(b"1.e5"), 100000.0))
        self.assertTrue(same(self.codec.decode(b"-.5"), -0.5))
        self.assertTrue(same(self.codec.decode(b"5."), 5.0))
        self.assertTrue(same(self.codec.decode(b"1e"), 1))     # no exponent digits: "1", then "e" unread
        with self.assertRaises(LPCError):
            self.codec.decode(b"({1e,})")

    def test_a_digit_limit_below_the_token_bound_is_still_an_lpcerror(self):
        import sys
        limit = sys.get_int_max_str_digits()
        sys.set_int_max_str_digits(1000)
        try:
            with self.assertRaisesRegex(LPCError, "unreadable"):
                self.codec.decode(b"9" * 2000)
        finally:
            sys.set_int_max_str_digits(limit)

    def test_encode_int_bound_is_exact(self):
        self.assertEqual(self.codec.encode([lpc.INT_MIN, lpc.INT_MAX]), b"({-2147483648,2147483647,})")
        for value in (lpc.INT_MAX + 1, lpc.INT_MIN - 1, 10 ** 100):
            with self.assertRaisesRegex(LPCError, "32 bits"):
                self.codec.encode(value)

    def test_encode_depth_bound_is_exact_for_mappings_and_keys(self):
        self.assertEqual(self.codec.encode({"a": {}}, max_depth=2), b'(["a":([]),])')
        with self.assertRaisesRegex(LPCError, "deeply"):
            self.codec.encode({"a": {}}, max_depth=1)
        self.assertEqual(self.codec.encode({(1,): 0}, max_depth=2), b"([({1,}):0,])")
        with self.assertRaisesRegex(LPCError, "deeply"):
            self.codec.encode({(1,): 0}, max_depth=1)
        self.assertEqual(self.codec.encode(5, max_depth=0), b"5")
        with self.assertRaisesRegex(LPCError, "deeply"):
            self.codec.encode([], max_depth=0)

    def test_decode_depth_bound_counts_mappings_too(self):
        self.assertEqual(self.codec.decode(b"([1:([2:({}),]),])", max_depth=3), {1: {2: []}})
        with self.assertRaisesRegex(LPCError, "deeper"):
            self.codec.decode(b"([1:([2:({}),]),])", max_depth=2)
        with self.assertRaisesRegex(LPCError, "deeper"):
            self.codec.decode(b"({})", max_depth=0)
        self.assertEqual(self.codec.decode(b"7", max_depth=0), 7)

    def test_very_deep_text_under_a_huge_depth_bound_never_overflows(self):
        # The reader keeps its own stack; only a mapping key nested past the
        # interpreter's recursion limit (made a tuple recursively) fails, and
        # then as an LPCError.
        self.assertIsNotNone(self.codec.decode(b"({" * 100000 + b"})" * 100000, max_depth=10 ** 6))
        with self.assertRaises(LPCError):
            self.codec.decode(b"([" + b"({" * 50000 + b"})" * 50000 + b":1,])", max_depth=10 ** 6)

    def test_max_length_counts_the_bytes_given_nul_included(self):
        self.assertEqual(self.codec.decode(b"7\x00", max_length=2), 7)
        with self.assertRaisesRegex(LPCError, "limit"):
            self.codec.decode(b"7\x00", max_length=1)
        with self.assertRaisesRegex(LPCError, "limit"):
            self.codec.decode(bytearray(b"77"), max_length=1)

    def test_decode_copies_any_buffer_as_bytes_would(self):
        import array
        ints = array.array("B", b"({1,})")
        self.assertEqual(self.codec.decode(memoryview(ints)), [1])
        self.assertEqual(self.codec.decode(memoryview(b"x({2,})x")[1:-1]), [2])

    def test_encode_follows_subclasses_as_python_iterates_them(self):
        import collections
        ordered = collections.OrderedDict([("a", 1), ("b", 2)])
        ordered.move_to_end("a")
        self.assertEqual(self.codec.encode(ordered), b'(["b":2,"a":1,])')

        class Reversed(list):
            def __iter__(self):
                return iter(list.__reversed__(self))
        self.assertEqual(self.codec.encode(Reversed([1, 2])), b"({2,1,})")
        self.assertEqual(self.codec.encode([True, False, 1.5]), b"({1,0,1.500000,})")

    # ------------------------------------------------------- Decoder

    @settings(deadline=None, max_examples=50, suppress_health_check=BOTH_CODECS)
    @given(_values, st.integers(1, 64), st.sampled_from([b"", b"\x00", b" ", b" junk"]))
    def test_decoder_in_slices_reads_what_decode_reads(self, value, slice_bytes, after):
        text = self.codec.encode(value) + after
        decoder = self.codec.Decoder(text)
        steps = 1
        while not decoder.step(slice_bytes):
            steps += 1
            self.assertLessEqual(steps, len(text) + 1)
        self.assertTrue(same(decoder.value, self.codec.decode(text)))
        self.assertIs(decoder.step(slice_bytes), True)  # done stays done

    def test_decoder_works_in_bounded_slices(self):
        text = self.codec.encode([["x" * 10, 12345] for _ in range(1000)])
        decoder = self.codec.Decoder(text)
        self.assertIsNone(decoder.value)
        steps = 0
        while not decoder.step(1000):
            steps += 1
        # A slice ends at the first token boundary past 1000 bytes.
        self.assertTrue(len(text) // 1000 - 1 <= steps <= len(text) // 1000 + 1)
        self.assertEqual(decoder.value, self.codec.decode(text))

    def test_decoder_fails_as_decode_does_and_stays_failed(self):
        for text in DECODER_FAILURES:
            with self.refused(text):
                self.codec.decode(text)
            decoder = self.codec.Decoder(text, max_depth=64)
            with self.refused(text):
                while not decoder.step(3):
                    pass
            with self.refused(text, "already failed"):
                decoder.step(3)

    def test_decoder_refuses_a_slice_of_nothing_and_non_bytes(self):
        with self.assertRaises(ValueError):
            self.codec.Decoder(b"1").step(0)
        with self.assertRaises(LPCError):
            self.codec.Decoder("({})")
        with self.assertRaisesRegex(LPCError, "deeper"):
            self.codec.Decoder(b"({({})})", max_depth=1).step(100)


class PythonCodecTests(CodecTests, SynchronousTestCase):
    codec = lpc_python


class CompiledCodecTests(CodecTests, SynchronousTestCase):
    def setUp(self):
        self.codec = codecs.compiled()   # skips without the build (fails under CI)


class ActiveCodecTests(SynchronousTestCase):
    """Which codec `lpc` chose, and why."""

    def test_the_active_codec_is_reported(self):
        self.assertIn(lpc.IMPLEMENTATION, ("c", "python"))
        self.assertTrue((lpc.IMPLEMENTATION == "c") == (lpc.C_CODEC is not None) == (lpc.FALLBACK_REASON is None))
        if lpc.IMPLEMENTATION == "c":
            self.assertIs(lpc.Decoder, lpc.C_CODEC.Decoder)
            self.assertIs(lpc.C_CODEC.LPCError, LPCError)

    def test_a_missing_or_mismatched_build_falls_back_to_python(self):
        def missing(name):
            raise ImportError(f"No module named {name!r}")

        codec_module, reason = lpc.choose(missing)
        self.assertTrue(codec_module is lpc_python and "not installed" in reason)

        def broken(name):
            raise AttributeError("module 'intermud3.lpc_python' has no attribute 'LPCError'")

        codec_module, reason = lpc.choose(broken)
        self.assertTrue(codec_module is lpc_python and "failed to load" in reason)

        class Stale:
            ABI_VERSION = lpc.C_ABI_VERSION - 1

        codec_module, reason = lpc.choose(lambda name: Stale)
        self.assertTrue(codec_module is lpc_python and f"ABI version {lpc.C_ABI_VERSION - 1}" in reason)

        class NoVersion:
            pass

        self.assertIs(lpc.choose(lambda name: NoVersion)[0], lpc_python)

        class Current:
            ABI_VERSION = lpc.C_ABI_VERSION

        self.assertEqual(lpc.choose(lambda name: Current), (Current, None))

    def test_the_built_codec_has_the_version_this_source_expects(self):
        compiled = codecs.compiled()
        self.assertEqual(compiled.ABI_VERSION, lpc.C_ABI_VERSION)
        self.assertEqual(lpc.IMPLEMENTATION, "c")
