"""Network: mudlist / mud_info methods, mud_online / mud_offline events and
the gateway_* link events."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3.services.failures import UnknownMud
from tests.fakes import assert_invalid, build_network, make_gateway, network_handlers, mud_info as info


class NetworkTestCase(SynchronousTestCase):
    def setUp(self):
        self.gateway = make_gateway(self)
        self.lists = self.gateway.lists
        self.network = build_network(self.gateway)
        self.handlers = network_handlers(self.gateway)
        sessions = self.gateway.sessions
        self.info_session = sessions.add("s-info", ["info"])
        self.tell_session = sessions.add("s-tell", ["tell"])
        self.lists.apply_mudlist("*test", "OurMud", 7, {
            "DSTest": info(),
            "ProbeB": info(state=0, driver="Twisted", services={"tell": 1}),
            "Later": info(state=300, driver="FluffOS v2017"),
        })

    def ask(self, method, **params):
        return self.handlers[method](self.gateway.call(self.info_session), params)

    def assertInvalid(self, field, method, **params):
        return assert_invalid(self, field, lambda: self.ask(method, **params))


class MudlistTests(NetworkTestCase):
    def names(self, **filters):
        result = self.ask("mudlist", filter=filters)
        self.assertEqual(result["status"], "success")
        self.assertEqual(result["count"], len(result["muds"]))
        self.assertEqual(result["mudlist_id"], 7)
        return [m["name"] for m in result["muds"]]

    def test_all(self):
        self.assertEqual(self.names(), ["DSTest", "Later", "ProbeB"])
        result = self.ask("mudlist")
        self.assertEqual(result["muds"][0], self.lists.mud_entry("DSTest"))
        self.assertEqual(result["muds"][0]["status"], "up")

    def test_filters(self):
        self.assertEqual(self.names(status="up"), ["DSTest"])
        self.assertEqual(self.names(status="down"), ["Later", "ProbeB"])
        self.assertEqual(self.names(driver="fluffos"), ["DSTest", "Later"])
        self.assertEqual(self.names(has_service="tell"), ["ProbeB"])
        self.assertEqual(self.names(name="test"), ["DSTest"])
        self.assertEqual(self.names(status="down", driver="twisted"), ["ProbeB"])
        self.assertEqual(self.names(name=""), ["DSTest", "Later", "ProbeB"])

    def test_bad_filters(self):
        self.assertInvalid("filter", "mudlist", filter=["up"])
        self.assertInvalid("filter.status", "mudlist", filter={"status": "sideways"})
        self.assertInvalid("filter.driver", "mudlist", filter={"driver": 3})

    def test_mud_info(self):
        self.assertEqual(self.ask("mud_info", mud="dstest"), self.lists.mud_entry("DSTest"))
        self.assertEqual(self.ask("mud_info", mud="dstest")["name"], "DSTest")

    def test_mud_info_unknown_or_missing(self):
        self.assertInvalid("mud", "mud_info", mud="NoSuchMud")
        self.assertInvalid("mud", "mud_info")
        self.assertInvalid("mud", "mud_info", mud="")


class MudChangeTests(NetworkTestCase):
    def test_online_and_offline_to_info_sessions(self):
        self.lists.apply_mudlist("*test", "OurMud", 8, {"ProbeB": info(state=-1, driver="Twisted")})
        self.lists.apply_mudlist("*test", "OurMud", 9, {"DSTest": info(state=0)})
        events = self.info_session.received
        self.assertEqual([(e, p["mud_name"]) for e, p in events],
                         [("mud_online", "ProbeB"), ("mud_offline", "DSTest")])
        self.assertEqual(events[0][1]["info"]["status"], "up")
        self.assertEqual(events[0][1]["info"]["driver"], "Twisted")
        self.assertEqual(events[1][1]["info"]["status"], "down")
        self.assertEqual(self.tell_session.received, [])

    def test_new_mud_and_unchanged_state_emit_nothing(self):
        self.lists.apply_mudlist("*test", "OurMud", 8, {"Fresh": info(), "DSTest": info(driver="other")})
        self.assertEqual(self.info_session.received, [])

    def test_deleting_an_up_mud_is_offline(self):
        self.lists.apply_mudlist("*test", "OurMud", 8, {"DSTest": 0, "ProbeB": 0})
        self.assertEqual([(e, p["mud_name"]) for e, p in self.info_session.received],
                         [("mud_offline", "DSTest")])


class LinkEventTests(NetworkTestCase):
    def events(self, session):
        return [(e, {k: v for k, v in p.items() if k != "timestamp"}) for e, p in session.received]

    def test_connected_disconnected_reconnected_to_every_session(self):
        silent = self.gateway.sessions.add("s-none", [])  # no permission needed
        link = self.gateway.link
        link.set_state("connecting", "start")
        link.set_state("handshaking", "tcp connected")
        link.set_state("ready", "startup-reply")
        link.set_state("backoff", "connection lost")
        link.set_state("connecting", "retry")
        link.router = {"name": "*i4"}
        link.set_state("ready", "startup-reply")
        expected = [
            ("gateway_connected", {"router": "*test", "reason": "startup-reply"}),
            ("gateway_disconnected", {"router": "*test", "reason": "connection lost"}),
            ("gateway_connected", {"router": "*i4", "reason": "startup-reply"}),
            ("gateway_reconnected", {"message": "Reconnected to router *i4", "status": "connected"}),
        ]
        for session in (self.info_session, self.tell_session, silent):
            self.assertEqual(self.events(session), expected)

    def test_failures_before_ready_do_not_say_disconnected(self):
        link = self.gateway.link
        link.set_state("connecting", "start")
        link.set_state("backoff", "connection refused")
        link.set_state("stopped", "shutdown")
        self.assertEqual(self.info_session.received, [])

    def test_stop_after_ready_says_disconnected(self):
        link = self.gateway.link
        link.set_state("ready", "startup-reply")
        link.set_state("stopped", "shutdown")
        self.assertEqual(self.events(self.tell_session), [
            ("gateway_connected", {"router": "*test", "reason": "startup-reply"}),
            ("gateway_disconnected", {"router": "*test", "reason": "shutdown"}),
        ])


class NetworkDomainTests(NetworkTestCase):
    def test_mud_info_of_an_unknown_mud(self):
        with self.assertRaises(UnknownMud) as caught:
            self.network.mud_info("Nowhere")
        self.assertEqual(caught.exception.field, "mud")
        self.assertEqual(self.network.mud_info("dstest")["name"], "DSTest")
