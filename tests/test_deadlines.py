"""deadlines.py: many deadlines on one timer."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3.outbound.deadlines import Deadlines


class DeadlinesTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.alive = set()
        self.fired = []
        self.deadlines = Deadlines(self.clock, self.alive, self.on_due)

    def on_due(self):
        self.deadlines.fired()
        self.fired.append(self.clock.seconds())

    def add(self, when, key):
        self.alive.add(key)
        self.deadlines.add(when, key)

    def test_one_timer_for_the_earliest(self):
        self.add(10, "a")
        self.add(5, "b")
        self.add(20, "c")
        calls = self.clock.getDelayedCalls()
        self.assertEqual([call.getTime() for call in calls], [5])

    def test_next_due_takes_live_keys_in_order_and_skips_gone_ones(self):
        self.add(1, "a")
        self.add(2, "b")
        self.add(3, "c")
        self.alive.discard("b")
        self.assertEqual(self.deadlines.next_due(2.5), "a")
        self.assertIsNone(self.deadlines.next_due(2.5))
        self.assertEqual(self.deadlines.next_due(3), "c")

    def test_schedule_skips_keys_that_left(self):
        self.add(1, "a")
        self.add(7, "b")
        self.alive.discard("a")
        self.clock.advance(1)
        self.assertEqual(self.fired, [1])
        self.deadlines.schedule()
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [7])

    def test_postpone_does_not_move_the_timer(self):
        self.add(4, "a")
        self.deadlines.postpone(1, "a")
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [4])
        self.assertEqual(self.deadlines.next_due(1), "a")

    def test_nothing_left_cancels_the_timer(self):
        self.add(4, "a")
        self.alive.clear()
        self.deadlines.schedule()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stop_cancels_and_keeps_it_off(self):
        self.add(4, "a")
        self.deadlines.stop()
        self.deadlines.add(2, "a")
        self.assertEqual(self.clock.getDelayedCalls(), [])
