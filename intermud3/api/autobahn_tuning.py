"""Where Autobahn spends CPU or memory per frame or per connection that our
use of it does not need; `install()` (called by the WebSocket factory)
replaces the functions in Autobahn's modules, behaviour unchanged.

* Unmasking client frames (RFC 6455 section 5.3). Every client frame is
  XOR-masked with a 4-byte key. Autobahn builds a masker per frame; with its
  native (NVX) build that object costs more to make than unmasking a small
  frame does, and our frames are small (one JSON-RPC request each).
  `create_masker` unmasks small payloads with one big-integer XOR (C speed)
  and leaves larger ones to Autobahn's own masker, faster in bulk.
* Memory per connection. Autobahn sets about 90 attributes on every
  connection (its state, and a copy of each protocol option); in an
  instance dict they take about 3.3 KiB, as slots 8 bytes each.
  `protocol_slots(*bases)` names them for a subclass's `__slots__`, and
  `with_fixed_options` keeps the options that never change on a class
  instead of on every connection. An empty
  `collections.deque` is 760 bytes: `SendQueue` stands in for the one
  Autobahn keeps per connection for chopped and synchronous sends (which we
  never make) at a twelfth of that. After the opening handshake,
  `forget_handshake(protocol)` drops what Autobahn keeps of the request
  and its answer (about 1 KiB), which nothing reads any more.
* Debug lines. On every new connection Autobahn pretty-prints its ~40
  protocol options for a debug log line, whether debug is on or not; under
  a burst of connects that `pprint.pformat` was about 18% of the gateway's
  CPU. `plain_format` hands the logger an object that writes the same line
  with `repr` only if the line is ever written (at debug level). The
  arguments of its other debug lines (on connect, handshake, every read)
  are coloured with `click.style` as they are made, about 10% of a
  connect: `hltype` and `hlval` make them only when written, too.
"""

from autobahn import util as _autobahn_util
from autobahn.twisted import websocket as _autobahn_twisted
from autobahn.websocket import protocol as _autobahn_protocol
from autobahn.websocket import xormasker as _autobahn_xormasker

from intermud3.api.wsframes import unmask

# Up to here the integer XOR is cheaper than Autobahn's masker (measured:
# about 2x at 250 bytes, even at a few KiB, 5x slower at 1 MiB).
SMALL_PAYLOAD = 4096


class SmallUnmasker:
    """Autobahn's masker interface (`process`, `pointer`, `reset`) for one frame."""

    __slots__ = ("_mask", "_position")

    def __init__(self, mask):
        self._mask = bytes(mask)
        self._position = 0

    def pointer(self):
        return self._position

    def reset(self):
        self._position = 0

    def process(self, data):
        # A frame may arrive in pieces: the key continues where the last one ended.
        start = self._position & 3
        self._position += len(data)
        return unmask(self._mask[start:] + self._mask[:start], data)


_autobahn_create = _autobahn_xormasker.create_xor_masker


def create_masker(mask, length=None):
    if length is not None and length <= SMALL_PAYLOAD:
        return SmallUnmasker(mask)
    return _autobahn_create(mask, length)


class LazyText:
    """Formats as `function(*args, **kwargs)`, called only when formatted:
    the argument of a log line that is seldom written."""

    __slots__ = ("_function", "_args", "_kwargs")

    def __init__(self, function, *args, **kwargs):
        self._function = function
        self._args = args
        self._kwargs = kwargs

    def __str__(self):
        return self._function(*self._args, **self._kwargs)

    __repr__ = __str__

    def __format__(self, spec):
        return format(str(self), spec)


def plain_format(value, *args, **kwargs):
    """`pprint.pformat`'s signature; `repr`'s (one-line) text, made lazily."""
    return LazyText(repr, value)


def hltype(obj):
    """Autobahn's `hltype`, made only when formatted."""
    return LazyText(_autobahn_util.hltype, obj)


def hlval(value, *args, **kwargs):
    """Autobahn's `hlval`, made only when formatted."""
    return LazyText(_autobahn_util.hlval, value, *args, **kwargs)


