"""ANSI SGR sequences: the ``ansi`` and ``xterm256`` forms out, and
``colour_in: ansi`` (a MUD that writes escape sequences) in.

``ansi`` is the 16-colour set: YELLOW is bold yellow, as LP MUDs show it.
``xterm256`` names each colour by its palette index instead, so ORANGE is
a true orange and YELLOW a bright yellow without turning bold on.
"""

_BASE = {"BLACK": 0, "RED": 1, "GREEN": 2, "ORANGE": 3, "BLUE": 4, "MAGENTA": 5, "CYAN": 6,
         "WHITE": 7}
_ATTRIBUTES = {"RESET": "0", "BOLD": "1", "ITALIC": "3", "UNDERLINE": "4", "FLASH": "5",
               "REVERSE": "7"}


def _sgr(params):
    return f"\x1b[{params}m"


ANSI = {
    **{name: _sgr(f"3{n}") for name, n in _BASE.items()},
    "YELLOW": _sgr("1;33"),
    **{"B_" + name: _sgr(f"4{n}") for name, n in _BASE.items()},
    "B_YELLOW": _sgr("43"),
    **{name: _sgr(p) for name, p in _ATTRIBUTES.items()},
}

# Palette indices: 0-7 the standard colours, 11 bright yellow, 208 orange.
_XTERM = {**_BASE, "ORANGE": 208, "YELLOW": 11}
XTERM256 = {
    **{name: _sgr(f"38;5;{n}") for name, n in _XTERM.items()},
    **{"B_" + name: _sgr(f"48;5;{n}") for name, n in _XTERM.items()},
    **{name: _sgr(p) for name, p in _ATTRIBUTES.items()},
}

RESET = _sgr("0")

# Reading: an SGR parameter -> Pinkfish names.
_NAMES = {n: name for name, n in _BASE.items()}
READ = {
    0: ("RESET",), 1: ("BOLD",), 3: ("ITALIC",), 4: ("UNDERLINE",), 5: ("FLASH",), 6: ("FLASH",),
    7: ("REVERSE",),
    **{30 + n: (name,) for n, name in _NAMES.items()},
    **{40 + n: ("B_" + name,) for n, name in _NAMES.items()},
    **{90 + n: ("BOLD", name) for n, name in _NAMES.items()},
    93: ("YELLOW",),
    **{100 + n: ("B_" + name,) for n, name in _NAMES.items()},
}
# 38;5;N and 48;5;N: palette index N, read for N below 16 (8-15 are bright).
PALETTE_FOREGROUND = {**{n: (name,) for n, name in _NAMES.items()},
                      **{8 + n: ("BOLD", name) for n, name in _NAMES.items()}, 11: ("YELLOW",)}
