"""Name folding: the one rule by which MUD, channel and user names compare.

I3 names match without regard to case (a router may send ALICE for our
alice, a MUD list may spell a name differently from a tell). Folding is for
comparisons and lookups only: what goes on the wire keeps the case the
protocol asks for (the exact mudlist spelling of a MUD, lower-case users).
"""

__all__ = ["fold"]


def fold(name):
    """`name` case-folded for comparison, or None for anything that is not a
    non-empty string (0 in a packet means nobody)."""
    return name.casefold() if isinstance(name, str) and name else None
