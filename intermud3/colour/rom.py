"""ROM codes (Lope's ColoUr, as in ROM 2.4 and most Merc derivatives).

``{`` starts a code; ``{{`` is ``{`` itself.
"""

NAME = "rom"

ESCAPES = {"{": "{{"}

READ = {
    "{r": ("RED",), "{g": ("GREEN",), "{y": ("ORANGE",), "{b": ("BLUE",), "{m": ("MAGENTA",),
    "{c": ("CYAN",), "{w": ("WHITE",),
    "{R": ("BOLD", "RED"), "{G": ("BOLD", "GREEN"), "{Y": ("YELLOW",), "{B": ("BOLD", "BLUE"),
    "{M": ("BOLD", "MAGENTA"), "{C": ("BOLD", "CYAN"), "{W": ("BOLD", "WHITE"),
    "{D": ("BOLD", "BLACK"),
    "{x": ("RESET",),
}
# Text codes: a line break and a tilde (ROM files cannot hold one).
TEXT = {"{/": "\n", "{-": "~"}

FOREGROUND = {
    "BLACK": ("{D", "{D"), "RED": ("{r", "{R"), "GREEN": ("{g", "{G"), "ORANGE": ("{y", "{Y"),
    "YELLOW": ("{Y", "{Y"), "BLUE": ("{b", "{B"), "MAGENTA": ("{m", "{M"), "CYAN": ("{c", "{C"),
    "WHITE": ("{w", "{W"),
}
WRITE = {"RESET": "{x"}
BOLD = None
