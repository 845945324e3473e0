"""The pacer: the router's flood-control arithmetic over a fake clock."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3.pacer import MAX_PER_SECOND, Pacer


def drain(pacer, clock, types, horizon=60.0):
    """Send ``types`` in order as fast as the pacer allows; return the send times."""
    times = []
    for ptype in types:
        waited = 0.0
        while not pacer.can_send(ptype):
            step = pacer.next_opening(ptype)
            assert step > 0
            clock.advance(step)
            waited += step
            assert waited < horizon, "pacer never opened"
        pacer.charge(ptype)
        times.append(clock.seconds())
    return times


class UnpacedTests(SynchronousTestCase):
    def test_rate_zero_lets_everything_through(self):
        clock = Clock()
        pacer = Pacer(clock, 0)
        self.assertFalse(pacer.paced)
        for _ in range(1000):
            self.assertTrue(pacer.can_send("tell"))
            pacer.charge("tell")
        self.assertEqual(pacer.next_opening("startup-req-3"), 0.0)

    def test_negative_rate_is_refused(self):
        self.assertRaises(ValueError, Pacer, Clock(), -1)


class PacedTests(SynchronousTestCase):
    def test_burst_then_rate(self):
        clock = Clock()
        clock.advance(100.5)
        pacer = Pacer(clock, 5)
        # The bucket starts full: five at once, then one every 0.2 s.
        for _ in range(5):
            self.assertTrue(pacer.can_send("tell"))
            pacer.charge("tell")
        self.assertFalse(pacer.can_send("tell"))
        self.assertAlmostEqual(pacer.next_opening("tell"), 0.2)
        clock.advance(0.1)
        self.assertFalse(pacer.can_send("tell"))
        self.assertAlmostEqual(pacer.next_opening("tell"), 0.1)
        clock.advance(0.1)
        self.assertTrue(pacer.can_send("tell"))
        self.assertEqual(pacer.next_opening("tell"), 0.0)

    def test_average_rate_over_a_long_run(self):
        clock = Clock()
        pacer = Pacer(clock, 4)
        times = drain(pacer, clock, ["tell"] * 404)
        # 4 in the initial burst, then 400 more at 4 a second.
        self.assertAlmostEqual(times[-1] - times[0], 100.0, places=3)

    def test_never_more_than_nine_weighted_units_in_one_second(self):
        clock = Clock()
        clock.advance(10.0)
        pacer = Pacer(clock, 50)  # far above the cap: only the cap holds it
        times = drain(pacer, clock, ["tell"] * 40)
        per_second = {}
        for t in times:
            per_second[int(t)] = per_second.get(int(t), 0) + 1
        self.assertEqual(max(per_second.values()), MAX_PER_SECOND)
        # The tenth waits for the next wall-clock second, not for a full second.
        self.assertEqual(times[MAX_PER_SECOND], 11.0)

    def test_cap_follows_wall_clock_seconds(self):
        clock = Clock()
        clock.advance(10.9)
        pacer = Pacer(clock, 50)
        for _ in range(MAX_PER_SECOND):
            pacer.charge("tell")
        self.assertFalse(pacer.can_send("tell"))
        self.assertAlmostEqual(pacer.next_opening("tell"), 0.1)
        clock.advance(0.1)  # now 11.0: a new second
        self.assertTrue(pacer.can_send("tell"))

    def test_startup_counts_six_and_channel_listen_nothing(self):
        clock = Clock()
        clock.advance(20.0)
        pacer = Pacer(clock, 50)
        pacer.charge("startup-req-3")
        for _ in range(3):
            self.assertTrue(pacer.can_send("tell"))
            pacer.charge("tell")
        self.assertFalse(pacer.can_send("tell"))
        # channel-listen weighs nothing: never held back, never charged.
        for _ in range(100):
            self.assertTrue(pacer.can_send("channel-listen"))
            pacer.charge("channel-listen")
        clock.advance(1.0)
        self.assertTrue(pacer.can_send("tell"))

    def test_startup_charged_regardless_makes_the_next_packet_wait(self):
        clock = Clock()
        pacer = Pacer(clock, 5)
        pacer.charge("startup-req-3")  # bucket 5 - 6 = -1
        self.assertFalse(pacer.can_send("tell"))
        self.assertAlmostEqual(pacer.next_opening("tell"), 0.4)
        clock.advance(0.4)
        self.assertTrue(pacer.can_send("tell"))

    def test_heavy_packet_waits_for_a_full_bucket_only(self):
        clock = Clock()
        pacer = Pacer(clock, 2)  # burst 2, startup weighs 6
        pacer.charge("tell")
        pacer.charge("tell")
        self.assertFalse(pacer.can_send("startup-req-3"))
        self.assertAlmostEqual(pacer.next_opening("startup-req-3"), 1.0)
        clock.advance(1.0)
        self.assertTrue(pacer.can_send("startup-req-3"))

    def test_small_rate_burst_is_one(self):
        clock = Clock()
        pacer = Pacer(clock, 0.5)
        self.assertEqual(pacer.burst, 1.0)
        pacer.charge("tell")
        self.assertAlmostEqual(pacer.next_opening("tell"), 2.0)

    def test_set_rate_takes_effect_at_once(self):
        clock = Clock()
        pacer = Pacer(clock, 1)
        pacer.charge("tell")
        self.assertAlmostEqual(pacer.next_opening("tell"), 1.0)
        pacer.set_rate(4)
        self.assertAlmostEqual(pacer.next_opening("tell"), 0.25)
        pacer.set_rate(0)
        self.assertTrue(pacer.can_send("tell"))

    def test_explicit_burst(self):
        clock = Clock()
        pacer = Pacer(clock, 2, burst=3)
        for _ in range(3):
            self.assertTrue(pacer.can_send("tell"))
            pacer.charge("tell")
        self.assertFalse(pacer.can_send("tell"))
        self.assertRaises(ValueError, Pacer, clock, 2, burst=0.5)


class PacerProperties(SynchronousTestCase):
    @settings(deadline=None, max_examples=150)
    @given(
        rate=st.floats(min_value=0.5, max_value=30.0),
        start=st.floats(min_value=0.0, max_value=1000.0),
        types=st.lists(st.sampled_from(["tell", "channel-m", "channel-listen", "startup-req-3", "who-req"]),
                       min_size=1, max_size=60),
    )
    def test_limits_always_hold(self, rate, start, types):
        clock = Clock()
        clock.advance(start)
        pacer = Pacer(clock, rate)
        weights = {"startup-req-3": 6, "channel-listen": 0}
        times = drain(pacer, clock, types, horizon=1000.0)
        per_second = {}
        for ptype, t in zip(types, times):
            per_second[int(t)] = per_second.get(int(t), 0) + weights.get(ptype, 1)
        self.assertLessEqual(max(per_second.values()), MAX_PER_SECOND)
        # Token bucket: over any run, units <= burst + rate * elapsed (+ the one
        # heavy packet allowed to overdraw when it is heavier than the bucket).
        total = sum(weights.get(t, 1) for t in types)
        overdraw = sum(max(0.0, weights.get(t, 1) - pacer.burst) for t in types)
        elapsed = times[-1] - start
        self.assertLessEqual(total, pacer.burst + rate * elapsed + overdraw + 1e-6)
        # Order is kept and each wait was reported honestly (times never go back).
        self.assertEqual(times, sorted(times))
