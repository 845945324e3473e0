"""Pinkfish, the colour markup of I3 text: the vocabulary every table maps to.

A code is a name between ``%^`` markers: ``%^RED%^``. Codes may share a
marker, as LPC's terminal_colour allows: ``%^BOLD%^RED%^`` is BOLD then RED.
A literal ``%^`` is written ``%%^^`` (what LP MUDs display as ``%^``); the
gateway also reads ``%^%^`` as a literal ``%^``. A name that is not a code
below is text and passes unchanged.
"""

import re

# Foreground colours. YELLOW is the bright one; ORANGE is dark yellow (brown).
COLOURS = ("BLACK", "RED", "GREEN", "ORANGE", "YELLOW", "BLUE", "MAGENTA", "CYAN", "WHITE")
BACKGROUNDS = tuple("B_" + name for name in COLOURS)
# Attributes; RESET ends every colour and attribute.
ATTRIBUTES = ("BOLD", "FLASH", "ITALIC", "UNDERLINE", "REVERSE", "RESET")
# Terminal control codes of old LP terminal handlers: never sent on to a
# client (they would move the cursor), rendered as nothing in every form.
TERMINAL = ("INITTERM", "ENDTERM", "STATUS", "WINDOW", "CLEARLINE", "HOME", "SAVE", "RESTORE",
            "CURS_UP", "CURS_DOWN", "CURS_LEFT", "CURS_RIGHT")

CODES = COLOURS + BACKGROUNDS + ATTRIBUTES + TERMINAL

# The literal "%^", as written and as read.
LITERAL = "%%^^"
LITERALS = ("%%^^", "%^%^")



def _alternation(names):
    """A pattern matching any of ``names``: grouped by first letter (the
    engine then tries a few branches, not every name), longest first so
    B_RED is never read as a shorter name."""
    groups = {}
    for name in names:
        groups.setdefault(name[0], []).append(name[1:])
    return "|".join(first + "(?:" + "|".join(sorted(rests, key=len, reverse=True)) + ")"
                    for first, rests in groups.items())


# One run of adjacent codes, sharing markers or not: %^RED%^, %^BOLD%^RED%^,
# %^BOLD%^%^RED%^.
_NAMES = _alternation(CODES)
RUN = rf"%\^(?:{_NAMES})%\^(?:(?:%\^)?(?:{_NAMES})%\^)*"
# %^%^ is a literal only when no code follows: in %^FOO%^%^RED%^ the
# second marker pair opens RED, as terminal_colour reads it.
LITERAL_PATTERN = rf"%%\^\^|%\^%\^(?!(?:{_NAMES})%\^)"


def names(run):
    """The code names of one matched RUN, in order."""
    return [name for name in run[2:-2].split("%^") if name]


def code(name):
    return f"%^{name}%^"


def escape(text):
    """``text`` with every ``%^`` made literal, so it carries no code."""
    return text.replace("%^", LITERAL) if "%^" in text else text


_RUN = re.compile(RUN)


def has_codes(text):
    return _RUN.search(text) is not None
