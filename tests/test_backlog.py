"""api/backlog.py and api/keylimits.py on their own: the events a session
keeps, and the per-key rate-limit buckets (test_sessions.py covers them
through SessionManager)."""

from collections import deque
from types import SimpleNamespace

from prometheus_client import CollectorRegistry
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3.api.backlog import EventBacklog
from intermud3.api.keylimits import KeyLimits
from intermud3.config import load_text, with_overrides
from intermud3.metrics import Metrics


class Connection:
    paused = False

    def __init__(self):
        self.sent = []

    def send_message(self, data):
        self.sent.append(data)


def session(connection=None):
    return SimpleNamespace(connection=connection, replay=None, queue=deque(), dropped=0)


class EventBacklogTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.metrics = Metrics(CollectorRegistry())
        self.backlog = EventBacklog(self.clock, self.metrics)
        self.backlog.configure(max_queue_size=2, queue_ttl=10.0)

    def count(self, metric, event="tell"):
        return self.metrics.registry.get_sample_value(
            f"intermud3_{metric}_total", {"event": event}) or 0

    def test_attached_gets_it_now(self):
        connection = Connection()
        s = session(connection)
        self.backlog.deliver(s, "tell", b"1")
        self.assertEqual(connection.sent, [b"1"])
        self.assertEqual(self.count("events_delivered"), 1)

    def test_detached_keeps_the_newest_within_the_size_bound(self):
        s = session()
        for n in range(3):
            self.backlog.deliver(s, "tell", b"%d" % n)
        self.assertEqual([data for _, _, data in s.queue], [b"1", b"2"])
        self.assertEqual(s.dropped, 1)
        self.assertEqual(self.count("events_dropped"), 1)

    def test_events_older_than_the_ttl_are_dropped_and_reported_on_replay(self):
        s = session()
        self.backlog.deliver(s, "tell", b"old")
        self.clock.advance(11)
        self.backlog.deliver(s, "tell", b"new")
        connection = Connection()
        s.connection = connection
        self.assertEqual(self.backlog.replay(s, connection), (1, 1))
        self.assertEqual(connection.sent, [b"new"])
        self.assertEqual(s.dropped, 0)

    def test_discard_counts_what_was_kept(self):
        s = session()
        self.backlog.deliver(s, "tell", b"1")
        self.backlog.discard(s)
        self.assertEqual(len(s.queue), 0)
        self.assertEqual(self.count("events_dropped"), 1)


def rate_limits(section):
    """An api.rate_limits section as loaded from YAML."""
    return with_overrides(load_text("mud: {name: OurMud}", environ={}), {"api.rate_limits": section}).api.rate_limits


class KeyLimitsTests(SynchronousTestCase):
    def key(self, key_id, rate_limit=None):
        return SimpleNamespace(key_id=key_id, rate_limit=rate_limit)

    def test_one_set_of_buckets_per_key(self):
        limits = KeyLimits(Clock())
        limits.configure(rate_limits({"default": {"per_minute": 60, "burst": 1}}))
        self.assertIs(limits.for_key(self.key("a")), limits.for_key(self.key("a")))
        self.assertIsNot(limits.for_key(self.key("a")), limits.for_key(self.key("b")))
        self.assertIsNone(limits.for_key(self.key("a")).take("who"))
        self.assertEqual(limits.for_key(self.key("a")).take("who"), 1.0)

    def test_reconfigure_forgets_keys_that_are_gone(self):
        limits = KeyLimits(Clock())
        limits.configure(rate_limits({}))
        first = limits.for_key(self.key("a"))
        limits.reconfigure(lambda key_id: None)
        self.assertIsNot(limits.for_key(self.key("a")), first)
