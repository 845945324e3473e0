"""Property: whatever the router sends, the inbound path never raises and
every event it publishes has the field types API.md promises.

A real `Gateway` (every service, a real StateStore in a private directory)
on a `Clock`, with a connector that hands the link a protocol over a
`StringTransport`. Packets go in where a decoded frame does
(`packetReceived`), so values no LPC writer would produce (huge ints,
infinities, arrays as keys) reach the services as a lenient decoder can
hand them over.
"""

import json
import shutil
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings, strategies as st
from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import config as configuration
from intermud3.mudmode import frame
from intermud3.packets import FIELDS
from intermud3.service import Gateway

OUR_MUD = "FuzzMud"
ROUTER = "*test"
OTHER_MUD = "ProbeA"


# -- the gateway under test --------------------------------------------------------


class _ClosingTransport(StringTransport):
    """Closing tells the protocol at once, as a socket would soon after."""

    def loseConnection(self):
        if not self.disconnecting:
            super().loseConnection()
            self.protocol.connectionLost(_Closed())

    abortConnection = loseConnection


class _Closed(Exception):
    def getErrorMessage(self):
        return "closed by the test transport"


class _Endpoint:
    def __init__(self, connector):
        self.connector = connector

    def connect(self, factory):
        protocol = factory.buildProtocol(None)
        transport = _ClosingTransport()
        transport.protocol = protocol
        self.connector.protocols.append(protocol)
        protocol.makeConnection(transport)
        return succeed(protocol)


class _Connector:
    def __init__(self):
        self.protocols = []

    def __call__(self, router):
        return _Endpoint(self)

    @property
    def current(self):
        return self.protocols[-1]


class _Connection:
    """What sessions see of an API client: it keeps every event."""

    transport_name = "tcp"
    peer = "127.0.0.1:1"

    def __init__(self):
        self.session = None
        self.events = []

    def send_message(self, data):
        self.events.append(json.loads(data))
        return True

    def close(self, reason, code=1000):
        pass


def _config(state_dir):
    raw = {
        "mud": {"name": OUR_MUD},
        "routers": [{"name": ROUTER, "host": "127.0.0.1", "port": 1}],
        "router": {"send_rate": 0},
        "api": {"host": "127.0.0.1", "auth": {"enabled": False, "api_keys": []}},
        "channels": {"history": {"max_per_channel": 50}},
        "state": {"directory": state_dir},
    }
    return configuration.load_text(yaml.safe_dump(raw), environ={})


def _startup_reply():
    return ["startup-reply", 5, ROUTER, 0, OUR_MUD, 0, [[ROUTER, "127.0.0.1 1"]], 123456789]


# -- what the router might send -------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_ints = st.one_of(st.integers(-3, 3), st.integers(), st.integers(-(2 ** 80), 2 ** 80))
_floats = st.one_of(st.floats(allow_nan=False), st.just(float("inf")), st.just(float("-inf")))
_scalars = st.one_of(_ints, _floats, _texts, st.just(0), st.just(""))
_keys = st.one_of(_texts, _ints, st.lists(_ints, max_size=2).map(tuple))
_lpc = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(_keys, inner, max_size=4)),
    max_leaves=12)

_names = st.one_of(st.sampled_from([OUR_MUD, OUR_MUD.lower(), OTHER_MUD, ROUTER, "", 0]), _lpc)
_users = st.one_of(st.sampled_from(["alice", "Bob", 0, ""]), _lpc)
_known_types = st.sampled_from(sorted(FIELDS))
_types = st.one_of(_known_types, _known_types, _known_types,
                   st.sampled_from(["no-such-type", "", "error", "mudlist"]), _lpc)
_channels = st.sampled_from(["dchat", "imud_gossip", "", 0])


_mud_names = st.one_of(st.sampled_from(["M1", "M2", OTHER_MUD]), _texts)
# A mudlist entry: up (-1) or down (0) first, so that MUDs change state, then junk.
_mud_info = st.builds(lambda state, rest: [state, *rest],
                      st.one_of(st.sampled_from([-1, 0, 60]), _lpc), st.lists(_lpc, max_size=14))


