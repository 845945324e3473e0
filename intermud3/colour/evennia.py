"""Evennia codes: ``|`` and a letter; ``||`` is ``|`` itself.

In Evennia the lower-case letter is the bright colour (``|r`` bright red,
``|R`` normal red), ``|x`` dark grey and ``|X`` black; ``|[`` and a letter
sets the background. ``|500`` and ``|[500`` (xterm256, each digit 0-5) are
read as the nearest of the eight colours.
"""

NAME = "evennia"

ESCAPES = {"|": "||"}

_BACKGROUNDS = {"X": "B_BLACK", "R": "B_RED", "G": "B_GREEN", "Y": "B_ORANGE", "B": "B_BLUE",
                "M": "B_MAGENTA", "C": "B_CYAN", "W": "B_WHITE", "y": "B_YELLOW"}

READ = {
    "|X": ("BLACK",), "|R": ("RED",), "|G": ("GREEN",), "|Y": ("ORANGE",), "|B": ("BLUE",),
    "|M": ("MAGENTA",), "|C": ("CYAN",), "|W": ("WHITE",),
    "|x": ("BOLD", "BLACK"), "|r": ("BOLD", "RED"), "|g": ("BOLD", "GREEN"), "|y": ("YELLOW",),
    "|b": ("BOLD", "BLUE"), "|m": ("BOLD", "MAGENTA"), "|c": ("BOLD", "CYAN"),
    "|w": ("BOLD", "WHITE"),
    "|n": ("RESET",), "|h": ("BOLD",), "|u": ("UNDERLINE",), "|*": ("REVERSE",),
    "|^": ("FLASH",), "|i": ("ITALIC",),
    **{"|[" + letter: (name,) for letter, name in _BACKGROUNDS.items()},
    **{"|[" + letter.lower(): (name,) for letter, name in _BACKGROUNDS.items() if letter not in "Yy"},
}
# Text codes: line break, tab, space.
TEXT = {"|/": "\n", "|-": "    ", "|_": " "}
RGB_PATTERN = r"\|(?P<bg>\[)?(?P<r>[0-5])(?P<g>[0-5])(?P<b>[0-5])"

FOREGROUND = {
    "BLACK": ("|X", "|x"), "RED": ("|R", "|r"), "GREEN": ("|G", "|g"), "ORANGE": ("|Y", "|y"),
    "YELLOW": ("|y", "|y"), "BLUE": ("|B", "|b"), "MAGENTA": ("|M", "|m"), "CYAN": ("|C", "|c"),
    "WHITE": ("|W", "|w"),
}
WRITE = {
    "RESET": "|n", "UNDERLINE": "|u", "REVERSE": "|*", "FLASH": "|^", "ITALIC": "|i",
    **{name: "|[" + letter for letter, name in _BACKGROUNDS.items()},
}
BOLD = "|h"
