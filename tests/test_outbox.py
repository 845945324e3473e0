"""services/outbox.py: sent vs queued, the durable queue, drain, expiry,
client_msg_id retries, restart. Also holds the small fake gateway the other
service tests share (make_gateway and friends; no Test* names)."""

import copy
import json
import shutil
import tempfile

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import mudmode, packets
from intermud3.api.errors import GATEWAY_ERROR, RPCError
from intermud3.config import DEFAULTS
from intermud3.events import EventHub
from intermud3.metrics import Metrics
from intermud3.services.outbox import Outbox, permission_for
from intermud3.state import StateStore

OUR_MUD = "OurMud"
ROUTER = "*test"


# -------------------------------------------------------------- fakes

class FakeLink:
    """Records what is written; `room` says whether try_send may write now."""

    def __init__(self, config):
        self.config = config
        self.ready = True
        self.room = True
        self.router = {"name": ROUTER, "host": "127.0.0.1", "port": 1}
        self.written = []      # every packet written, in order
        self.held = []         # packets send() had to hold
        self.on_ready = []
        self.on_writable = []
        self.on_state = []

    def frame_size(self, packet):
        size = len(mudmode.frame(packet))
        limit = self.config["router"]["max_send_bytes"]
        if size > limit:
            raise mudmode.FrameTooLarge(size, limit)
        return size

    def try_send(self, packet):
        self.frame_size(packet)
        if self.ready and self.room and not self.held:
            self.written.append(packet)
            return True
        return False

    def send(self, packet):
        self.frame_size(packet)
        if self.ready and self.room and not self.held:
            self.written.append(packet)
            return True
        self.held.append(packet)
        return False

    def go_ready(self):
        # As RouterLink after a startup-reply: on_ready observers, then
        # on_writable ones.
        self.ready = True
        for callback in list(self.on_ready):
            callback()
        if self.room and not self.held:
            for callback in list(self.on_writable):
                callback()

    def go_writable(self):
        self.room = True
        for callback in list(self.on_writable):
            callback()


class FakeSession:
    _count = 0

    def __init__(self, permissions=("*",), key_id="key0"):
        FakeSession._count += 1
        self.id = f"session{FakeSession._count}"
        self.key_id = key_id
        self.permissions = list(permissions)
        self.channels = set()
        self.events = []       # (event, params) delivered to this session

    def has_permission(self, permission):
        return permission is None or "*" in self.permissions or permission in self.permissions

    def named(self, event):
        return [params for name, params in self.events if name == event]


class FakeSessions:
    def __init__(self):
        self._sessions = {}
        self.on_session_end = []

    def add(self, session):
        self._sessions[session.id] = session
        return session

    def end(self, session):
        self._sessions.pop(session.id, None)
        for callback in list(self.on_session_end):
            callback(session)

    def get(self, session_id):
        return self._sessions.get(session_id)

    def sessions(self):
        return list(self._sessions.values())

    def deliver(self, session, event, data):
        message = json.loads(data)
        session.events.append((event, message["params"]))


class FakeLists:
    def __init__(self):
        self.muds = {"OtherMud": [-1], "DSTest": [-1]}
        self.channels = {}

    def exact_mud(self, name):
        if not isinstance(name, str):
            return None
        for known in self.muds:
            if known.lower() == name.lower():
                return known
        return None


class FakeInbound:
    def __init__(self):
        self.handlers = {}

    def register(self, ptype, handler):
        self.handlers[ptype] = handler

    def dispatch(self, value):
        packet = packets.parse(value)
        self.handlers[packet.type](packet)


class FakePresence:
    def __init__(self):
        self.users = None      # None: no current snapshot

    def knows_user(self, username):
        if self.users is None:
            return None
        return username in self.users


class FakeErrors:
    def __init__(self):
        self.remembered = []

    def remember(self, packet, session):
        self.remembered.append((packet, session))


