"""The soak script (bench/soak.py) runs end to end in a short version: real
router and gateway processes, a router restart, a gateway kill -9, and
every message counted. Exit 0 means no loss and no duplicate by the
script's rules; the counts must show that something actually happened."""

import re
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.integration.process import REPO


def counts_of(output):
    """`name: integer` lines of the soak's report, and its episode line."""
    counts = {name: int(value) for name, value in re.findall(r"^(\w+): (\d+)$", output, re.M)}
    episodes = re.search(r"^episodes: (.*)$", output, re.M)
    if episodes:
        counts.update({name: int(value) for name, value in
                       re.findall(r"(\w+) (\d+)", episodes.group(1))})
    return counts


class SoakTests(SynchronousTestCase):
    def test_short_soak_loses_nothing(self):
        done = subprocess.run(
            [sys.executable, "-m", "bench.soak", "--seconds", "30", "--settle", "10",
             "--rate", "3"],
            cwd=REPO, capture_output=True, text=True, timeout=150)
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        self.assertIn("verdict: PASS", output)
        counts = counts_of(output)
        for name in ("attempted", "accepted", "refused", "delivered", "expired",
                     "lost_in_fault_window", "delivered_twice", "lost"):
            self.assertIn(name, counts, output)
        self.assertGreater(counts["accepted"], 50, output)
        self.assertGreater(counts["delivered"], 25, output)
        self.assertGreaterEqual(counts["router_restarts"], 1, output)
        self.assertGreaterEqual(counts["gateway_kills"], 1, output)
        self.assertEqual(counts["delivered_twice"], 0, output)
        self.assertEqual(counts["lost"], 0, output)


class ReportParsingTests(SynchronousTestCase):
    def test_counts_of_reads_counts_and_episodes(self):
        text = ("episodes: router_restarts 2, gateway_kills 1, disk_full 0\n"
                "accepted: 12\nlost: 0\nverdict: PASS\n")
        self.assertEqual(counts_of(text), {"router_restarts": 2, "gateway_kills": 1,
                                           "disk_full": 0, "accepted": 12, "lost": 0})
