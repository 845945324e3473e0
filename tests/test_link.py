"""RouterLink over a fake connector, StringTransport and Clock."""

import struct
from types import SimpleNamespace

from twisted.internet.defer import Deferred
from twisted.internet.error import ConnectionAborted, ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import lpc
from intermud3.config import load_text, with_overrides
from intermud3.link import MAX_LEARNED_ROUTERS, RouterLink, parse_router_list, persist
from intermud3.link.protocol import RouterFactory
from intermud3.metrics import Metrics
from intermud3.mudmode import frame
from intermud3.outbound import SendResult, Unsendable
from tests import coffeemud_frames as coffeemud
from tests.vectors import load_vectors

BASE_CONFIG = """
mud:
  name: {name}
  port: 4000
  admin_email: admin@example.org
  mudlib: GatewayLib 0.1
  base_mudlib: GatewayLib
  driver: Twisted
  mud_type: Other
  open_status: beta testing
  services: {{tell: 1, channel: 1, who: 1, finger: 1, locate: 1, emoteto: 1}}
routers:
  - {{name: "*test", host: 127.0.0.1, port: 8080}}
  - {{name: "*two", host: 127.0.0.2, port: 8081}}
  - {{name: "*three", host: 127.0.0.3, port: 8082}}
router:
  connect_timeout: 10
  handshake_timeout: 20
  backoff: {{initial: 1, max: 30, factor: 2, jitter: {jitter}}}
  keepalive_interval: 100
  keepalive_timeout: 10
  max_send_bytes: 8192
  send_rate: {rate}
"""


def make_config(name="ProbeA", rate=0, jitter="false", routers=None):
    config = load_text(BASE_CONFIG.format(name=name, rate=rate, jitter=jitter), environ={})
    if routers is not None:
        config = with_overrides(config, {"routers": routers})
    return config


def frame_bytes(text):
    """A MudMode frame around LPC text written by another router."""
    return struct.pack("!I", len(text) + 1) + text + b"\x00"


class FakeStore:
    def __init__(self):
        self.records = {}
        self.saved = []

    def router_record(self, router, mud):
        return dict(self.records.get((router, mud), {"password": 0, "mudlist_id": 0, "chanlist_id": 0}))

    def save_password(self, router, mud, password):
        self.saved.append((router, mud, password))
        self.records.setdefault((router, mud), {"password": 0, "mudlist_id": 0, "chanlist_id": 0})
        self.records[(router, mud)]["password"] = password


class FakeLists:
    def __init__(self):
        self.calls = []
        self.muds = {}
        self.channels = {}

    def apply_mudlist(self, router, mud, list_id, delta):
        self.calls.append(("mudlist", router, mud, list_id, delta))
        for name, info in delta.items():
            if info:
                self.muds[name] = info
            else:
                self.muds.pop(name, None)

    def apply_chanlist(self, router, mud, list_id, delta):
        self.calls.append(("chanlist", router, mud, list_id, delta))
        for name, entry in delta.items():
            if entry:
                self.channels[name] = entry
            else:
                self.channels.pop(name, None)


