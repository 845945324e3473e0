"""The harness's waits on events: they fire after the event, on the next
turn of the clock, and fail after their timeout saying what they waited for."""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3.testing.client import EventInbox
from tests.integration.process import Child
from tests.integration.waits import when


class Observed:
    """An observer list and a value, like the link's on_state and state."""

    def __init__(self):
        self.observers = []
        self.value = 0

    def subscribe(self, wake):
        self.observers.append(wake)
        return lambda: self.observers.remove(wake)

    def change(self, value):
        self.value = value
        for observer in list(self.observers):
            observer(value)


class WhenTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.observed = Observed()

    def wait_for(self, wanted, timeout=5.0):
        return when(lambda: self.observed.value == wanted and wanted, self.observed.subscribe,
                    f"value {wanted}", timeout, clock=self.clock)

    def test_true_at_once_fires_at_once_and_unsubscribes(self):
        self.observed.value = 3
        self.assertEqual(self.successResultOf(self.wait_for(3)), 3)   # what check() gave
        self.assertEqual(self.observed.observers, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_fires_on_the_turn_after_the_event(self):
        d = self.wait_for(2)
        self.observed.change(1)
        self.clock.advance(0)
        self.assertNoResult(d)
        self.observed.change(2)
        self.assertNoResult(d)          # not inside the observer call
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(self.observed.observers, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_many_events_in_one_turn_check_once(self):
        checks = []

        def check():
            checks.append(self.observed.value)
            return self.observed.value == 5

        d = when(check, self.observed.subscribe, "five", clock=self.clock)
        for value in range(1, 6):
            self.observed.change(value)
        self.clock.advance(0)
        self.successResultOf(d)
        self.assertEqual(checks, [0, 5])

    def test_times_out_naming_what_it_waited_for(self):
        d = self.wait_for(7, timeout=2)
        self.clock.advance(1.9)
        self.assertNoResult(d)
        self.clock.advance(0.1)
        failure = self.failureResultOf(d, AssertionError)
        self.assertEqual(str(failure.value), "value 7: not within 2s")
        self.assertEqual(self.observed.observers, [])

    def test_a_check_that_raises_fails_the_wait(self):
        def broken():
            raise KeyError("gone")

        d = when(broken, self.observed.subscribe, "broken", clock=self.clock)
        self.failureResultOf(d, KeyError)
        self.assertEqual(self.observed.observers, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class WaitCountTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.inbox = EventInbox(self.clock)

    def event(self, method, n):
        self.inbox.add({"method": method, "params": {"n": n}})

    def test_fires_with_the_first_count_events_and_keeps_them(self):
        d = self.inbox.wait_count("tick", 2)
        self.event("tick", 1)
        self.event("other", 0)
        self.assertNoResult(d)
        self.event("tick", 2)
        self.assertEqual(self.successResultOf(d), [{"n": 1}, {"n": 2}])
        self.assertEqual(self.inbox.names(), ["tick", "other", "tick"])

    def test_times_out_with_how_many_came(self):
        d = self.inbox.wait_count("tick", 3, timeout=1)
        self.event("tick", 1)
        self.clock.advance(1)
        failure = self.failureResultOf(d, AssertionError)
        self.assertIn("1 of 3 tick", str(failure.value))


class WaitOutputTests(SynchronousTestCase):
    def test_fires_once_the_text_arrived_across_reads(self):
        child = Child()
        d = child.wait_output("Gateway started")
        child.errReceived(b"... Gateway sta")
        self.assertNoResult(d)
        child.errReceived(b"rted for X\n")
        self.successResultOf(d)

    def test_stdout_only_ignores_stderr(self):
        child = Child()
        d = child.wait_output("ready", stdout_only=True)
        child.errReceived(b"ready\n")
        self.assertNoResult(d)
        child.outReceived(b"ready\n")
        self.successResultOf(d)

    def test_the_process_ending_first_fails_the_wait(self):
        from twisted.internet.error import ProcessDone
        from twisted.python.failure import Failure

        child = Child()
        d = child.wait_output("never")
        child.processEnded(Failure(ProcessDone(0)))
        failure = self.failureResultOf(d, AssertionError)
        self.assertIn("ended", str(failure.value))
