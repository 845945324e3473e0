"""The one fake gateway of the service unit tests: what the services see of
intermud3.service.Gateway (docs/ARCHITECTURE.md). The state store (in a
temporary directory), network lists, event hub and inbound dispatcher are
the real ones; the link records what it writes, and sessions record the
events delivered to them. No Test* names here."""

import json
import shutil
import tempfile
import types

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from intermud3 import packets
from intermud3.api.errors import INVALID_PARAMS, RPCError, for_failure
from intermud3.api.methods import channels as channel_methods
from intermud3.api.methods import messages as message_methods
from intermud3.api.methods import network as network_methods
from intermud3.api.methods import presence as presence_methods
from intermud3.api.methods import queries as query_methods
from intermud3.config import load_text, with_overrides
from intermud3.events import EventHub
from intermud3.lists import NetworkLists
from intermud3.metrics import Metrics
from intermud3.outbound import Outbox, OutFrame, SendResult, encode
from intermud3.services.channels import ChannelService
from intermud3.services.failures import ServiceFailure
from intermud3.services.i3_errors import ErrorRouter
from intermud3.services.inbound import InboundDispatcher
from intermud3.services.messages import MessageService
from intermud3.services.network import Network
from intermud3.services.presence import Presence
from intermud3.services.queries import Queries
from intermud3.store import open_store

OUR_MUD = "OurMud"
ROUTER = "*test"


def make_config(**sections):
    """The defaults with our MUD name; each keyword sets keys of that section
    (make_config(mud={"name": "X"}) -> mud.name is X)."""
    config = load_text(f"mud: {{name: {OUR_MUD}}}", environ={})
    return with_overrides(config, {f"{section}.{key}": value
                                   for section, values in sections.items()
                                   for key, value in values.items()})


def mud_info(state=-1, driver="FluffOS v2019", services=None, host="127.0.0.1"):
    """A mudlist entry's 13 fields."""
    return [state, host, 4000, 0, 0, "Dead Souls 3.9", "Dead Souls", driver, "LPMud",
            "open", "admin@example.org", services if services is not None else {"who": 1}, 0]


def add_muds(gateway, *names):
    """Put these MUDs, up, in the gateway's mudlist."""
    gateway.lists.apply_mudlist(ROUTER, gateway.mud_name, 1, {name: mud_info() for name in names})


class FakeLink:
    """RouterLink's surface. ``room`` stands for the pacer: without it
    ``send`` holds the packet and ``try_send`` and ``reserve`` refuse; like
    the real link, ``send`` discards while not ready and every send raises
    Unsendable over ``router.max_send_bytes`` (read live from ``config()``)."""

    def __init__(self, config):
        self.config = config    # callable() -> the gateway's current Config
        self.ready = True
        self.room = True
        self.router = {"name": ROUTER, "host": "127.0.0.1", "port": 1}
        self.connection = object()   # a new one at each handshake
        self.sent = []          # every packet written, in order
        self.held = []          # packets send() held for want of room
        self.on_packet = []
        self.on_state = []
        self.on_ready = []
        self.on_writable = []

    def encode(self, packet):
        if isinstance(packet, OutFrame):
            return packet
        return encode(packet, self.config().router.max_send_bytes)

    def try_send(self, packet):
        out = self.encode(packet)
        if self.reserve(out.type):
            self.write_reserved(out)
            return True
        return False

    def reserve(self, ptype):
        return self.ready and self.room and not self.held

    def write_reserved(self, out):
        self.sent.append(list(out.packet))

    def send(self, packet):
        out = self.encode(packet)
        if self.try_send(out):
            return SendResult.SENT
        if self.ready:
            self.held.append(list(out.packet))
            return SendResult.HELD
        return SendResult.DROPPED

    def receive(self, value):
        """A packet from the router, to every on_packet observer."""
        packet = packets.parse(list(value))
        for observer in list(self.on_packet):
            observer(packet)

    def set_state(self, state, reason="test"):
        """As RouterLink: on_state observers; on "ready" then the on_ready
        ones, then (with room and nothing held) the on_writable ones."""
        self.ready = state == "ready"
        if self.ready:
            self.connection = object()
        for observer in list(self.on_state):
            observer(state, reason)
        if not self.ready:
            return
        for observer in list(self.on_ready):
            observer()
        if self.room and not self.held:
            for observer in list(self.on_writable):
                observer()

    def go_writable(self):
        self.room = True
        for observer in list(self.on_writable):
            observer()


class FakeSession:
    _count = 0

    def __init__(self, session_id=None, permissions=("*",), key_id="key0"):
        FakeSession._count += 1
        self.id = session_id or f"session{FakeSession._count}"
        self.key_id = key_id
        self.permissions = set(permissions)
        self.channels = set()
        self.colour_out = self.colour_in = "pinkfish"   # as a new Session's
        self.received = []      # (event, params) delivered, in order

    def has_permission(self, permission):
        return permission is None or "*" in self.permissions or permission in self.permissions

    def events(self, name=None):
        """The params of every event delivered (of that name)."""
        return [params for event, params in self.received if name is None or event == name]


class FakeSessions:
    def __init__(self):
        self._sessions = {}
        self.on_session_end = []

    def add(self, session_id=None, permissions=("*",), key_id="key0"):
        session = FakeSession(session_id, permissions, key_id)
        self._sessions[session.id] = session
        return session

    def end(self, session):
        self._sessions.pop(session.id, None)
        for observer in list(self.on_session_end):
            observer(session)

    def get(self, session_id):
        return self._sessions.get(session_id)

    def is_live(self, session):
        return session is not None and self._sessions.get(session.id) is session

    def sessions(self):
        return list(self._sessions.values())

    def deliver(self, session, event, data):
        session.received.append((event, json.loads(data)["params"]))


