"""intermud3.api.autobahn_tuning: the same frames and log lines, cheaper."""

import os

from autobahn import util as autobahn_util
from autobahn.twisted import websocket as autobahn_twisted
from autobahn.websocket import protocol as autobahn_protocol
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from intermud3.api import autobahn_tuning as wsmask


class UnmaskTests(SynchronousTestCase):
    @settings(deadline=None, max_examples=300)
    @given(st.binary(min_size=4, max_size=4), st.binary(max_size=600), st.lists(st.integers(0, 600), max_size=4))
    def test_same_bytes_as_autobahn_whatever_the_pieces(self, mask, payload, cuts):
        ours = wsmask.SmallUnmasker(mask)
        theirs = wsmask._autobahn_create(mask, len(payload))
        edges = [0, *sorted(c for c in cuts if c <= len(payload)), len(payload)]
        for start, end in zip(edges, edges[1:]):
            self.assertEqual(ours.process(payload[start:end]), theirs.process(payload[start:end]))
            self.assertEqual(ours.pointer(), end)
        ours.reset()
        self.assertEqual(ours.pointer(), 0)

    def test_masking_twice_gives_the_payload_back(self):
        mask, payload = os.urandom(4), os.urandom(1000)
        masked = wsmask.SmallUnmasker(mask).process(payload)
        self.assertNotEqual(masked, payload)
        self.assertEqual(wsmask.SmallUnmasker(mask).process(masked), payload)

    def test_large_payloads_keep_autobahns_masker(self):
        self.assertIsInstance(wsmask.create_masker(b"abcd", 100), wsmask.SmallUnmasker)
        self.assertIsInstance(wsmask.create_masker(b"abcd", wsmask.SMALL_PAYLOAD), wsmask.SmallUnmasker)
        self.assertNotIsInstance(wsmask.create_masker(b"abcd", wsmask.SMALL_PAYLOAD + 1), wsmask.SmallUnmasker)
        self.assertNotIsInstance(wsmask.create_masker(b"abcd"), wsmask.SmallUnmasker)

    def test_install_is_what_autobahns_protocol_calls(self):
        wsmask.install()
        wsmask.install()
        self.assertIs(autobahn_protocol.create_xor_masker, wsmask.create_masker)
        self.assertIs(autobahn_protocol.pformat, wsmask.plain_format)
        for module in (autobahn_protocol, autobahn_twisted):
            self.assertIs(module.hltype, wsmask.hltype)
            self.assertIs(module.hlval, wsmask.hlval)

    def test_highlighted_arguments_are_autobahns_text_when_formatted(self):
        method = self.test_install_is_what_autobahns_protocol_calls
        self.assertEqual(str(wsmask.hltype(method)), autobahn_util.hltype(method))
        self.assertEqual(f"{wsmask.hlval(42)}", autobahn_util.hlval(42))
        self.assertEqual("{v}".format(v=wsmask.hlval("x", color="red", bold=False)),
                         autobahn_util.hlval("x", color="red", bold=False))

    def test_plain_format_writes_one_line_when_formatted(self):
        value = [("openHandshakeTimeout", 0, "APIWebSocketFactory")] * 40
        self.assertEqual(str(wsmask.plain_format(value)), repr(value))
        self.assertEqual("\n{attrs}".format(attrs=wsmask.plain_format(value)), "\n" + repr(value))
        self.assertEqual(str(wsmask.plain_format({"a": 1}, indent=2, width=80)), "{'a': 1}")

    def test_plain_format_does_no_work_until_formatted(self):
        class Counted:
            calls = 0

            def __repr__(self):
                Counted.calls += 1
                return "counted"

        line = wsmask.plain_format([Counted()])
        self.assertEqual(Counted.calls, 0)
        self.assertEqual(f"{line}", "[counted]")
        self.assertEqual(Counted.calls, 1)


class ConnectionMemoryTests(SynchronousTestCase):
    def test_slots_leave_out_what_a_base_class_defines(self):
        from intermud3.api.ws import APIWebSocketProtocol
        slots = APIWebSocketProtocol.__slots__
        for name in ("state", "data", "http_headers", "maxMessagePayloadSize", "connection"):
            self.assertIn(name, slots)
        # Class attributes of Twisted's and Autobahn's classes: a slot would
        # hide their value (transport None, connected 0) until set.
        for name in ("transport", "factory", "connected", "peer"):
            self.assertNotIn(name, slots)
        self.assertEqual(len(slots), len(set(slots)))

    def test_send_queue_is_first_in_first_out(self):
        queue = wsmask.SendQueue()
        self.assertEqual(len(queue), 0)
        queue.append((b"a", True))
        queue.append((b"b", False))
        self.assertEqual(len(queue), 2)
        self.assertEqual(queue.popleft(), (b"a", True))
        self.assertEqual(queue.popleft(), (b"b", False))
        self.assertRaises(IndexError, queue.popleft)
