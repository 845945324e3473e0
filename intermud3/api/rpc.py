"""Transport-free JSON-RPC 2.0 dispatcher.

`Dispatcher.dispatch(connection, data)` takes one message (a line or a text
frame) and returns the reply bytes, None when nothing is to be answered
(notifications, batches of notifications), or a Deferred firing with one of
those when a handler returned a Deferred or a coroutine. Synchronous
handlers (most methods) are answered on the spot: no Deferred, no
coroutine. `handle` is the same as a Deferred always. The transports only
frame bytes; every rule of API.md "JSON-RPC rules" lives here, so both
transports give the same code for the same fault.

Order of checks for one request: shape (-32600) -> method known (-32601)
-> authenticated (-32000) -> permission (-32002) -> params an object
(-32602) -> rate limit (-32001) -> handler. A refused call costs no token.
"""

import inspect

from twisted.internet import defer
from twisted.logger import Logger

from intermud3 import jsonwire
from intermud3.api.errors import (
    ERROR_NAMES,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    NOT_AUTHENTICATED,
    PARSE_ERROR,
    PERMISSION_DENIED,
    RATE_LIMITED,
    RPCError,
    for_failure,
)
from intermud3.logsetup import debug_wanted
from intermud3.services.failures import ServiceFailure

_log = Logger()

# Callable before authentication and never rate limited (API.md).
OPEN_METHODS = frozenset({"authenticate", "ping"})
# Metrics label for anything that is not a registered method name, so a
# client cannot grow the label set.
UNKNOWN_METHOD = "unknown"

# A member ("id", "params") missing from the request.
_ABSENT = object()

# What a handler or a request usually gives back. isinstance(x, Deferred) is
# an ABC check (Deferred is a typing.Awaitable), slow enough to show in a
# profile: these types are ruled out by their type first.
_PLAIN = frozenset({dict, list, str, bytes, int, float, bool, type(None)})


def waits(value):
    """True when `value` is a Deferred: the answer comes later."""
    return type(value) not in _PLAIN and isinstance(value, defer.Deferred)


class Call:
    """What a handler knows about the request it serves."""

    def __init__(self, connection, session, method, request_id):
        self.connection = connection
        self.session = session
        self.method = method
        self.id = request_id
        self.transport = getattr(connection, "transport_name", None)

    @property
    def is_notification(self):
        return self.id is _ABSENT


def _valid_id(value):
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _parse_problem(error):
    """What is wrong with a message the JSON reader refused, in words: valid
    JSON may still nest too deep for the reader, and Python refuses integers
    of over 4300 digits (int_max_str_digits)."""
    text = str(error)
    if "recursion" in text:
        return "nesting too deep"
    if "integer string conversion" in text:
        return "number too long"
    return "not JSON"


def _permitted(session, permission):
    """A permission name, or a tuple of names any one of which will do."""
    if isinstance(permission, str):
        return session.has_permission(permission)
    return any(session.has_permission(p) for p in permission)


def _error_reply(request_id, error):
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


