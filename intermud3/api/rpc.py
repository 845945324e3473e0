"""Transport-free JSON-RPC 2.0 dispatcher.

`Dispatcher.handle(connection, data)` takes one message (a line or a text
frame) and returns a Deferred firing with the reply bytes, or None when
nothing is to be answered (notifications, batches of notifications). The
transports only frame bytes; every rule of API.md "JSON-RPC rules" lives
here, so both transports give the same code for the same fault.

Order of checks for one request: shape (-32600) -> method known (-32601)
-> authenticated (-32000) -> permission (-32002) -> params an object
(-32602) -> rate limit (-32001) -> handler. A refused call costs no token.
"""

import inspect
import json

from twisted.internet import defer
from twisted.logger import Logger

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
)
from intermud3.events import encode_json

_log = Logger()

# Callable before authentication and never rate limited (API.md).
OPEN_METHODS = frozenset({"authenticate", "ping"})
# Metrics label for anything that is not a registered method name, so a
# client cannot grow the label set.
UNKNOWN_METHOD = "unknown"

# A member ("id", "params") missing from the request.
_ABSENT = object()


class Call:
    """What a handler knows about the request it serves."""

    def __init__(self, connection, session, gateway, method, request_id):
        self.connection = connection
        self.session = session
        self.gateway = gateway
        self.method = method
        self.id = request_id
        self.transport = getattr(connection, "transport_name", None)

    @property
    def is_notification(self):
        return self.id is _ABSENT


def _refuse_constant(name):
    # NaN / Infinity are not JSON.
    raise ValueError(f"{name} is not valid JSON")


def _valid_id(value):
    return value is None or isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _permitted(session, permission):
    """A permission name, or a tuple of names any one of which will do."""
    if isinstance(permission, str):
        return session.has_permission(permission)
    return any(session.has_permission(p) for p in permission)


def _error_reply(request_id, error):
    return {"jsonrpc": "2.0", "error": error.to_json(), "id": request_id}


class Dispatcher:
    def __init__(self, table, sessions, *, max_batch=50, metrics=None, clock=None, gateway=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.table = table
        self.sessions = sessions
        self.max_batch = max_batch
        self.metrics = metrics
        self.clock = clock
        self.gateway = gateway
        # (method label, outcome) -> (request counter, duration histogram);
        # labels are registered method names or "unknown": a fixed set.
        self._observers = {}

    def handle(self, connection, data):
        """Deferred[bytes | None]: the reply to one message."""
        return defer.ensureDeferred(self._handle(connection, data))

    async def _handle(self, connection, data):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return self._encode(_error_reply(None, RPCError(PARSE_ERROR, "Parse error: not UTF-8")))
        try:
            message = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            # Valid JSON may still be too deep for the parser: say so.
            return self._encode(_error_reply(None, RPCError(PARSE_ERROR, "Parse error: nesting too deep")))
        except ValueError as error:
            # Python refuses integers of over 4300 digits (int_max_str_digits).
            reason = "number too long" if "integer string conversion" in str(error) else "not JSON"
            return self._encode(_error_reply(None, RPCError(PARSE_ERROR, f"Parse error: {reason}")))
        if not isinstance(message, list):
            reply = await self._run(connection, message)
            return None if reply is None else self._encode(reply)
        if not message:
            return self._encode(_error_reply(None, RPCError(INVALID_REQUEST, "Invalid request: empty batch")))
        if len(message) > self.max_batch:
            return self._encode(_error_reply(None, RPCError(
                INVALID_REQUEST, "Invalid request: batch too large", {"max_batch": self.max_batch})))
        replies = []
        for member in message:  # in order, each finished before the next starts
            reply = await self._run(connection, member)
            if reply is not None:
                replies.append(self._encode(reply))
        if not replies:
            return None
        return b"[" + b",".join(replies) + b"]"

    # -- one request ---------------------------------------------------

    async def _run(self, connection, request):
        """The reply object for one request, or None for a notification."""
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
            result = await self._call(connection, method, permission, handler, params, request_id)
            outcome = "ok"
            reply = {"jsonrpc": "2.0", "result": result, "id": request_id}
        except RPCError as error:
            outcome = ERROR_NAMES.get(error.code, "error")
            reply = _error_reply(None if request_id is _ABSENT else request_id, error)
        except Exception:
            _log.failure("JSON-RPC method {method} failed", method=label)
            outcome = ERROR_NAMES[INTERNAL_ERROR]
            reply = _error_reply(None if request_id is _ABSENT else request_id,
                                 RPCError(INTERNAL_ERROR, "Internal error"))
        self._observe(label, outcome, started)
        return None if notification else reply

    async def _call(self, connection, method, permission, handler, params, request_id):
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
        # Transports' connections carry their gateway; an explicit one wins.
        gateway = self.gateway if self.gateway is not None else getattr(connection, "gateway", None)
        call = Call(connection, session, gateway, method, request_id)
        result = handler(call, params)
        if inspect.isawaitable(result):
            result = await result
        return result

    # -- output --------------------------------------------------------

    def _encode(self, reply):
        """Serialise one reply; a result that is not JSON becomes -32603."""
        try:
            return encode_json(reply)
        except (TypeError, ValueError):
            _log.failure("JSON-RPC result could not be serialised")
            return encode_json(_error_reply(reply.get("id"), RPCError(INTERNAL_ERROR, "Internal error")))

    def _observe(self, label, outcome, started):
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
