"""lpc_repair: quotes a router left unescaped inside strings."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import lpc
from intermud3.lpc_repair import escape_stray_quotes, recover
from tests import coffeemud_frames as coffeemud


class RepairTests(SynchronousTestCase):

    def test_coffeemud_channel_message_reads_with_its_quotes(self):
        with self.assertRaises(lpc.LPCError):
            lpc.decode(coffeemud.CHANNEL_M_UNESCAPED_QUOTE)
        value = recover(coffeemud.CHANNEL_M_UNESCAPED_QUOTE)
        self.assertEqual(value, ["channel-m", 5, "CoffeeMUD", "bob", 0, 0, "dchat", "Bob",
                                 'he said "hi" to me'])

    def test_quote_at_the_end_of_a_string(self):
        self.assertEqual(recover(coffeemud.TELL_UNESCAPED_QUOTE)[-1], 'say "yes"')

    def test_delimiters_that_close_a_string(self):
        # , and : always; }) and ]) from a writer without trailing commas.
        self.assertEqual(recover(b'({"a"b",})'), ['a"b'])
        self.assertEqual(recover(b'(["k"ey":"v"al",])'), {'k"ey': 'v"al'})
        self.assertEqual(recover(b'({"x"y"})'), ['x"y'])
        self.assertEqual(recover(b'(["k":"v"w"])'), {"k": 'v"w'})
        self.assertEqual(recover(b'"top "level""\x00'), 'top "level"')

    def test_escapes_already_present_are_kept(self):
        # An escaped backslash, then a stray quote.
        self.assertEqual(recover(b'({"a\\\\"b",})'), ['a\\"b'])
        self.assertEqual(recover(b'({"a\\"b"c",})'), ['a"b"c'])

    def test_nothing_to_repair_is_none(self):
        self.assertIsNone(escape_stray_quotes(b'({"fine",1,})'))
        self.assertIsNone(recover(b'({"fine",1,'))

    def test_a_quote_before_a_delimiter_cannot_be_told_apart(self):
        self.assertIsNone(recover(b'({"a "b", c",})'))

    def test_depth_bound_still_applies(self):
        deep = b"({" * 10 + b'"a"b",' + b"})" * 10
        self.assertIsNone(recover(deep, max_depth=5))
        self.assertIsNotNone(recover(deep, max_depth=64))

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def test_any_bytes_give_a_value_or_none(self, data):
        recover(data)

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126,
                                          blacklist_characters="\\"), max_size=20), max_size=5))
    def test_strings_written_unescaped_read_back(self, texts):
        # What a writer that never escapes produces, for texts where no
        # quote ends the text or comes before a delimiter.
        texts = [t for t in texts if not any(
            t[i] == '"' and (i + 1 == len(t) or t[i + 1] in ",:" or t[i + 1:i + 3] in ("})", "])")) for i in range(len(t)))]
        raw = b"({" + b"".join(b'"' + t.encode() + b'",' for t in texts) + b"})"
        try:
            value = lpc.decode(raw)
        except lpc.LPCError:
            value = recover(raw)
        self.assertEqual(value, texts)
