"""Event fan-out (intermud3.events): routing rules, one serialisation, timestamps."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from prometheus_client import CollectorRegistry
from twisted.trial.unittest import SynchronousTestCase

from intermud3.api.sessions import SessionManager
from intermud3.events import EventHub, encode_json, iso_timestamp
from intermud3.metrics import Metrics
from tests.test_sessions import FakeConnection, make_clock, make_config, sample

KEYS = [
    {"key": "all", "mud_name": "OurMud", "permissions": ["*"]},
    {"key": "tell", "mud_name": "OurMud", "permissions": ["tell"]},
    {"key": "chan", "mud_name": "OurMud", "permissions": ["channel", "info"]},
    {"key": "none", "mud_name": "OurMud", "permissions": []},
]


class TimestampTests(SynchronousTestCase):
    def test_format(self):
        self.assertEqual(iso_timestamp(0), "1970-01-01T00:00:00.000Z")
        self.assertEqual(iso_timestamp(1_700_000_000.5), "2023-11-14T22:13:20.500Z")
        self.assertEqual(iso_timestamp(1_700_000_000.0999), "2023-11-14T22:13:20.099Z")

    def test_encode_json_compact_utf8(self):
        self.assertEqual(encode_json({"a": "é", "b": [1, 2]}), '{"a":"é","b":[1,2]}'.encode("utf-8"))
        self.assertRaises(ValueError, encode_json, {"x": float("nan")})


class RoutingTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        self.metrics = Metrics(CollectorRegistry())
        self.sessions = SessionManager(make_config(KEYS), self.clock, metrics=self.metrics)
        self.hub = EventHub(self.sessions, clock=self.clock, metrics=self.metrics)
        self.connections = {}
        for key in ("all", "tell", "chan", "none"):
            connection = FakeConnection()
            self.sessions.authenticate(connection, key)
            self.connections[key] = connection

    def received(self):
        return {key: [json.loads(data) for data in c.sent] for key, c in self.connections.items()}

    def session(self, key):
        return self.connections[key].session

    def test_notification_shape_and_timestamp(self):
        self.clock.advance(0.25)
        self.hub.publish("tell_received", {"from_mud": "Other", "message": "hé"}, permission="tell")
        raw = self.connections["tell"].sent[0]
        self.assertEqual(raw, '{"jsonrpc":"2.0","method":"tell_received","params":{"from_mud":"Other",'
                              '"message":"hé","timestamp":"2023-11-14T22:13:20.250Z"}}'.encode("utf-8"))
        timestamp = json.loads(raw)["params"]["timestamp"]
        self.assertRegex(timestamp, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

    def test_params_not_mutated(self):
        params = {"router": "*dalet"}
        self.hub.to_all("gateway_connected", params)
        self.assertEqual(params, {"router": "*dalet"})

    def test_by_permission(self):
        count = self.hub.publish("tell_received", {"message": "x"}, permission="tell")
        self.assertEqual(count, 2)
        got = self.received()
        self.assertEqual((len(got["all"]), len(got["tell"]), len(got["chan"]), len(got["none"])), (1, 1, 0, 0))

    def test_serialised_once_same_bytes_for_all(self):
        self.hub.publish("mud_online", {"mud_name": "X"}, permission="info")
        self.assertIs(self.connections["all"].sent[0], self.connections["chan"].sent[0])

    def test_to_all(self):
        self.assertEqual(self.hub.to_all("gateway_disconnected", {"router": "*i4", "reason": "lost"}), 4)
        for messages in self.received().values():
            self.assertEqual(messages[0]["method"], "gateway_disconnected")

    def test_channel_only_to_joined_with_permission(self):
        self.session("chan").channels.add("imud_gossip")
        self.session("all").channels.add("imud_code")
        # Joined without the permission (e.g. revoked on reload): nothing.
        self.session("none").channels.add("imud_gossip")
        self.hub.publish("channel_message", {"channel": "imud_gossip"}, channel="imud_gossip")
        got = self.received()
        self.assertEqual(len(got["chan"]), 1)
        self.assertEqual(got["all"], [])
        self.assertEqual(got["none"], [])

    def test_detached_channel_subscriber_keeps_channel_events(self):
        session = self.session("chan")
        session.channels.add("imud_gossip")
        old = self.connections["chan"]
        self.sessions.detach(old)
        self.hub.publish("channel_message", {"channel": "imud_gossip", "message": "first"}, channel="imud_gossip")
        self.hub.publish("channel_emote", {"channel": "imud_gossip", "message": "second"}, channel="imud_gossip")
        self.assertEqual(old.sent, [])
        new = FakeConnection()
        result = self.sessions.authenticate(new, "chan", session.id)
        self.assertEqual(result["replayed"], 2)
        self.assertEqual([json.loads(m)["params"]["message"] for m in new.sent], ["first", "second"])

    def test_session_target_while_alive(self):
        target = self.session("tell")
        self.assertEqual(self.hub.publish("message_sent", {"message_id": 3}, permission="tell", session=target), 1)
        got = self.received()
        self.assertEqual(len(got["tell"]), 1)
        self.assertEqual(got["all"], [])

    def test_session_target_gone_falls_back_to_permission(self):
        target = self.session("tell")
        self.sessions.end_session(target, "test")
        count = self.hub.publish("message_expired", {"message_id": 3}, permission="tell", session=target)
        self.assertEqual(count, 1)
        self.assertEqual(len(self.received()["all"]), 1)

    def test_detached_session_target_gets_it_queued(self):
        target = self.session("tell")
        self.sessions.detach(self.connections["tell"])
        self.hub.publish("message_sent", {"message_id": 9}, permission="tell", session=target)
        self.assertEqual(len(target.queue), 1)
        self.assertEqual(self.received()["all"], [])

    def test_no_recipients(self):
        self.assertEqual(self.hub.publish("channel_message", {}, channel="nobody_here"), 0)
        self.assertEqual(sum(len(m) for m in self.received().values()), 0)

    def test_broken_connection_does_not_starve_others(self):
        def broken(data):
            raise RuntimeError("socket exploded")

        self.connections["all"].send_message = broken
        self.assertEqual(self.hub.to_all("gateway_connected", {"router": "*i4"}), 4)
        self.assertEqual(len(self.received()["none"]), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(sample(self.metrics.events_dropped, event="gateway_connected"), 1)
        self.assertEqual(sample(self.metrics.events_delivered, event="gateway_connected"), 3)





class IsoTimestampTests(SynchronousTestCase):
    @settings(deadline=None, max_examples=500)
    @given(st.floats(min_value=0, max_value=253402300799.0) | st.integers(0, 253402300799))
    def test_same_text_as_datetime(self, seconds):
        import datetime
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
        self.assertEqual(iso_timestamp(seconds),
                         moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z")

    def test_rounds_to_microseconds_first(self):
        self.assertEqual(iso_timestamp(1_700_000_000.9999996), "2023-11-14T22:13:21.000Z")

    def test_same_second_then_the_next(self):
        self.assertEqual([iso_timestamp(t) for t in (100.1, 100.25, 101.0, 100.5)],
                         ["1970-01-01T00:01:40.100Z", "1970-01-01T00:01:40.250Z",
                          "1970-01-01T00:01:41.000Z", "1970-01-01T00:01:40.500Z"])
