"""The one fake gateway of the service unit tests: what the services see of
intermud3.service.Gateway (docs/ARCHITECTURE.md). The state store (in a
temporary directory), network lists, event hub and inbound dispatcher are
the real ones; the link records what it writes, and sessions record the
events delivered to them. No Test* names here."""

import copy
import json
import shutil
import tempfile
import types

from twisted.internet.task import Clock

from intermud3 import packets
from intermud3.api.errors import INVALID_PARAMS, RPCError
from intermud3.config import DEFAULTS
from intermud3.events import EventHub
from intermud3.lists import NetworkLists
from intermud3.metrics import Metrics
from intermud3.mudmode import FrameTooLarge, frame
from intermud3.services.inbound import InboundDispatcher
from intermud3.state import StateStore

OUR_MUD = "OurMud"
ROUTER = "*test"


def make_config(**sections):
    """DEFAULTS with our MUD name; each keyword updates that section."""
    config = copy.deepcopy(DEFAULTS)
    config["mud"]["name"] = OUR_MUD
    for section, values in sections.items():
        config[section].update(values)
    return config


def mud_info(state=-1, driver="FluffOS v2019", services=None, host="127.0.0.1"):
    """A mudlist entry's 13 fields."""
    return [state, host, 4000, 0, 0, "Dead Souls 3.9", "Dead Souls", driver, "LPMud",
            "open", "admin@example.org", services if services is not None else {"who": 1}, 0]


def add_muds(gateway, *names):
    """Put these MUDs, up, in the gateway's mudlist."""
    gateway.lists.apply_mudlist(ROUTER, gateway.mud_name, 1, {name: mud_info() for name in names})


class FakeLink:
    """RouterLink's surface. ``room`` stands for the pacer: without it
    ``send`` holds the packet and ``try_send`` refuses; like the real link,
    ``send`` discards while not ready and both raise FrameTooLarge over
    ``router.max_send_bytes`` (read live)."""

    def __init__(self, config):
        self.config = config
        self.ready = True
        self.room = True
        self.router = {"name": ROUTER, "host": "127.0.0.1", "port": 1}
        self.sent = []          # every packet written, in order
        self.held = []          # packets send() held for want of room
        self.frame_size_calls = 0
        self.on_packet = []
        self.on_state = []
        self.on_ready = []
        self.on_writable = []

    def frame_size(self, packet):
        self.frame_size_calls += 1
        return len(frame(packet.value if isinstance(packet, packets.Packet) else packet))

    def _check_size(self, packet):
        size = len(frame(packet))
        limit = self.config["router"]["max_send_bytes"]
        if size > limit:
            raise FrameTooLarge(size, limit)

    def try_send(self, packet):
        self._check_size(packet)
        if self.ready and self.room and not self.held:
            self.sent.append(list(packet))
            return True
        return False

    def send(self, packet):
        if self.try_send(packet):
            return True
        if self.ready:
            self.held.append(list(packet))
        return False

    def receive(self, value):
        """A packet from the router, to every on_packet observer."""
        packet = packets.parse(list(value))
        for observer in list(self.on_packet):
            observer(packet)

    def set_state(self, state, reason="test"):
        """As RouterLink: on_state observers; on "ready" then the on_ready
        ones, then (with room and nothing held) the on_writable ones."""
        self.ready = state == "ready"
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
        self.link = FakeLink(self.config)
        self.store = StateStore(directory, clock=self.clock)
        self.lists = NetworkLists(self.store)
        self.sessions = FakeSessions()
        self.metrics = Metrics()
        self.hub = EventHub(self.sessions, metrics=self.metrics, clock=self.clock)
        self.inbound = InboundDispatcher(self)
        self.errors = FakeErrors()

    @property
    def mud_name(self):
        return self.config["mud"]["name"]

    def call(self, session):
        """What a handler gets as ``call``."""
        return types.SimpleNamespace(session=session, gateway=self)


def make_gateway(testcase, config=None, directory=None):
    """A FakeGateway over a fresh state directory, closed and removed
    when ``testcase`` ends."""
    if directory is None:
        directory = tempfile.mkdtemp(prefix="i3-test-")
        testcase.addCleanup(shutil.rmtree, directory, True)
    gateway = FakeGateway(directory, config)
    testcase.addCleanup(gateway.store.close)
    return gateway


def assert_invalid(testcase, field, call):
    """`call()` must raise -32602 naming `field`; returns the RPCError."""
    with testcase.assertRaises(RPCError) as caught:
        call()
    testcase.assertEqual(caught.exception.code, INVALID_PARAMS)
    testcase.assertEqual(caught.exception.data["field"], field)
    return caught.exception
