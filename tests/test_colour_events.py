"""Events in each session's colour form (intermud3.events with
intermud3.colour): one serialisation per form among the recipients, the
same bytes for sessions of one form, only the text fields rendered."""

import json
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from intermud3 import events
from intermud3.api.sessions import SessionManager
from intermud3.events import EventHub
from tests.test_sessions import FakeConnection, make_clock, make_config

KEYS = [{"key": "all", "mud_name": "OurMud", "permissions": ["*"]}]
FORMS = ["pinkfish", "pinkfish", "ansi", "ansi", "html", "plain"]


class ColourEventTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        self.sessions = SessionManager(make_config(KEYS), self.clock)
        self.hub = EventHub(self.sessions, clock=self.clock)
        self.connections = []
        for form in FORMS:
            connection = FakeConnection()
            self.sessions.authenticate(connection, "all")
            connection.session.colour_out = form
            self.connections.append(connection)

    def test_one_serialisation_per_form_and_shared_bytes(self):
        with mock.patch.object(events, "encode_json", wraps=events.encode_json) as encode:
            self.hub.publish("tell_received", {"from_mud": "Other", "visname": "%^RED%^Bob",
                                               "message": "%^BOLD%^hi <you>"}, permission="tell")
        self.assertEqual(encode.call_count, 4)
        sent = [c.sent[0] for c in self.connections]
        self.assertIs(sent[0], sent[1])
        self.assertIs(sent[2], sent[3])
        params = [json.loads(data)["params"] for data in sent]
        self.assertEqual([p["message"] for p in params[1:]], [
            "%^BOLD%^hi <you>", "\x1b[1mhi <you>\x1b[0m", "\x1b[1mhi <you>\x1b[0m",
            '<span class="pf-bold">hi &lt;you&gt;</span>', "hi <you>"])
        self.assertEqual(params[5]["visname"], "Bob")
        # Names and the timestamp are the same in every form.
        self.assertEqual({(p["from_mud"], p["timestamp"]) for p in params}, {(params[0]["from_mud"],
                                                                               params[0]["timestamp"])})

    def test_events_without_text_are_serialised_once(self):
        with mock.patch.object(events, "encode_json", wraps=events.encode_json) as encode:
            self.hub.publish("mud_online", {"mud_name": "%^RED%^X", "info": {}}, permission="info")
        # Forms differ, but mud_online has no text field: one serialisation in all.
        self.assertEqual(encode.call_count, 1)
        self.assertEqual({id(c.sent[0]) for c in self.connections}, {id(self.connections[0].sent[0])})

    def test_nested_text_fields(self):
        self.hub.publish("who_reply", {"from_mud": "X", "users": [
            {"name": "%^RED%^Bob", "idle": 1, "level": 0, "extra": "%^GREEN%^hi"}, "junk"]},
            permission="info")
        plain = json.loads(self.connections[5].sent[0])["params"]
        self.assertEqual(plain["users"], [{"name": "Bob", "idle": 1, "level": 0, "extra": "hi"}, "junk"])
