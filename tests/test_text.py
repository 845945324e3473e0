"""services/text.py: what reaches the I3 network from a MUD's text."""

from hypothesis import given, settings, strategies as st

from twisted.trial.unittest import SynchronousTestCase

from intermud3.services.text import clean, username

ESC = "\x1b"

CASES = [
    # Pinkfish markup and ordinary text are kept as they are.
    ("plain", "plain"),
    ("%^RED%^red%^RESET%^", "%^RED%^red%^RESET%^"),
    ("%^BOLD%^%^B_BLUE%^x%^RESET%^", "%^BOLD%^%^B_BLUE%^x%^RESET%^"),
    ("caf\u00e9 \u2603 \U0001f600", "caf\u00e9 \u2603 \U0001f600"),
    ("a [31m bracket without ESC", "a [31m bracket without ESC"),
    # CSI: parameters, intermediates and final byte go together.
    (ESC + "[31mred" + ESC + "[0m", "red"),
    (ESC + "[1;31;40mX", "X"),
    (ESC + "[mX", "X"),
    (ESC + "[38;5;196mX", "X"),
    (ESC + "[38:2:255:0:0mX", "X"),
    (ESC + "[?25lX" + ESC + "[?25h", "X"),
    (ESC + "[2JX", "X"),
    (ESC + "[1 qX", "X"),            # intermediate byte (space) before the final
    (ESC + "[>0;1cX", "X"),
    ("X" + ESC + "[31", "X"),         # cut short at the end of the text
    ("X" + ESC + "[", "X"),
    # 8-bit CSI
    ("\x9b31mX\x9b0m", "X"),
    # OSC up to BEL or ST, 7- and 8-bit
    (ESC + "]0;window title\x07X", "X"),
    (ESC + "]0;window title" + ESC + "\\X", "X"),
    (ESC + "]8;;http://example.org" + ESC + "\\link" + ESC + "]8;;" + ESC + "\\", "link"),
    ("\x9d0;title\x9cX", "X"),
    ("\x9d0;title\x07X", "X"),
    ("X" + ESC + "]0;never terminated", "X"),
    (ESC + "]0;t" + ESC + "[31mX", "X"),   # an ESC ends the control string
    # DCS / APC / PM / SOS strings
    (ESC + "Pq#0;2;0;0;0" + ESC + "\\X", "X"),
    (ESC + "_app" + ESC + "\\X", "X"),
    (ESC + "^pm" + ESC + "\\X", "X"),
    (ESC + "Xsos" + ESC + "\\Y", "Y"),
    # two-character and charset escapes
    (ESC + "cX", "X"),
    (ESC + "7X" + ESC + "8", "X"),
    (ESC + "(BX", "X"),
    (ESC + "#8X", "X"),
    (ESC + "=X" + ESC + ">", "X"),
    ("X" + ESC, "X"),
    # control characters other than LF
    ("a\x00b", "ab"),
    ("a\x07b\x08c", "abc"),
    ("a\tb", "ab"),
    ("a\x7fb", "ab"),
    ("a\x85b\x9cc", "abc"),
    ("line1\nline2", "line1\nline2"),
    ("line1\r\nline2", "line1\nline2"),
    ("line1\rline2", "line1\nline2"),
    ("a\r\r\nb", "a\n\nb"),
    ("\n\n", "\n\n"),
    ("", ""),
]


USERNAMES = [
    ("Alice", "alice"),
    ("  BOB  ", "bob"),
    ("Ca\u00efn", "ca\u00efn"),
    (ESC + "[1mZed" + ESC + "[0m", "zed"),
    ("a\nb", "ab"),
    ("", ""),
]


def _clean_in_three_steps(text):
    """The former clean(): line ends, then ANSI, then controls (the reference
    the one-pass version must equal)."""
    import re
    from intermud3.services.text import _ANSI
    controls = {c: None for c in list(range(0x00, 0x20)) + list(range(0x7F, 0xA0)) if c != 0x0A}
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(_ANSI, "", text).translate(controls)


class CleanTests(SynchronousTestCase):
    def test_clean(self):
        for raw, expected in CASES:
            self.assertEqual(clean(raw), expected, repr(raw))

    def test_clean_mixed_message(self):
        raw = ESC + "[1m%^CYAN%^Bob" + ESC + "[0m says:\r\n\x00hi" + ESC + "]0;x\x07!"
        self.assertEqual(clean(raw), "%^CYAN%^Bob says:\nhi!")

    def test_clean_non_string_becomes_text(self):
        self.assertEqual(clean(42), "42")

    @settings(deadline=None, max_examples=200)
    @given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x2FF)))
    def test_clean_output_has_no_controls_but_lf(self, raw):
        out = clean(raw)
        self.assertTrue(all(ch == "\n" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) for ch in out), repr(out))
        self.assertEqual(clean(out), out)  # idempotent

    @settings(deadline=None, max_examples=200)
    @given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
    def test_clean_keeps_printable_ascii(self, raw):
        self.assertEqual(clean(raw), raw)

    @settings(deadline=None, max_examples=500)
    @given(st.text(alphabet=st.sampled_from(
        ["a", " ", "%", "^", "[", "]", "\\", ";", "0", "1", "m", "P", "X", "_", "(", "B", "#", "\u00e9", "\u2028",
         "\x1b", "\r", "\n", "\t", "\x00", "\x07", "\x7f", "\x85", "\x90", "\x9b", "\x9c", "\x9d", "\x9f"])))
    def test_one_pass_equals_the_three_steps(self, raw):
        self.assertEqual(clean(raw), _clean_in_three_steps(raw))

    def test_cases_hold_for_the_reference_too(self):
        for raw, expected in CASES:
            self.assertEqual(_clean_in_three_steps(raw), expected, repr(raw))


class UsernameTests(SynchronousTestCase):
    def test_username(self):
        for raw, expected in USERNAMES:
            self.assertEqual(username(raw), expected, repr(raw))
