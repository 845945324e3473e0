"""Colour end to end: two gateways on the in-repo router, sessions that ask
for different colour forms and write different dialects (docs/COLOUR.md).

A coloured tell written in Smaug codes on MudA leaves as Pinkfish and
reaches MudB's sessions as ANSI, HTML, plain, ROM codes and raw Pinkfish;
remote markers, escapes and markup arrive as text; query results and
channel history are rendered for the caller; /static/pinkfish.css is served.
"""

import struct

from twisted.internet import defer
from twisted.trial import unittest

from intermud3 import colour, lpc
from intermud3.colour.html import STYLESHEET
from tests.integration.harness import API_KEY, assert_rpc_error
from tests.integration.two_muds import A, B, TwoMuds, http_get, player
from tests.integration.wsclient import connect_ws

ESC = "\x1b"


class ColourTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.muds = TwoMuds(self)
        yield self.muds.start()
        # One client of MudB per form, each asking in authenticate.
        self.receivers = {}
        for form in ("ansi", "html", "plain", "rom"):
            client = yield self.muds.loop.tcp_client(self.muds.b, authenticate=False)
            yield client.call("authenticate", {"api_key": API_KEY, "colour_out": form})
            self.receivers[form] = client
        self.receivers["pinkfish"] = self.muds.client_b  # the default

    @defer.inlineCallbacks
    def test_a_coloured_tell_reaches_each_session_in_its_form(self):
        m = self.muds
        result = yield m.client_a.call("set_options", {"colour_in": "smaug"})
        self.assertEqual(result, {"status": "success", "colour_out": "pinkfish", "colour_in": "smaug"})
        events = {form: c.event("tell_received") for form, c in self.receivers.items()}
        sent = yield m.client_a.call("tell", {
            "target_mud": B, "target_user": "bob", "from_user": "alice",
            "visname": "&YAlice&D", "message": "&RDanger&D, 50%^ <b>&&"})
        self.assertEqual(sent["status"], "sent")

        # On I3 it is Pinkfish only: the MUD's %^ became a literal.
        packet = yield m.wait_received(A, "tell")
        self.assertEqual(packet[6:], ["%^YELLOW%^Alice%^RESET%^",
                                      "%^BOLD%^%^RED%^Danger%^RESET%^, 50%%^^ <b>&"])

        got = {}
        for form, event in events.items():
            params = yield event
            got[form] = (params["visname"], params["message"])
        self.assertEqual(got, {
            "pinkfish": ("%^YELLOW%^Alice%^RESET%^", "%^BOLD%^%^RED%^Danger%^RESET%^, 50%%^^ <b>&"),
            "ansi": (f"{ESC}[1;33mAlice{ESC}[0m", f"{ESC}[1m{ESC}[31mDanger{ESC}[0m, 50%^ <b>&"),
            "html": ('<span class="pf-yellow">Alice</span>',
                     '<span class="pf-bold"><span class="pf-red">Danger</span></span>, 50%^ &lt;b&gt;&amp;'),
            "plain": ("Alice", "Danger, 50%^ <b>&"),
            "rom": ("{YAlice{x", "{RDanger{x, 50%^ <b>&"),
        })

    @defer.inlineCallbacks
    def test_remote_codes_escapes_and_markup_arrive_as_text(self):
        m = self.muds
        events = {form: c.event("tell_received") for form, c in self.receivers.items()}
        # Raw on the wire, as any MUD could send it: no gateway cleaned it.
        hostile = "{R &R |r ^R \tR @R " + ESC + "[31m <script>alert(1)</script>"
        m.router.send_raw(B, raw_frame(["tell", 5, "Evil", "eve", B, "bob", "Eve", hostile]))
        got = {}
        for form, event in events.items():
            params = yield event
            got[form] = params["message"]
        self.assertEqual(got["pinkfish"], hostile)  # the default changes nothing
        self.assertEqual(got["rom"], "{{R &R |r ^R R @R  <script>alert(1)</script>")
        self.assertEqual(got["ansi"], "{R &R |r ^R R @R  <script>alert(1)</script>")
        self.assertEqual(got["plain"], got["ansi"])
        self.assertEqual(got["html"],
                         "{R &amp;R |r ^R R @R  &lt;script&gt;alert(1)&lt;/script&gt;")

    @defer.inlineCallbacks
    def test_one_session_changes_form_and_others_keep_theirs(self):
        m = self.muds
        ansi = self.receivers["ansi"]
        result = yield ansi.call("set_options", {"colour_out": "xterm256"})
        self.assertEqual(result["colour_out"], "xterm256")
        event = ansi.event("tell_received")
        plain = self.receivers["plain"].event("tell_received")
        m.router.send_packet(B, ["tell", 5, A, "alice", B, "bob", "Alice", "%^ORANGE%^warm"])
        self.assertEqual((yield event)["message"], f"{ESC}[38;5;208mwarm{ESC}[0m")
        self.assertEqual((yield plain)["message"], "warm")

    @defer.inlineCallbacks
    def test_query_results_and_history_are_rendered_for_the_caller(self):
        m = self.muds
        yield m.client_b.call("set_options", {"colour_in": "evennia"})
        yield m.client_b.call("presence_sync", {"users": [
            player("bob", visname="|rBob|n", title="|gthe Brave|n")]})
        yield m.client_a.call("set_options", {"colour_out": "html"})
        who = yield m.client_a.call("who", {"target_mud": B, "timeout": 2})
        self.assertEqual(who["users"][0]["name"], '<span class="pf-bold"><span class="pf-red">Bob</span></span>')
        self.assertEqual(who["users"][0]["extra"],
                         '<span class="pf-bold"><span class="pf-green">the Brave</span></span>')
        # What B wrote went out as Pinkfish.
        reply = m.received_from(B, "who-reply")[-1]
        self.assertEqual(reply[6][0][0], "%^BOLD%^%^RED%^Bob%^RESET%^")

        yield m.client_b.call("channel_join", {"channel": "dchat"})
        yield m.client_a.call("channel_join", {"channel": "dchat"})
        yield m.router.wait_for(lambda r: r.listening.get("dchat", set()) >= {A, B})
        message = m.client_b.event("channel_message")
        yield m.client_a.call("channel_send", {"channel": "dchat", "message": "%^CYAN%^hi <all>"})
        yield message
        history = yield m.client_a.call("channel_history", {"channel": "dchat"})
        self.assertEqual(history["messages"][-1]["message"],
                         '<span class="pf-cyan">hi &lt;all&gt;</span>')
        yield m.client_b.call("set_options", {"colour_out": "plain"})
        history = yield m.client_b.call("channel_history", {"channel": "dchat"})
        self.assertEqual(history["messages"][-1]["message"], "hi <all>")

    @defer.inlineCallbacks
    def test_options_are_checked_and_kept_by_the_session(self):
        m = self.muds
        yield assert_rpc_error(self, m.client_a.call("set_options", {"colour_out": "vt100"}), -32602,
                               field="colour_out", allowed=list(colour.OUT_FORMS))
        yield assert_rpc_error(self, m.client_a.call("set_options", {"colour_in": ["smaug"]}), -32602,
                               field="colour_in")
        # Nothing changed; no options reads them.
        self.assertEqual((yield m.client_a.call("set_options", {})),
                         {"status": "success", "colour_out": "pinkfish", "colour_in": "pinkfish"})
        # A bad option in authenticate refuses the call before authenticating.
        fresh = yield m.loop.tcp_client(m.a, authenticate=False)
        yield assert_rpc_error(self, fresh.call("authenticate", {"api_key": API_KEY, "colour_in": "klingon"}),
                               -32602, field="colour_in")
        yield assert_rpc_error(self, fresh.call("set_options", {"colour_out": "html"}), -32000)
        # Options belong to the session: restoring it on a new connection keeps them.
        first = yield fresh.call("authenticate", {"api_key": API_KEY, "colour_out": "plain"})
        again = yield m.loop.tcp_client(m.a, authenticate=False)
        yield again.call("authenticate", {"api_key": API_KEY, "session_id": first["session_id"]})
        self.assertEqual((yield again.call("set_options", {}))["colour_out"], "plain")

    @defer.inlineCallbacks
    def test_websocket_sessions_choose_too(self):
        m = self.muds
        client = yield connect_ws(m.b.web_listener.getHost().port, headers={"X-API-Key": API_KEY})
        self.addCleanup(client.disconnect)
        result = yield client.call("set_options", {"colour_out": "html", "colour_in": "evennia"})
        self.assertEqual(result["colour_out"], "html")
        event = client.event("tell_received")
        m.router.send_packet(B, ["tell", 5, A, "alice", B, "bob", "Alice", "%^RED%^<hi>"])
        self.assertEqual((yield event)["message"], '<span class="pf-red">&lt;hi&gt;</span>')
        told = m.client_a.event("tell_received")
        yield client.call("tell", {"target_mud": A, "target_user": "alice", "message": "|rhey|n"})
        self.assertEqual((yield told)["message"], "%^BOLD%^%^RED%^hey%^RESET%^")

    @defer.inlineCallbacks
    def test_style_sheet_is_served(self):
        status, body = yield http_get(self.muds.b, "/static/pinkfish.css")
        self.assertEqual(status, 200)
        self.assertEqual(body, STYLESHEET)
        self.assertIn(b".pf-b-red {", body)


def raw_frame(packet):
    """A MudMode frame of ``packet`` keeping control characters in its last
    string, which lpc.encode (rightly) removes."""
    text = packet[-1]
    body = lpc.encode(packet[:-1] + ["@@TEXT@@"]).replace(b"@@TEXT@@", text.encode()) + b"\x00"
    return struct.pack(">I", len(body)) + body
