"""Pinkfish text rendered in one output form, in one compiled pass.

Every form but ``pinkfish`` treats the text as coming from elsewhere: ANSI
escape sequences and control characters (but newline) are removed first
(services.text.clean, only for text that holds any), then the characters
that mean something in the form (HTML's ``<`` and ``&``, a MUD dialect's
markers) are escaped in the same pass that renders the codes, so remote
text can never become colour or markup.
"""

import re

from intermud3.colour import ansi, html, pinkfish
from intermud3.services.text import clean

# What clean() would change: C0/C1 controls and DEL, but LF. Removing them
# first means a code the removal joins is read as a code, and removed by
# plain like any other.
_UNCLEAN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _pattern(specials):
    parts = [f"(?P<run>{pinkfish.RUN})", f"(?P<lit>{pinkfish.LITERAL_PATTERN})"]
    if specials:
        parts.append("(?P<special>" + "|".join(re.escape(s) for s in specials) + ")")
    return re.compile("|".join(parts))


class Writer:
    """Base: ``writer(text) -> rendered text``. Subclasses say what a run of
    codes becomes (``codes``) and what closes the text (``end``)."""

    specials = {}
    literal = "%^"

    def __init__(self):
        self._pattern = _pattern(self.specials)
        self._literal = "".join(self.specials.get(c, c) for c in self.literal)

    def __call__(self, text):
        if _UNCLEAN.search(text):
            text = clean(text)
        state = self.new_state()
        specials = self.specials

        def replace(match):
            kind = match.lastgroup
            if kind == "run":
                return self.codes(pinkfish.names(match.group()), state)
            if kind == "special":
                return specials[match.group()]
            return self._literal

        return self._pattern.sub(replace, text) + self.end(state)

    def new_state(self):
        return None

    def codes(self, names, state):
        return ""

    def end(self, state):
        return ""


class Plain(Writer):
    """Every code removed; a literal %^ stays as the text %^."""


class SGR(Writer):
    """ansi / xterm256: each code its escape sequence; a reset at the end
    when colour is still on, so it never bleeds into the MUD's next line."""

    def __init__(self, table):
        super().__init__()
        self.table = table

    def new_state(self):
        return [False]  # colour on

    def codes(self, names, state):
        out = []
        for name in names:
            sequence = self.table.get(name)
            if sequence is not None:
                out.append(sequence)
                state[0] = name != "RESET"
        return "".join(out)

    def end(self, state):
        return ansi.RESET if state[0] else ""


class HTML(Writer):
    """Text escaped, then one span per code; RESET and the end close them."""

    specials = html.ESCAPES

    def new_state(self):
        return [0]  # spans open

    def codes(self, names, state):
        out = []
        for name in names:
            if name == "RESET":
                out.append(html.CLOSE * state[0])
                state[0] = 0
            elif name in html.SPANS:
                out.append(html.SPANS[name])
                state[0] += 1
        return "".join(out)

    def end(self, state):
        return html.CLOSE * state[0]


class Dialect(Writer):
    """A MUD's own codes (smaug.py ...): the MUD's markers in the text are
    escaped; colours are written bright while BOLD is on, as the dialect's
    bright codes; a code the dialect lacks is left out."""

    def __init__(self, dialect):
        self.specials = dialect.ESCAPES
        super().__init__()
        self.dialect = dialect

    def new_state(self):
        return {"bold": False, "colour": None, "open": False}

    def codes(self, names, state):
        dialect = self.dialect
        foreground = dialect.FOREGROUND
        out = []
        bold_pending = False  # BOLD seen; a colour right after it carries it
        for name in names:
            if name == "BOLD":
                state["bold"] = bold_pending = True
                continue
            if name in foreground:
                state["colour"] = name
                out.append(foreground[name][state["bold"]])
                state["open"] = True
                bold_pending = False
                continue
            if bold_pending:
                self._bold(out, state)
                bold_pending = False
            code = dialect.WRITE.get(name)
            if code is None:
                continue
            out.append(code)
            if name == "RESET":
                state.update(bold=False, colour=None, open=False)
            else:
                state["open"] = True
        if bold_pending:
            self._bold(out, state)
        return "".join(out)

    def _bold(self, out, state):
        """BOLD with no colour after it: the current colour's bright code
        (in place of its normal code just written), else the dialect's own
        bold code when it has one."""
        colour = state["colour"]
        if colour is not None:
            normal, bright = self.dialect.FOREGROUND[colour]
            if out and out[-1] in (normal, bright):
                out[-1] = bright
            else:
                out.append(bright)
        elif self.dialect.BOLD:
            out.append(self.dialect.BOLD)
        else:
            return
        state["open"] = True

    def end(self, state):
        return self.dialect.WRITE["RESET"] if state["open"] else ""
