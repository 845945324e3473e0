"""CoffeeMud codes: ``^`` and a letter; ``^^`` is ``^`` itself.

In CoffeeMud the lower-case letter is the bright colour (``^r`` light red,
``^R`` red), ``^k`` dark grey and ``^K`` black; ``^~`` and a letter sets
the background.
"""

NAME = "coffeemud"

ESCAPES = {"^": "^^"}

_BACKGROUNDS = {"k": "B_BLACK", "r": "B_RED", "g": "B_GREEN", "y": "B_YELLOW", "b": "B_BLUE",
                "p": "B_MAGENTA", "c": "B_CYAN", "w": "B_WHITE"}

READ = {
    "^K": ("BLACK",), "^R": ("RED",), "^G": ("GREEN",), "^Y": ("ORANGE",), "^B": ("BLUE",),
    "^P": ("MAGENTA",), "^C": ("CYAN",), "^W": ("WHITE",),
    "^k": ("BOLD", "BLACK"), "^r": ("BOLD", "RED"), "^g": ("BOLD", "GREEN"), "^y": ("YELLOW",),
    "^b": ("BOLD", "BLUE"), "^p": ("BOLD", "MAGENTA"), "^c": ("BOLD", "CYAN"),
    "^w": ("BOLD", "WHITE"),
    "^N": ("RESET",), "^!": ("BOLD",), "^_": ("UNDERLINE",), "^*": ("FLASH",), "^/": ("ITALIC",),
    **{"^~" + letter: (name,) for letter, name in _BACKGROUNDS.items()},
}

FOREGROUND = {
    "BLACK": ("^K", "^k"), "RED": ("^R", "^r"), "GREEN": ("^G", "^g"), "ORANGE": ("^Y", "^y"),
    "YELLOW": ("^y", "^y"), "BLUE": ("^B", "^b"), "MAGENTA": ("^P", "^p"), "CYAN": ("^C", "^c"),
    "WHITE": ("^W", "^w"),
}
WRITE = {
    "RESET": "^N", "UNDERLINE": "^_", "FLASH": "^*", "ITALIC": "^/",
    **{name: "^~" + letter for letter, name in _BACKGROUNDS.items()},
    "B_ORANGE": "^~y",
}
BOLD = "^!"