def _field_value(name):
    # Now and then a field of the shape its name suggests, else anything.
    shaped = {
        "channel": _channels,
        "username": _users,
        "who_data": st.lists(st.lists(_lpc, max_size=5), max_size=3),
        "user_list": st.lists(_lpc, max_size=3),
        "info_mapping": st.dictionaries(_mud_names, st.one_of(_mud_info, _lpc), max_size=3),
        "channel_list": st.dictionaries(_texts, st.one_of(st.lists(_lpc, max_size=3), _lpc),
                                        max_size=3),
        "router_list": st.lists(st.lists(_lpc, max_size=3), max_size=2),
    }.get(name)
    return st.one_of(shaped, _lpc) if shaped is not None else _lpc


@st.composite
def packets(draw):
    ptype = draw(_types)
    names = FIELDS.get(ptype, ()) if isinstance(ptype, str) else ()
    header = [ptype, draw(_lpc), draw(_names), draw(_users), draw(_names), draw(_users)]
    fields = [draw(_field_value(name)) for name in names]
    if ptype == "error" and draw(st.booleans()):
        fields[-1] = draw(packets())    # an error carrying a (junk) packet
    shape = draw(st.sampled_from(["exact", "short", "long", "header"]))
    if shape == "short" and fields:
        fields = fields[:draw(st.integers(0, len(fields) - 1))]
    elif shape == "long":
        fields += draw(st.lists(_lpc, min_size=1, max_size=3))
    elif shape == "header":
        return header[:draw(st.integers(0, 6))]
    return header + fields


_values = st.one_of(packets(), packets(), packets(), _lpc)


# -- API.md's event field types -----------------------------------------------------------

def _str(value):
    return isinstance(value, str)


def _opt_str(value):
    return value is None or isinstance(value, str)


def _int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _opt_int(value):
    return value is None or _int(value)


def _level(value):
    return _int(value) or _str(value)


def _list_of(check):
    return lambda value: isinstance(value, list) and all(check(v) for v in value)


def _shape(**checks):
    def check(value):
        return (isinstance(value, dict) and set(checks) <= set(value)
                and all(ok(value[k]) for k, ok in checks.items()))
    return check


_MESSAGE = dict(from_mud=_str, from_user=_str, message=_str, visname=_str)
_MUD_ENTRY = _shape(
    name=_str, host=_str, port=_int, tcp_port=_int, udp_port=_int, driver=_str, mudlib=_str,
    base_mudlib=_str, mud_type=_str, status=lambda v: v in ("up", "down"), restart_in=_opt_int,
    services=lambda v: isinstance(v, dict) and all(_str(k) and _int(i) for k, i in v.items()),
    open_status=_str, admin_email=_str)

