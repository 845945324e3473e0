"""Pinkfish text rendered in one output form, in one compiled pass.

Every form but ``pinkfish`` treats the text as coming from elsewhere: ANSI
escape sequences and control characters (but newline) are removed first
(services.text.clean), then the characters that mean something in the form
(HTML's ``<`` and ``&``, a MUD dialect's markers) are escaped in the same
pass that renders the codes, so remote text can never become colour or
markup.

Speed: a run of codes (``%^BOLD%^%^RED%^``) and the writer's state before
it always give the same output and state after it, so each writer keeps
what it worked out, in a cache of bounded size.
"""

import re

from intermud3.colour import ansi, html, pinkfish
from intermud3.services.text import clean

# What clean() would change: C0/C1 controls and DEL, but LF. Removing them
# first means a code the removal joins is read as a code, and removed by
# plain like any other.
_UNCLEAN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# Entries of a writer's run cache; past this it starts again (remote text
# can hold any number of different runs).
MAX_CACHED_RUNS = 1024


def _pattern(specials):
    # One group around an alternation whose every branch starts with a
    # literal character: the regex engine skips ahead to those characters,
    # and split() gives text and tokens in turn.
    parts = [pinkfish.RUN, pinkfish.LITERAL_PATTERN] + [re.escape(s) for s in specials]
    return re.compile("(" + "|".join(parts) + ")")


class Writer:
    """Base: ``writer(text) -> rendered text``. Subclasses give the state at
    the start (``start``), what a run of codes becomes (``codes(names,
    state) -> (output, state)``; states are immutable) and what closes the
    text (``end(state)``)."""

    specials = {}
    start = None

    def __init__(self):
        self._split = _pattern(self.specials).split
        literal = "".join(self.specials.get(c, c) for c in "%^")
        # Tokens whose output never depends on the state.
        self._fixed = {**self.specials, **{token: literal for token in pinkfish.LITERALS}}
        self._runs = {}

    def __call__(self, text):
        # isprintable() is the quick look; newlines and some Unicode need the second.
        if not text.isprintable() and _UNCLEAN.search(text):
            text = clean(text)
        parts = self._split(text)  # text, token, text, token, ..., text
        if len(parts) == 1:
            return text
        fixed = self._fixed
        runs = self._runs
        state = self.start
        for index in range(1, len(parts), 2):
            token = parts[index]
            output = fixed.get(token)
            if output is None:
                done = runs.get((token, state))
                if done is None:
                    if len(runs) >= MAX_CACHED_RUNS:
                        runs.clear()
                    done = runs[token, state] = self.codes(pinkfish.names(token), state)
                output, state = done
            parts[index] = output
        if state != self.start:
            parts.append(self.end(state))
        return "".join(parts)

    def codes(self, names, state):
        return "", state

    def end(self, state):
        return ""


class Plain(Writer):
    """Every code removed; a literal %^ stays as the text %^."""


class SGR(Writer):
    """ansi / xterm256: each code its escape sequence; a reset at the end
    when colour is still on, so it never bleeds into the MUD's next line.
    State: whether colour is on."""

    start = False

    def __init__(self, table):
        super().__init__()
        self.table = table

    def codes(self, names, on):
        out = []
        for name in names:
            sequence = self.table.get(name)
            if sequence is not None:
                out.append(sequence)
                on = name != "RESET"
        return "".join(out), on

    def end(self, on):
        return ansi.RESET


class HTML(Writer):
    """Text escaped, then one span per code; RESET and the end close them.
    State: how many spans are open."""

    specials = html.ESCAPES
    start = 0

    def codes(self, names, open_spans):
        out = []
        for name in names:
            if name == "RESET":
                out.append(html.CLOSE * open_spans)
                open_spans = 0
            elif name in html.SPANS:
                out.append(html.SPANS[name])
                open_spans += 1
        return "".join(out), open_spans

    def end(self, open_spans):
        return html.CLOSE * open_spans


class Dialect(Writer):
    """A MUD's own codes (smaug.py ...): the MUD's markers in the text are
    escaped; colours are written bright while BOLD is on, as the dialect's
    bright codes; a code the dialect lacks is left out.
    State: (bold, current colour, anything written since the last reset)."""

    start = (False, None, False)

    def __init__(self, dialect):
        self.specials = dialect.ESCAPES
        super().__init__()
        self.dialect = dialect

    def codes(self, names, state):
        bold, colour, written = state
        dialect = self.dialect
        foreground = dialect.FOREGROUND
        out = []
        bold_pending = False  # BOLD seen; a colour right after it carries it
        for name in names:
            if name == "BOLD":
                bold = bold_pending = True
                continue
            if name in foreground:
                colour = name
                out.append(foreground[name][bold])
                written = True
                bold_pending = False
                continue
            if bold_pending:
                written = self._bold(out, colour) or written
                bold_pending = False
            code = dialect.WRITE.get(name)
            if code is None:
                continue
            out.append(code)
            if name == "RESET":
                bold, colour, written = self.start
            else:
                written = True
        if bold_pending:
            written = self._bold(out, colour) or written
        return "".join(out), (bold, colour, written)

    def _bold(self, out, colour):
        """BOLD with no colour after it: the current colour's bright code
        (in place of its code just written), else the dialect's own bold
        code when it has one. True when something was written."""
        if colour is not None:
            normal, bright = self.dialect.FOREGROUND[colour]
            if out and out[-1] in (normal, bright):
                out[-1] = bright
            else:
                out.append(bright)
            return True
        if self.dialect.BOLD:
            out.append(self.dialect.BOLD)
            return True
        return False

    def end(self, state):
        return self.dialect.WRITE["RESET"] if state[2] else ""
