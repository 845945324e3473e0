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
        alternatives = "|".join(re.escape(t) for t in sorted(self._tokens, key=len, reverse=True))
        rgb = getattr(dialect, "RGB_PATTERN", None)
        self._pattern = re.compile(f"{rgb}|{alternatives}" if rgb else alternatives)

    def __call__(self, text):
        # Dialect colours are absolute (a dark colour after a bright one is
        # dark) where Pinkfish keeps BOLD on until RESET: remember whether a
        # bright colour turned bold on, and reset before the next dark one.
        implicit_bold = False

        def replace(match):
            nonlocal implicit_bold
            value = self._tokens.get(match.group())
            if value is None:
                value = _nearest(match)
            elif isinstance(value, str):
                return value
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
            return out

        return self._pattern.sub(replace, text)


class AnsiReader:
    """SGR sequences (ESC [ ... m) into Pinkfish; other escapes are left for
    services.text.clean, which removes them whole."""

    _pattern = re.compile(r"\x1b\[([0-9;]*)m|%\^")

    def __call__(self, text):
        return self._pattern.sub(self._replace, text)

    @staticmethod
    def _replace(match):
        if match.group(1) is None:
            return pinkfish.LITERAL
        params = [int(p) if p else 0 for p in match.group(1).split(";")]
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
