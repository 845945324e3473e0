"""The `level: debug` trace: every packet in and out, every API request,
with text cut to a bound and no secret shown."""

from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import trace
from intermud3.mudmode import frame
from intermud3.packets import make
from tests.test_link import LinkCase, startup_reply
from tests.test_rpc import DispatcherTestCase, request


def debug_lines(events, prefix):
    lines = [formatEvent(e) for e in events if e["log_level"] == LogLevel.debug]
    return [line for line in lines if line.startswith(prefix)]


class SummaryTests(SynchronousTestCase):
    def test_route_channel_and_text_cut_to_the_bound(self):
        packet = make("channel-m", "OurMud", "alice", 0, 0, "imud_gossip", "Alice", "x" * 500)
        line = trace.summarize(packet)
        self.assertTrue(line.startswith("alice@OurMud -> * channel imud_gossip 'xxx"), line)
        self.assertIn("x" * trace.TEXT_LIMIT + "...", line)
        self.assertNotIn("x" * (trace.TEXT_LIMIT + 1), line)

    def test_passwords_and_session_keys_are_never_shown(self):
        secret = 987654321
        for packet in (
                make("startup-req-3", "OurMud", 0, "*i4", 0, secret, 0, 0, 4000, 0, 0,
                     "lib", "base", "driver", "LP", "open", "a@b", {}, 0),
                make("startup-reply", "*i4", 0, "OurMud", 0, [["*i4", "1.2.3.4 8080"]], secret),
                make("auth-mud-reply", "Other", 0, "OurMud", 0, secret)):
            self.assertNotIn(str(secret), trace.summarize(packet))
            self.assertNotIn(str(secret), str(trace.PacketSummary(frame=frame(packet))))

    def test_junk_is_described_not_raised(self):
        self.assertEqual(trace.summarize(["tell"]), "(not a packet)")
        self.assertEqual(str(trace.PacketSummary(frame=b"\x00\x00\x00\x03({x")), "(undecodable)")


class LinkTraceTests(LinkCase):
    def test_every_packet_in_and_out_at_debug(self):
        with capturedLogs() as events:
            link, attempt = self.ready_link()
            link.try_send(make("tell", "ProbeA", "bob", "Other", "carol", "Bob", "hello there"))
        out = debug_lines(events, "Packet out:")
        inbound = debug_lines(events, "Packet in:")
        self.assertTrue(out[0].startswith("Packet out: startup-req-3 to router *test, "), out)
        self.assertRegex(out[-1], r"^Packet out: tell to router \*test, \d+ bytes: "
                                  r"bob@ProbeA -> carol@Other 'hello there'$")
        self.assertRegex(inbound[0], r"^Packet in: startup-reply from router \*test, \d+ bytes: ")
        password = str(startup_reply()[-1])
        self.assertFalse([line for line in out + inbound if password in line])


class RequestTraceTests(DispatcherTestCase):
    def test_every_request_with_outcome_and_time(self):
        with capturedLogs() as events:
            session = self.login()
            self.reply(request("who", {"target_mud": "X"}))
            self.reply(request("nosuch"))
        lines = debug_lines(events, "API request")
        self.assertRegex(lines[0], r"^API request authenticate: ok in \d+\.\d ms$")
        self.assertTrue(lines[1].startswith("API request who: ok in "), lines)
        self.assertTrue(lines[2].startswith("API request unknown: method_not_found in "), lines)
        self.assertNotIn(session["session_id"], "\n".join(lines))
        self.assertFalse([line for line in lines if "full" in line])   # the API key
