"""The LPC codec: strict writer, lenient bounded reader (I3-PROTOCOL.md s.2)."""

import math
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from intermud3 import lpc
from intermud3.lpc import LPCError, decode, encode
from tests.vectors import load_vectors


def same(a, b):
    """Equal, and int/float/str kinds agree (plain == says 1 == 1.0 == True)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


# ------------------------------------------------------------------ vectors

def test_every_vector_decodes_to_its_reading():
    vectors = load_vectors()
    assert len(vectors) == 78
    for v in vectors:
        assert same(decode(v.frame[4:]), v.decoded), f"line {v.line} ({v.note})"


def test_vectors_decode_without_the_trailing_nul_too():
    for v in load_vectors():
        assert same(decode(v.text), v.decoded), f"line {v.line}"


def test_to_router_vectors_are_reproduced_byte_for_byte():
    cr_frames = 0
    for v in load_vectors():
        if v.dir != "to-router":
            continue
        ours = encode(v.decoded)
        if b"\r" in v.text:
            # The capture wrote a newline as a raw CR (as FluffOS does); we
            # send LF. That is the only permitted difference.
            cr_frames += 1
            assert ours == v.text.replace(b"\r", b"\n"), f"line {v.line}"
            assert ours != v.text
        else:
            assert ours == v.text, f"line {v.line} ({v.note})"
    assert cr_frames == 1  # the channel-m with "Hi \"all\" \\o/<CR>new line"


def test_every_vector_re_encodes_and_re_decodes_to_the_same_value():
    for v in load_vectors():
        value = decode(v.frame[4:])
        assert same(decode(encode(value)), value), f"line {v.line}"


def test_router_cr_newline_reads_as_lf():
    for v in load_vectors():
        if b"\r" in v.text:
            message = decode(v.text)[-1]
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
def test_encode_writes_strict_fluffos_form(value, text):
    assert encode(value) == text


@pytest.mark.parametrize("value", [2 ** 31, -(2 ** 31) - 1, 10 ** 20, [1, 2 ** 40]])
def test_encode_refuses_ints_outside_32_bits(value):
    with pytest.raises(LPCError, match="32 bits"):
        encode(value)


@pytest.mark.parametrize("value, kept", [
    (2 ** 31 - 1, 2 ** 31 - 1), (-(2 ** 31), -(2 ** 31)), (842758708, 842758708), (0, 0),
    (2 ** 31, 0), (-(2 ** 31) - 1, 0), (True, 0), (1.0, 0), ("7", 0), (None, 0), ([1], 0)])
def test_int_or_zero_keeps_only_what_encode_writes_as_an_int(value, kept):
    assert lpc.int_or_zero(value) == kept
    assert type(lpc.int_or_zero(value)) is int
    encode(lpc.int_or_zero(value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_encode_refuses_non_finite_floats(value):
    with pytest.raises(LPCError):
        encode(value)


@pytest.mark.parametrize("value", [b"bytes", object(), {1, 2}, 1j, ["ok", b"bad"]])
def test_encode_refuses_types_without_an_lpc_form(value):
    with pytest.raises(LPCError, match="cannot encode"):
        encode(value)


def test_encode_bounds_nesting_and_catches_cycles():
    cycle = []
    cycle.append(cycle)
    with pytest.raises(LPCError, match="deeply"):
        encode(cycle)
    nested = 0
    for _ in range(10):
        nested = [nested]
    assert encode(nested, max_depth=10) == b"({" * 10 + b"0," + b"})," * 9 + b"})"
    with pytest.raises(LPCError):
        encode(nested, max_depth=9)


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
def test_encode_sends_only_clean_utf8(text, sent):
    assert encode(text) == sent


def test_encode_cleans_mapping_keys_too():
    assert encode({"a\x00b": "c\rd"}) == b'(["ab":"c\nd",])'


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
def test_decode_reads_leniently(text, value):
    assert same(decode(text), value)


def test_decode_falls_back_to_latin1_per_string():
    assert decode(b'({"caf\xe9","caf\xc3\xa9",})') == ["caf\u00e9", "caf\u00e9"]


def test_decode_turns_unhashable_keys_into_tuples():
    assert decode(b"([({1,({2,}),}):3,])") == {(1, (2,)): 3}
    assert decode(b'([(["a":({1,}),]):4,])') == {(("a", (1,)),): 4}


def test_decode_accepts_bytearray_and_memoryview():
    assert decode(bytearray(b"({1,})")) == [1]
    assert decode(memoryview(b"({1,})")) == [1]


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
def test_decode_rejects_malformed_text_with_lpcerror(text):
    with pytest.raises(LPCError):
        decode(text)


def test_an_escaped_final_quote_leaves_the_string_open():
    with pytest.raises(LPCError, match="unterminated"):
        decode(b'"abc\\"')
    with pytest.raises(LPCError, match="unterminated"):
        decode(b'({"abc\\\\\\"')
    assert decode(b'"abc\\\\"') == "abc\\"


def test_unterminated_strings_cannot_make_the_scan_quadratic():
    # Each '"' would rescan to the end if a failed string match were
    # retried from every quote; 400 KB of them would then take minutes.
    started = time.monotonic()
    with pytest.raises(LPCError):
        decode(b'"' + b'\\"' * 200000)
    with pytest.raises(LPCError):
        decode(b'({"' + b'\\"' * 200000 + b"\\")
    assert time.monotonic() - started < 5


def test_decode_rejects_non_bytes():
    with pytest.raises(LPCError):
        decode("({1,})")
    with pytest.raises(LPCError):
        decode(None)


def test_depth_bomb_raises_lpcerror():
    with pytest.raises(LPCError, match="deeper"):
        decode(b"({" * 10000)
    with pytest.raises(LPCError, match="deeper"):
        decode(b"([" * 10000 + b"])" * 10000)


def test_depth_bound_is_exact_and_configurable():
    def nested(n):
        return b"({" * n + b"})" * n
    assert decode(nested(lpc.DEFAULT_MAX_DEPTH)) is not None
    with pytest.raises(LPCError):
        decode(nested(lpc.DEFAULT_MAX_DEPTH + 1))
    assert decode(nested(3), max_depth=3) == [[[]]]
    with pytest.raises(LPCError):
        decode(nested(3), max_depth=2)
    # A generous bound is still safe: the reader keeps its own stack.
    assert decode(nested(5000), max_depth=10000) is not None


def test_max_length_bounds_the_input():
    assert decode(b"({1,})", max_length=6) == [1]
    with pytest.raises(LPCError, match="limit"):
        decode(b"({1,})", max_length=5)


def test_decoded_floats_and_ints_keep_their_kind():
    value = decode(b"({1,1.0,1e0,})")
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
def test_round_trip(value):
    assert same(decode(encode(value)), _as_sent(value))


@settings(deadline=None, max_examples=200)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_lpcerror(data):
    try:
        decode(data)
    except LPCError:
        pass


_alphabet = st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\",
                             b"1", b"-", b".", b"e", b" ", b"\r", b"\x00", b"\xe9", b"x"])


@settings(deadline=None, max_examples=200)
@given(st.lists(_alphabet, max_size=60))
def test_lpc_shaped_garbage_raises_only_lpcerror(parts):
    try:
        decode(b"".join(parts))
    except LPCError:
        pass


@settings(deadline=None, max_examples=200)
@given(_values, st.data())
def test_mutated_frames_raise_only_lpcerror(value, data):
    text = bytearray(encode(value))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, max(len(text) - 1, 0)))
        text[at:at + 1] = data.draw(st.binary(max_size=2))
    try:
        decode(bytes(text))
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
def test_encoded_text_is_strict(value):
    text = encode(value)
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
def test_reader_tolerates_whitespace_and_missing_trailing_commas(value, data):
    tokens = _STRICT_TOKENS.findall(encode(value))
    assert b"".join(tokens) == encode(value)
    loose = []
    for i, token in enumerate(tokens):
        following = tokens[i + 1] if i + 1 < len(tokens) else b""
        if token == b"," and following in (b"})", b"])") and data.draw(st.booleans()):
            continue  # the trailing comma is optional
        loose.append(data.draw(st.sampled_from([b"", b" ", b"\n", b"\t ", b"\r\n"])))
        loose.append(token)
    assert same(decode(b"".join(loose)), _as_sent(value))


@settings(deadline=None, max_examples=200)
@given(st.data())
def test_mutated_router_frames_raise_only_lpcerror(data):
    vectors = load_vectors()
    text = bytearray(data.draw(st.sampled_from(vectors)).text)
    for _ in range(data.draw(st.integers(1, 6))):
        at = data.draw(st.integers(0, len(text) - 1))
        if data.draw(st.booleans()):
            text[at:at + data.draw(st.integers(1, 8))] = b""
        else:
            text[at:at] = data.draw(st.sampled_from([b"({", b"})", b"([", b"])", b",", b":", b'"', b"\\", b"\xff", b"9" * 30]))
    try:
        decode(bytes(text))
    except LPCError:
        pass


def test_array_and_mapping_keys_survive_a_round_trip():
    value = {(1, "a"): 2, ((1,), ()): 3, 4: {"x": (5,)}}
    assert decode(encode(value)) == {(1, "a"): 2, ((1,), ()): 3, 4: {"x": [5]}}


def test_trailing_bytes_after_the_value_are_never_read():
    assert decode(b'({1,}) "unterminated \\') == [1]
    assert decode(b"7 " + b"({" * 10000) == 7
