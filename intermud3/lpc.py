"""LPC text values: a strict writer and a lenient, bounded reader.

The rules are those of ``intermud3.lpc_python`` (I3-PROTOCOL.md section
2). This module runs them in C when the compiled codec ``_intermud3_lpc``
is installed (``pip install .`` builds it where a C compiler and the Python
headers exist) and in pure Python otherwise; ``IMPLEMENTATION`` says which
("c" or "python") and ``FALLBACK_REASON`` why not C (None when it is C).

Python values: int, float, str, list (array), dict (mapping); 0 means
"nothing". The writer also takes None (as 0), bool (as int) and tuple (as
array). A mapping key that cannot be hashed (an array) is read as a tuple.
"""

import importlib

from intermud3 import lpc_python
from intermud3.lpc_python import DEFAULT_MAX_DEPTH, INT_MAX, INT_MIN, LPCError, int_or_zero

__all__ = ["LPCError", "encode", "decode", "Decoder", "int_or_zero", "INT_MIN", "INT_MAX",
           "DEFAULT_MAX_DEPTH", "IMPLEMENTATION", "FALLBACK_REASON"]

# The interface and rules the compiled codec must have. Bump it here and in
# ext/lpc.h together whenever either changes, so a build left over from
# another version (an installed .so beside a newer source tree) is not used.
C_ABI_VERSION = 1


def choose(import_module=importlib.import_module):
    """(codec module, reason) where reason says why the compiled codec is
    not used, or is None when it is."""
    try:
        compiled = import_module("_intermud3_lpc")
    except ImportError as exc:
        return lpc_python, f"the C codec is not installed ({exc})"
    except Exception as exc:  # a broken build must not stop the gateway
        return lpc_python, f"the C codec failed to load ({exc!r})"
    found = getattr(compiled, "ABI_VERSION", None)
    if found != C_ABI_VERSION:
        return lpc_python, f"the C codec has ABI version {found}, this source needs {C_ABI_VERSION}"
    return compiled, None


# Both raise lpc_python.LPCError (the compiled one looks it up on import),
# the one class every caller catches.
_codec, FALLBACK_REASON = choose()
IMPLEMENTATION = "python" if _codec is lpc_python else "c"
C_CODEC = None if FALLBACK_REASON else _codec
Decoder = _codec.Decoder
_encode = _codec.encode
_decode = _codec.decode


def encode(value, *, max_depth=DEFAULT_MAX_DEPTH):
    """Write ``value`` as strict FluffOS LPC text (UTF-8 bytes): no
    whitespace, a comma after every element and pair, no NUL and no control
    character but LF in strings (CR and CRLF become LF), lone surrogates as
    "?", floats as ``%f``.

    Raises LPCError for an int outside signed 32 bits, a non-finite float,
    a type LPC has no form for, or nesting deeper than ``max_depth``
    (which also catches self-referencing containers).
    """
    return _encode(value, max_depth=max_depth)


def decode(data, *, max_depth=DEFAULT_MAX_DEPTH, max_length=None):
    """Read one LPC value from ``data`` (bytes-like) and return it.

    Lenient: whitespace between tokens, optional trailing commas, empty
    array slots read as 0, ``\\X`` read as X for any X, strings decoded as
    UTF-8 with a Latin-1 fallback per string, raw CR (and CRLF) read as LF,
    one trailing NUL and any bytes after the value ignored.

    Bounded: containers nest at most ``max_depth`` deep, number tokens are
    at most 4000 characters and, when ``max_length`` is given, ``data`` may
    be at most that many bytes. Raises LPCError, and only LPCError, for
    anything it cannot read.
    """
    return _decode(data, max_depth=max_depth, max_length=max_length)