class FakeGateway:
    def __init__(self, directory, clock=None, config=None):
        self.config = config or make_config()
        self.mud_name = self.config["mud"]["name"]
        self.clock = clock or Clock()
        self.clock.advance(1_700_000_000)   # a plausible wall-clock time
        self.link = FakeLink(self.config)
        self.store = StateStore(directory, clock=self.clock)
        self.lists = FakeLists()
        self.sessions = FakeSessions()
        self.metrics = Metrics()
        self.hub = EventHub(self.sessions, self.metrics, self.clock)
        self.inbound = FakeInbound()
        self.presence = FakePresence()
        self.errors = FakeErrors()


def make_config(**router):
    config = copy.deepcopy(DEFAULTS)
    config["mud"]["name"] = OUR_MUD
    config["router"].update(router)
    return config


class GatewayTestMixin:
    """setUp gives self.gw (a FakeGateway over a real StateStore in a temp dir)."""

    def make_gateway(self, config=None, directory=None):
        if directory is None:
            directory = tempfile.mkdtemp(prefix="i3-test-")
            self.addCleanup(shutil.rmtree, directory, True)
        gw = FakeGateway(directory, config=config)
        self.addCleanup(gw.store.close)
        return gw

    def session(self, gw, permissions=("*",), key_id="key0"):
        return gw.sessions.add(FakeSession(permissions, key_id))


def tell_packet(n=1):
    return packets.make("tell", OUR_MUD, "alice", "OtherMud", "bob", "Alice", f"message {n}")


# -------------------------------------------------------------- tests

