"""The compiled codec against the pure-Python reference, on random input.

Encode: the same bytes, or both raise the same kind of error (LPCError for
anything LPC cannot write). Decode and Decoder: equal values of the same
kinds, or both raise LPCError. Skipped without the compiled codec (failed
under CI: see tests/codecs.py).
"""

import collections
import math
import string

from hypothesis import example, given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import lpc_python
from intermud3.lpc import INT_MAX, INT_MIN, LPCError
from tests import codecs
from tests.vectors import load_vectors


def same(a, b):
    """Equal, with int/float/str/tuple kinds agreeing (1 == 1.0 == True in
    plain ==); NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def outcome(function, *args, **kwargs):
    """("value", result) or ("error", exception class)."""
    try:
        return "value", function(*args, **kwargs)
    except Exception as exc:  # compared below: which class, not the message
        return "error", type(exc)


# Every code point kind: ASCII, Latin-1 with C1 controls, BMP, astral,
# lone surrogates; CR, LF, quotes and backslashes often.
_chars = st.one_of(
    st.sampled_from(list('\r\n\t\x00\x1b\x7f\x85\x9f\xa0"\\?')),
    st.characters(max_codepoint=0xFF),
    st.characters(),
)
_text = st.text(_chars, max_size=30)
_ints = st.one_of(st.integers(INT_MIN, INT_MAX), st.integers(INT_MIN - 5, INT_MIN + 5),
                  st.integers(INT_MAX - 5, INT_MAX + 5), st.integers(-10 ** 40, 10 ** 40))
_floats = st.one_of(st.floats(), st.floats(-1e-5, 1e-5), st.sampled_from([1e300, -0.0, 0.5e-6]))
_scalars = st.one_of(st.none(), st.booleans(), _ints, _floats, _text)
_keys = st.one_of(_scalars.filter(lambda v: not (isinstance(v, float) and math.isnan(v))),
                  st.tuples(st.integers(-3, 3), _text))
_unwritable = st.sampled_from([b"bytes", {1, 2}, 1j, object(), frozenset()])
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.lists(inner, max_size=5).map(tuple),
        st.dictionaries(_keys, inner, max_size=5),
        st.dictionaries(_keys, inner, max_size=4).map(collections.OrderedDict),
    ),
    max_leaves=30,
)
_values_or_bad = st.one_of(_values, st.lists(st.one_of(_values, _unwritable), max_size=4))

# Pieces of LPC text, valid or not, to be glued together at random.
_pieces = st.one_of(
    st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\", b"\\\\", b'\\"',
                     b" ", b"\t", b"\r", b"\r\n", b"\n", b"\x0b", b"\x0c", b"\x1c", b"\x00",
                     b"(", b")", b"{", b"}", b"[", b"]", b"-", b"+", b".", b"e", b"E", b"x",
                     b"\xe9", b"\xc3\xa9", b"\xed\xa0\x80", b"\xf0\x9f\x98\x80", b"\xff"]),
    st.from_regex(rb"\A[-+]?[0-9]{0,25}\.?[0-9]{0,5}([eE][-+]?[0-9]{0,4})?\Z"),
    st.binary(max_size=3),
    st.text(string.printable, max_size=8).map(lambda t: b'"' + t.encode() + b'"'),
)
_texts = st.lists(_pieces, max_size=40).map(b"".join)


class CompiledCodecMatchesTheReference(SynchronousTestCase):

    def setUp(self):
        self.c = codecs.compiled()

    def assert_same_encoding(self, value, max_depth=64):
        ours = outcome(self.c.encode, value, max_depth=max_depth)
        reference = outcome(lpc_python.encode, value, max_depth=max_depth)
        self.assertEqual(ours[0], reference[0], (value, ours, reference))
        self.assertEqual(ours[1], reference[1], value)
        if reference[0] == "error":
            self.assertIs(reference[1], LPCError, (value, reference))

    def assert_same_reading(self, text, **bounds):
        ours = outcome(self.c.decode, text, **bounds)
        reference = outcome(lpc_python.decode, text, **bounds)
        self.assertEqual(ours[0], reference[0], (text, ours, reference))
        if reference[0] == "error":
            self.assertIs(ours[1], LPCError, (text, ours))
            self.assertIs(reference[1], LPCError, (text, reference))
        else:
            self.assertTrue(same(ours[1], reference[1]), (text, ours, reference))
        return reference

    @settings(deadline=None, max_examples=300)
    @given(_values_or_bad, st.integers(0, 6))
    @example(["a\r\r\nb\r\x00\nc\ud800\udfff\U0001F600"], 64)
    @example([1e300, -0.0, 1e-7, -1e-7, 2.5e-6, 123456789.987654321], 64)
    @example(dict([((1, "x"), [None, True, False]), (1, 2), (1.0, 3)]), 64)
    @example([10 ** 5000], 64)  # too many digits even to name in the message
    def test_encode_gives_the_same_bytes_or_the_same_error(self, value, max_depth):
        self.assert_same_encoding(value, max_depth)
        self.assert_same_encoding(value)

    @settings(deadline=None, max_examples=300)
    @given(st.binary(max_size=300), st.integers(0, 70), st.none() | st.integers(0, 300))
    def test_decode_of_random_bytes(self, data, max_depth, max_length):
        self.assert_same_reading(data, max_depth=max_depth, max_length=max_length)

    @settings(deadline=None, max_examples=300)
    @given(_texts, st.integers(1, 8))
    @example(b'"a\\\r\nb\r\rc\\\\"', 8)
    @example(b'([({1,}):2,(["k":({}),]):3,1:,,2:4])', 8)
    @example(b'({1,,2, ,})\x00\x00', 8)
    def test_decode_of_lpc_shaped_text(self, text, max_depth):
        self.assert_same_reading(text, max_depth=max_depth)
        self.assert_same_reading(bytearray(text))

    @settings(deadline=None, max_examples=150)
    @given(_values)
    def test_decode_of_what_encode_wrote(self, value):
        try:
            text = lpc_python.encode(value)
        except LPCError:
            return
        self.assert_same_reading(text)

    @settings(deadline=None, max_examples=100)
    @given(st.data())
    def test_decode_of_mutated_router_frames(self, data):
        text = bytearray(data.draw(st.sampled_from(load_vectors())).frame[4:])
        for _ in range(data.draw(st.integers(1, 6))):
            at = data.draw(st.integers(0, len(text) - 1))
            text[at:at + data.draw(st.integers(0, 4))] = data.draw(_pieces)
        self.assert_same_reading(bytes(text))

    @settings(deadline=None, max_examples=150)
    @given(_texts, st.integers(1, 16))
    def test_decoder_in_slices_matches_the_reference_decode(self, text, slice_bytes):
        reference = outcome(lpc_python.decode, text)
        decoder = self.c.Decoder(text)
        ours = outcome(lambda: [decoder.step(slice_bytes) for _ in range(len(text) + 2)][-1])
        if reference[0] == "error":
            self.assertEqual(ours, ("error", LPCError), text)
        else:
            self.assertEqual(ours, ("value", True), text)
            self.assertTrue(same(decoder.value, reference[1]), text)
