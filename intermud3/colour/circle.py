"""CircleMUD / tbaMUD codes: a tab (written ``\\t`` in tbaMUD sources) or
``@`` (older CircleMUD colour) followed by a letter.

``\\t\\t`` is a tab and ``@@`` an ``@``. On delivery the gateway writes the
tab form and turns a literal ``@`` into tbaMUD's ``\\t*`` (shown as ``@``),
so text from another MUD never holds an ``@`` code, whichever form the
receiving MUD expands.
"""

NAME = "circle"

ESCAPES = {"\t": "\t\t", "@": "\t*"}

_LETTERS = {
    "d": ("BLACK",), "r": ("RED",), "g": ("GREEN",), "y": ("ORANGE",), "b": ("BLUE",),
    "m": ("MAGENTA",), "c": ("CYAN",), "w": ("WHITE",),
    "D": ("BOLD", "BLACK"), "R": ("BOLD", "RED"), "G": ("BOLD", "GREEN"), "Y": ("YELLOW",),
    "B": ("BOLD", "BLUE"), "M": ("BOLD", "MAGENTA"), "C": ("BOLD", "CYAN"), "W": ("BOLD", "WHITE"),
    # tbaMUD's extra hues, read as the nearest Pinkfish colour.
    "o": ("ORANGE",), "O": ("ORANGE",), "p": ("MAGENTA",), "P": ("BOLD", "MAGENTA"),
    "a": ("CYAN",), "A": ("BOLD", "CYAN"),
    "n": ("RESET",),
    "+": ("BOLD",), "_": ("UNDERLINE",), "-": ("FLASH",), "=": ("REVERSE",),
}
READ = {
    **{"\t" + letter: names for letter, names in _LETTERS.items()},
    **{"@" + letter: names for letter, names in _LETTERS.items()},
}
# tbaMUD's \t* is an "@".
TEXT = {"\t*": "@", "@*": "@"}
# tbaMUD's RGB codes \t[F500] (foreground) and \t[B012] (background), each
# digit 0-5, are read as the nearest of the eight colours.
RGB_PATTERN = r"\t\[(?:[Ff]|(?P<bg>[Bb]))(?P<r>[0-5])(?P<g>[0-5])(?P<b>[0-5])\]"

FOREGROUND = {
    "BLACK": ("\td", "\tD"), "RED": ("\tr", "\tR"), "GREEN": ("\tg", "\tG"),
    "ORANGE": ("\ty", "\tY"), "YELLOW": ("\tY", "\tY"), "BLUE": ("\tb", "\tB"),
    "MAGENTA": ("\tm", "\tM"), "CYAN": ("\tc", "\tC"), "WHITE": ("\tw", "\tW"),
}
WRITE = {"RESET": "\tn", "UNDERLINE": "\t_", "FLASH": "\t-", "REVERSE": "\t="}
BOLD = "\t+"
