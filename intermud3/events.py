"""Fan-out of gateway events to API sessions.

An event is serialised once per colour form its recipients asked for
(docs/COLOUR.md; once in all for the default) and the same bytes go to
every recipient of that form; SessionManager.deliver sends them now or keeps them
for replay while the session is detached.
"""

import math
import time

from twisted.logger import Logger

from intermud3.colour.api import has_text, render_event
# Serialisation lives in jsonwire; the name stays here for its many importers.
from intermud3.jsonwire import encode as encode_json  # noqa: F401

_log = Logger()


# (whole second, its "YYYY-MM-DDTHH:MM:SS." text): events come many to a
# second, so the date and time are formatted once per second.
_last_second = (None, "")


def iso_timestamp(seconds):
    """ISO 8601 UTC with milliseconds and a Z: 2024-05-01T12:00:00.123Z.

    The fraction is rounded to microseconds first, half to even, as
    datetime.fromtimestamp does; the milliseconds are those microseconds
    cut down.
    """
    global _last_second
    fraction, whole = math.modf(seconds)
    micro = round(fraction * 1e6)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    elif micro < 0:
        whole, micro = whole - 1, micro + 1_000_000
    second, text = _last_second
    if whole != second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(whole))
        _last_second = (whole, text)
    return f"{text}{micro // 1000:03d}Z"


class EventHub:
    def __init__(self, sessions, metrics=None, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.sessions = sessions
        self.metrics = metrics
        self.clock = clock

    @staticmethod
    def serialise(event, stamped, form):
        """The notification of already stamped params, its text rendered
        in colour form ``form`` (docs/COLOUR.md)."""
        params = render_event(event, stamped, form)
        return encode_json({"jsonrpc": "2.0", "method": event, "params": params})

    def recipients(self, *, permission=None, session=None, channel=None):
        """`session` while it still exists; else the sessions joined to
        `channel` (attached or detached); else every session holding
        `permission` (None: every session)."""
        if self.sessions.is_live(session):
            return [session]
        if channel is not None:
            return [s for s in self.sessions.sessions()
                    if channel in s.channels and s.has_permission("channel")]
        return [s for s in self.sessions.sessions() if s.has_permission(permission)]

    def publish(self, event, params, *, permission=None, session=None, channel=None):
        """Deliver one event; returns how many sessions it went to."""
        targets = self.recipients(permission=permission, session=session, channel=channel)
        if not targets:
            return 0
        stamped = dict(params)
        stamped["timestamp"] = iso_timestamp(self.clock.seconds())
        # Serialised once per colour form among the recipients, not per
        # session; once in all for an event without text.
        coloured = has_text(event)
        by_form = {}
        for target in targets:
            form = target.colour_out if coloured else None
            data = by_form.get(form)
            if data is None:
                data = by_form[form] = self.serialise(event, stamped, form)
            try:
                self.sessions.deliver(target, event, data)
            except Exception:
                # One broken connection must not starve the others.
                _log.failure("delivering {event} to session {session_id} failed",
                             event=event, session_id=target.id[:6])
                if self.metrics is not None:
                    self.metrics.events_dropped.labels(event=event).inc()
        return len(targets)

    def to_all(self, event, params):
        """gateway_* events: every session, no permission needed."""
        return self.publish(event, params)