EVENT_TYPES = {
    "tell_received": _shape(to_mud=_str, to_user=_str, **_MESSAGE),
    "emoteto_received": _shape(to_mud=_str, to_user=_str, **_MESSAGE),
    "channel_message": _shape(channel=_str, history_id=_opt_int, **_MESSAGE),
    "channel_emote": _shape(channel=_str, history_id=_opt_int, **_MESSAGE),
    "channel_targeted": _shape(
        channel=_str, from_mud=_str, from_user=_str, visname=_str, target_mud=_str,
        target_user=_str, target_visname=_str, message_others=_str, message_target=_str,
        history_id=_opt_int),
    "who_reply": _shape(
        from_mud=_opt_str, to_mud=_opt_str, to_user=_opt_str,
        users=_list_of(_shape(name=_str, idle=_int, level=_level, extra=_str))),
    "finger_reply": _shape(
        from_mud=_opt_str, to_mud=_opt_str, to_user=_opt_str,
        user_info=_shape(name=_opt_str, title=_opt_str, real_name=_opt_str, email=_opt_str,
                         login_time=lambda v: v is None or _int(v) or _str(v), idle_time=_int,
                         ip_address=_opt_str, level=_level, extra=_opt_str)),
    "locate_reply": _shape(
        from_mud=_opt_str, to_mud=_opt_str, to_user=_opt_str, located_mud=_opt_str,
        located_user=_opt_str, idle=_int, status=_opt_str),
    "chan_who_reply": _shape(from_mud=_opt_str, channel=_opt_str, users=_list_of(_str)),
    "error_occurred": _shape(
        error_code=_str, error_message=_str, from_mud=_opt_str, to_mud=_opt_str,
        to_user=_opt_str,
        context=_shape(packet_type=_opt_str, target_mud=_opt_str, target_user=_opt_str)),
    "mud_online": _shape(mud_name=_str, info=_MUD_ENTRY),
    "mud_offline": _shape(mud_name=_str, info=_MUD_ENTRY),
    "gateway_connected": _shape(router=_opt_str, reason=_str),
    "gateway_disconnected": _shape(router=_opt_str, reason=_str),
    "gateway_reconnected": _shape(message=_str, status=lambda v: v == "connected"),
}


def event_problem(event):
    """Why a notification breaks API.md's field types, or None."""
    params = event.get("params")
    name = event.get("method")
    if name not in EVENT_TYPES:
        return f"unknown event {name!r}"
    if not isinstance(params, dict) or not _str(params.get("timestamp")):
        return f"{name} without a timestamp"
    if not EVENT_TYPES[name](params):
        return f"{name} has fields of the wrong type: {params!r}"
    return None


# -- the property ---------------------------------------------------------------------------


class InboundFuzzTests(SynchronousTestCase):
    def setUp(self):
        state_dir = tempfile.mkdtemp(prefix="i3fuzz-")
        self.addCleanup(shutil.rmtree, state_dir, ignore_errors=True)
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.connector = _Connector()
        self.gateway = Gateway(_config(state_dir), clock=self.clock, connector=self.connector)
        self.addCleanup(self.gateway.store.close)
        self.addCleanup(self.gateway.outbox.stop)
        self.link = self.gateway.link
        self.link.startService()
        self.addCleanup(self._stop)
        self.client = _Connection()
        session = self.gateway.sessions.connection_opened(self.client)
        session.channels.update({"dchat", "imud_gossip"})
        self.bad_logs = []
        globalLogPublisher.addObserver(self._watch_log)
        self.addCleanup(globalLogPublisher.removeObserver, self._watch_log)
        self._make_ready()

    def _stop(self):
        self.link.stopService()
        self.gateway.sessions.stop()

    def _watch_log(self, event):
        if event.get("log_level", LogLevel.info) >= LogLevel.error or "log_failure" in event:
            self.bad_logs.append(event)

    def _make_ready(self):
        for _ in range(10):
            if self.link.ready:
                return
            if self.link.state == "backoff":
                self.clock.advance(1000)
                continue
            self.connector.current.dataReceived(frame(_startup_reply()))
        self.fail(f"the link did not come back: {self.link.state}")

    def test_the_ready_gateway_is_a_fair_start(self):
        self.assertTrue(self.link.ready)
        self.assertEqual(self.bad_logs, [])

    @settings(deadline=None, max_examples=200,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(_values, min_size=1, max_size=6))
    def test_arbitrary_packets_never_raise_and_events_keep_their_types(self, values):
        self.client.events.clear()
        protocol = self.connector.current
        for value in values:
            protocol.packetReceived(value)   # raises here if the inbound path does
        self.assertEqual(protocol.handler_failures, 0)
        problems = [event_problem(e) for e in self.client.events]
        self.assertEqual([p for p in problems if p], [])
        logged = [e.get("log_format") for e in self.bad_logs]
        self.bad_logs.clear()
        self.assertEqual(logged, [])
        # Whatever was received (a password, list ids), the link can always
        # handshake again.
        self.link.reconnect("fuzz")
        self._make_ready()
