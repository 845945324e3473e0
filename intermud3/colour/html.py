"""The ``html`` form: one span per code, a class per Pinkfish name, and the
style sheet for those classes (served at /static/pinkfish.css)."""

from intermud3.colour import pinkfish

# Escaped before any span is added: text never becomes markup.
ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}

_COLOURS = {
    "BLACK": "#000000", "RED": "#bb0000", "GREEN": "#00bb00", "ORANGE": "#bb8800",
    "YELLOW": "#ffff55", "BLUE": "#0000bb", "MAGENTA": "#bb00bb", "CYAN": "#00bbbb",
    "WHITE": "#bbbbbb",
}
_ATTRIBUTES = {
    "BOLD": "font-weight: bold",
    "ITALIC": "font-style: italic",
    "UNDERLINE": "text-decoration: underline",
    "FLASH": "animation: pf-flash 1s steps(1) infinite",
    "REVERSE": "filter: invert(100%)",
}


def css_class(name):
    """pf-red, pf-b-red, pf-bold ..."""
    return "pf-" + name.lower().replace("_", "-")


# Pinkfish name -> the span it opens. RESET and the terminal codes open none.
SPANS = {name: f'<span class="{css_class(name)}">'
         for name in pinkfish.COLOURS + pinkfish.BACKGROUNDS + tuple(_ATTRIBUTES)}
CLOSE = "</span>"


def stylesheet():
    rules = [f".{css_class(name)} {{ color: {value}; }}" for name, value in _COLOURS.items()]
    rules += [f".{css_class('B_' + name)} {{ background-color: {value}; }}"
              for name, value in _COLOURS.items()]
    rules += [f".{css_class(name)} {{ {rule}; }}" for name, rule in _ATTRIBUTES.items()]
    rules.append("@keyframes pf-flash { 50% { visibility: hidden; } }")
    return "/* Pinkfish colour classes of the I3 gateway's html form. */\n" + "\n".join(rules) + "\n"


STYLESHEET = stylesheet().encode("utf-8")
