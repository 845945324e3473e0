"""Properties of colour translation over generated text (hypothesis):
nothing raises, plain leaves no code, html is well-formed with spans only,
and what a MUD writes in its own dialect never reaches I3 as another code."""

import re
import xml.etree.ElementTree as ElementTree

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import colour
from intermud3.colour import pinkfish

CODES = [pinkfish.code(name) for name in pinkfish.CODES]
# Pieces that make colour, markup, escapes and markers of every dialect meet.
PIECES = CODES + [
    "%^", "%^%^", "%%^^", "%^FOO%^", "%", "^", "&", "&R", "&&", "{R", "{{", "|r", "||", "|[b", "|500",
    "^R", "^^", "^~b", "}R", "\tR", "\t\t", "\t[F500]", "@R", "@@", "\x1b[31m", "\x1b[1;33m",
    "\x1b[38;5;9m", "\x1b]0;t\x07", "\x1b", "\x9b", "<", ">", "<script>", "&amp;", '"', "'", "\r\n",
    "\n", "\x00", "\x7f", " ", "word", "é", "\U0001f600",
]
TEXT = st.one_of(st.text(max_size=80), st.lists(st.sampled_from(PIECES), max_size=30).map("".join))
FORMS = st.sampled_from(colour.OUT_FORMS)
DIALECTS = st.sampled_from(colour.IN_DIALECTS)
CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
SPAN_CLASS = re.compile(r"pf-[a-z-]+")
SGR = re.compile(r"\x1b\[[0-9;]*m")


class PropertyTests(SynchronousTestCase):
    @settings(max_examples=400)
    @given(TEXT, FORMS, DIALECTS)
    def test_never_raises_and_gives_text(self, text, form, dialect):
        pink = colour.to_pinkfish(text, dialect)
        self.assertIsInstance(pink, str)
        self.assertIsInstance(colour.render(pink, form), str)
        self.assertIsInstance(colour.render(text, form), str)

    @settings(max_examples=400)
    @given(TEXT)
    def test_plain_has_no_code_escape_or_control_left(self, text):
        out = colour.render(text, "plain")
        self.assertIsNone(CONTROLS.search(out), repr(out))
        # A %^ left is one the sender wrote as a literal: escaped again, no
        # code can be read from the text.
        if "%%^^" not in text and "%^%^" not in text:
            self.assertFalse(pinkfish.has_codes(out), repr(out))

    @settings(max_examples=400)
    @given(TEXT)
    def test_html_is_well_formed_with_spans_only(self, text):
        out = colour.render(text, "html")
        root = ElementTree.fromstring(f"<div>{out}</div>")
        for element in root.iter():
            if element is root:
                continue
            self.assertEqual(element.tag, "span")
            self.assertEqual(list(element.attrib), ["class"])
            self.assertRegex(element.attrib["class"], SPAN_CLASS)

    @settings(max_examples=300)
    @given(TEXT, st.sampled_from(("smaug", "circle", "rom", "coffeemud", "evennia")))
    def test_remote_text_delivered_in_a_dialect_reads_back_as_no_code(self, text, dialect):
        # Whatever the remote text holds, the receiving MUD finds in it no
        # colour but the Pinkfish the sender put there.
        delivered = colour.render(pinkfish.escape(text), dialect)
        self.assertEqual(colour.render(colour.to_pinkfish(delivered, dialect), "pinkfish"),
                         colour.to_pinkfish(delivered, dialect))
        self.assertFalse(pinkfish.has_codes(colour.to_pinkfish(delivered, dialect)), repr(delivered))

    @settings(max_examples=300)
    @given(TEXT, DIALECTS, st.sampled_from(("ansi", "xterm256")))
    def test_ansi_forms_hold_no_escape_but_colour(self, text, dialect, form):
        # Whatever a MUD wrote, on its way through I3 to an ANSI client the
        # only escape sequences are the colours the gateway wrote.
        out = colour.render(colour.to_pinkfish(text, dialect), form)
        self.assertIsNone(CONTROLS.search(SGR.sub("", out)), repr(out))
