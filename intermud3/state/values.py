"""LPC values as stored in the state database (JSON text), and the
64-bit bound of SQLite integers."""

import json

__all__ = ["dumps", "loads", "sql_int"]

# LPC values are ints, floats, strings, arrays and mappings, and a decoded
# mapping may have int or array (tuple) keys, which JSON objects cannot
# hold. Such a mapping is stored as {_MAP_TAG: [[key, value], ...]} so that
# it reads back equal.

_MAP_TAG = "\x00lpc-mapping"


def _to_json(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _MAP_TAG not in value:
            return {k: _to_json(v) for k, v in value.items()}
        return {_MAP_TAG: [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    raise ValueError("cannot store a value of type %s" % type(value).__name__)


def _key(value):
    # A key read back as a JSON array was a tuple key.
    if isinstance(value, list):
        return tuple(_key(v) for v in value)
    return value


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and _MAP_TAG in value:
            return {_key(k): _from_json(v) for k, v in value[_MAP_TAG]}
        return {k: _from_json(v) for k, v in value.items()}
    return value


def dumps(value) -> str:
    """Serialise an LPC value for storage; ValueError for anything else."""
    return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))


def loads(text: str):
    """Read back what `dumps` wrote."""
    return _from_json(json.loads(text))


def sql_int(value, what):
    # SQLite integers are 64-bit; say so instead of an OverflowError later.
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        # The value itself stays out of the message: it may be a password.
        raise ValueError("%s out of the 64-bit range" % what)
    return value
