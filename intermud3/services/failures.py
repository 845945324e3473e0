"""What the services refuse, and why, in I3 terms.

The services raise these and know nothing of JSON-RPC; the API layer turns
each into its JSON-RPC error in one table (api/errors.py). ``message`` is
the human text the MUD sees.
"""

__all__ = ["ServiceFailure", "BadRequest", "UnknownMud", "UnknownChannel", "UnknownMessage",
           "WrongChannelType", "TooLarge", "Unavailable", "LinkDown", "TooManyPending",
           "TimedOut", "Cancelled", "RemoteError", "QueueFull", "StoreUnavailable"]


class ServiceFailure(Exception):
    """A request a service refused or could not complete."""

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class BadRequest(ServiceFailure):
    """The request names something that does not fit: ``field`` is the
    parameter at fault, ``details`` what the MUD needs to fix it."""

    def __init__(self, field, message, **details):
        super().__init__(message)
        self.field = field
        self.details = details


class UnknownMud(BadRequest):
    """No MUD of that name in the mudlist."""


class UnknownChannel(BadRequest):
    """The chanlist does not know the channel, and the request needs it to."""


class UnknownMessage(BadRequest):
    """No message with that id is known (never sent, or forgotten)."""


class WrongChannelType(BadRequest):
    """A channel admin action that does not fit the channel's type."""


class TooLarge(BadRequest):
    """The packet would not fit in one I3 frame."""


class Unavailable(ServiceFailure):
    """The network side cannot serve the request now; ``reason`` names why
    in one word (API.md's ``data.reason``)."""

    reason = None


class LinkDown(Unavailable):
    """The router link is not ready, or left ready while we waited."""

    reason = "link_down"


class QueueFull(Unavailable):
    """The message can be neither written now nor queued: the queue is
    full, or (queue disabled) the pacer is busy."""

    reason = "queue_full"


class StoreUnavailable(Unavailable):
    """The message would have to be queued, and the state database cannot
    store it."""

    reason = "store_unavailable"


class TooManyPending(Unavailable):
    """The session already has as many queries waiting as it may."""

    reason = "too_many_pending"


class TimedOut(Unavailable):
    """No answer from the network in time."""

    reason = "timeout"


class Cancelled(Unavailable):
    """The session that asked ended while the answer was awaited."""

    reason = "cancelled"


class RemoteError(ServiceFailure):
    """A MUD or router answered with an I3 ``error`` packet."""

    def __init__(self, code, text):
        super().__init__(f"I3 error {code}: {text}")
        self.code = code
        self.text = text
