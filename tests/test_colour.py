"""Colour translation (intermud3.colour): golden outputs per form and per
dialect, round trips, and text from elsewhere that must stay text."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3 import colour
from intermud3.colour import circle, coffeemud, evennia, pinkfish, rom, smaug
from intermud3.colour.html import STYLESHEET, css_class

ESC = "\x1b"
SAMPLE = "%^BOLD%^%^RED%^Alert%^RESET%^ %^B_BLUE%^%^YELLOW%^sky%^RESET%^ 100%%^^ <ok> & done"


class PinkfishTests(SynchronousTestCase):
    def test_every_code_of_the_specification_is_known(self):
        for name in ("RED", "B_RED", "ORANGE", "B_ORANGE", "BOLD", "FLASH", "RESET", "ITALIC",
                     "UNDERLINE", "REVERSE", "YELLOW", "B_YELLOW", "MAGENTA", "CYAN", "WHITE",
                     "BLACK", "GREEN", "BLUE", "INITTERM", "ENDTERM", "STATUS", "WINDOW"):
            self.assertIn(name, pinkfish.CODES)
            self.assertEqual(colour.render(f"%^{name}%^x", "plain"), "x", name)

    def test_shared_and_doubled_markers_are_one_run(self):
        for text in ("%^BOLD%^RED%^x", "%^BOLD%^%^RED%^x"):
            self.assertEqual(colour.render(text, "ansi"), f"{ESC}[1m{ESC}[31mx{ESC}[0m")

    def test_literals(self):
        self.assertEqual(colour.render("50%%^^ and %^%^", "plain"), "50%^ and %^")
        self.assertEqual(pinkfish.escape("a%^RED%^b"), "a%%^^RED%%^^b")
        self.assertEqual(colour.render(pinkfish.escape("a%^RED%^b"), "ansi"), "a%^RED%^b")

    def test_unknown_codes_and_lower_case_pass_as_text(self):
        for text in ("%^PURPLE%^x", "%^red%^x", "%^ RED%^", "%^", "%^RED"):
            self.assertEqual(colour.render(text, "plain"), text)
            self.assertEqual(colour.render(text, "ansi"), text)


class FormTests(SynchronousTestCase):
    def test_pinkfish_is_the_text_unchanged(self):
        raw = SAMPLE + f" {ESC}[31m\x07"
        self.assertIs(colour.render(raw, "pinkfish"), raw)

    def test_ansi(self):
        self.assertEqual(colour.render(SAMPLE, "ansi"),
                         f"{ESC}[1m{ESC}[31mAlert{ESC}[0m {ESC}[44m{ESC}[1;33msky{ESC}[0m"
                         " 100%^ <ok> & done")

    def test_ansi_attributes_and_closing_reset(self):
        self.assertEqual(colour.render("%^UNDERLINE%^%^FLASH%^%^ITALIC%^%^REVERSE%^x", "ansi"),
                         f"{ESC}[4m{ESC}[5m{ESC}[3m{ESC}[7mx{ESC}[0m")
        self.assertEqual(colour.render("%^GREEN%^x%^RESET%^", "ansi"), f"{ESC}[32mx{ESC}[0m")
        self.assertEqual(colour.render("no colour", "ansi"), "no colour")

    def test_xterm256(self):
        self.assertEqual(colour.render("%^ORANGE%^o%^YELLOW%^y%^B_ORANGE%^b", "xterm256"),
                         f"{ESC}[38;5;208mo{ESC}[38;5;11my{ESC}[48;5;208mb{ESC}[0m")

    def test_html(self):
        self.assertEqual(
            colour.render(SAMPLE, "html"),
            '<span class="pf-bold"><span class="pf-red">Alert</span></span> '
            '<span class="pf-b-blue"><span class="pf-yellow">sky</span></span>'
            " 100%^ &lt;ok&gt; &amp; done")

    def test_html_closes_what_is_open_at_the_end(self):
        self.assertEqual(colour.render("%^RED%^a\"'", "html"),
                         '<span class="pf-red">a&quot;&#39;</span>')

    def test_plain(self):
        self.assertEqual(colour.render(SAMPLE, "plain"), "Alert sky 100%^ <ok> & done")

    def test_terminal_codes_are_never_sent_on(self):
        for form in ("ansi", "xterm256", "html", "plain", "smaug"):
            self.assertEqual(colour.render("%^INITTERM%^%^WINDOW%^x%^CURS_UP%^", form), "x")

    def test_stylesheet_has_a_rule_for_every_span(self):
        css = STYLESHEET.decode()
        for name in pinkfish.COLOURS + pinkfish.BACKGROUNDS + ("BOLD", "FLASH", "ITALIC",
                                                                "UNDERLINE", "REVERSE"):
            self.assertIn(f".{css_class(name)} {{", css)


class DialectOutTests(SynchronousTestCase):
    """Pinkfish delivered in a MUD's own codes."""

    def test_golden(self):
        text = "%^BOLD%^%^RED%^Alert%^RESET%^ %^GREEN%^ok%^B_BLUE%^ bg"
        expected = {
            "smaug": "&RAlert&D &gok^b bg&D",
            "circle": "\tRAlert\tn \tgok bg\tn",
            "rom": "{RAlert{x {gok bg{x",
            "coffeemud": "^rAlert^N ^Gok^~b bg^N",
            "evennia": "|rAlert|n |Gok|[B bg|n",
        }
        for form, want in expected.items():
            self.assertEqual(colour.render(text, form), want, form)

    def test_bold_alone_and_after_a_colour(self):
        self.assertEqual(colour.render("%^RED%^a%^BOLD%^b", "smaug"), "&ra&Rb&D")
        self.assertEqual(colour.render("%^RED%^%^BOLD%^b", "rom"), "{Rb{x")
        self.assertEqual(colour.render("%^BOLD%^b", "evennia"), "|hb|n")
        self.assertEqual(colour.render("%^BOLD%^b", "circle"), "\t+b\tn")
        self.assertEqual(colour.render("%^BOLD%^b", "smaug"), "b")  # Smaug has no bold alone

    def test_yellow_and_orange(self):
        self.assertEqual(colour.render("%^ORANGE%^o%^YELLOW%^y", "smaug"), "&Oo&Yy&D")
        self.assertEqual(colour.render("%^ORANGE%^o%^YELLOW%^y", "coffeemud"), "^Yo^yy^N")

    def test_literal_percent_caret(self):
        self.assertEqual(colour.render("100%%^^", "smaug"), "100%^^")
        self.assertEqual(colour.render("100%%^^", "rom"), "100%^")


