"""Where colour lives in the API: which fields of events, results and
parameters hold text that is translated.

A path is dotted keys; ``*`` is every element of a list. Only strings are
changed: a field of another type is left for the handler to refuse.
"""

_TELL = ("message", "visname")
_CHANNEL = ("message", "visname")
_TARGETED = ("visname", "target_visname", "message_others", "message_target")
_WHO = ("users.*.name", "users.*.extra")
_FINGER = ("user_info.name", "user_info.title", "user_info.real_name", "user_info.extra")

# Remote text in events, rendered in each session's colour_out.
EVENTS = {
    "tell_received": _TELL,
    "emoteto_received": _TELL,
    "channel_message": _CHANNEL,
    "channel_emote": _CHANNEL,
    "channel_targeted": _TARGETED,
    "who_reply": _WHO,
    "finger_reply": _FINGER,
    "locate_reply": ("located_user", "status"),
    "error_occurred": ("error_message",),
}

# Remote text in method results, rendered in the caller's colour_out.
RESULTS = {
    "who": _WHO,
    "finger": _FINGER,
    "locate": ("locations.*.user", "locations.*.status"),
    "channel_history": tuple("messages.*." + name for name in ("message",) + _TARGETED),
}

# The MUD's text in method parameters, read from the caller's colour_in.
PARAMS = {
    "tell": _TELL,
    "emoteto": ("emote",) + _TELL,
    "channel_send": _CHANNEL,
    "channel_emote": ("emote",) + _CHANNEL,
    "channel_target": _TARGETED,
    "presence_sync": ("users.*.visname", "users.*.title", "users.*.location", "users.*.status",
                      "users.*.guild", "users.*.race"),
}


def translate(value, paths, function):
    """A copy of ``value`` with ``function`` applied to the string at each
    path; ``value`` itself is never changed."""
    for path in paths:
        value = _apply(value, path.split("."), function)
    return value


def _apply(value, keys, function):
    if not keys:
        return function(value) if isinstance(value, str) else value
    key, rest = keys[0], keys[1:]
    if key == "*":
        if isinstance(value, list):
            return [_apply(item, rest, function) for item in value]
        return value
    if isinstance(value, dict) and key in value:
        copy = dict(value)
        copy[key] = _apply(value[key], rest, function)
        return copy
    return value
