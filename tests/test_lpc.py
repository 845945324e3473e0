"""The LPC codec: strict writer, lenient bounded reader (I3-PROTOCOL.md s.2),
both implementations: pure Python (the reference) and C."""

import math
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from intermud3 import lpc
from intermud3.lpc import LPCError
from tests import codecs
from tests.vectors import load_vectors


@pytest.fixture(scope="module", params=codecs.NAMES)
def codec(request):
    """Each test below runs against the pure-Python and the compiled codec."""
    return codecs.codec(request.param)


def same(a, b):
    """Equal, and int/float/str kinds agree (plain == says 1 == 1.0 == True)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------ vectors

def test_every_vector_decodes_to_its_reading(codec):
    vectors = load_vectors()
    assert len(vectors) == 78
    for v in vectors:
        assert same(codec.decode(v.frame[4:]), v.decoded), f"line {v.line} ({v.note})"


def test_vectors_decode_without_the_trailing_nul_too(codec):
    for v in load_vectors():
        assert same(codec.decode(v.text), v.decoded), f"line {v.line}"


def test_to_router_vectors_are_reproduced_byte_for_byte(codec):
    cr_frames = 0
    for v in load_vectors():
        if v.dir != "to-router":
            continue
        ours = codec.encode(v.decoded)
        if b"\r" in v.text:
            # The capture wrote a newline as a raw CR (as FluffOS does); we
            # send LF. That is the only permitted difference.
            cr_frames += 1
            assert ours == v.text.replace(b"\r", b"\n"), f"line {v.line}"
            assert ours != v.text
        else:
            assert ours == v.text, f"line {v.line} ({v.note})"
    assert cr_frames == 1  # the channel-m with "Hi \"all\" \\o/<CR>new line"


def test_every_vector_re_encodes_and_re_decodes_to_the_same_value(codec):
    for v in load_vectors():
        value = codec.decode(v.frame[4:])
        assert same(codec.decode(codec.encode(value)), value), f"line {v.line}"


def test_router_cr_newline_reads_as_lf(codec):
    for v in load_vectors():
        if b"\r" in v.text:
            message = codec.decode(v.text)[-1]
            assert "\r" not in message
            assert message == 'Hi "all" \\o/\nnew line, caf\u00e9'


# ------------------------------------------------------------------ writing

@pytest.mark.parametrize("value, text", [
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
])
def test_encode_writes_strict_fluffos_form(codec, value, text):
    assert codec.encode(value) == text


@pytest.mark.parametrize("value", [2 ** 31, -(2 ** 31) - 1, 10 ** 20, [1, 2 ** 40], [10 ** 5000]])
def test_encode_refuses_ints_outside_32_bits(codec, value):
    with pytest.raises(LPCError, match="32 bits"):
        codec.encode(value)


@pytest.mark.parametrize("value, kept", [
    (2 ** 31 - 1, 2 ** 31 - 1), (-(2 ** 31), -(2 ** 31)), (842758708, 842758708), (0, 0),
    (2 ** 31, 0), (-(2 ** 31) - 1, 0), (True, 0), (1.0, 0), ("7", 0), (None, 0), ([1], 0)])
def test_int_or_zero_keeps_only_what_encode_writes_as_an_int(codec, value, kept):
    assert lpc.int_or_zero(value) == kept
    assert type(lpc.int_or_zero(value)) is int
    codec.encode(lpc.int_or_zero(value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_refuses_non_finite_floats(codec, value):
    with pytest.raises(LPCError):
        codec.encode(value)


@pytest.mark.parametrize("value", [b"bytes", object(), {1, 2}, 1j, ["ok", b"bad"]])
def test_encode_refuses_types_without_an_lpc_form(codec, value):
    with pytest.raises(LPCError, match="cannot encode"):
        codec.encode(value)


def test_encode_bounds_nesting_and_catches_cycles(codec):
    cycle = []
    cycle.append(cycle)
    with pytest.raises(LPCError, match="deeply"):
        codec.encode(cycle)
    nested = 0
    for _ in range(10):
        nested = [nested]
    assert codec.encode(nested, max_depth=10) == b"({" * 10 + b"0," + b"})," * 9 + b"})"
    with pytest.raises(LPCError):
        codec.encode(nested, max_depth=9)


@pytest.mark.parametrize("text, sent", [
    ("nul\x00inside", b'"nulinside"'),
    ("\x1b[31mred\x1b[0m", b'"[31mred[0m"'),  # no raw ANSI on the wire
    ("tab\there", b'"tabhere"'),
    ("bell\x07 del\x7f c1\x85", b'"bell del c1"'),
    ("cr\rlf", b'"cr\nlf"'),
    ("crlf\r\nend", b'"crlf\nend"'),
    ("lf\nkept", b'"lf\nkept"'),
    ("lone \ud800 surrogate", b'"lone ? surrogate"'),
])
def test_encode_sends_only_clean_utf8(codec, text, sent):
    assert codec.encode(text) == sent


def test_encode_cleans_mapping_keys_too(codec):
    assert codec.encode({"a\x00b": "c\rd"}) == b'(["ab":"c\nd",])'


# ------------------------------------------------------------------ reading

@pytest.mark.parametrize("text, value", [
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
])
def test_decode_reads_leniently(codec, text, value):
    assert same(codec.decode(text), value)


def test_decode_falls_back_to_latin1_per_string(codec):
    assert codec.decode(b'({"caf\xe9","caf\xc3\xa9",})') == ["caf\u00e9", "caf\u00e9"]


def test_decode_turns_unhashable_keys_into_tuples(codec):
    assert codec.decode(b"([({1,({2,}),}):3,])") == {(1, (2,)): 3}
    assert codec.decode(b'([(["a":({1,}),]):4,])') == {(("a", (1,)),): 4}


def test_decode_accepts_bytearray_and_memoryview(codec):
    assert codec.decode(bytearray(b"({1,})")) == [1]
    assert codec.decode(memoryview(b"({1,})")) == [1]


@pytest.mark.parametrize("text", [
    b"", b"   ", b"\x00",
    b"({", b"({1,", b"([", b'(["k":1,',
    b'"unterminated', b'"ends in backslash\\"', b'"\\',
    b"})", b"])", b":", b",",
    b"({1 2})", b'({"a""b"})', b"({1])", b"([1})",
    b"([1])", b"([1,])", b'(["a" 1])', b"([1:2:3])", b"([:1])",
    b"abc", b"-", b"+", b".", b"({1.2.3})", b"({-})", b"({1x})",
    b"({0x10})", b"(", b"({)", b"({ } )", b"( {})", b"1" * 5000,
])
def test_decode_rejects_malformed_text_with_lpcerror(codec, text):
    with pytest.raises(LPCError):
        codec.decode(text)


def test_an_escaped_final_quote_leaves_the_string_open(codec):
    with pytest.raises(LPCError, match="unterminated"):
        codec.decode(b'"abc\\"')
    with pytest.raises(LPCError, match="unterminated"):
        codec.decode(b'({"abc\\\\\\"')
    assert codec.decode(b'"abc\\\\"') == "abc\\"


def test_unterminated_strings_cannot_make_the_scan_quadratic(codec):
    # Each '"' would rescan to the end if a failed string match were
    # retried from every quote; 400 KB of them would then take minutes.
    started = time.monotonic()
    with pytest.raises(LPCError):
        codec.decode(b'"' + b'\\"' * 200000)
    with pytest.raises(LPCError):
        codec.decode(b'({"' + b'\\"' * 200000 + b"\\")
    assert time.monotonic() - started < 5


def test_decode_rejects_non_bytes(codec):
    with pytest.raises(LPCError):
        codec.decode("({1,})")
    with pytest.raises(LPCError):
        codec.decode(None)


def test_depth_bomb_raises_lpcerror(codec):
    with pytest.raises(LPCError, match="deeper"):
        codec.decode(b"({" * 10000)
    with pytest.raises(LPCError, match="deeper"):
        codec.decode(b"([" * 10000 + b"])" * 10000)


def test_depth_bound_is_exact_and_configurable(codec):
    def nested(n):
        return b"({" * n + b"})" * n
    assert codec.decode(nested(lpc.DEFAULT_MAX_DEPTH)) is not None
    with pytest.raises(LPCError):
        codec.decode(nested(lpc.DEFAULT_MAX_DEPTH + 1))
    assert codec.decode(nested(3), max_depth=3) == [[[]]]
    with pytest.raises(LPCError):
        codec.decode(nested(3), max_depth=2)
    # A generous bound is still safe: the reader keeps its own stack.
    assert codec.decode(nested(5000), max_depth=10000) is not None


def test_max_length_bounds_the_input(codec):
    assert codec.decode(b"({1,})", max_length=6) == [1]
    with pytest.raises(LPCError, match="limit"):
        codec.decode(b"({1,})", max_length=5)


def test_decoded_floats_and_ints_keep_their_kind(codec):
    value = codec.decode(b"({1,1.0,1e0,})")
    assert [type(x) for x in value] == [int, float, float]


# --------------------------------------------------------------- properties

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


@settings(deadline=None, max_examples=200)
@given(_values)
def test_round_trip(codec, value):
    assert same(codec.decode(codec.encode(value)), _as_sent(value))


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_lpcerror(codec, data):
    try:
        codec.decode(data)
    except LPCError:
        pass


_alphabet = st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\",
                             b"1", b"-", b".", b"e", b" ", b"\r", b"\x00", b"\xe9", b"x"])


@settings(deadline=None, max_examples=200)
@given(st.lists(_alphabet, max_size=60))
def test_lpc_shaped_garbage_raises_only_lpcerror(codec, parts):
    try:
        codec.decode(b"".join(parts))
    except LPCError:
        pass


@settings(deadline=None, max_examples=200)
@given(_values, st.data())
def test_mutated_frames_raise_only_lpcerror(codec, value, data):
    text = bytearray(codec.encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(len(text) - 1, 0)))
        text[at:at + 1] = data.draw(st.binary(max_size=2))
    try:
        codec.decode(bytes(text))
    except LPCError:
        pass


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


@settings(deadline=None, max_examples=200)
@given(_anything)
def test_encoded_text_is_strict(codec, value):
    text = codec.encode(value)
    text.decode("utf-8")  # always valid UTF-8
    assert b"\x00" not in text
    assert not any(c < 0x20 and c != 0x0A for c in text)
    skeleton = _tokens_outside_strings(text)
    assert not re.search(rb"\s", skeleton), skeleton
    # Every element and pair is followed by a comma: a closer follows only
    # a comma or its own opener, and no container starts with a comma.
    for closer, opener in ((b"})", b"({"), (b"])", b"([")):
        for at in [m.start() for m in re.finditer(re.escape(closer), skeleton)]:
            assert skeleton[at - 1:at] == b"," or skeleton[at - 2:at] == opener, skeleton
    assert b"({," not in skeleton and b"([," not in skeleton
    assert b",," not in skeleton


# An independent cut of strict encoder output into its tokens.
_STRICT_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|\(\{|\}\)|\(\[|\]\)|[,:]', re.DOTALL)


@settings(deadline=None, max_examples=200)
@given(_values, st.data())
def test_reader_tolerates_whitespace_and_missing_trailing_commas(codec, value, data):
    tokens = _STRICT_TOKENS.findall(codec.encode(value))
    assert b"".join(tokens) == codec.encode(value)
    loose = []
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else b""
        if token == b"," and following in (b"})", b"])") and data.draw(st.booleans()):
            continue  # the trailing comma is optional
        loose.append(data.draw(st.sampled_from([b"", b" ", b"\n", b"\t ", b"\r\n"])))
        loose.append(token)
    assert same(codec.decode(b"".join(loose)), _as_sent(value))


@settings(deadline=None, max_examples=200)
@given(st.data())
def test_mutated_router_frames_raise_only_lpcerror(codec, data):
    vectors = load_vectors()
    text = bytearray(data.draw(st.sampled_from(vectors)).text)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(text) - 1))
        if data.draw(st.booleans()):
            text[at:at + data.draw(st.integers(1, 8))] = b""
        else:
            text[at:at] = data.draw(st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\", b"\xff", b"9" * 30]))
    try:
        codec.decode(bytes(text))
    except LPCError:
        pass


def test_array_and_mapping_keys_survive_a_round_trip(codec):
    value = {(1, "a"): 2, ((1,), ()): 3, 4: {"x": (5,)}}
    assert codec.decode(codec.encode(value)) == {(1, "a"): 2, ((1,), ()): 3, 4: {"x": [5]}}


def test_trailing_bytes_after_the_value_are_never_read(codec):
    assert codec.decode(b'({1,}) "unterminated \\') == [1]
    assert codec.decode(b"7 " + b"({" * 10000) == 7


# ------------------------------------------------------------------ bounds

def test_number_tokens_are_bounded_at_4000_characters(codec):
    assert codec.decode(b"7" * 4000) == int("7" * 4000)
    assert codec.decode(b"-" + b"7" * 3999) == -int("7" * 3999)
    assert codec.decode(b"1." + b"0" * 3998) == 1.0
    for text in (b"7" * 4001, b"-" + b"7" * 4000, b"1." + b"0" * 3999, b"({" + b"5" * 4001 + b",})"):
        with pytest.raises(LPCError, match="too long"):
            codec.decode(text)


def test_numbers_read_as_python_reads_them(codec):
    assert same(codec.decode(b"123456789012345678"), 123456789012345678)
    assert same(codec.decode(b"-1234567890123456789012"), -1234567890123456789012)
    assert same(codec.decode(b"+007"), 7)
    assert same(codec.decode(b"1e400"), math.inf)   # as float(): no error, an infinity
    assert same(codec.decode(b"-1e400"), -math.inf)
    assert same(codec.decode(b"1e-400"), 0.0)
    assert same(codec.decode(b"1.e5"), 100000.0)
    assert same(codec.decode(b"-.5"), -0.5)
    assert same(codec.decode(b"5."), 5.0)
    assert same(codec.decode(b"1e"), 1)     # no exponent digits: "1", then "e" unread
    with pytest.raises(LPCError):
        codec.decode(b"({1e,})")


def test_a_digit_limit_below_the_token_bound_is_still_an_lpcerror(codec):
    import sys
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(1000)
    try:
        with pytest.raises(LPCError, match="unreadable"):
            codec.decode(b"9" * 2000)
    finally:
        sys.set_int_max_str_digits(limit)


def test_encode_int_bound_is_exact(codec):
    assert codec.encode([lpc.INT_MIN, lpc.INT_MAX]) == b"({-2147483648,2147483647,})"
    for value in (lpc.INT_MAX + 1, lpc.INT_MIN - 1, 10 ** 100):
        with pytest.raises(LPCError, match="32 bits"):
            codec.encode(value)


def test_encode_depth_bound_is_exact_for_mappings_and_keys(codec):
    assert codec.encode({"a": {}}, max_depth=2) == b'(["a":([]),])'
    with pytest.raises(LPCError, match="deeply"):
        codec.encode({"a": {}}, max_depth=1)
    assert codec.encode({(1,): 0}, max_depth=2) == b"([({1,}):0,])"
    with pytest.raises(LPCError, match="deeply"):
        codec.encode({(1,): 0}, max_depth=1)
    assert codec.encode(5, max_depth=0) == b"5"
    with pytest.raises(LPCError, match="deeply"):
        codec.encode([], max_depth=0)


def test_decode_depth_bound_counts_mappings_too(codec):
    assert codec.decode(b"([1:([2:({}),]),])", max_depth=3) == {1: {2: []}}
    with pytest.raises(LPCError, match="deeper"):
        codec.decode(b"([1:([2:({}),]),])", max_depth=2)
    with pytest.raises(LPCError, match="deeper"):
        codec.decode(b"({})", max_depth=0)
    assert codec.decode(b"7", max_depth=0) == 7


def test_very_deep_text_under_a_huge_depth_bound_never_overflows(codec):
    # The reader keeps its own stack; only a mapping key nested past the
    # interpreter's recursion limit (made a tuple recursively) fails, and
    # then as an LPCError.
    assert codec.decode(b"({" * 100000 + b"})" * 100000, max_depth=10 ** 6) is not None
    with pytest.raises(LPCError):
        codec.decode(b"([" + b"({" * 50000 + b"})" * 50000 + b":1,])", max_depth=10 ** 6)


def test_max_length_counts_the_bytes_given_nul_included(codec):
    assert codec.decode(b"7\x00", max_length=2) == 7
    with pytest.raises(LPCError, match="limit"):
        codec.decode(b"7\x00", max_length=1)
    with pytest.raises(LPCError, match="limit"):
        codec.decode(bytearray(b"77"), max_length=1)


def test_decode_copies_any_buffer_as_bytes_would(codec):
    import array
    ints = array.array("B", b"({1,})")
    assert codec.decode(memoryview(ints)) == [1]
    assert codec.decode(memoryview(b"x({2,})x")[1:-1]) == [2]


def test_encode_follows_subclasses_as_python_iterates_them(codec):
    import collections
    ordered = collections.OrderedDict([("a", 1), ("b", 2)])
    ordered.move_to_end("a")
    assert codec.encode(ordered) == b'(["b":2,"a":1,])'

    class Reversed(list):
        def __iter__(self):
            return iter(list.__reversed__(self))
    assert codec.encode(Reversed([1, 2])) == b"({2,1,})"
    assert codec.encode([True, False, 1.5]) == b"({1,0,1.500000,})"


# ------------------------------------------------------------------ Decoder

@settings(deadline=None, max_examples=50)
@given(_values, st.integers(1, 64), st.sampled_from([b"", b"\x00", b" ", b" junk"]))
def test_decoder_in_slices_reads_what_decode_reads(codec, value, slice_bytes, after):
    text = codec.encode(value) + after
    decoder = codec.Decoder(text)
    steps = 1
    while not decoder.step(slice_bytes):
        steps += 1
        assert steps <= len(text) + 1
    assert same(decoder.value, codec.decode(text))
    assert decoder.step(slice_bytes) is True  # done stays done


def test_decoder_works_in_bounded_slices(codec):
    text = codec.encode([["x" * 10, 12345] for _ in range(1000)])
    decoder = codec.Decoder(text)
    assert decoder.value is None
    steps = 0
    while not decoder.step(1000):
        steps += 1
    # A slice ends at the first token boundary past 1000 bytes.
    assert len(text) // 1000 - 1 <= steps <= len(text) // 1000 + 1
    assert decoder.value == codec.decode(text)


@pytest.mark.parametrize("text", [b"({1,", b"({1 2})", b"", b"   ", b"({" * 100, b'({"open'])
def test_decoder_fails_as_decode_does_and_stays_failed(codec, text):
    with pytest.raises(LPCError):
        codec.decode(text)
    decoder = codec.Decoder(text, max_depth=64)
    with pytest.raises(LPCError):
        while not decoder.step(3):
            pass
    with pytest.raises(LPCError, match="already failed"):
        decoder.step(3)


def test_decoder_refuses_a_slice_of_nothing_and_non_bytes(codec):
    with pytest.raises(ValueError):
        codec.Decoder(b"1").step(0)
    with pytest.raises(LPCError):
        codec.Decoder("({})")
    with pytest.raises(LPCError, match="deeper"):
        codec.Decoder(b"({({})})", max_depth=1).step(100)


# ------------------------------------------------------------ which codec

def test_the_active_codec_is_reported():
    assert lpc.IMPLEMENTATION in ("c", "python")
    assert (lpc.IMPLEMENTATION == "c") == (lpc.C_CODEC is not None) == (lpc.FALLBACK_REASON is None)
    if lpc.IMPLEMENTATION == "c":
        assert lpc.Decoder is lpc.C_CODEC.Decoder
        assert lpc.C_CODEC.LPCError is LPCError


def test_a_missing_or_mismatched_build_falls_back_to_python():
    from intermud3 import lpc_python

    def missing(name):
        raise ImportError(f"No module named {name!r}")

    codec_module, reason = lpc.choose(missing)
    assert codec_module is lpc_python and "not installed" in reason

    def broken(name):
        raise AttributeError("module 'intermud3.lpc_python' has no attribute 'LPCError'")

    codec_module, reason = lpc.choose(broken)
    assert codec_module is lpc_python and "failed to load" in reason

    class Stale:
        ABI_VERSION = lpc.C_ABI_VERSION - 1

    codec_module, reason = lpc.choose(lambda name: Stale)
    assert codec_module is lpc_python and f"ABI version {lpc.C_ABI_VERSION - 1}" in reason

    class NoVersion:
        pass

    assert lpc.choose(lambda name: NoVersion)[0] is lpc_python

    class Current:
        ABI_VERSION = lpc.C_ABI_VERSION

    assert lpc.choose(lambda name: Current) == (Current, None)


def test_the_built_codec_has_the_version_this_source_expects():
    compiled = codecs.compiled()
    assert compiled.ABI_VERSION == lpc.C_ABI_VERSION
    assert lpc.IMPLEMENTATION == "c"
