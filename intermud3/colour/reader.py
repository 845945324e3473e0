"""Text a MUD writes in its own colour codes, read into Pinkfish.

One compiled pattern per dialect, one pass per message. Codes of the table
become Pinkfish codes; a doubled marker becomes the marker itself; an
unknown code stays as text; a ``%^`` the MUD wrote is made literal (it is
not a code of the MUD's dialect, so it must not become one on I3).
"""

import re

from intermud3.colour import ansi, pinkfish

# The eight colours by RGB bits, for the xterm RGB codes (digits 0-5).
_BY_BITS = ("BLACK", "RED", "GREEN", "ORANGE", "BLUE", "MAGENTA", "CYAN", "WHITE")
# Colours that switch bold on when shown (YELLOW is bold yellow).
_BRIGHT = {"BOLD", "YELLOW"}
# Entries of a reader's cache of codes read; past this it starts again.
MAX_CACHED = 1024


def _by_first_character(tokens):
    """Pattern alternatives for ``tokens``, one per first character (a
    class for the one-character rest), so each position is tried against
    a few branches, not every code."""
    groups = {}
    for token in tokens:
        groups.setdefault(token[0], []).append(token[1:])
    alternatives = []
    for first, rests in groups.items():
        singles = sorted(r for r in rests if len(r) == 1)
        longer = [re.escape(r) for r in sorted((r for r in rests if len(r) > 1), key=len, reverse=True)]
        if singles:
            longer.append("[" + "".join(re.escape(s) for s in singles) + "]")
        alternatives.append(re.escape(first) + "(?:" + "|".join(longer) + ")")
    return alternatives


def _nearest(match):
    """Pinkfish names for an RGB code: the nearest of the eight colours,
    bright when any channel is strong."""
    levels = [int(match.group(c)) for c in "rgb"]
    name = _BY_BITS[sum(1 << i for i, level in enumerate(levels) if level >= 3)]
    if match.group("bg"):
        return ("B_" + name,)
    if max(levels) >= 4 and name != "BLACK":
        return ("BOLD", name)
    return (name,)


class Reader:
    """``reader(text) -> Pinkfish text`` for one dialect module (smaug.py ...)."""

    def __init__(self, dialect):
        self._tokens = {code: names for code, names in dialect.READ.items()}
        for marker in dialect.ESCAPES:
            self._tokens[marker * 2] = pinkfish.escape(marker)
            # A % before an escaped ^ is a literal %^ on I3, not half a code.
            self._tokens["%" + marker * 2] = pinkfish.escape("%" + marker)
        for code, text in getattr(dialect, "TEXT", {}).items():
            self._tokens[code] = pinkfish.escape(text)
        self._tokens["%^"] = pinkfish.LITERAL
        rgb = getattr(dialect, "RGB_PATTERN", None)
        self._rgb = re.compile(rgb) if rgb else None
        # In the split pattern the RGB code's groups must not capture.
        alternatives = ([re.sub(r"\(\?P<\w+>", "(?:", rgb)] if rgb else [])
        alternatives += _by_first_character(self._tokens)
        self._split = re.compile("(" + "|".join(alternatives) + ")").split
        # (token, bold state) -> (Pinkfish, bold state), as in writer.py.
        self._done = {}

    def __call__(self, text):
        # Dialect colours are absolute (a dark colour after a bright one is
        # dark) where Pinkfish keeps BOLD on until RESET: remember whether a
        # bright colour turned bold on, and reset before the next dark one.
        implicit_bold = False
        parts = self._split(text)  # text, code, text, code, ..., text
        done = self._done
        for index in range(1, len(parts), 2):
            key = (parts[index], implicit_bold)
            found = done.get(key)
            if found is None:
                if len(done) >= MAX_CACHED:
                    done.clear()
                found = done[key] = self._read(*key)
            parts[index], implicit_bold = found
        return "".join(parts)

    def _read(self, token, implicit_bold):
        """(Pinkfish, implicit bold after) for one code."""
        value = self._tokens.get(token)
        if value is None:
            value = _nearest(self._rgb.fullmatch(token))
        elif isinstance(value, str):
            return value, implicit_bold
        out = "".join(map(pinkfish.code, value))
        if "RESET" in value:
            implicit_bold = False
        elif value == ("BOLD",):
            implicit_bold = False  # asked for: it stays
        elif any(name in pinkfish.COLOURS for name in value):
            bright = not _BRIGHT.isdisjoint(value)
            if implicit_bold and not bright:
                out = pinkfish.code("RESET") + out
            implicit_bold = bright
        return out, implicit_bold


class AnsiReader:
    """SGR sequences (ESC [ ... m) into Pinkfish; other escapes are left for
    services.text.clean, which removes them whole."""

    _split = re.compile(r"(\x1b\[[0-9;]*m|%\^)").split

    def __init__(self):
        self._done = {}

    def __call__(self, text):
        parts = self._split(text)  # text, sequence, text, ..., text
        done = self._done
        for index in range(1, len(parts), 2):
            token = parts[index]
            found = done.get(token)
            if found is None:
                if len(done) >= MAX_CACHED:
                    done.clear()
                found = done[token] = self._read(token)
            parts[index] = found
        return "".join(parts)

    @staticmethod
    def _read(token):
        if token == "%^":
            return pinkfish.LITERAL
        # An over-long parameter is read as 0 rather than as a huge number.
        params = [int(p) if p and len(p) < 6 else 0 for p in token[2:-1].split(";")]
        names = []
        position = 0
        while position < len(params):
            param = params[position]
            if param in (38, 48):
                # 38;5;N (palette) or 38;2;R;G;B (true colour): read the
                # first when N < 16, skip what cannot be named.
                kind = params[position + 1] if position + 1 < len(params) else None
                if kind == 5 and position + 2 < len(params):
                    found = ansi.PALETTE_FOREGROUND.get(params[position + 2], ())
                    if param == 48:
                        found = tuple("B_" + n for n in found if n != "BOLD")
                    names.extend(found)
                position += 3 if kind == 5 else 5 if kind == 2 else 2
                continue
            names.extend(ansi.READ.get(param, ()))
            position += 1
        return "".join(map(pinkfish.code, names))


def none_reader(text):
    """A MUD without colour codes: every ``%^`` it writes is literal."""
    return pinkfish.escape(text)


def pinkfish_reader(text):
    return text