class FakeTransport(StringTransport):
    """Closes like a real transport: connectionLost comes a reactor turn later."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.protocol = None
        self.aborted = False
        self.closed = False

    def loseConnection(self):
        if not self.disconnecting:
            super().loseConnection()
            self.clock.callLater(0, self.gone, ConnectionDone("closed"))

    def abortConnection(self):
        self.aborted = True
        self.disconnecting = True
        self.clock.callLater(0, self.gone, ConnectionAborted("aborted"))

    def gone(self, error):
        if not self.closed:
            self.closed = True
            self.protocol.connectionLost(Failure(error))

    def frames(self):
        """Every value written so far, decoded."""
        data = self.value()
        values = []
        while data:
            (length,) = struct.unpack("!I", data[:4])
            values.append(lpc.decode(data[4:4 + length]))
            data = data[4 + length:]
        return values


class Attempt:
    def __init__(self, connector, router, factory):
        self.connector = connector
        self.router = router
        self.factory = factory
        self.deferred = Deferred()
        self.protocol = None
        self.transport = None

    def accept(self):
        self.protocol = self.factory.buildProtocol(None)
        self.transport = FakeTransport(self.connector.clock)
        self.transport.protocol = self.protocol
        self.protocol.makeConnection(self.transport)
        self.deferred.callback(self.protocol)
        return self

    def refuse(self):
        self.deferred.errback(ConnectionRefusedError("refused"))

    def receive(self, value):
        self.protocol.dataReceived(frame(value))

    def drop(self):
        self.transport.gone(ConnectionDone("router closed"))

    def sent(self):
        return self.transport.frames()


class FakeConnector:
    def __init__(self, clock):
        self.clock = clock
        self.attempts = []

    def __call__(self, router):
        connector = self

        class Endpoint:
            def connect(self, factory):
                attempt = Attempt(connector, router, factory)
                connector.attempts.append(attempt)
                return attempt.deferred
        return Endpoint()

    @property
    def last(self):
        return self.attempts[-1]


def startup_reply(mud="ProbeA", router="*test", router_list=None, password=842758708):
    if router_list is None:
        router_list = [[router, "127.0.0.1 8080"]]
    return ["startup-reply", 5, router, 0, mud, 0, router_list, password]


class LinkCase(SynchronousTestCase):
    def make_link(self, config=None, backoff=None, **kwargs):
        self.clock = Clock()
        self.clock.advance(1000)
        self.connector = FakeConnector(self.clock)
        self.store = FakeStore()
        self.lists = FakeLists()
        self.metrics = Metrics()
        self.states = []
        link = RouterLink(config or make_config(**kwargs), self.store, clock=self.clock,
                          connector=self.connector, metrics=self.metrics, backoff=backoff)
        persist(link, self.store, self.lists, self.metrics)
        link.on_state.append(lambda state, reason: self.states.append(state))
        self.link = link
        return link

    def ready_link(self, **kwargs):
        link = self.make_link(**kwargs)
        link.startService()
        attempt = self.connector.last.accept()
        attempt.receive(startup_reply())
        self.assertEqual(link.state, "ready")
        return link, attempt

    def metric(self, name, **labels):
        return self.metrics.registry.get_sample_value(name, labels or None)


class HandshakeTests(LinkCase):
    def test_startup_frame_matches_the_real_vector(self):
        link = self.make_link()
        link.startService()
        self.assertEqual(link.state, "connecting")
        attempt = self.connector.last.accept()
        self.assertEqual(link.state, "handshaking")
        probe = next(v for v in load_vectors() if v.conn == "ProbeA" and v.note == "startup")
        self.assertEqual(attempt.transport.value(), probe.frame)
        value = attempt.sent()[0]
        self.assertEqual(len(value), 20)

    def test_startup_sends_stored_password_and_list_ids(self):
        link = self.make_link()
        self.store.records[("*test", "ProbeA")] = {"password": 123456789, "mudlist_id": 17, "chanlist_id": 4}
        link.startService()
        value = self.connector.last.accept().sent()[0]
        self.assertEqual(value[:6], ["startup-req-3", 5, "ProbeA", 0, "*test", 0])
        self.assertEqual(value[6:9], [123456789, 17, 4])

    def test_a_password_or_list_id_lpc_cannot_write_is_never_used(self):
        # Stored (by an older version) or sent by a router: beyond 32 bits
        # it cannot go back in startup-req-3, so it counts as none (0).
        link = self.make_link()
        self.store.records[("*test", "ProbeA")] = {"password": 2 ** 40, "mudlist_id": 2 ** 33,
                                       "chanlist_id": 2 ** 63 - 1}
        link.startService()
        attempt = self.connector.last.accept()
        self.assertEqual(attempt.sent()[0][6:9], [0, 0, 0])
        # A lenient reader takes what the strict writer refuses: raw bytes.
        text = lpc.encode(startup_reply(password=7)).replace(b",7,})", b",%d,})" % 2 ** 40)
        attempt.protocol.dataReceived(struct.pack("!I", len(text) + 1) + text + b"\0")
        self.assertTrue(link.ready)
        self.assertEqual(self.store.saved, [])

    def test_startup_reply_makes_the_link_ready(self):
        link = self.make_link()
        ready = []
        link.on_ready.append(lambda: ready.append(link.state))
        link.startService()
        attempt = self.connector.last.accept()
        attempt.receive(startup_reply())
        self.assertEqual(self.states, ["connecting", "handshaking", "ready"])
        self.assertTrue(link.ready)
        self.assertEqual(ready, ["ready"])
        self.assertEqual(link.connected_since, 1000)
        self.assertEqual(link.router["name"], "*test")
        self.assertEqual(self.store.saved, [("*test", "ProbeA", 842758708)])
        self.assertEqual(self.metric("intermud3_router_connected", router="*test"), 1.0)
        self.assertIsNotNone(link.rotation.named("*test"))

    def test_handshake_timeout_aborts_and_backs_off(self):
        link = self.make_link()
        link.startService()
        attempt = self.connector.last.accept()
        self.clock.advance(19.9)
        self.assertFalse(attempt.transport.aborted)
        self.clock.advance(0.1)
        self.assertTrue(attempt.transport.aborted)
        self.clock.advance(0)
        self.assertEqual(link.state, "backoff")
        self.assertEqual(link.router, None)

    def test_connect_timeout(self):
        link = self.make_link()
        link.startService()
        self.clock.advance(10)
        self.assertEqual(link.state, "backoff")
        self.assertTrue(self.connector.attempts[0].deferred.called)


class BackoffTests(LinkCase):
    def fail_next(self, how="refuse"):
        attempt = self.connector.last
        if how == "refuse":
            attempt.refuse()
        else:  # accept TCP but never answer the startup
            attempt.accept()
            self.clock.advance(20)
            self.clock.advance(0)
        self.assertEqual(self.link.state, "backoff")
        return self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds()

    def test_delay_grows_and_is_capped_and_walks_the_list(self):
        link = self.make_link()
        link.startService()
        delays = []
        routers = []
        for _ in range(8):
            routers.append(self.connector.last.router["name"])
            delays.append(self.fail_next())
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [1, 2, 4, 8, 16, 30, 30, 30])
        self.assertEqual(routers, ["*test", "*two", "*three", "*test", "*two", "*three", "*test", "*two"])
        self.assertEqual(link.reconnects, 8)
        self.assertEqual(len(self.connector.attempts), 9)
        self.assertEqual(self.metric("intermud3_router_reconnects_total", router="*two"), 3.0)

    def test_an_injected_policy_gets_the_failures_in_a_row(self):
        asked = []

        def policy(failures):
            asked.append(failures)
            return 7.5
        link = self.make_link(backoff=policy)
        link.startService()
        self.assertEqual([self.fail_next() for _ in range(1)], [7.5])
        self.clock.advance(7.5)
        self.assertEqual(self.fail_next(how="silent"), 7.5)
        self.clock.advance(7.5)
        self.connector.last.accept().receive(startup_reply(router="*three", router_list=[]))
        self.connector.last.drop()
        self.assertEqual(asked, [1, 2, 1])

    def test_the_configured_policy_is_read_at_each_failure(self):
        link = self.make_link()
        link.startService()
        self.assertEqual(self.fail_next(), 1)
        new = make_config()
        new = with_overrides(new, {"router.backoff.initial": 5, "router.backoff.max": 60})
        link.reconfigure(new)
        self.clock.advance(1)
        self.assertEqual(self.fail_next(), 10)   # the second failure in a row

    def test_tcp_accept_without_reply_does_not_reset_backoff(self):
        link = self.make_link()
        link.startService()
        delays = []
        for _ in range(4):
            delays.append(self.fail_next(how="silent"))
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [1, 2, 4, 8])

    def test_startup_reply_resets_backoff(self):
        link = self.make_link()
        link.startService()
        for _ in range(3):
            self.clock.advance(self.fail_next())
        attempt = self.connector.last.accept()
        attempt.receive(startup_reply(router=attempt.router["name"],
                                      router_list=[[attempt.router["name"], "1.2.3.4 5"]]))
        self.assertEqual(link.state, "ready")
        attempt.drop()
        self.assertEqual(link.state, "backoff")
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds(), 1)

    def test_drop_of_a_ready_link_moves_on(self):
        link, attempt = self.ready_link()
        attempt.drop()
        self.assertEqual(self.states[-1], "backoff")
        self.assertIsNone(link.connected_since)
        self.assertEqual(self.metric("intermud3_router_connected", router="*test"), 0.0)
        self.clock.advance(1)
        self.assertEqual(self.connector.last.router["name"], "*two")
        self.assertEqual(link.state, "connecting")


class FailureLogTests(LinkCase):
    """A failing link is a warning naming the router and the reason in
    words, so an operator running at `level: warn` sees why it is down."""

    def warnings_while(self, action):
        with capturedLogs() as events:
            action()
        return [formatEvent(e) for e in events
                if e["log_level"] == LogLevel.warn and e["log_namespace"].startswith("intermud3.")]

    def test_refused_connection_is_a_warning_with_the_routers_name(self):
        link = self.make_link()
        link.startService()
        (line,) = self.warnings_while(self.connector.last.refuse)
        self.assertIn("Router link to *test failed: connect failed:", line)
        self.assertIn("refused", line)
        self.assertIn("next try *two", line)

    def test_a_peer_speaking_http_is_named_as_such(self):
        link = self.make_link()
        link.startService()
        attempt = self.connector.last.accept()

        def answer_in_http():
            attempt.protocol.dataReceived(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            self.clock.advance(0)
        lines = self.warnings_while(answer_in_http)
        self.assertIn("the peer answered in HTTP: check the host and port", "\n".join(lines))
        (failed,) = [line for line in lines if line.startswith("Router link to")]
        self.assertIn("*test failed: the peer answered in HTTP", failed)
        self.assertNotIn("1213486160 bytes, over", failed)

    def test_the_last_failures_are_kept_for_health_bounded(self):
        link = self.make_link()
        link.startService()
        for _ in range(link.recent_failures.maxlen + 2):
            self.connector.last.refuse()
            self.clock.advance(400)
        self.assertEqual(len(link.recent_failures), link.recent_failures.maxlen)
        latest = link.recent_failures[-1]
        self.assertIn(latest["router"], ("*test", "*two", "*three"))
        self.assertIn("refused", latest["reason"])

    def test_handshake_timeout_names_the_router(self):
        link = self.make_link()
        link.startService()
        self.connector.last.accept()

        def time_out():
            self.clock.advance(20)
            self.clock.advance(0)
        (line,) = [entry for entry in self.warnings_while(time_out) if entry.startswith("Router link to")]
        self.assertIn("*test failed: no startup-reply within handshake_timeout", line)


class RedirectTests(LinkCase):
    def test_redirect_once_to_the_preferred_router(self):
        link = self.make_link()
        link.startService()
        first = self.connector.last.accept()
        first.receive(startup_reply(router_list=[["*far", "10.0.0.9 9000"], ["*test", "127.0.0.1 8080"]]))
        self.assertNotIn("ready", self.states)
        self.assertTrue(first.transport.aborted)
        self.clock.advance(0)
        second = self.connector.last
        self.assertEqual(second.router, {"name": "*far", "host": "10.0.0.9", "port": 9000, "tls": False})
        second.accept()
        self.assertEqual(second.sent()[0][4], "*far")
        # The second router prefers yet another one: no second redirect.
        second.receive(startup_reply(router="*far", router_list=[["*other", "10.0.0.7 1"]]))
        self.assertEqual(link.state, "ready")
        self.assertEqual(link.router["name"], "*far")
        self.assertEqual(len(self.connector.attempts), 2)
        self.assertEqual([r["name"] for r in link.rotation.routers],
                         ["*test", "*two", "*three", "*far", "*other"])
        # Both routers' passwords are remembered under their own names.
        self.assertEqual(self.store.saved, [("*test", "ProbeA", 842758708),
                                            ("*far", "ProbeA", 842758708)])

    def test_redirect_to_a_configured_router_uses_its_entry(self):
        link = self.make_link()
        link.startService()
        first = self.connector.last.accept()
        first.receive(startup_reply(router_list=[["*three", "9.9.9.9 1"]]))
        self.clock.advance(0)
        self.assertEqual(self.connector.last.router["host"], "127.0.0.3")

    def test_learned_routers_are_bounded(self):
        link = self.make_link()
        link.startService()
        attempt = self.connector.last.accept()
        many = [["*test", "127.0.0.1 8080"]] + [[f"*r{i}", f"10.0.0.{i} 1"] for i in range(50)]
        attempt.receive(startup_reply(router_list=many))
        self.assertEqual(len(link.rotation.routers), 3 + MAX_LEARNED_ROUTERS)

    def test_router_list_parsing_skips_junk(self):
        self.assertEqual(
            parse_router_list([["*a", "1.2.3.4 80"], ["*b"], [1, "x 1"], ["*c", "host"],
                               ["*d", "h 99999"], ["*e", "h x"], "junk"]),
            [{"name": "*a", "host": "1.2.3.4", "port": 80, "tls": False}])
        self.assertEqual(parse_router_list(0), [])


class InboundTests(LinkCase):
    def test_lists_are_applied_and_passed_on(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(lambda p: seen.append(p.type))
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 6, {"X": 0}])
        attempt.receive(["chanlist-reply", 5, "*test", 0, "ProbeA", 0, 9, {"c": ["X", 0]}])
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 7, "not a mapping"])
        self.assertEqual(self.lists.calls, [("mudlist", "*test", "ProbeA", 6, {"X": 0}),
                                            ("chanlist", "*test", "ProbeA", 9, {"c": ["X", 0]})])
        self.assertEqual(seen, ["mudlist", "chanlist-reply", "mudlist"])
        self.assertEqual(link.packets_received, 4)

    def test_auth_mud_req_from_another_mud_is_answered(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(seen.append)
        attempt.receive(["auth-mud-req", 5, "Other", 0, "ProbeA", 0])
        reply = attempt.sent()[-1]
        self.assertEqual(reply[:6], ["auth-mud-reply", 5, "ProbeA", 0, "Other", 0])
        self.assertIsInstance(reply[6], int)
        self.assertTrue(0 <= reply[6] < 2 ** 31)
        self.assertEqual([p.o_mud for p in seen], ["Other"])

    def test_observer_failure_does_not_break_the_link(self):
        link, attempt = self.ready_link()
        seen = []

        def broken(packet):
            raise RuntimeError("observer bug")
        link.on_packet.extend([broken, seen.append])
        attempt.receive(["tell", 5, "Other", "bob", "ProbeA", "amy", "Bob", "hi"])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(seen), 1)
        self.assertTrue(link.ready)

    def test_undecodable_frames_are_counted_and_survived(self):
        link, attempt = self.ready_link()
        attempt.protocol.dataReceived(struct.pack("!I", 6) + b"({1,\"\x00")
        attempt.receive(42)  # decodes, but is no packet
        self.assertEqual(link.decode_errors, 2)
        self.assertEqual(self.metric("intermud3_packet_decode_errors_total"), 2.0)
        self.assertTrue(link.ready)
        self.assertFalse(attempt.transport.disconnecting)

    def test_frame_with_unescaped_quotes_is_repaired_and_counted(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(seen.append)
        for raw in (coffeemud.CHANNEL_M_UNESCAPED_QUOTE, coffeemud.TELL_UNESCAPED_QUOTE):
            attempt.protocol.dataReceived(frame_bytes(raw))
        self.assertEqual([p.fields[-1] for p in seen], ['he said "hi" to me', 'say "yes"'])
        self.assertEqual(link.quote_repairs, 2)
        self.assertEqual(self.metric("intermud3_packet_quote_repairs_total"), 2.0)
        self.assertEqual(link.decode_errors, 0)
        self.assertEqual(self.metric("intermud3_packet_decode_errors_total"), 0.0)

    def test_frame_that_repair_cannot_read_stays_a_decode_error(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(seen.append)
        # The stray quote is followed by a comma: it looks like a string's end.
        attempt.protocol.dataReceived(frame_bytes(
            b'({"tell",5,"CoffeeMUD","bob","ProbeA","amy","Bob","a "b", c",})'))
        self.assertEqual(seen, [])
        self.assertEqual((link.decode_errors, link.quote_repairs), (1, 0))
        self.assertTrue(link.ready)

    def test_oversized_length_prefix_drops_the_link(self):
        link, attempt = self.ready_link()
        attempt.protocol.dataReceived(struct.pack("!I", 3 * 1024 * 1024))
        self.assertTrue(attempt.transport.disconnecting)
        self.clock.advance(0)
        self.assertEqual(link.state, "backoff")

    def test_unknown_type_counted_under_one_label(self):
        link, attempt = self.ready_link()
        attempt.receive(["weird-type-123", 5, "X", 0, "ProbeA", 0])
        self.assertEqual(self.metric("intermud3_packets_received_total", type="other"), 1.0)
        self.assertEqual(self.metric("intermud3_packets_received_total", type="startup-reply"), 1.0)


PROBE = ["auth-mud-req", 5, "ProbeA", 0, "ProbeA", 0]


class KeepaliveTests(LinkCase):
    """Half-open detection: probe after keepalive_interval (100) of silence,
    learn per router whether probes are answered, drop a router that always
    answered once keepalive_timeout (10) passes in silence."""

    def probes(self, attempt):
        return sum(1 for packet in attempt.sent() if packet == PROBE)

    def answering_link(self):
        link, attempt = self.ready_link()
        self.clock.advance(100)
        attempt.receive(PROBE)
        self.assertIs(link.answers_probes["*test"], True)
        return link, attempt

    def test_ping_and_echo(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(seen.append)
        self.clock.advance(100)
        ping = attempt.sent()[-1]
        self.assertEqual(ping, PROBE)
        written = len(attempt.sent())
        attempt.receive(PROBE)
        self.assertEqual(len(attempt.sent()), written)   # the echo is not answered
        self.assertEqual(seen, [])                        # nor passed on
        self.clock.advance(10)
        self.assertTrue(link.ready)
        self.clock.advance(90)
        self.assertEqual(len(attempt.sent()), written + 1)  # the next ping

    def test_any_traffic_counts_as_life(self):
        link, attempt = self.answering_link()
        self.clock.advance(100)
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 1, {}])
        self.clock.advance(10)
        self.assertTrue(link.ready)

    def test_traffic_puts_the_probe_off(self):
        link, attempt = self.ready_link()
        for _ in range(5):
            self.clock.advance(60)
            attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 1, {}])
        self.assertEqual(self.probes(attempt), 0)

    def test_silence_after_a_probe_a_router_answers_is_a_dead_link(self):
        link, attempt = self.answering_link()
        self.clock.advance(100)
        self.assertEqual(self.probes(attempt), 2)
        self.clock.advance(9.9)
        self.assertFalse(attempt.transport.aborted)
        self.clock.advance(0.1)
        self.assertTrue(attempt.transport.aborted)
        self.clock.advance(0)
        self.assertEqual(link.state, "backoff")
        # Learned again on the next link.
        self.assertNotIn("*test", link.answers_probes)

    def test_detected_within_interval_plus_timeout_of_the_last_packet(self):
        link, attempt = self.answering_link()
        self.clock.advance(37)
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 1, {}])
        frozen_at = self.clock.seconds()
        while not attempt.transport.aborted:
            self.clock.advance(1)
        self.assertEqual(self.clock.seconds() - frozen_at, 110)

    def test_a_router_that_ignores_probes_is_not_dropped_for_an_hour(self):
        link, attempt = self.ready_link()
        for _ in range(3600):
            self.clock.advance(1)
        self.assertTrue(link.ready)
        self.assertFalse(attempt.transport.aborted)
        self.assertIs(link.answers_probes["*test"], False)
        self.assertEqual(self.probes(attempt), 1)   # learned once, then left alone

    def test_a_probe_unanswered_while_other_traffic_flows_proves_nothing(self):
        link, attempt = self.ready_link()
        self.clock.advance(100)
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 1, {}])
        self.clock.advance(10)
        self.assertTrue(link.ready)
        self.assertIs(link.answers_probes["*test"], False)

    def test_a_late_answer_makes_the_router_watched_again(self):
        link, attempt = self.ready_link()
        self.clock.advance(100)
        self.clock.advance(10)
        self.assertIs(link.answers_probes["*test"], False)
        attempt.receive(PROBE)          # the answer comes after all
        self.assertIs(link.answers_probes["*test"], True)
        self.clock.advance(100)         # silence: probed again
        self.assertEqual(self.probes(attempt), 2)
        self.clock.advance(10)
        self.assertTrue(attempt.transport.aborted)

    def test_reloads_do_not_put_detection_off(self):
        link, attempt = self.answering_link()
        for _ in range(11):
            self.clock.advance(10)
            link.reconfigure(make_config())
        self.assertTrue(attempt.transport.aborted)

    def test_default_timings_notice_within_interval_plus_timeout(self):
        for interval, limit in ((None, 360), (30, 90)):
            config = make_config()
            defaults = load_text("mud: {name: ProbeA}\n", environ={}).router
            config = with_overrides(config, {"router.keepalive_interval": interval or defaults.keepalive_interval,
                                             "router.keepalive_timeout": defaults.keepalive_timeout})
            link, attempt = self.ready_link(config=config)
            self.clock.advance(config.router.keepalive_interval)
            attempt.receive(PROBE)
            frozen_at = self.clock.seconds()
            while not attempt.transport.aborted:
                self.clock.advance(1)
            self.assertLessEqual(self.clock.seconds() - frozen_at, limit)


class PacingTests(LinkCase):
    def test_send_rate_holds_in_order_and_releases(self):
        link, attempt = self.ready_link(rate=5)
        written_at = []
        write = attempt.transport.write
        attempt.transport.write = lambda data: (written_at.append(round(self.clock.seconds(), 6)), write(data))
        # startup-req-3 overdrew the bucket (5 - 6 = -1): every packet waits.
        results = [link.send(["tell", 5, "ProbeA", "a", "X", "b", "A", f"m{i}"]) for i in range(4)]
        self.assertEqual(results, [SendResult.HELD] * 4)
        self.assertFalse(any(results))   # only SENT is true
        self.assertEqual(len(attempt.sent()), 1)
        self.assertFalse(link.try_send(["tell", 5, "ProbeA", "a", "X", "b", "A", "never"]))
        self.clock.pump([0.4, 0.2, 0.2, 0.2, 1.0])
        messages = [v[7] for v in attempt.sent()[1:]]
        self.assertEqual(messages, ["m0", "m1", "m2", "m3"])
        # One token every 0.2 s once the bucket is back at 1 (0.4 s).
        self.assertEqual(written_at, [1000.4, 1000.6, 1000.8, 1001.0])

    def test_per_second_counts_with_timestamps(self):
        link, attempt = self.ready_link(rate=50)
        sent_at = []
        original = attempt.transport.write

        def stamp(data):
            sent_at.append(int(self.clock.seconds()))
            original(data)
        attempt.transport.write = stamp
        for i in range(30):
            link.send(["tell", 5, "ProbeA", "a", "X", "b", "A", f"m{i}"])
        for _ in range(100):
            self.clock.advance(0.1)
        counts = {}
        for second in sent_at:
            counts[second] = counts.get(second, 0) + 1
        self.assertEqual(counts[1000], 3)   # after the startup's 6
        self.assertTrue(all(n <= 9 for n in counts.values()))

    def test_try_send_and_on_writable(self):
        link = self.make_link(rate=5)
        writable = []
        link.on_writable.append(lambda: writable.append(self.clock.seconds()))
        link.startService()
        attempt = self.connector.last.accept()
        attempt.receive(startup_reply())
        self.assertEqual(writable, [])           # no room yet after the startup's 6
        self.clock.advance(0.4)
        self.assertEqual(writable, [1000.4])     # room: told once
        self.assertTrue(link.try_send(["who-req", 5, "ProbeA", "a", "X", 0]))
        self.assertFalse(link.try_send(["who-req", 5, "ProbeA", "a", "X", 0]))
        self.clock.advance(0.2)
        self.assertEqual(len(writable), 2)
        # Something held: try_send refuses even with room; on_writable after release.
        self.assertIs(link.send(["who-req", 5, "ProbeA", "a", "X", 0]), SendResult.SENT)
        self.assertIs(link.send(["who-req", 5, "ProbeA", "a", "Y", 0]), SendResult.HELD)
        self.clock.advance(0.1)
        self.assertFalse(link.try_send(["who-req", 5, "ProbeA", "a", "Z", 0]))
        self.clock.advance(0.1)
        self.assertEqual(attempt.sent()[-1][4], "Y")
        # Released, but the release used the room: told when room comes back.
        self.assertEqual(len(writable), 2)
        self.clock.advance(0.2)
        self.assertEqual(len(writable), 3)
        self.clock.advance(5)
        self.assertEqual(len(writable), 3)   # once per need, not on every tick

    def test_unpaced_on_writable_after_ready(self):
        link = self.make_link(rate=0)
        writable = []
        link.on_writable.append(lambda: writable.append(True))
        link.startService()
        self.connector.last.accept().receive(startup_reply())
        self.assertEqual(writable, [True])
        for _ in range(100):
            self.assertTrue(link.try_send(["who-req", 5, "ProbeA", "a", "X", 0]))

    def test_reconnect_startup_waits_for_the_pacer(self):
        # A router blocks a MUD over 10 weighted packets in one second and
        # counts startup-req-3 as 6: a quick reconnect must not send it on
        # top of a busy second.
        link, first = self.ready_link(rate=5)
        self.clock.advance(1.2)                 # 1001.2: the bucket is full again
        for i in range(5):
            self.assertIs(link.send(["tell", 5, "ProbeA", "a", "X", "b", "A", f"m{i}"]), SendResult.SENT)
        link.reconnect("operator asked")        # at once, same router
        self.clock.advance(0)
        attempt = self.connector.last
        self.assertIsNot(attempt, first)
        attempt.accept()
        self.assertEqual(attempt.sent(), [])    # 5 + 6 would be 11 this second
        self.assertEqual(link.state, "handshaking")
        self.clock.advance(0.9)                 # 1002.1: a new second, 4.5 tokens
        self.assertEqual(attempt.sent(), [])
        self.clock.advance(0.1)                 # 1002.2: the bucket is full
        self.assertEqual([v[0] for v in attempt.sent()], ["startup-req-3"])
        # The handshake is timed from the write.
        self.clock.advance(19.9)
        self.assertFalse(attempt.transport.aborted)
        self.clock.advance(0.1)
        self.assertTrue(attempt.transport.aborted)

    def test_stop_while_the_startup_waits_leaves_no_timer(self):
        link, first = self.ready_link(rate=5)
        for i in range(5):
            link.send(["tell", 5, "ProbeA", "a", "X", "b", "A", f"m{i}"])
        link.reconnect("operator asked")
        self.clock.advance(0)
        self.connector.last.accept()
        self.assertEqual(self.connector.last.sent(), [])
        link.stopService()
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_held_packets_dropped_when_the_link_drops(self):
        link, attempt = self.ready_link(rate=5)
        link.send(["tell", 5, "ProbeA", "a", "X", "b", "A", "lost"])
        attempt.drop()
        self.clock.advance(5)
        self.assertEqual(len(attempt.sent()), 1)
        self.assertEqual(link.lane.held, 0)

    def test_hold_is_bounded(self):
        config = make_config(rate=1)
        config = with_overrides(config, {"router.queue.max_messages": 3})
        link = self.make_link(config=config)
        link.startService()
        self.connector.last.accept().receive(startup_reply())
        results = [link.send(["who-req", 5, "ProbeA", "a", "X", 0]) for i in range(5)]
        self.assertEqual(results, [SendResult.HELD] * 3 + [SendResult.DROPPED] * 2)
        self.assertEqual(link.lane.held, 3)

    def test_send_when_not_ready_discards(self):
        link = self.make_link()
        self.assertIs(link.send(["who-req", 5, "ProbeA", "a", "X", 0]), SendResult.DROPPED)
        link.startService()
        attempt = self.connector.last.accept()
        self.assertIs(link.send(["who-req", 5, "ProbeA", "a", "X", 0]), SendResult.DROPPED)
        self.assertFalse(link.try_send(["who-req", 5, "ProbeA", "a", "X", 0]))
        self.assertEqual(len(attempt.sent()), 1)   # only the startup

    def test_too_large_is_raised_before_holding(self):
        link, attempt = self.ready_link(rate=5)
        big = ["tell", 5, "ProbeA", "a", "X", "b", "A", "x" * 9000]
        self.assertRaises(Unsendable, link.send, big)
        self.assertRaises(Unsendable, link.try_send, big)
        self.assertEqual(link.lane.held, 0)
        self.assertEqual(link.encode(["a"]).data, frame(["a"]))


class BigFrameTests(LinkCase):
    def test_a_big_frame_is_decoded_in_slices_on_the_links_clock(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(seen.append)
        muds = {f"Mud{n:05d}": [-1, "127.0.0.1", 4000, 0, 0, "lib", "lib", "driver", "LPMud",
                                "open", "a@b.c", {"tell": 1}, 0] for n in range(1500)}
        big = ["mudlist", 5, "*test", 0, "ProbeA", 0, 7, muds]
        self.assertGreater(len(frame(big)), attempt.protocol.sliced_decode_bytes)
        self.assertIs(attempt.protocol.clock, self.clock)
        attempt.receive(big)
        self.assertEqual(len(self.lists.muds), 0)      # not in one go
        for _ in range(200):
            self.clock.advance(0.001)
        self.assertEqual(len(self.lists.muds), 1500)

    def test_a_slice_under_way_stops_with_the_connection(self):
        link, attempt = self.ready_link()
        muds = {f"Mud{n:05d}": [-1, "h", 1, 0, 0, "l", "l", "d", "t", "o", "e", {}, 0]
                for n in range(2000)}
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 7, muds])
        attempt.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(attempt.protocol._slicing)


class LifecycleTests(LinkCase):
    def test_stop_sends_shutdown_and_waits_for_close(self):
        link, attempt = self.ready_link()
        done = link.stopService()
        self.assertEqual(attempt.sent()[-1], ["shutdown", 5, "ProbeA", 0, "*test", 0, 0])
        self.assertTrue(attempt.transport.disconnecting)
        self.assertEqual(link.state, "stopped")
        self.assertNoResult(done)
        self.clock.advance(0)
        self.successResultOf(done)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertEqual(self.metric("intermud3_router_connected", router="*test"), 0.0)

    def test_stop_aborts_a_socket_that_does_not_close(self):
        link, attempt = self.ready_link()
        attempt.transport.loseConnection = lambda: None
        done = link.stopService()
        self.assertNoResult(done)
        self.clock.advance(link.close_timeout)
        self.successResultOf(done)
        self.assertTrue(attempt.transport.aborted)
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_while_connecting_or_backing_off(self):
        link = self.make_link()
        link.startService()
        self.successResultOf(link.stopService())
        self.assertEqual(link.state, "stopped")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        link.startService()
        self.connector.last.refuse()
        self.assertEqual(link.state, "backoff")
        self.successResultOf(link.stopService())
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_no_shutdown_while_handshaking(self):
        link = self.make_link()
        link.startService()
        attempt = self.connector.last.accept()
        done = link.stopService()
        self.assertEqual([v[0] for v in attempt.sent()], ["startup-req-3"])
        self.clock.advance(0)
        self.successResultOf(done)

    def test_reconnect_goes_back_to_the_same_router(self):
        link, attempt = self.ready_link()
        self.clock.advance(3)
        link.reconnect("operator asked")
        self.assertTrue(attempt.transport.aborted)
        self.clock.advance(0)
        self.assertEqual(link.state, "connecting")
        self.assertEqual(self.connector.last.router["name"], "*test")
        self.assertEqual(len(self.connector.attempts), 2)

    def test_reconnect_during_backoff_connects_now(self):
        link = self.make_link()
        link.startService()
        self.connector.last.refuse()
        link.reconnect("now")
        self.assertEqual(link.state, "connecting")
        self.assertEqual(len(self.connector.attempts), 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)   # only the connect timeout

    def test_reconfigure_timings_and_name(self):
        link, attempt = self.ready_link(rate=0)
        new = make_config(rate=2)
        new = with_overrides(new, {"router.keepalive_interval": 50})
        link.reconfigure(new)
        self.assertEqual(link.pacer.send_rate, 2)
        self.assertTrue(link.ready)
        self.clock.advance(50)
        self.assertEqual(attempt.sent()[-1][0], "auth-mud-req")
        renamed = make_config(name="Renamed")
        link.reconfigure(renamed)
        self.clock.advance(0)
        self.assertEqual(link.mud_name, "Renamed")
        retry = self.connector.last.accept()
        self.assertEqual(retry.sent()[0][2], "Renamed")

    def test_password_and_list_ids_belong_to_the_mud_name(self):
        link, attempt = self.ready_link()
        self.store.records[("*test", "ProbeA")].update(mudlist_id=17, chanlist_id=4)
        link.reconfigure(make_config(name="Renamed"))
        self.clock.advance(0)
        renamed = self.connector.last.accept()
        self.assertEqual(renamed.sent()[0][2], "Renamed")
        self.assertEqual(renamed.sent()[0][6:9], [0, 0, 0])   # a new name starts afresh
        renamed.receive(startup_reply(mud="Renamed", password=111111111))
        link.reconfigure(make_config(name="ProbeA"))
        self.clock.advance(0)
        back = self.connector.last.accept()
        self.assertEqual(back.sent()[0][6:9], [842758708, 17, 4])
        self.assertEqual(self.store.saved, [("*test", "ProbeA", 842758708),
                                            ("*test", "Renamed", 111111111)])

    def test_stale_connection_after_reconnect_is_ignored(self):
        link = self.make_link()
        link.startService()
        stale = self.connector.last
        link.reconnect("again")
        stale.deferred.errback(ConnectionRefusedError("late"))   # cancelled attempt
        self.assertEqual(link.state, "connecting")

    def test_stop_twice_and_restart_while_closing(self):
        link, attempt = self.ready_link()
        first = link.stopService()
        second = link.stopService()
        self.assertEqual([v[0] for v in attempt.sent()].count("shutdown"), 1)
        link.startService()
        fresh = self.connector.last.accept()
        self.assertFalse(fresh.transport.aborted)
        self.assertEqual(link.state, "handshaking")
        self.clock.advance(0)   # the old socket closes now
        self.successResultOf(first)
        self.successResultOf(second)
        self.assertEqual(link.state, "handshaking")
        fresh.receive(startup_reply())
        self.assertTrue(link.ready)

    def test_byte_and_packet_metrics(self):
        link, attempt = self.ready_link()
        link.send(["who-req", 5, "ProbeA", "a", "X", 0])
        self.assertEqual(self.metric("intermud3_router_bytes_sent_total"), len(attempt.transport.value()))
        self.assertEqual(self.metric("intermud3_packets_sent_total", type="startup-req-3"), 1.0)
        self.assertEqual(self.metric("intermud3_packets_sent_total", type="who-req"), 1.0)
        self.assertEqual(link.packets_sent, 2)
        self.assertEqual(self.metric("intermud3_router_bytes_received_total"),
                         len(frame(startup_reply())))

    def test_list_size_gauges_follow_the_lists(self):
        link, attempt = self.ready_link()
        self.assertEqual(self.metric("intermud3_mudlist_size"), 0)
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 6, {"X": [-1], "Y": [0]}])
        attempt.receive(["chanlist-reply", 5, "*test", 0, "ProbeA", 0, 3, {"chat": ["X", 0]}])
        self.assertEqual(self.metric("intermud3_mudlist_size"), 2)
        self.assertEqual(self.metric("intermud3_chanlist_size"), 1)
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 7, {"Y": 0}])
        self.assertEqual(self.metric("intermud3_mudlist_size"), 1)


class DefaultConnectorTests(SynchronousTestCase):
    def make(self):
        from twisted.internet.testing import MemoryReactorClock
        self.reactor = MemoryReactorClock()
        return RouterLink(make_config(), FakeStore(), clock=self.reactor)

    def test_plain_tcp_with_connect_timeout(self):
        from twisted.internet.endpoints import HostnameEndpoint
        link = self.make()
        endpoint = link._endpoint({"name": "*a", "host": "127.0.0.1", "port": 8080, "tls": False})
        self.assertIsInstance(endpoint, HostnameEndpoint)

    def test_tls_wraps_the_endpoint(self):
        from twisted.internet.endpoints import HostnameEndpoint
        link = self.make()
        endpoint = link._endpoint({"name": "*a", "host": "router.example", "port": 8443, "tls": True})
        self.assertNotIsInstance(endpoint, HostnameEndpoint)
        self.assertTrue(hasattr(endpoint, "connect"))

    def test_start_connects_through_the_reactor(self):
        link = self.make()
        link.startService()
        self.assertEqual(link.state, "connecting")
        self.reactor.advance(0.5)   # HostnameEndpoint resolves, then connects
        hosts = [(c[0], c[1], c[3]) for c in self.reactor.tcpClients]
        self.assertEqual(hosts, [("127.0.0.1", 8080, 10.0)])
        link.stopService()
        self.assertEqual(link.state, "stopped")


class ReentrancyTests(LinkCase):
    """Observers may stop or re-open the link from inside a notification."""

    def test_stop_from_the_ready_notification(self):
        link = self.make_link()
        link.on_state.append(lambda state, reason: state == "ready" and link.stopService())
        link.startService()
        attempt = self.connector.last.accept()
        attempt.receive(startup_reply())
        self.assertEqual(link.state, "stopped")
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_from_each_state(self):
        for stop_in in ("connecting", "handshaking", "backoff"):
            link = self.make_link()
            link.on_state.append(lambda state, reason, s=stop_in: state == s and link.stopService())
            link.startService()
            if stop_in != "connecting":
                self.connector.last.accept() if stop_in == "handshaking" else self.connector.last.refuse()
            self.clock.advance(0)
            self.assertEqual(link.state, "stopped", stop_in)
            self.assertEqual(self.clock.getDelayedCalls(), [], stop_in)

    def test_reconnect_from_the_backoff_notification(self):
        link = self.make_link()
        link.on_state.append(lambda state, reason: state == "backoff" and link.reconnect("at once"))
        link.startService()
        self.connector.last.refuse()
        self.assertEqual(link.state, "connecting")
        self.assertEqual(len(self.connector.attempts), 2)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)   # the connect timeout only

    def test_reconfigure_frame_bounds_apply_to_the_live_connection(self):
        link, attempt = self.ready_link()
        new = make_config()
        new = with_overrides(new, {"router.max_frame_bytes": 1000, "router.max_send_bytes": 100})
        link.reconfigure(new)
        self.assertEqual(attempt.protocol.max_frame_bytes, 1000)
        self.assertRaises(Unsendable, link.send, ["tell", 5, "ProbeA", "a", "X", "b", "A", "x" * 100])
        attempt.protocol.dataReceived(struct.pack("!I", 2000))
        self.assertTrue(attempt.transport.disconnecting)

    def test_stop_from_a_packet_observer_leaves_the_rest_of_the_read_unheard(self):
        link, attempt = self.ready_link()
        seen = []
        link.on_packet.append(lambda packet: (seen.append(packet.o_user), link.stopService()))
        two = (frame(["tell", 5, "Other", "first", "ProbeA", "amy", "F", "1"])
               + frame(["tell", 5, "Other", "second", "ProbeA", "amy", "S", "2"]))
        attempt.protocol.dataReceived(two)
        self.assertEqual(seen, ["first"])
        self.assertEqual(link.state, "stopped")
        self.clock.advance(0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_a_late_connection_of_a_cancelled_attempt_is_closed_and_ignored(self):
        link = self.make_link()
        link.startService()
        stale = self.connector.last
        link.reconnect("again")
        current = self.connector.last.accept()
        late = stale.factory.buildProtocol(None)     # its TCP came up after all
        transport = FakeTransport(self.clock)
        transport.protocol = late
        late.makeConnection(transport)
        self.assertTrue(transport.aborted)
        self.assertEqual(transport.value(), b"")      # no startup on it
        self.clock.advance(0)
        self.assertEqual(link.state, "handshaking")
        self.assertIs(link.connection, current.protocol)


class PersistenceTests(LinkCase):
    def test_lists_are_current_when_the_services_see_the_packet(self):
        link, attempt = self.ready_link()
        sizes = []
        link.on_packet.append(lambda packet: sizes.append(len(self.lists.muds)))
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 6, {"X": [-1], "Y": [0]}])
        self.assertEqual(sizes, [2])

    def test_a_failing_persistence_observer_leaves_the_link_and_the_services_going(self):
        link, attempt = self.ready_link()
        seen = []

        def broken(router, packet):
            raise RuntimeError("disk full")
        link.on_packet_from.insert(0, broken)
        link.on_packet.append(seen.append)
        attempt.receive(["mudlist", 5, "*test", 0, "ProbeA", 0, 6, {"X": [-1]}])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(list(self.lists.muds), ["X"])
        self.assertEqual(len(seen), 1)
        self.assertTrue(link.ready)

    def test_the_password_is_saved_under_our_name_for_the_router(self):
        # The router calls itself "*Test" in its packets; we named it "*test".
        link = self.make_link()
        link.startService()
        self.connector.last.accept().receive(
            ["startup-reply", 5, "*Test", 0, "ProbeA", 0, [["*test", "127.0.0.1 8080"]], 555])
        self.assertEqual(self.store.saved, [("*test", "ProbeA", 555)])

    def test_no_password_no_save(self):
        link = self.make_link()
        link.startService()
        self.connector.last.accept().receive(startup_reply(password=0))
        self.assertTrue(link.ready)
        self.assertEqual(self.store.saved, [])


class QuietFactoryTests(SynchronousTestCase):
    def test_an_attempt_logs_no_starting_or_stopping_factory_lines(self):
        # One factory per connection attempt: Twisted's own lines would log
        # every reconnect; the link logs its states itself.
        factory = RouterFactory(link=None, router={"name": "*r"}, attempt=1, settings=None,
                                answers_probes=None)
        with capturedLogs() as events:
            factory.doStart()
            factory.doStop()
        self.assertEqual([formatEvent(event) for event in events], [])


class EndOfTurnTests(LinkCase):
    def test_every_frame_written_is_sent_at_the_end_of_the_turn(self):
        # The link hands each connection's transport to the shared EndOfTurn
        # as it writes a frame (endofturn.py sends it before the next poll).
        link = self.make_link()
        written = []
        link.end_of_turn = SimpleNamespace(written=written.append)
        link.startService()
        attempt = self.connector.last.accept()
        self.assertEqual(written, [attempt.transport])           # the startup
        attempt.receive(startup_reply())
        self.assertTrue(link.try_send(link.encode(["tell", 5, "ProbeA", "bob", "Far", "al", "Bob", "hi"])))
        self.assertEqual(written, [attempt.transport] * 2)
