"""who, finger, locate and channel_who: their parameters read and handed to
services/queries.py (API.md "Queries")."""

from intermud3.api import params as p
from intermud3.api.errors import invalid_params
from intermud3.api.methods import readers as read
from intermud3.services.pending import KINDS

__all__ = ["handlers", "MAX_TIMEOUT", "MAX_CHANNEL_WHO_TARGETS"]

MAX_TIMEOUT = 60.0
MAX_CHANNEL_WHO_TARGETS = 10


def handlers(queries):
    """{method: handler(call, params)} over the Queries service."""

    def who(call, params):
        target = read.name(params, "target_mud")
        from_user = read.asker(params)
        return queries.who(call.session, target, from_user, *_waiting(params, "who"))

    def finger(call, params):
        target = read.name(params, "target_mud")
        target_user = read.name(params, "target_user")
        from_user = read.asker(params)
        return queries.finger(call.session, target, target_user, from_user,
                              *_waiting(params, "finger"))

    def locate(call, params):
        target_user = read.name(params, "target_user")
        from_user = read.asker(params)
        return queries.locate(call.session, target_user, from_user, *_waiting(params, "locate"))

    def channel_who(call, params):
        channel = read.name(params, "channel")
        targets = _channel_who_targets(params)
        from_user = read.asker(params)
        return queries.channel_who(call.session, channel, targets, from_user,
                                   *_waiting(params, "chan-who"))

    return {"who": who, "finger": finger, "locate": locate, "channel_who": channel_who}


def _waiting(params, kind):
    """(timeout, wait): how long to wait for the answer, and whether to."""
    timeout = p.number(params, "timeout", default=KINDS[kind][2])
    if timeout <= 0:
        raise invalid_params("timeout", "timeout must be greater than 0", minimum=0)
    return min(float(timeout), MAX_TIMEOUT), p.boolean(params, "wait", default=True)


def _channel_who_targets(params):
    """The MUD names to ask (a list), or None: ask the channel's owner."""
    value = params.get("target_mud")
    if value is None:
        return None
    if not isinstance(value, list):
        return [read.name(params, "target_mud")]
    if not value:
        raise invalid_params("target_mud", "target_mud must name at least one MUD")
    if len(value) > MAX_CHANNEL_WHO_TARGETS:
        raise invalid_params("target_mud",
                             f"target_mud lists at most {MAX_CHANNEL_WHO_TARGETS} MUDs",
                             max=MAX_CHANNEL_WHO_TARGETS)
    targets = []
    for index, item in enumerate(value):
        field = f"target_mud[{index}]"
        if not isinstance(item, str) or not item.strip():
            raise invalid_params(field, f"{field} must be a non-empty string")
        if len(item) > read.MAX_NAME:
            raise invalid_params(field, f"{field} is longer than {read.MAX_NAME} characters",
                                 max_len=read.MAX_NAME)
        mud = read.line(item)
        if not mud:
            raise invalid_params(field, f"{field} must not be empty")
        targets.append(mud)
    return targets
