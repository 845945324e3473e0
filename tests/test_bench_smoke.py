"""The benchmarks still run: each at a tiny size, checking only that they
produce figures (never how fast anything is; timings belong in bench/)."""

import math

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from bench import (bench_colour, bench_connect, bench_gateway, bench_lpc, bench_rpc, bench_startup,
                   bench_store, common, run)
from tests.vectors import load_vectors


def figures(rows):
    """The measured values by name, each checked to be a real number."""
    values = {}
    for entry in rows:
        assert set(entry) == {"bench", "name", "value", "unit", "detail"}, entry
        if entry["value"] is not None:
            assert isinstance(entry["value"], (int, float)) and math.isfinite(entry["value"]), entry
            assert entry["value"] >= 0, entry
        values[entry["name"]] = entry["value"]
    return values


class HelperTests(SynchronousTestCase):
    def test_median_and_percentile(self):
        self.assertEqual(common.median([3, 1, 2]), 2)
        self.assertEqual(common.median([4, 1, 3, 2]), 2.5)
        self.assertEqual(common.percentile(list(range(1, 101)), 0.99), 99)
        self.assertEqual(common.percentile(list(range(1, 501)), 0.99), 495)
        self.assertEqual(common.percentile([7], 0.99), 7)
        self.assertRaises(ValueError, common.median, [])

    def test_repeat_is_bounded_by_count(self):
        calls = []
        self.assertEqual(len(common.repeat(lambda: calls.append(1), 3, 60)), 3)
        self.assertEqual(len(calls), 3)

    def test_table_lists_every_row(self):
        text = common.table([common.row("lpc", "decode", 12.345, "MB/s", "x"),
                             common.skipped("gateway", "loopback", "not yet")])
        self.assertIn("12.3", text)
        self.assertIn("skipped: not yet", text)
        self.assertEqual(len(text.splitlines()), 4)

    def test_runner_refuses_unknown_names(self):
        self.assertEqual(run.main(["nosuchbench"]), 2)
        self.assertEqual(run.main(["--slow"]), 2)


class BenchmarkSmokeTests(SynchronousTestCase):
    def test_lpc(self):
        load_vectors()  # fails, naming the path, when the data file is missing
        values = figures(bench_lpc.run(runs=1, muds=3, min_kb=1, packets=5, stream_copies=1,
                                       big_frame_kb=100, max_seconds=1))
        for name in ("decode mudlist", "encode mudlist", "decode tell", "encode tell",
                     "mudmode feed 1 B chunks", "mudmode feed 4 KiB chunks",
                     "decode mudlist vs json", "encode mudlist vs json",
                     "decode tell vs json", "encode tell vs json",
                     "big frame longest turn, sliced", "big frame longest turn, in one go"):
            self.assertGreater(values[name], 0, name)

    def test_a_big_frame_is_delivered_over_several_turns_when_sliced(self):
        load_vectors()
        data = bench_lpc.mudmode.frame(bench_lpc.mudlist_packet(bench_lpc.real_frames(), 0, 200000))
        reads = -(-len(data) // bench_lpc.READ_BYTES)
        _, sliced_turns, _ = bench_lpc.longest_turn(data, sliced=True)
        _, whole_turns, _ = bench_lpc.longest_turn(data, sliced=False)
        self.assertEqual(whole_turns, reads)
        self.assertGreater(sliced_turns, reads + 1)

    def test_mudlist_frame_holds_the_real_entries(self):
        load_vectors()
        packet = bench_lpc.mudlist_packet(bench_lpc.real_frames(), muds=10, min_bytes=0)
        self.assertEqual(packet[0], "mudlist")
        self.assertEqual(len(packet[7]), 10)
        self.assertIn("DSTest0000", packet[7])

    def test_rpc(self):
        values = figures(bench_rpc.run(requests=5, batch=3, batches=2, max_seconds=1))
        for name in ("ping rate", "ping median", "ping p99",
                     "batch of 3 pings rate", "batch of 3 pings median", "batch of 3 pings p99"):
            self.assertGreater(values[name], 0, name)


class StoreSmokeTests(TestCase):
    timeout = 60

    def test_drain(self):
        def check(rows):
            values = figures(rows)
            for name in ("queue: reactor time per message", "drain: reactor time per message",
                         "drain: longest reactor callback", "drain: wall time until empty"):
                self.assertGreater(values[name], 0, name)
            self.assertIn("20 of 20 written", rows[2]["detail"])
        return bench_store.measure_drain(reactor, 20, max_seconds=5).addCallback(check)

    def test_history_search(self):
        rows = bench_store.history_search(2000, 1)
        values = figures(rows)
        self.assertGreater(values["history search (full-text index)"], 0)
        self.assertGreater(values["history search (plain scan)"], 0)
        # The same rows are found both ways.
        self.assertEqual([r["detail"].split("; ")[1] for r in rows], ["1 found", "1 found"])


class ColourSmokeTests(SynchronousTestCase):
    def test_colour(self):
        values = figures(bench_colour.run(rounds=1, calls=2, max_seconds=1))
        for name in ("json event", "out ansi", "out html", "out plain", "out smaug", "in ansi",
                     "in smaug", "in evennia", "in none", "out plain, no codes"):
            self.assertGreater(values[name], 0, name)


class GatewaySmokeTests(TestCase):
    timeout = 60

    def test_gateway(self):
        d = bench_gateway.measure(reactor, tells=3, window_tells=5, window=2, subscribers=2,
                                  rounds=2, sessions=5, events=2, max_seconds=2)

        def check(rows):
            values = figures(rows)
            self.assertGreater(values["RSS after sessions"], 0)
            # The services have landed: a "skipped" loopback row is now a failure.
            self.assertNotIn("loopback", values, rows)
            self.assertIn("longest reactor stall under tells", values)
            for name in ("tell latency median", "tell latency p99", "tell throughput",
                         "channel fan-out to 2 median", "channel fan-out to 2 p99"):
                self.assertGreater(values[name], 0, name)

        return d.addCallback(check)


class StartupSmokeTests(SynchronousTestCase):
    def test_startup(self):
        # Real child processes (router and gateway) on 127.0.0.1, one start.
        values = figures(bench_startup.run(runs=1))
        for name in ("start to ready", "RSS when ready", "RSS after a TCP client",
                     "first WebSocket upgrade", "RSS after a WebSocket client"):
            self.assertGreater(values[name], 0, name)


class ConnectSmokeTests(TestCase):
    timeout = 60

    def test_connect(self):
        d = bench_connect.measure(reactor, connections=3, window=2, max_seconds=5, settle=0.1)

        def check(rows):
            values = figures(rows)
            # CPU is counted in clock ticks: three connections may take none.
            self.assertIn("gateway CPU per connection", values)
            for name in ("connect + authenticate rate", "gateway RSS with them open"):
                self.assertGreater(values[name], 0, name)
            self.assertIn("3 WebSocket connections", rows[0]["detail"])

        return d.addCallback(check)