class OutboxTests(GatewayTestMixin, SynchronousTestCase):
    def setUp(self):
        self.gw = self.make_gateway()
        self.outbox = Outbox(self.gw)
        self.addCleanup(self.outbox.stop)
        self.alice = self.session(self.gw)

    def gauge(self):
        return self.gw.metrics.registry.get_sample_value("intermud3_outbound_queue_depth")

    def test_sent_when_link_ready_and_queue_empty(self):
        result = self.outbox.submit("tell", tell_packet(), self.alice)
        self.assertEqual(result["status"], "sent")
        self.assertIsInstance(result["message_id"], str)
        self.assertEqual(self.gw.link.written, [tell_packet()])
        self.assertEqual(self.gw.store.queue_depth(), 0)

    def test_sent_ids_are_unique(self):
        ids = {self.outbox.submit("tell", tell_packet(n), self.alice)["message_id"] for n in range(20)}
        self.assertEqual(len(ids), 20)

    def test_queued_when_link_down(self):
        self.gw.link.ready = False
        result = self.outbox.submit("tell", tell_packet(), self.alice)
        self.assertEqual(result["status"], "queued")
        self.assertEqual(self.gw.link.written, [])
        rows = self.gw.store.pending()
        self.assertEqual(len(rows), 1)
        self.assertEqual(result["message_id"], f"q{rows[0].id}")
        self.assertEqual(rows[0].packet, tell_packet())
        self.assertEqual(rows[0].kind, "tell")
        self.assertEqual(rows[0].owner, self.alice.id)
        self.assertEqual(rows[0].expires - rows[0].created, self.gw.config["router"]["queue"]["ttl"])
        self.assertEqual(self.gauge(), 1)

    def test_queued_when_pacer_busy(self):
        self.gw.link.room = False
        result = self.outbox.submit("tell", tell_packet(), self.alice)
        self.assertEqual(result["status"], "queued")
        self.assertEqual(self.gw.link.written, [])

    def test_queued_behind_waiting_messages_even_if_link_could_write(self):
        self.gw.link.ready = False
        self.outbox.submit("tell", tell_packet(1), self.alice)
        # Link ready again but the try_send of the first one is refused by
        # the pacer: the new message must wait behind it, not overtake it.
        self.gw.link.ready = True
        self.gw.link.room = False
        self.assertEqual(self.outbox.submit("tell", tell_packet(2), self.alice)["status"], "queued")
        self.gw.link.room = True
        # Now the pacer has room: the old one goes out first, then the new one.
        self.assertEqual(self.outbox.submit("tell", tell_packet(3), self.alice)["status"], "sent")
        self.assertEqual(self.gw.link.written, [tell_packet(1), tell_packet(2), tell_packet(3)])

    def test_queue_full(self):
        self.gw.config["router"]["queue"]["max_messages"] = 2
        self.gw.link.ready = False
        self.outbox.submit("tell", tell_packet(1), self.alice)
        self.outbox.submit("tell", tell_packet(2), self.alice)
        with self.assertRaises(RPCError) as caught:
            self.outbox.submit("tell", tell_packet(3), self.alice)
        self.assertEqual(caught.exception.code, GATEWAY_ERROR)
        self.assertEqual(caught.exception.data, {"reason": "queue_full"})
        self.assertEqual(self.gw.store.queue_depth(), 2)

    def test_queue_disabled_link_down(self):
        self.gw.config["router"]["queue"]["enabled"] = False
        self.gw.link.ready = False
        with self.assertRaises(RPCError) as caught:
            self.outbox.submit("tell", tell_packet(), self.alice)
        self.assertEqual(caught.exception.code, GATEWAY_ERROR)
        self.assertEqual(caught.exception.data, {"reason": "link_down"})
        self.assertEqual(self.gw.store.queue_depth(), 0)

    def test_queue_disabled_pacer_busy_is_queue_full(self):
        self.gw.config["router"]["queue"]["enabled"] = False
        self.gw.link.room = False
        with self.assertRaises(RPCError) as caught:
            self.outbox.submit("tell", tell_packet(), self.alice)
        self.assertEqual(caught.exception.data, {"reason": "queue_full"})

    def test_queue_disabled_link_up_sends(self):
        self.gw.config["router"]["queue"]["enabled"] = False
        self.assertEqual(self.outbox.submit("tell", tell_packet(), self.alice)["status"], "sent")

    def test_drain_on_ready_in_order_with_message_sent(self):
        self.gw.link.ready = False
        ids = [self.outbox.submit("tell", tell_packet(n), self.alice)["message_id"] for n in range(3)]
        self.gw.link.go_ready()
        self.assertEqual(self.gw.link.written, [tell_packet(0), tell_packet(1), tell_packet(2)])
        self.assertEqual(self.gw.store.queue_depth(), 0)
        self.assertEqual(self.alice.named("message_sent"),
                         [{"message_id": i, "method": "tell", "timestamp": p["timestamp"]}
                          for i, p in zip(ids, self.alice.named("message_sent"))])
        self.assertEqual([p["message_id"] for p in self.alice.named("message_sent")], ids)
        self.assertEqual(self.gauge(), 0)

    def test_drain_stops_when_pacer_full_and_resumes_on_writable(self):
        self.gw.link.ready = False
        for n in range(3):
            self.outbox.submit("tell", tell_packet(n), self.alice)
        written_before_refusal = []

        def refuse_after_one(packet, original=self.gw.link.try_send):
            if written_before_refusal:
                return False
            written_before_refusal.append(packet)
            return original(packet)
        self.gw.link.try_send = refuse_after_one
        self.gw.link.go_ready()
        self.assertEqual(self.gw.link.written, [tell_packet(0)])
        self.assertEqual(self.gw.store.queue_depth(), 2)
        self.assertEqual(len(self.alice.named("message_sent")), 1)
        del self.gw.link.try_send      # back to the plain fake
        self.gw.link.go_writable()
        self.assertEqual(self.gw.link.written, [tell_packet(0), tell_packet(1), tell_packet(2)])
        self.assertEqual(len(self.alice.named("message_sent")), 3)

    def test_message_sent_goes_only_to_owner(self):
        bob = self.session(self.gw)
        self.gw.link.ready = False
        self.outbox.submit("tell", tell_packet(), self.alice)
        self.gw.link.go_ready()
        self.assertEqual(len(self.alice.named("message_sent")), 1)
        self.assertEqual(bob.named("message_sent"), [])

    def test_message_sent_to_permission_holders_when_owner_gone(self):
        tells = self.session(self.gw, permissions=["tell"])
        info = self.session(self.gw, permissions=["info"])
        admin = self.session(self.gw, permissions=["admin"])
        self.gw.link.ready = False
        self.outbox.submit("tell", tell_packet(), self.alice)
        self.outbox.submit("channel_admin", tell_packet(2), self.alice)
        self.gw.sessions.end(self.alice)
        self.gw.link.go_ready()
        self.assertEqual([p["method"] for p in tells.named("message_sent")], ["tell"])
        self.assertEqual([p["method"] for p in admin.named("message_sent")], ["channel_admin"])
        self.assertEqual(info.named("message_sent"), [])

    def test_permission_for_kinds(self):
        self.assertEqual(permission_for("tell"), "tell")
        self.assertEqual(permission_for("emoteto"), "tell")
        for kind in ("channel_send", "channel_emote", "channel_target"):
            self.assertEqual(permission_for(kind), "channel")
        self.assertEqual(permission_for("channel_admin"), "admin")

    def test_expiry_by_timer(self):
        self.gw.link.ready = False
        first = self.outbox.submit("tell", tell_packet(1), self.alice)["message_id"]
        self.gw.clock.advance(100)
        second = self.outbox.submit("emoteto", tell_packet(2), self.alice)["message_id"]
        self.gw.clock.advance(199)
        self.assertEqual(self.alice.named("message_expired"), [])
        self.gw.clock.advance(1)
        expired = self.alice.named("message_expired")
        self.assertEqual([(p["message_id"], p["method"]) for p in expired], [(first, "tell")])
        self.assertEqual(self.gw.store.queue_depth(), 1)
        self.assertEqual(self.gauge(), 1)
        self.gw.clock.advance(100)
        expired = self.alice.named("message_expired")
        self.assertEqual([(p["message_id"], p["method"]) for p in expired],
                         [(first, "tell"), (second, "emoteto")])
        self.assertEqual(self.gw.store.queue_depth(), 0)
        self.assertEqual(self.gauge(), 0)
        self.gw.link.go_ready()
        self.assertEqual(self.gw.link.written, [])
        self.assertEqual(self.alice.named("message_sent"), [])
        self.assertEqual(self.gw.clock.getDelayedCalls(), [])

    def test_rows_expired_during_downtime_are_not_sent_after_restart(self):
        self.gw.link.ready = False
        queued = self.outbox.submit("tell", tell_packet(1), self.alice)["message_id"]
        self.outbox.stop()
        self.gw.store.close()
        gw2 = self.make_gateway(directory=self.gw.store.directory)
        gw2.clock.advance(301)          # the gateway was down past the TTL
        tells = self.session(gw2, permissions=["tell"])
        outbox2 = Outbox(gw2)
        self.addCleanup(outbox2.stop)
        gw2.link.go_ready()             # handshake before the timer ran
        self.assertEqual(gw2.link.written, [])
        self.assertEqual([p["message_id"] for p in tells.named("message_expired")], [queued])
        self.assertEqual(tells.named("message_sent"), [])
        gw2.clock.advance(1)
        self.assertEqual(len(tells.named("message_expired")), 1)

    def test_client_msg_id_repeat_returns_first_result_and_sends_nothing(self):
        first = self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        again = self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(first, again)
        self.assertEqual(len(self.gw.link.written), 1)

    def test_client_msg_id_repeat_of_queued(self):
        self.gw.link.ready = False
        first = self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        again = self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(first, again)
        self.assertEqual(self.gw.store.queue_depth(), 1)
        self.assertEqual(self.gw.store.pending()[0].client_msg_id, "m-1")

    def test_client_msg_id_shared_by_sessions_of_one_key(self):
        other = self.session(self.gw, key_id="key0")
        first = self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(self.outbox.submit("tell", tell_packet(), other, client_msg_id="m-1"), first)
        self.assertEqual(len(self.gw.link.written), 1)

    def test_client_msg_id_is_per_key(self):
        stranger = self.session(self.gw, key_id="key1")
        self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.outbox.submit("tell", tell_packet(), stranger, client_msg_id="m-1")
        self.assertEqual(len(self.gw.link.written), 2)

    def test_client_msg_id_forgotten_after_session_timeout(self):
        self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.gw.clock.advance(self.gw.config["api"]["session"]["timeout"] + 1)
        self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.assertEqual(len(self.gw.link.written), 2)

    def test_client_msg_id_bounded(self):
        outbox = Outbox(self.gw, max_remembered=2)
        self.addCleanup(outbox.stop)
        for n in range(3):
            outbox.submit("tell", tell_packet(n), self.alice, client_msg_id=f"m-{n}")
        outbox.submit("tell", tell_packet(0), self.alice, client_msg_id="m-0")   # forgotten
        outbox.submit("tell", tell_packet(2), self.alice, client_msg_id="m-2")   # remembered
        self.assertEqual(len(self.gw.link.written), 4)

    def test_failed_call_is_not_remembered(self):
        self.gw.config["router"]["queue"]["enabled"] = False
        self.gw.link.ready = False
        with self.assertRaises(RPCError):
            self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")
        self.gw.link.ready = True
        self.assertEqual(self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="m-1")["status"],
                         "sent")

    def test_restart_drains_rows_of_previous_process(self):
        self.gw.link.ready = False
        ids = [self.outbox.submit("tell", tell_packet(n), self.alice)["message_id"] for n in range(2)]
        self.outbox.stop()
        self.gw.store.close()
        # A new process: new store over the same files, new sessions.
        gw2 = self.make_gateway(directory=self.gw.store.directory)
        tells = self.session(gw2, permissions=["tell"])
        outbox2 = Outbox(gw2)
        self.addCleanup(outbox2.stop)
        self.assertEqual(gw2.store.queue_depth(), 2)
        gw2.link.ready = False
        gw2.link.go_ready()
        self.assertEqual(gw2.link.written, [tell_packet(0), tell_packet(1)])
        self.assertEqual([p["message_id"] for p in tells.named("message_sent")], ids)
        self.assertEqual(gw2.store.queue_depth(), 0)

    def test_client_msg_id_of_queued_row_survives_restart(self):
        self.gw.link.ready = False
        first = self.outbox.submit("tell", tell_packet(), self.alice, client_msg_id="keep-me")
        self.outbox.stop()
        self.gw.store.close()
        gw2 = self.make_gateway(directory=self.gw.store.directory)
        outbox2 = Outbox(gw2)
        self.addCleanup(outbox2.stop)
        alice_again = self.session(gw2, key_id="key0")
        self.assertEqual(outbox2.submit("tell", tell_packet(), alice_again, client_msg_id="keep-me"), first)
        self.assertEqual(gw2.store.queue_depth(), 1)
        gw2.link.go_ready()
        self.assertEqual(gw2.link.written, [tell_packet()])
        self.assertEqual(outbox2.submit("tell", tell_packet(), alice_again, client_msg_id="other")["status"],
                         "sent")

    def test_new_queued_ids_never_reuse_old_ones(self):
        self.gw.link.ready = False
        first = self.outbox.submit("tell", tell_packet(1), self.alice)["message_id"]
        self.gw.link.go_ready()
        self.gw.link.ready = False
        second = self.outbox.submit("tell", tell_packet(2), self.alice)["message_id"]
        self.assertNotEqual(first, second)

    def test_exactly_once_deleted_in_same_turn_as_write(self):
        self.gw.link.ready = False
        self.outbox.submit("tell", tell_packet(), self.alice)
        seen = []

        def write_and_look(packet, original=self.gw.link.try_send):
            seen.append(self.gw.store.queue_depth())
            return original(packet)
        self.gw.link.try_send = write_and_look
        self.gw.link.go_ready()
        self.assertEqual(seen, [1])
        self.assertEqual(self.gw.store.queue_depth(), 0)
        self.gw.link.go_ready()      # a second handshake sends nothing again
        self.assertEqual(len(self.gw.link.written), 1)
