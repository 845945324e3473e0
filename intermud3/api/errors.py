"""JSON-RPC error codes, the one exception type of the API layer, and the
one table that turns a service's refusal into its JSON-RPC error.

Both transports turn an RPCError into the same error object, so the same
fault always gives the same code.
"""

from intermud3.services import failures

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_AUTHENTICATED = -32000
RATE_LIMITED = -32001
PERMISSION_DENIED = -32002
SESSION_EXPIRED = -32003
GATEWAY_ERROR = -32004

# Names used in the `outcome` label of intermud3_api_requests_total.
ERROR_NAMES = {
    PARSE_ERROR: "parse_error",
    INVALID_REQUEST: "invalid_request",
    METHOD_NOT_FOUND: "method_not_found",
    INVALID_PARAMS: "invalid_params",
    INTERNAL_ERROR: "internal_error",
    NOT_AUTHENTICATED: "not_authenticated",
    RATE_LIMITED: "rate_limited",
    PERMISSION_DENIED: "permission_denied",
    SESSION_EXPIRED: "session_expired",
    GATEWAY_ERROR: "gateway_error",
}

DEFAULT_MESSAGES = {
    PARSE_ERROR: "Parse error",
    INVALID_REQUEST: "Invalid request",
    METHOD_NOT_FOUND: "Method not found",
    INVALID_PARAMS: "Invalid params",
    INTERNAL_ERROR: "Internal error",
    NOT_AUTHENTICATED: "Not authenticated",
    RATE_LIMITED: "Rate limit exceeded",
    PERMISSION_DENIED: "Permission denied",
    SESSION_EXPIRED: "Session expired",
    GATEWAY_ERROR: "Gateway error",
}


class RPCError(Exception):
    """A JSON-RPC error answer: code, human message, optional data object."""

    def __init__(self, code, message=None, data=None):
        self.code = code
        self.message = message or DEFAULT_MESSAGES.get(code, "Error")
        self.data = data
        super().__init__(code, self.message)

    def to_json(self):
        error = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def invalid_params(field, message, **details):
    """-32602 naming the offending parameter in error.data.field."""
    return RPCError(INVALID_PARAMS, message, {"field": field, **details})


def gateway_error(message, **data):
    """-32004: the I3 side failed (i3_error/i3_message, or reason)."""
    return RPCError(GATEWAY_ERROR, message, data)


def _bad_request(failure):
    return invalid_params(failure.field, failure.message, **failure.details)


def _unavailable(failure):
    return gateway_error(failure.message, reason=failure.reason)


def _remote(failure):
    return gateway_error(failure.message, i3_error=failure.code, i3_message=failure.text)


# Each domain failure (services/failures.py) -> how it is answered.
_FOR_FAILURE = {
    failures.BadRequest: _bad_request,
    failures.UnknownMud: _bad_request,
    failures.UnknownChannel: _bad_request,
    failures.UnknownMessage: _bad_request,
    failures.WrongChannelType: _bad_request,
    failures.TooLarge: _bad_request,
    failures.Unavailable: _unavailable,
    failures.LinkDown: _unavailable,
    failures.QueueFull: _unavailable,
    failures.StoreUnavailable: _unavailable,
    failures.TooManyPending: _unavailable,
    failures.TimedOut: _unavailable,
    failures.Cancelled: _unavailable,
    failures.RemoteError: _remote,
}


def for_failure(failure):
    """The RPCError that answers a service's ServiceFailure: the entry of
    its class, else of the nearest base class that has one (a new
    subclass is answered as its kind, never as an internal error)."""
    for kind in type(failure).__mro__:
        answer = _FOR_FAILURE.get(kind)
        if answer is not None:
            return answer(failure)
    return gateway_error(failure.message)
