"""Colour as a service: Pinkfish on I3, each API session's own form.

Each session says which form it wants for text the gateway delivers
(``colour_out``) and which codes its MUD writes (``colour_in``); see
docs/COLOUR.md. ``render(text, form)`` and ``to_pinkfish(text, dialect)``
are the two directions; both are one compiled pass and never raise on any
string.
"""

from intermud3.colour import ansi, circle, coffeemud, evennia, rom, smaug
from intermud3.colour.reader import AnsiReader, Reader, none_reader, pinkfish_reader
from intermud3.colour.writer import HTML, SGR, Dialect, Plain

__all__ = ["OUT_FORMS", "IN_DIALECTS", "DEFAULT", "render", "to_pinkfish"]

DEFAULT = "pinkfish"
_DIALECTS = (smaug, circle, rom, coffeemud, evennia)


def _identity(text):
    return text


_WRITERS = {
    "pinkfish": _identity,
    "ansi": SGR(ansi.ANSI),
    "xterm256": SGR(ansi.XTERM256),
    "html": HTML(),
    "plain": Plain(),
    **{d.NAME: Dialect(d) for d in _DIALECTS},
}
_READERS = {
    "pinkfish": pinkfish_reader,
    "ansi": AnsiReader(),
    "none": none_reader,
    **{d.NAME: Reader(d) for d in _DIALECTS},
}

OUT_FORMS = tuple(_WRITERS)
IN_DIALECTS = tuple(_READERS)


def render(text, form):
    """Pinkfish ``text`` as ``form`` (one of OUT_FORMS) shows it."""
    return _WRITERS[form](text)


def to_pinkfish(text, dialect):
    """``text`` written in ``dialect`` (one of IN_DIALECTS) as Pinkfish."""
    return _READERS[dialect](text)
