"""Smaug codes (also AFKMud, SWR and other Smaug derivatives).

``&`` sets the foreground, ``^`` the background, ``}`` a blinking
foreground; each doubled is the character itself.
"""

NAME = "smaug"

ESCAPES = {"&": "&&", "^": "^^", "}": "}}"}

# Letter -> (Pinkfish names). Upper case is the bright colour, but for Y
# (yellow, where O is the dark one) and z (dark grey).
_LETTERS = {
    "x": ("BLACK",), "r": ("RED",), "g": ("GREEN",), "O": ("ORANGE",), "b": ("BLUE",),
    "p": ("MAGENTA",), "c": ("CYAN",), "w": ("WHITE",),
    "z": ("BOLD", "BLACK"), "R": ("BOLD", "RED"), "G": ("BOLD", "GREEN"), "Y": ("YELLOW",),
    "B": ("BOLD", "BLUE"), "P": ("BOLD", "MAGENTA"), "C": ("BOLD", "CYAN"), "W": ("BOLD", "WHITE"),
}
_BACKGROUNDS = {"x": "B_BLACK", "r": "B_RED", "g": "B_GREEN", "O": "B_ORANGE", "b": "B_BLUE",
                "p": "B_MAGENTA", "c": "B_CYAN", "w": "B_WHITE"}

READ = {
    **{"&" + letter: names for letter, names in _LETTERS.items()},
    **{"}" + letter: ("FLASH",) + names for letter, names in _LETTERS.items()},
    **{"^" + letter: (name,) for letter, name in _BACKGROUNDS.items()},
    "&D": ("RESET",), "&d": ("RESET",),
    "&i": ("ITALIC",), "&I": ("ITALIC",),
    "&u": ("UNDERLINE",), "&U": ("UNDERLINE",),
    "&v": ("REVERSE",), "&V": ("REVERSE",),
    # Strike-through has no Pinkfish code: read as nothing.
    "&s": (), "&S": (),
}

# Pinkfish colour -> (normal code, bright code).
FOREGROUND = {
    "BLACK": ("&x", "&z"), "RED": ("&r", "&R"), "GREEN": ("&g", "&G"), "ORANGE": ("&O", "&Y"),
    "YELLOW": ("&Y", "&Y"), "BLUE": ("&b", "&B"), "MAGENTA": ("&p", "&P"), "CYAN": ("&c", "&C"),
    "WHITE": ("&w", "&W"),
}
# Other Pinkfish codes this dialect can write; the rest are left out.
WRITE = {
    "RESET": "&D", "ITALIC": "&i", "UNDERLINE": "&u", "REVERSE": "&v",
    **{name: "^" + letter for letter, name in _BACKGROUNDS.items()},
    "B_YELLOW": "^O",  # eight backgrounds only
}
BOLD = None