class Dispatcher:
    def __init__(self, table, sessions, *, max_batch=50, metrics=None, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.table = table
        self.sessions = sessions
        self.max_batch = max_batch
        self.metrics = metrics
        self.clock = clock
        # (method label, outcome) -> (request counter, duration histogram);
        # labels are registered method names or "unknown": a fixed set.
        self._observers = {}

    def handle(self, connection, data):
        """Deferred[bytes | None]: `dispatch` for callers that want a Deferred."""
        return defer.maybeDeferred(self.dispatch, connection, data)

    def dispatch(self, connection, data):
        """The reply to one message: bytes, None, or a Deferred of either."""
        try:
            message = jsonwire.decode(data)
        except jsonwire.NotUTF8:
            return self._encode(_error_reply(None, RPCError(PARSE_ERROR, "Parse error: not UTF-8")))
        except jsonwire.NotJSON as error:
            return self._encode(_error_reply(
                None, RPCError(PARSE_ERROR, f"Parse error: {_parse_problem(error)}")))
        if not isinstance(message, list):
            reply = self._run(connection, message)
            if waits(reply):
                return reply.addCallback(self._encode_or_none)
            return self._encode_or_none(reply)
        if not message:
            return self._encode(_error_reply(None, RPCError(INVALID_REQUEST, "Invalid request: empty batch")))
        if len(message) > self.max_batch:
            return self._encode(_error_reply(None, RPCError(
                INVALID_REQUEST, "Invalid request: batch too large", {"max_batch": self.max_batch})))
        return self._run_batch(connection, message)

    def _run_batch(self, connection, members):
        """Members in order, each finished before the next starts; once one
        waits, the rest of the batch continues in a coroutine."""
        replies = []
        for position, member in enumerate(members):
            reply = self._run(connection, member)
            if waits(reply):
                return defer.ensureDeferred(
                    self._finish_batch(connection, reply, members[position + 1:], replies))
            self._collect(replies, reply)
        return self._join(replies)

    async def _finish_batch(self, connection, waiting, rest, replies):
        self._collect(replies, await waiting)
        for member in rest:
            reply = self._run(connection, member)
            if waits(reply):
                reply = await reply
            self._collect(replies, reply)
        return self._join(replies)

    def _collect(self, replies, reply):
        if reply is not None:
            replies.append(self._encode(reply))

    @staticmethod
    def _join(replies):
        if not replies:
            return None
        return b"[" + b",".join(replies) + b"]"

    # -- one request ---------------------------------------------------

    def _run(self, connection, request):
        """The reply object for one request, None for a notification, or a
        Deferred of either when the handler returned one."""
        started = self.clock.seconds()
        label = UNKNOWN_METHOD
        request_id = None
        notification = False
        try:
            if not isinstance(request, dict):
                raise RPCError(INVALID_REQUEST, "Invalid request: not an object")
            request_id = request.get("id", _ABSENT)
            if request_id is not _ABSENT and not _valid_id(request_id):
                request_id = None
                raise RPCError(INVALID_REQUEST, "Invalid request: id must be a string, an integer or null")
            if request.get("jsonrpc") != "2.0":
                raise RPCError(INVALID_REQUEST, 'Invalid request: "jsonrpc" must be "2.0"')
            method = request.get("method")
            if not isinstance(method, str):
                raise RPCError(INVALID_REQUEST, "Invalid request: method must be a string")
            params = request.get("params", _ABSENT)
            if params is not _ABSENT and not isinstance(params, (dict, list)):
                raise RPCError(INVALID_REQUEST, "Invalid request: params must be an object")
            # From here on the request is well formed: a missing id makes it
            # a notification, executed and never answered.
            notification = request_id is _ABSENT
            entry = self.table.lookup(method)
            if entry is None:
                raise RPCError(METHOD_NOT_FOUND, "Method not found", {"method": method[:64]})
            label = method
            permission, handler = entry
            result = self._call(connection, method, permission, handler, params, request_id)
            if waits(result):
                return result.addCallbacks(
                    self._succeeded, self._failed,
                    callbackArgs=(request_id, label, started, notification),
                    errbackArgs=(request_id, label, started, notification))
            return self._succeeded(result, request_id, label, started, notification)
        except Exception as error:
            return self._failed(error, request_id, label, started, notification)

    def _succeeded(self, result, request_id, label, started, notification):
        self._observe(label, "ok", started)
        return None if notification else {"jsonrpc": "2.0", "result": result, "id": request_id}

    def _failed(self, error, request_id, label, started, notification):
        """The error reply for an exception or a Failure of the call."""
        if isinstance(error, defer.Failure):
            failure, error = error, error.value
        else:
            failure = None  # _log.failure takes the exception being handled
        if isinstance(error, ServiceFailure):
            error = for_failure(error)
        if isinstance(error, RPCError):
            outcome = ERROR_NAMES.get(error.code, "error")
        else:
            _log.failure("JSON-RPC method {method} failed", failure, method=label)
            outcome = ERROR_NAMES[INTERNAL_ERROR]
            error = RPCError(INTERNAL_ERROR, "Internal error")
        self._observe(label, outcome, started)
        if notification:
            return None
        return _error_reply(None if request_id is _ABSENT else request_id, error)

    def _call(self, connection, method, permission, handler, params, request_id):
        """The handler's result, or a Deferred of it (a coroutine becomes one)."""
        session = connection.session
        if session is not None and not self.sessions.is_live(session):
            session = None  # ended (key removed) while the connection lingers
        if session is None and method not in OPEN_METHODS:
            raise RPCError(NOT_AUTHENTICATED, "Not authenticated")
        if permission is not None and not _permitted(session, permission):
            needed = permission if isinstance(permission, str) else "|".join(permission)
            raise RPCError(PERMISSION_DENIED, "Permission denied", {"permission": needed})
        if isinstance(params, list):
            raise RPCError(INVALID_PARAMS, "Invalid params: params must be an object, not an array",
                           {"field": "params"})
        if params is _ABSENT:
            params = {}
        if method not in OPEN_METHODS:
            retry_after = session.take_token(method)
            if retry_after is not None:
                raise RPCError(RATE_LIMITED, "Rate limit exceeded", {"retry_after": retry_after})
        result = handler(Call(connection, session, method, request_id), params)
        if type(result) in _PLAIN or isinstance(result, defer.Deferred):
            return result
        if inspect.isawaitable(result):  # a coroutine
            return defer.ensureDeferred(result)
        return result

    # -- output --------------------------------------------------------

    def _encode(self, reply):
        """Serialise one reply; a result that is not JSON becomes -32603."""
        try:
            return jsonwire.encode(reply)
        except (TypeError, ValueError):
            _log.failure("JSON-RPC result could not be serialised")
            return jsonwire.encode(_error_reply(reply.get("id"), RPCError(INTERNAL_ERROR, "Internal error")))

    def _encode_or_none(self, reply):
        return None if reply is None else self._encode(reply)

    def _observe(self, label, outcome, started):
        if debug_wanted():
            _log.debug("API request {method}: {outcome} in {ms:.1f} ms", method=label,
                       outcome=outcome, ms=1000 * max(0.0, self.clock.seconds() - started))
        if self.metrics is None:
            return
        observers = self._observers.get((label, outcome))
        if observers is None:
            observers = self._observers[label, outcome] = (
                self.metrics.api_requests.labels(method=label, outcome=outcome),
                self.metrics.api_request_duration.labels(method=label))
        requests, duration = observers
        requests.inc()
        duration.observe(max(0.0, self.clock.seconds() - started))
