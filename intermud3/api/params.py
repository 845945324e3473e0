"""Parameter readers for method handlers.

Each reader returns the cleaned value or raises -32602 naming the field, so
handlers state what they need in one line per parameter.
"""

from intermud3.api.errors import invalid_params

_MISSING = object()


def text(params, name, *, default=_MISSING, max_len=None, allow_empty=False):
    """A string parameter; required unless a default is given."""
    value = _given(params, name, default)
    if value is _MISSING:
        return default
    if not isinstance(value, str):
        raise invalid_params(name, f"{name} must be a string")
    if not allow_empty and not value.strip():
        if default is _MISSING:
            raise invalid_params(name, f"{name} must not be empty")
        return default
    if max_len is not None and len(value) > max_len:
        raise invalid_params(name, f"{name} is longer than {max_len} characters", max_len=max_len)
    return value


def integer(params, name, *, default=_MISSING, minimum=None, maximum=None):
    """An integer parameter (bools refused); required unless a default is given."""
    value = _given(params, name, default)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_params(name, f"{name} must be an integer")
    _check_range(name, value, minimum, maximum)
    return value


def number(params, name, *, default=_MISSING, minimum=None, maximum=None):
    """An int or float parameter (bools refused), returned as float."""
    value = _given(params, name, default)
    if value is _MISSING:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_params(name, f"{name} must be a number")
    _check_range(name, value, minimum, maximum)
    return float(value)


def boolean(params, name, *, default):
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise invalid_params(name, f"{name} must be true or false")
    return value


def mapping(params, name, *, default=None):
    value = params.get(name)
    if value is None:
        return {} if default is None else default
    if not isinstance(value, dict):
        raise invalid_params(name, f"{name} must be an object")
    return value


def _given(params, name, default):
    """The value of `name`, or _MISSING when it is absent or null; -32602
    when it is required (no default)."""
    value = params.get(name)
    if value is None:
        if default is _MISSING:
            raise invalid_params(name, f"missing required parameter: {name}")
        return _MISSING
    return value


def _check_range(name, value, minimum, maximum):
    if minimum is not None and value < minimum:
        raise invalid_params(name, f"{name} must be at least {minimum}", minimum=minimum)
    if maximum is not None and value > maximum:
        raise invalid_params(name, f"{name} must be at most {maximum}", maximum=maximum)
