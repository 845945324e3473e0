"""The mudlist, MUDs going up and down, and the router link's own state,
end to end (API.md mudlist / mud_info, "Events", status / stats / health).

Two real gateways ("MudA", "MudB") on one in-repo router; the router's
mudlist packets are the cause, A's API sessions the effect.
"""

import json

from twisted.internet import defer
from twisted.trial import unittest

from tests.integration.harness import assert_rpc_error
from tests.integration.two_muds import A, B, TwoMuds, http_get, mud_info, same_shape, vector
from tests.integration.waits import gateway_sees, link_ready

ENTRY_KEYS = {"name", "host", "port", "tcp_port", "udp_port", "driver", "mudlib", "base_mudlib",
              "mud_type", "status", "restart_in", "services", "open_status", "admin_email"}


class NetworkEndToEnd(unittest.TestCase):
    timeout = 20

    @defer.inlineCallbacks
    def setUp(self):
        self.muds = TwoMuds(self)
        # A short handshake timeout, so that a refused startup retries soon.
        yield self.muds.start(a_sections={"router": {"handshake_timeout": 0.3}})
        self.router = self.muds.router
        self.tell_only = self.muds.tell_only

    def assertFails(self, deferred, code):
        return assert_rpc_error(self, deferred, code)

    def set_mud(self, name, info):
        """Change the router's mudlist; fire once A has merged that packet."""
        self.router.set_mud(name, info)
        return gateway_sees(self.muds.a, lambda: self.muds.a.gateway.lists.mudlist_id == self.router.mudlist_id,
                            "the mudlist merged")

    def remove_mud(self, name):
        self.router.remove_mud(name)
        return gateway_sees(self.muds.a, lambda: self.muds.a.gateway.lists.mudlist_id == self.router.mudlist_id,
                            "the mudlist merged")

    @defer.inlineCallbacks
    def no_more_events(self, client, *names):
        """A round trip, then none of ``names`` among the events received."""
        yield client.call("ping")
        self.assertEqual([n for n in client.event_names() if n in names], [])

    # -- mudlist and mud_info --------------------------------------------------------

    @defer.inlineCallbacks
    def test_mudlist_and_filters(self):
        m = self.muds
        yield self.set_mud("OldMud", mud_info(state=0, driver="DGD 1.6", services={"tell": 1, "who": 0}))
        yield self.set_mud("Rebooting", mud_info(state=120, driver="FluffOS v2019",
                                                 services={"finger": 1}))
        client = m.client_a
        result = yield client.call("mudlist")
        self.assertEqual(result["status"], "success")
        self.assertEqual(result["count"], 4)
        self.assertEqual(result["mudlist_id"], self.router.mudlist_id)
        names = [entry["name"] for entry in result["muds"]]
        self.assertEqual(sorted(names), sorted([A, B, "OldMud", "Rebooting"]))
        for entry in result["muds"]:
            self.assertEqual(set(entry), ENTRY_KEYS)

        def named(filters):
            d = client.call("mudlist", {"filter": filters})
            d.addCallback(lambda r: sorted(e["name"] for e in r["muds"]))
            return d

        self.assertEqual((yield named({"status": "up"})), [A, B])
        self.assertEqual((yield named({"status": "down"})), ["OldMud", "Rebooting"])
        self.assertEqual((yield named({"driver": "fluffos"})), ["Rebooting"])
        self.assertEqual((yield named({"driver": "Twisted"})), [A, B])
        self.assertEqual((yield named({"has_service": "tell"})), [A, B, "OldMud"])
        self.assertEqual((yield named({"has_service": "who"})), [A, B])
        self.assertEqual((yield named({"name": "mud"})), [A, B, "OldMud"])
        self.assertEqual((yield named({"name": "MUDB", "status": "up"})), [B])
        self.assertEqual((yield named({"status": "up", "driver": "DGD"})), [])
        # Older clients' extra keys are ignored; a bad status is -32602.
        self.assertEqual(len((yield client.call("mudlist", {"refresh": True}))["muds"]), 4)
        failure = yield self.assertFails(client.call("mudlist", {"filter": {"status": "sideways"}}), -32602)
        self.assertEqual(failure.data["field"], "filter.status")

        # stats counts the same list, and the ids the router last sent.
        stats = yield client.call("stats")
        self.assertEqual((stats["mud_count"], stats["online_muds"]), (4, 2))
        self.assertEqual(stats["mudlist_id"], self.router.mudlist_id)
        self.assertEqual(stats["chanlist_id"], self.router.chanlist_id)
        self.assertEqual(stats["channel_count"], len(self.router.channels))
        self.assertEqual(stats["session_count"], 2)   # client_a and tell_only
        self.assertEqual(stats["packets_received"], m.a.gateway.link.packets_received)
        self.assertEqual(stats["packets_sent"], len(m.received_from(A)))

    @defer.inlineCallbacks
    def test_mud_info(self):
        m = self.muds
        yield self.set_mud("Rebooting", mud_info(state=120))
        entry = yield m.client_a.call("mud_info", {"mud": "mudb"})
        info = self.router.muds[B]
        self.assertEqual(entry, {
            "name": B, "host": info[1], "port": 4000, "tcp_port": 0, "udp_port": 0,
            "driver": "Twisted", "mudlib": "ExampleLib", "base_mudlib": "ExampleLib",
            "mud_type": "Other", "status": "up", "restart_in": None, "services": info[11],
            "open_status": "open", "admin_email": "admin@example.org"})
        self.assertIn("tell", entry["services"])
        # The same entry, as the router announced it (the vectors' 13 fields).
        announced = [p for p in m.sent_to(A, "mudlist") if B in p[7]][-1]
        self.assertTrue(same_shape(announced, vector("mudlist", "after startup A")))
        self.assertEqual(announced[7][B], info)

        entry = yield m.client_a.call("mud_info", {"mud": "Rebooting"})
        self.assertEqual((entry["status"], entry["restart_in"]), ("down", 120))
        failure = yield self.assertFails(m.client_a.call("mud_info", {"mud": "NoSuchMud"}), -32602)
        self.assertEqual(failure.data["field"], "mud")
        yield self.assertFails(m.client_a.call("mud_info", {"mud": ""}), -32602)
        yield self.assertFails(m.client_a.call("mud_info", {}), -32602)
        yield self.assertFails(self.tell_only.call("mud_info", {"mud": B}), -32002)

    # -- mud_online / mud_offline ---------------------------------------------------------

    @defer.inlineCallbacks
    def test_gateway_b_going_down_and_up(self):
        m = self.muds
        yield m.loop.stop_gateway(m.b)
        event = yield m.client_a.event("mud_offline")
        self.assertEqual(event["mud_name"], B)
        self.assertEqual(set(event["info"]), ENTRY_KEYS)
        self.assertEqual(event["info"]["status"], "down")
        # B said goodbye with shutdown (restart_delay 0); the router told A.
        self.assertEqual(m.received_from(B, "shutdown")[-1], ["shutdown", 5, B, 0, "*test", 0, 0])
        self.assertEqual(m.sent_to(A, "mudlist")[-1][7][B][0], 0)

        m.b = yield m.start_gateway(B)
        event = yield m.client_a.event("mud_online")
        self.assertEqual(event["mud_name"], B)
        self.assertEqual(event["info"]["status"], "up")
        self.assertTrue(event["timestamp"].endswith("Z"))
        yield self.no_more_events(self.tell_only, "mud_online", "mud_offline")
        yield self.no_more_events(m.client_a, "mud_online", "mud_offline")

    @defer.inlineCallbacks
    def test_router_deltas(self):
        m = self.muds
        client = m.client_a
        yield self.set_mud("Extra", mud_info(state=-1))       # first seen: nothing
        yield self.set_mud("Extra", mud_info(state=-1, port=5001))  # still up: nothing
        yield self.no_more_events(client, "mud_online", "mud_offline")

        yield self.set_mud("Extra", mud_info(state=300))
        event = yield client.event("mud_offline")
        self.assertEqual((event["mud_name"], event["info"]["status"], event["info"]["restart_in"]),
                         ("Extra", "down", 300))
        yield self.set_mud("Extra", mud_info(state=-1))
        event = yield client.event("mud_online")
        self.assertEqual((event["mud_name"], event["info"]["port"]), ("Extra", 5000))

        yield self.remove_mud("Extra")                        # deleted while up
        event = yield client.event("mud_offline")
        self.assertEqual((event["mud_name"], event["info"]["status"]), ("Extra", "down"))
        self.assertEqual((yield client.call("mudlist", {"filter": {"name": "extra"}}))["count"], 0)

        yield self.set_mud("Gone", mud_info(state=0))
        yield self.remove_mud("Gone")                         # deleted while down: nothing
        yield self.no_more_events(client, "mud_online", "mud_offline")
        yield self.no_more_events(self.tell_only, "mud_online", "mud_offline")

    @defer.inlineCallbacks
    def test_nothing_during_the_initial_sync(self):
        m = self.muds
        for name, state in (("Up1", -1), ("Down1", 0), ("Later", 60)):
            self.router.set_mud(name, mud_info(state=state))
        # A third gateway whose client is there before its link is ready:
        # the router ignores its first startup.
        self.router.refuse_startups = True
        c = m.loop.gateway("MudC", [self.router], state_dir=m.state_dir("MudC"),
                           router={"handshake_timeout": 0.3})
        client = yield m.loop.tcp_client(c)
        self.assertFalse(c.gateway.link.ready)
        self.router.refuse_startups = False
        yield link_ready(c)
        yield gateway_sees(c, lambda: c.gateway.lists.mudlist_id == self.router.mudlist_id
                           and len(c.gateway.lists.muds) == len(self.router.muds), "the whole mudlist")
        yield m.flush("MudC")
        # The whole list came, in several packets, some addressed to 0.
        self.assertGreaterEqual(len(m.sent_to("MudC", "mudlist")), len(self.router.muds))
        yield self.no_more_events(client, "mud_online", "mud_offline")
        # The first handshake: connected, but not "reconnected"; the refused
        # attempt before it was never up, so nothing was "disconnected".
        event = yield client.event("gateway_connected")
        self.assertEqual(event["router"], "*test")
        yield self.no_more_events(client, "gateway_reconnected", "gateway_disconnected")
        names = [e["name"] for e in (yield client.call("mudlist"))["muds"]]
        self.assertEqual(sorted(names), sorted([A, B, "MudC", "Up1", "Down1", "Later"]))

    # -- the link's own state ------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_router_drop_and_reconnect(self):
        m = self.muds
        client = m.client_a
        status = yield client.call("status")
        self.assertEqual((status["connected"], status["state"], status["router"]), (True, "ready", "*test"))
        self.assertEqual(status["router_address"], f"127.0.0.1:{self.router.port}")
        stats = yield client.call("stats")
        self.assertTrue(stats["gateway_connected"])
        reconnects = stats["reconnects"]
        self.assertEqual((yield http_get(m.a, "/health/ready"))[0], 200)

        # Down, and kept down: the router stays silent on startups for now.
        self.router.refuse_startups = True
        yield self.router.drop(A)
        for watcher in (client, self.tell_only):
            event = yield watcher.event("gateway_disconnected")
            self.assertEqual(event["router"], "*test")
            self.assertIsInstance(event["reason"], str)
        status = yield client.call("status")
        self.assertFalse(status["connected"])
        self.assertIn(status["state"], ("connecting", "handshaking", "backoff"))
        self.assertFalse((yield client.call("stats"))["gateway_connected"])
        code, body = yield http_get(m.a, "/health/ready")
        self.assertEqual(code, 503)
        self.assertIn(b'"not_ready"', body)
        code, body = yield http_get(m.a, "/health")
        self.assertEqual(code, 200)
        router = json.loads(body)["router"]
        self.assertIn(router["state"], ("connecting", "handshaking", "backoff"))
        self.assertIsNone(router["connected_since"])
        # Why it is down, for `intermud3 doctor`: the router and the reason.
        yield gateway_sees(m.a, lambda: m.a.gateway.link.recent_failures, "a failure recorded")
        router = json.loads((yield http_get(m.a, "/health"))[1])["router"]
        self.assertEqual(router["last_errors"][-1]["router"], "*test")
        self.assertTrue(router["last_errors"][-1]["reason"])
        self.assertNotIn("gateway_connected", client.event_names())

        self.router.refuse_startups = False
        for watcher in (client, self.tell_only):
            event = yield watcher.event("gateway_connected")
            self.assertEqual(event["router"], "*test")
            event = yield watcher.event("gateway_reconnected")
            self.assertEqual(event["status"], "connected")
            self.assertIsInstance(event["message"], str)
        status = yield client.call("status")
        self.assertEqual((status["connected"], status["state"]), (True, "ready"))
        stats = yield client.call("stats")
        self.assertTrue(stats["gateway_connected"])
        self.assertGreater(stats["reconnects"], reconnects)
        self.assertEqual((yield http_get(m.a, "/health/ready"))[0], 200)
        router = json.loads((yield http_get(m.a, "/health"))[1])["router"]
        self.assertEqual((router["state"], router["name"]), ("ready", "*test"))
        self.assertTrue(router["connected_since"].endswith("Z"))
        # The second startup resent the router's password.
        startups = m.received_from(A, "startup-req-3")
        self.assertEqual(startups[-1][6], self.router.passwords[A])
        # And B, which stayed up, saw A go down and come back.
        event = yield m.client_b.event("mud_offline", lambda p: p["mud_name"] == A)
        event = yield m.client_b.event("mud_online", lambda p: p["mud_name"] == A)
        self.assertEqual(event["info"]["status"], "up")