class DialectInTests(SynchronousTestCase):
    """A MUD's own codes read into Pinkfish."""

    def test_golden(self):
        cases = {
            "smaug": ("&RAlert&D &&1 ^bsky }Yblink &Qx",
                      "%^BOLD%^%^RED%^Alert%^RESET%^ &1 %^B_BLUE%^sky %^FLASH%^%^YELLOW%^blink &Qx"),
            "circle": ("\tRAlert\tn \t[F500]rgb\t[B005] @Gat @@ \t*",
                       "%^BOLD%^%^RED%^Alert%^RESET%^ %^BOLD%^%^RED%^rgb%^B_BLUE%^"
                       " %^BOLD%^%^GREEN%^at @ @"),
            "rom": ("{RAlert{x {{1 {/x{-",
                    "%^BOLD%^%^RED%^Alert%^RESET%^ {1 \nx~"),
            "coffeemud": ("^rAlert^N ^^1 ^!^Rbold ^~bsky ^Zx",
                          "%^BOLD%^%^RED%^Alert%^RESET%^ ^1 %^BOLD%^%^RED%^bold %^B_BLUE%^sky ^Zx"),
            "evennia": ("|rAlert|n ||1 |500rgb |[bsky |hbold |/x",
                        "%^BOLD%^%^RED%^Alert%^RESET%^ |1 %^BOLD%^%^RED%^rgb %^B_BLUE%^sky"
                        " %^BOLD%^bold \nx"),
            "ansi": (f"{ESC}[1;31mAlert{ESC}[0m {ESC}[44msky{ESC}[38;5;9m!{ESC}[93my{ESC}[38;2;1;2;3mz",
                     "%^BOLD%^%^RED%^Alert%^RESET%^ %^B_BLUE%^sky%^BOLD%^%^RED%^!%^YELLOW%^yz"),
            "none": ("50%^ off, %^RED%^", "50%%^^ off, %%^^RED%%^^"),
            "pinkfish": ("%^RED%^as is", "%^RED%^as is"),
        }
        for dialect, (text, want) in cases.items():
            self.assertEqual(colour.to_pinkfish(text, dialect), want, dialect)

    def test_pinkfish_written_by_another_dialect_is_literal(self):
        for dialect in ("smaug", "circle", "rom", "coffeemud", "evennia", "ansi", "none"):
            pink = colour.to_pinkfish("%^RED%^x", dialect)
            self.assertEqual(colour.render(pink, "plain"), "%^RED%^x", dialect)

    def test_dark_after_bright_is_dark(self):
        # Smaug's &g after &R is dark green; in Pinkfish BOLD would stay on.
        self.assertEqual(colour.to_pinkfish("&Ra&gb", "smaug"),
                         "%^BOLD%^%^RED%^a%^RESET%^%^GREEN%^b")
        # An explicit bold stays on for the colour after it.
        self.assertEqual(colour.to_pinkfish("^!^Rb", "coffeemud"), "%^BOLD%^%^RED%^b")