class FakeErrors:
    def __init__(self):
        self.remembered = []

    def remember(self, packet, session):
        self.remembered.append((packet, session))


class FakeGateway:
    """Services are not built here: a test builds the ones it needs and
    sets them as attributes, as intermud3.service.Gateway does."""

    def __init__(self, directory, config=None):
        self.config = config or make_config()
        self.clock = Clock()
        self.clock.advance(1_700_000_000)   # a plausible wall-clock time
        self.link = FakeLink(self.current_config)
        self.metrics = Metrics()
        # Writes run inline, at once: ``state`` (the StateStore behind) can
        # be read directly to see what is stored.
        self.store = open_store(directory, clock=self.clock, mud_name=OUR_MUD,
                                metrics=self.metrics)
        self.state = self.store.writer.store
        self.lists = NetworkLists(self.store)
        self.sessions = FakeSessions()
        self.hub = EventHub(self.sessions, metrics=self.metrics, clock=self.clock)
        self.inbound = InboundDispatcher(link=self.link, mud_name=self.current_mud_name)
        self.errors = FakeErrors()

    @property
    def mud_name(self):
        return self.config.mud.name

    # What intermud3.service.Gateway hands the services for values a reload changes.
    def current_mud_name(self):
        return self.config.mud.name

    def current_config(self):
        return self.config

    def call(self, session):
        """What a handler gets as ``call``."""
        return types.SimpleNamespace(session=session, gateway=self)


# -- the services, built on a FakeGateway as intermud3.service.Gateway builds
# them (each is also set on the gateway, for the services built after it).

def build_presence(gw):
    gw.presence = Presence(inbound=gw.inbound, link=gw.link, config=gw.current_config,
                           mud_name=gw.current_mud_name, clock=gw.clock)
    return gw.presence


def build_queries(gw):
    gw.queries = Queries(inbound=gw.inbound, link=gw.link, sessions=gw.sessions, lists=gw.lists,
                         presence=gw.presence, hub=gw.hub, config=gw.current_config,
                         mud_name=gw.current_mud_name, clock=gw.clock)
    return gw.queries


def build_errors(gw):
    gw.errors = ErrorRouter(inbound=gw.inbound, queries=gw.queries, presence=gw.presence,
                            hub=gw.hub, config=gw.current_config, clock=gw.clock)
    return gw.errors


def build_channels(gw):
    gw.channels = ChannelService(
        inbound=gw.inbound, link=gw.link, outbox=gw.outbox, errors=gw.errors,
        sessions=gw.sessions, lists=gw.lists, store=gw.store, config=gw.current_config,
        mud_name=gw.current_mud_name, clock=gw.clock)
    return gw.channels


def build_messages(gw):
    gw.messages = MessageService(
        inbound=gw.inbound, link=gw.link, outbox=gw.outbox, errors=gw.errors,
        presence=gw.presence, channels=gw.channels, lists=gw.lists, sessions=gw.sessions,
        hub=gw.hub, store=gw.store, config=gw.current_config, mud_name=gw.current_mud_name,
        clock=gw.clock)
    return gw.messages


def build_network(gw):
    gw.network = Network(lists=gw.lists, link=gw.link, hub=gw.hub)
    return gw.network


# -- the API handlers over them, with a service's refusal answered as the
# dispatcher answers it (api/errors.py's table).

def as_api(handlers):
    """{method: handler} whose ServiceFailures (raised, or failing a
    returned Deferred) become the RPCError the client gets."""
    def api(handler):
        def call(c, params):
            try:
                result = handler(c, params)
            except ServiceFailure as failure:
                raise for_failure(failure) from None
            if isinstance(result, Deferred):
                result.addErrback(_answered)
            return result
        return call
    return {name: api(handler) for name, handler in handlers.items()}


def _answered(failure):
    failure.trap(ServiceFailure)
    raise for_failure(failure.value)


def message_handlers(gw):
    return as_api(message_methods.handlers(gw.messages))


def channel_handlers(gw):
    return as_api(channel_methods.handlers(gw.channels))


def query_handlers(gw):
    return as_api(query_methods.handlers(gw.queries))


def presence_handlers(gw):
    return as_api(presence_methods.handlers(gw.presence, gw.current_mud_name))


def network_handlers(gw):
    return as_api(network_methods.handlers(gw.network))


def make_gateway(testcase, config=None, directory=None):
    """A FakeGateway over a fresh state directory, closed and removed
    when ``testcase`` ends."""
    if directory is None:
        directory = tempfile.mkdtemp(prefix="i3-test-")
        testcase.addCleanup(shutil.rmtree, directory, True)
    gateway = FakeGateway(directory, config)
    testcase.addCleanup(gateway.store.close)
    return gateway


def make_outbox(gateway, **kwargs):
    """An Outbox over ``gateway``'s parts, as intermud3.service builds it."""
    return Outbox(link=gateway.link, store=gateway.store, clock=gateway.clock,
                  config=gateway.current_config, sessions=gateway.sessions, hub=gateway.hub,
                  metrics=gateway.metrics, **kwargs)


def settled(result):
    """A handler's result, its Deferred (fired already: the fake gateway's
    store writes inline) resolved: the value, or its exception raised."""
    if not isinstance(result, Deferred):
        return result
    outcome = []
    result.addBoth(outcome.append)
    if not outcome:
        raise AssertionError(f"{result!r} has not fired")
    if isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0]


def assert_invalid(testcase, field, call):
    """`call()` must raise -32602 naming `field`; returns the RPCError."""
    with testcase.assertRaises(RPCError) as caught:
        settled(call())
    testcase.assertEqual(caught.exception.code, INVALID_PARAMS)
    testcase.assertEqual(caught.exception.data["field"], field)
    return caught.exception
