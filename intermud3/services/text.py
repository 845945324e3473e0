"""Text a MUD hands us, made fit for the I3 network.

API.md: text sent to the network keeps Pinkfish markup (``%^RED%^``); ANSI
escape sequences are removed whole (a half-removed sequence would leave
junk such as ``[1;31m`` in every player's output); other control characters
except newline are removed. I3-PROTOCOL.md: send LF, never CR or NUL.
"""

import re

__all__ = ["clean", "username", "ANSI_ESCAPE"]

# One alternation, tried left to right at each ESC / C1 byte:
#  * CSI: ESC [ or 8-bit 0x9B, parameter bytes 0x30-0x3F, intermediate bytes
#    0x20-0x2F, one final byte 0x40-0x7E (a sequence cut short at the end of
#    the text is removed as far as it goes);
#  * OSC, DCS, SOS, PM, APC (ESC ] P X ^ _ or 8-bit 0x9D 0x90 0x98 0x9E 0x9F):
#    a control string up to BEL or ST (ESC \ or 0x9C); another ESC ends it
#    (as in a VT parser) and an unterminated one runs to the end of the text,
#    as a terminal would swallow it;
#  * any other escape: ESC, intermediates 0x20-0x2F, one final 0x30-0x7E
#    (ESC c, ESC ( B, ESC 7 ...).
_ANSI = (
    r"(?:\x1b\[|\x9b)[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]?"
    r"|(?:\x1b[\]PX^_]|[\x9d\x90\x98\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c|(?=\x1b)|$)"
    r"|\x1b[\x20-\x2f]*[\x30-\x7e]?"
)
# The same, for other modules' patterns (intermud3.colour removes escapes in its own pass).
ANSI_ESCAPE = _ANSI
# One pass: an ANSI sequence (removed), then CR LF or a lone CR (LF: a MUD's
# line ends survive), then any other C0/C1 control or DEL but LF (removed).
_UNWANTED = re.compile(_ANSI + r"|\r\n?|[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _replacement(match):
    return "\n" if match.group()[0] == "\r" else ""


def clean(text):
    """``text`` with ANSI escapes and control characters (but LF) removed.

    CR LF and a lone CR become LF, so a MUD's line ends survive.
    A non-string is turned into its string form rather than refused.
    """
    if not isinstance(text, str):
        text = str(text)
    if text.isprintable():
        # No control character at all (no ESC, CR, LF...): the usual case,
        # answered by one scan in C.
        return text
    return _UNWANTED.sub(_replacement, text)


def username(name):
    """The I3 user name for a player name: cleaned, trimmed, lower-cased."""
    return clean(name).replace("\n", "").strip().lower()