class RoundTripTests(SynchronousTestCase):
    """dialect -> Pinkfish -> dialect gives back every code the dialect can
    write (then the closing reset)."""

    def _round_trip(self, module, skip=()):
        reset = module.WRITE["RESET"]
        writable = set(module.WRITE.values()) | {c for pair in module.FOREGROUND.values() for c in pair}
        if module.BOLD:
            writable.add(module.BOLD)
        tried = 0
        for code in module.READ:
            if code in skip or code not in writable:
                continue
            tail = "" if code == reset else reset
            self.assertEqual(colour.render(colour.to_pinkfish(code + "x", module.NAME), module.NAME),
                             code + "x" + tail, repr(code))
            tried += 1
        self.assertGreater(tried, 10)
        for marker, escaped in module.ESCAPES.items():
            # (A tab is a control character: every form removes it.)
            if escaped == marker * 2 and marker.isprintable():
                self.assertEqual(colour.render(colour.to_pinkfish(escaped, module.NAME), module.NAME),
                                 escaped)

    def test_smaug(self):
        self._round_trip(smaug)

    def test_circle(self):
        self._round_trip(circle)

    def test_rom(self):
        self._round_trip(rom)

    def test_coffeemud(self):
        self._round_trip(coffeemud)

    def test_evennia(self):
        self._round_trip(evennia)

    def test_pinkfish_meaning_survives_every_dialect(self):
        # Pinkfish -> dialect -> Pinkfish -> ansi shows the same as Pinkfish -> ansi.
        text = "%^BOLD%^%^GREEN%^go%^RESET%^ %^RED%^stop%^RESET%^ plain"
        for dialect in ("smaug", "circle", "rom", "coffeemud", "evennia"):
            back = colour.to_pinkfish(colour.render(text, dialect), dialect)
            self.assertEqual(colour.render(back, "ansi"), colour.render(text, "ansi"), dialect)


class InjectionTests(SynchronousTestCase):
    """Remote text carrying a MUD's codes, escapes or markup arrives as text."""

    REMOTE = "{R rom &R smaug |r evennia ^R coffee \tR circle @R at " + ESC + "[31m ansi <script>x</script>"

    def test_each_dialect_escapes_its_markers(self):
        for form in ("smaug", "circle", "rom", "coffeemud", "evennia"):
            out = colour.render(self.REMOTE, form)
            self.assertNotIn(ESC, out)
            # Read back as the MUD reads it, no code was found: the text is
            # what was sent, minus the escape sequence and the tab control.
            shown = colour.render(colour.to_pinkfish(out, form), "plain")
            self.assertEqual(shown, self.REMOTE.replace(ESC + "[31m", "").replace("\t", ""), form)

    def test_escaped_forms(self):
        self.assertIn("{{R", colour.render(self.REMOTE, "rom"))
        self.assertIn("&&R", colour.render(self.REMOTE, "smaug"))
        self.assertIn("^^R", colour.render(self.REMOTE, "smaug"))
        self.assertIn("||r", colour.render(self.REMOTE, "evennia"))
        self.assertIn("^^R", colour.render(self.REMOTE, "coffeemud"))
        self.assertNotIn("\tR", colour.render(self.REMOTE, "circle"))
        self.assertIn("\t*R", colour.render(self.REMOTE, "circle"))

    def test_ansi_and_plain_drop_escape_sequences(self):
        for form in ("ansi", "xterm256", "plain"):
            out = colour.render("a" + ESC + "[2J" + ESC + "]0;title\x07b\x9b31mc\r\nd", form)
            self.assertEqual(out, "abc\nd", form)

    def test_html_escapes_before_spans(self):
        out = colour.render("%^RED%^<script>alert('x')</script>&amp;" + ESC + "[31m", "html")
        self.assertEqual(out, '<span class="pf-red">&lt;script&gt;alert(&#39;x&#39;)'
                              "&lt;/script&gt;&amp;amp;</span>")