def install():
    """Make Autobahn's protocol modules use `create_masker`,
    `plain_format`, `hltype` and `hlval` (idempotent)."""
    _autobahn_protocol.create_xor_masker = create_masker
    _autobahn_protocol.pformat = plain_format
    for module in (_autobahn_protocol, _autobahn_twisted):
        module.hltype = hltype
        module.hlval = hlval


# What Autobahn's protocol sets on each connection (autobahn 26.x: its
# connectionMade, processHandshake and close tracking; CONFIG_ATTRS are the
# options it copies from the factory). A name missing here only costs memory.
_STATE_ATTRIBUTES = (
    "_perMessageCompress", "_transport_details", "_wskey",
    "autoPingPending", "autoPingPendingCall", "autoPingPendingSent", "autoPingPendingSeq",
    "autoPingTimeoutCall", "closeHandshakeTimeoutCall", "openHandshakeTimeoutCall",
    "closedByMe", "droppedByMe", "failedByMe", "current_frame", "data", "inside_message",
    "is_closed", "is_open", "localCloseCode", "localCloseReason", "remoteCloseCode",
    "remoteCloseReason", "send_queue", "send_state", "state", "trackedTimings",
    "trafficStats", "triggered", "utf8validator", "wasClean", "wasCloseHandshakeTimeout",
    "wasMaxFramePayloadSizeExceeded", "wasMaxMessagePayloadSizeExceeded",
    "wasNotCleanReason", "wasOpenHandshakeTimeout", "wasServerConnectionDropTimeout",
    "wasServingFlashSocketPolicyFile",
    "http_headers", "http_request_data", "http_request_host", "http_request_params",
    "http_request_path", "http_request_uri", "http_response_data", "http_status_line",
    "websocket_extensions", "websocket_extensions_in_use", "websocket_origin",
    "websocket_protocol_in_use", "websocket_protocols", "websocket_version",
    "message_data", "message_is_binary", "message_opcode", "control_frame_data",
    "frame_length", "_isMessageCompressed",
)

# The handshake's leftovers: read only while the opening handshake runs.
_HANDSHAKE_ATTRIBUTES = (
    "http_headers", "http_request_data", "http_request_params", "http_response_data",
    "http_status_line", "http_request_uri", "websocket_extensions",
)


def protocol_slots(*bases, options=()):
    """Slot names for a subclass of `bases` (Autobahn server protocol
    classes): Autobahn's per-connection state and the protocol `options`
    copied onto each connection, except names a base class defines (a slot
    would hide the class's value until set)."""
    names = dict.fromkeys(_STATE_ATTRIBUTES + tuple(options))
    defined = {name for base in bases for cls in base.__mro__ for name in vars(cls)}
    return tuple(name for name in names if name not in defined)


def with_fixed_options(protocol, factory, per_connection):
    """A subclass of `protocol` for `factory`: its protocol options as they
    are now become class attributes, and Autobahn copies only the
    `per_connection` ones onto each new connection. Autobahn copies every
    option it knows (about 30) per connection otherwise, a third of its
    own connection setup, though most never change after the factory is
    made."""
    fixed = {name: getattr(factory, name) for name in protocol.CONFIG_ATTRS
             if name not in per_connection}
    # A function option (perMessageCompressionAccept) must not become a method.
    fixed = {name: staticmethod(value) if callable(value) else value for name, value in fixed.items()}
    return type(protocol.__name__, (protocol,),
                {"__slots__": (), "CONFIG_ATTRS": list(per_connection), **fixed})


class SendQueue(list):
    """The `deque` interface Autobahn uses for its send queue (append,
    popleft, len), in a list: 56 bytes empty where a deque is 760."""

    __slots__ = ()

    def popleft(self):
        return self.pop(0)


def forget_handshake(protocol):
    """Drop what Autobahn keeps of the opening handshake (the request's
    bytes, headers and query, the answer's text) once the connection is
    open."""
    for name in _HANDSHAKE_ATTRIBUTES:
        setattr(protocol, name, None)
