"""startup-req-3 carries the configured MUD, field by field, in the order
I3-PROTOCOL.md section 3 gives (20 fields in all).

The in-repo router checks only the kinds of the fields (ints where ints
belong), and the frame-exact vector test in tests/test_link.py compares
with one captured frame whose strings and ints may coincide; so two strings
or two ints swapped could pass both. Here every field has a value of its own.
"""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from tests.integration.harness import Loopback

MUD = "FieldsMUD"
MUD_SECTION = {
    "name": MUD, "port": 4321, "admin_email": "keeper@fields.example",
    "mudlib": "FieldLib 2.1", "base_mudlib": "FieldLib", "driver": "FieldDriver",
    "mud_type": "FieldType", "open_status": "open for testing",
    "services": {"tell": 1, "channel": 1, "who": 1},
}


class StartupReqFieldsTests(TestCase):
    @defer.inlineCallbacks
    def test_every_field_in_its_place(self):
        loop = Loopback(self)
        router = loop.router()
        yield loop.ready_gateway(MUD, [router], mud=MUD_SECTION)
        startups = [p for mud, p in router.received if mud == MUD and p[0] == "startup-req-3"]
        self.assertEqual(startups[0], [
            "startup-req-3", 5, MUD, 0, router.name, 0,
            0, 0, 0,                       # password, old_mudlist_id, old_chanlist_id
            4321, 0, 0,                    # player_port, imud_tcp_port, imud_udp_port
            "FieldLib 2.1", "FieldLib", "FieldDriver", "FieldType",
            "open for testing", "keeper@fields.example",
            {"tell": 1, "channel": 1, "who": 1},
            0,                             # other_data
        ])
        self.assertEqual(len(startups[0]), 20)
