"""Keys, rate limits, sessions, detach/expiry/replay (intermud3.api.keys,
ratelimit, sessions, and through SessionManager backlog and keylimits;
test_backlog.py has those two on their own)."""

import hashlib

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3.api import keys as keys_module
from intermud3.api.errors import NOT_AUTHENTICATED, SESSION_EXPIRED, RPCError
from intermud3.api.keys import KeyRing
from intermud3.api.ratelimit import TokenBucket
from intermud3.api.sessions import SessionManager
from intermud3.config import load_text, with_overrides
from intermud3.metrics import Metrics

START = 1_700_000_000.0


class FakeConnection:
    """The "API connections" surface of docs/ARCHITECTURE.md, recording calls."""

    def __init__(self, transport_name="tcp", peer="127.0.0.1:4242"):
        self.transport_name = transport_name
        self.peer = peer
        self.host = peer.rsplit(":", 1)[0]
        self.session = None
        self.sent = []
        self.closed = []

    def send_message(self, data):
        assert isinstance(data, bytes)
        self.sent.append(data)

    def close(self, reason):
        self.closed.append(reason)


def make_config(keys=None, *, enabled=True, session=None, default=None, by_method=None):
    if keys is None:
        keys = [{"key": "secret-one", "mud_name": "OurMud", "permissions": ["*"], "rate_limit": None}]
    overrides = {"api.auth.enabled": enabled, "api.auth.api_keys": keys,
                 "api.rate_limits.by_method": by_method or {}}
    if default is not None:
        overrides["api.rate_limits.default"] = default
    for key, value in (session or {}).items():
        overrides[f"api.session.{key}"] = value
    return with_overrides(load_text("mud: {name: OurMud}", environ={}), overrides)


def make_keys(keys=None):
    return make_config(keys).api.auth.api_keys


def make_clock():
    clock = Clock()
    clock.advance(START)
    return clock


def sample(metric, **labels):
    series = metric.labels(**labels)
    # prometheus_client's own metrics, or metrics.ReactorCounter's plain ones
    return series._value.get() if hasattr(series, "_value") else series.value


class KeyRingTests(SynchronousTestCase):
    def test_plain_key_matches(self):
        ring = KeyRing(make_keys())
        info = ring.match("secret-one")
        self.assertEqual(info.mud_name, "OurMud")
        self.assertEqual(info.permissions, frozenset({"*"}))
        self.assertIsNone(ring.match("secret-two"))
        self.assertIsNone(ring.match(""))
        self.assertIsNone(ring.match(None))
        self.assertIsNone(ring.match(12))

    def test_sha256_key_matches_its_preimage(self):
        digest = hashlib.sha256(b"hidden-key").hexdigest()
        ring = KeyRing(make_keys([{"key": "sha256:" + digest.upper(), "mud_name": "OurMud",
                                     "permissions": ["info"]}]))
        self.assertEqual(ring.match("hidden-key").permissions, frozenset({"info"}))
        # The digest itself is not the key.
        self.assertIsNone(ring.match("sha256:" + digest))
        self.assertIsNone(ring.match(digest))

    def test_key_id_is_a_digest_prefix_not_the_key(self):
        ring = KeyRing(make_keys())
        info = ring.match("secret-one")
        self.assertEqual(info.key_id, hashlib.sha256(b"secret-one").hexdigest()[:8])
        self.assertNotIn("secret", repr(info))
        self.assertIs(ring.by_id(info.key_id), info)

    def test_same_key_id_plain_or_hashed(self):
        plain = KeyRing(make_keys()).match("secret-one").key_id
        hashed = KeyRing(make_keys([{"key": "sha256:" + hashlib.sha256(b"secret-one").hexdigest(),
                                       "mud_name": "OurMud", "permissions": ["*"]}])).match("secret-one").key_id
        self.assertEqual(plain, hashed)

    def test_bad_sha256_key_refused(self):
        for bad in ("sha256:xyz", "sha256:abcd"):
            self.assertRaises(ValueError, KeyRing, make_keys([{"key": bad, "mud_name": "OurMud",
                                                                 "permissions": ["*"]}]))

    def test_comparison_is_constant_time_over_every_key(self):
        calls = []

        def spy(a, b):
            calls.append((a, b))
            return a == b

        self.patch(keys_module, "compare_digest", spy)
        keys = [{"key": f"key-{n}", "mud_name": "OurMud", "permissions": ["*"]} for n in range(3)]
        ring = KeyRing(make_keys(keys))
        self.assertEqual(ring.match("key-0").key_id, hashlib.sha256(b"key-0").hexdigest()[:8])
        # Every key is compared, even after the first one matched.
        self.assertEqual(len(calls), 3)
        self.assertTrue(all(len(a) == 32 and len(b) == 32 for a, b in calls))


class TokenBucketTests(SynchronousTestCase):
    def test_burst_then_refill(self):
        clock = make_clock()
        bucket = TokenBucket(60, 2, clock)  # one token a second
        self.assertEqual(bucket.wait(), 0)
        bucket.spend()
        bucket.spend()
        self.assertAlmostEqual(bucket.wait(), 1.0)
        clock.advance(0.5)
        self.assertAlmostEqual(bucket.wait(), 0.5)
        clock.advance(0.5)
        self.assertEqual(bucket.wait(), 0)
        clock.advance(100)
        for _ in range(2):
            self.assertEqual(bucket.wait(), 0)
            bucket.spend()
        self.assertGreater(bucket.wait(), 0)  # never more than burst

    def test_bad_limits_refused(self):
        self.assertRaises(ValueError, TokenBucket, 0, 5, make_clock())
        self.assertRaises(ValueError, TokenBucket, 10, 0, make_clock())


class SessionRateLimitTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        self.manager = SessionManager(make_config(default={"per_minute": 60, "burst": 3},
                                                  by_method={"tell": {"per_minute": 6, "burst": 1}}),
                                      self.clock)
        self.connection = FakeConnection()
        self.manager.authenticate(self.connection, "secret-one")
        self.session = self.connection.session

    def test_default_bucket(self):
        for _ in range(3):
            self.assertIsNone(self.session.take_token("who"))
        self.assertEqual(self.session.take_token("who"), 1.0)
        self.clock.advance(0.25)
        self.assertEqual(self.session.take_token("who"), 0.8)  # 0.75 rounded up to a tenth
        self.clock.advance(0.75)
        self.assertIsNone(self.session.take_token("who"))

    def test_method_override_needs_both_buckets(self):
        self.assertIsNone(self.session.take_token("tell"))
        # tell's own bucket (1 burst, 6/min) is empty: 10 s to the next token.
        self.assertEqual(self.session.take_token("tell"), 10.0)
        # A refused call takes nothing from the default bucket: 2 left.
        self.assertIsNone(self.session.take_token("who"))
        self.assertIsNone(self.session.take_token("who"))
        self.assertEqual(self.session.take_token("who"), 1.0)
        self.clock.advance(10)
        # tell has a token again and the default bucket refilled too.
        self.assertIsNone(self.session.take_token("tell"))

    def test_override_cannot_exceed_session_budget(self):
        for _ in range(3):
            self.session.take_token("who")
        self.clock.advance(10)  # tell bucket full, default bucket full again (3)
        for _ in range(3):
            self.session.take_token("who")
        self.assertEqual(self.session.take_token("tell"), 1.0)

    def test_sessions_of_one_key_share_its_buckets(self):
        # API.md "Sessions": limits are per key, so more sessions gain nothing.
        others = []
        for _ in range(4):
            connection = FakeConnection()
            self.manager.authenticate(connection, "secret-one")
            others.append(connection.session)
        self.assertEqual(len({s.id for s in others + [self.session]}), 5)
        self.assertIsNone(others[0].take_token("tell"))
        for session in others[1:] + [self.session]:
            self.assertEqual(session.take_token("tell"), 10.0)

    def test_keys_have_buckets_of_their_own(self):
        manager = SessionManager(make_config(
            [{"key": "k1", "mud_name": "OurMud", "permissions": ["*"], "rate_limit": None},
             {"key": "k2", "mud_name": "OurMud", "permissions": ["*"], "rate_limit": None}],
            default={"per_minute": 60, "burst": 1}), self.clock)
        one, two = FakeConnection(), FakeConnection()
        manager.authenticate(one, "k1")
        manager.authenticate(two, "k2")
        self.assertIsNone(one.session.take_token("who"))
        self.assertIsNone(two.session.take_token("who"))
        self.assertEqual(one.session.take_token("who"), 1.0)

    def test_key_rate_limit_overrides_default(self):
        manager = SessionManager(make_config([{"key": "k", "mud_name": "OurMud", "permissions": ["*"],
                                               "rate_limit": {"per_minute": 600, "burst": 1}}]), self.clock)
        connection = FakeConnection()
        manager.authenticate(connection, "k")
        self.assertIsNone(connection.session.take_token("who"))
        self.assertEqual(connection.session.take_token("who"), 0.1)


class AuthenticateTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        keys = [{"key": "secret-one", "mud_name": "OurMud", "permissions": ["*"]},
                {"key": "secret-two", "mud_name": "OurMud", "permissions": ["info"]}]
        self.manager = SessionManager(make_config(keys), self.clock)

    def test_new_session(self):
        connection = FakeConnection()
        result = self.manager.authenticate(connection, "secret-one")
        self.assertEqual(set(result), {"status", "mud_name", "session_id", "resumed", "replayed", "dropped"})
        self.assertEqual(result["status"], "authenticated")
        self.assertEqual(result["mud_name"], "OurMud")
        self.assertFalse(result["resumed"])
        self.assertEqual((result["replayed"], result["dropped"]), (0, 0))
        session = connection.session
        self.assertEqual(session.id, result["session_id"])
        self.assertIs(session.connection, connection)
        self.assertTrue(session.attached)
        self.assertTrue(session.has_permission("admin"))
        self.assertIs(self.manager.get(session.id), session)
        self.assertEqual(self.manager.count(), 1)
        self.assertEqual(session.created_at, START)

    def test_session_ids_are_long_and_random(self):
        ids = set()
        for _ in range(20):
            connection = FakeConnection()
            ids.add(self.manager.authenticate(connection, "secret-one")["session_id"])
        self.assertEqual(len(ids), 20)
        # token_urlsafe(24): 24 random bytes = 192 bits, 32 characters.
        self.assertTrue(all(len(i) >= 22 for i in ids))

    def test_bad_key(self):
        connection = FakeConnection()
        with self.assertRaises(RPCError) as caught:
            self.manager.authenticate(connection, "wrong")
        self.assertEqual(caught.exception.code, NOT_AUTHENTICATED)
        self.assertIsNone(connection.session)
        self.assertEqual(self.manager.count(), 0)

    def test_again_on_authenticated_connection_is_success(self):
        connection = FakeConnection()
        first = self.manager.authenticate(connection, "secret-one")
        again = self.manager.authenticate(connection, "secret-one")
        self.assertEqual(again, {**first, "status": "success"})
        self.assertEqual(self.manager.count(), 1)

    def test_permissions_limited(self):
        connection = FakeConnection()
        self.manager.authenticate(connection, "secret-two")
        self.assertTrue(connection.session.has_permission("info"))
        self.assertFalse(connection.session.has_permission("tell"))
        self.assertTrue(connection.session.has_permission(None))

    def test_unknown_session_id(self):
        with self.assertRaises(RPCError) as caught:
            self.manager.authenticate(FakeConnection(), "secret-one", "no-such-session")
        self.assertEqual(caught.exception.code, SESSION_EXPIRED)

    def test_session_bound_to_its_key(self):
        first = FakeConnection()
        session_id = self.manager.authenticate(first, "secret-one")["session_id"]
        self.manager.detach(first)
        with self.assertRaises(RPCError) as caught:
            self.manager.authenticate(FakeConnection(), "secret-two", session_id)
        self.assertEqual(caught.exception.code, SESSION_EXPIRED)
        # and via restore_session
        other = FakeConnection()
        self.manager.authenticate(other, "secret-two")
        with self.assertRaises(RPCError) as caught:
            self.manager.restore_session(other, session_id)
        self.assertEqual(caught.exception.code, SESSION_EXPIRED)
        self.assertFalse(self.manager.get(session_id).attached)

    def test_restore_needs_authentication(self):
        with self.assertRaises(RPCError) as caught:
            self.manager.restore_session(FakeConnection(), "whatever")
        self.assertEqual(caught.exception.code, NOT_AUTHENTICATED)


class DetachReplayTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        self.metrics = Metrics(CollectorRegistry())
        self.ended = []
        self.manager = SessionManager(
            make_config(session={"timeout": 600, "max_queue_size": 3, "queue_ttl": 100}),
            self.clock, metrics=self.metrics)
        self.manager.on_session_end.append(self.ended.append)
        self.connection = FakeConnection()
        self.session_id = self.manager.authenticate(self.connection, "secret-one")["session_id"]
        self.session = self.connection.session

    def test_attached_delivery(self):
        self.manager.deliver(self.session, "tell_received", b"one")
        self.assertEqual(self.connection.sent, [b"one"])
        self.assertEqual(sample(self.metrics.events_delivered, event="tell_received"), 1)

    def test_detach_keeps_channels_and_events_then_replays_in_order(self):
        self.session.channels.add("imud_gossip")
        self.manager.detach(self.connection)
        self.assertIsNone(self.connection.session)
        self.assertFalse(self.session.attached)
        self.assertEqual(self.session.detached_at, START)
        self.assertEqual(self.session.channels, {"imud_gossip"})
        for n in range(3):
            self.manager.deliver(self.session, "channel_message", b"e%d" % n)
        self.assertEqual(self.connection.sent, [])

        new = FakeConnection()
        result = self.manager.authenticate(new, "secret-one", self.session_id)
        self.assertEqual(result, {"status": "authenticated", "mud_name": "OurMud", "session_id": self.session_id,
                                  "resumed": True, "replayed": 3, "dropped": 0})
        self.assertEqual(new.sent, [b"e0", b"e1", b"e2"])
        self.assertIs(new.session, self.session)
        # New events follow the replayed ones.
        self.manager.deliver(self.session, "channel_message", b"e3")
        self.assertEqual(new.sent[-1], b"e3")
        self.assertEqual(self.session.channels, {"imud_gossip"})

    def test_queue_size_bound_drops_oldest_and_reports(self):
        self.manager.detach(self.connection)
        for n in range(5):
            self.manager.deliver(self.session, "tell_received", b"e%d" % n)
        new = FakeConnection()
        result = self.manager.authenticate(new, "secret-one", self.session_id)
        self.assertEqual((result["replayed"], result["dropped"]), (3, 2))
        self.assertEqual(new.sent, [b"e2", b"e3", b"e4"])
        self.assertEqual(sample(self.metrics.events_dropped, event="tell_received"), 2)
        self.assertEqual(sample(self.metrics.events_delivered, event="tell_received"), 3)

    def test_queue_ttl_drops_old_events_on_replay(self):
        self.manager.detach(self.connection)
        self.manager.deliver(self.session, "tell_received", b"old")
        self.clock.advance(60)
        self.manager.deliver(self.session, "tell_received", b"new")
        self.clock.advance(60)  # "old" is 120 s old, past queue_ttl 100
        new = FakeConnection()
        result = self.manager.authenticate(new, "secret-one", self.session_id)
        self.assertEqual((result["replayed"], result["dropped"]), (1, 1))
        self.assertEqual(new.sent, [b"new"])

    def test_overflow_during_replay_keeps_order(self):
        """A transport that drops itself mid-replay gives back what it held
        (through deliver); the unsent rest must come after it."""
        manager = self.manager

        class OverflowingConnection(FakeConnection):
            def send_message(self, data):
                self.sent.append(data)
                if len(self.sent) == 2:  # buffer "full" after two messages
                    held, self.sent = self.sent, []
                    session = self.session
                    manager.detach(self)
                    for item in held:
                        manager.deliver(session, "tell_received", item)

        self.manager.detach(self.connection)
        for n in range(3):
            self.manager.deliver(self.session, "tell_received", b"e%d" % n)
        flaky = OverflowingConnection()
        self.manager.authenticate(flaky, "secret-one", self.session_id)
        self.assertFalse(self.session.attached)
        self.assertEqual([data for _, _, data in self.session.queue], [b"e0", b"e1", b"e2"])
        new = FakeConnection()
        self.manager.authenticate(new, "secret-one", self.session_id)
        self.assertEqual(new.sent, [b"e0", b"e1", b"e2"])

    def test_replay_waits_while_the_connection_is_paused(self):
        class SlowConnection(FakeConnection):
            """Pauses after every two messages, as a full transport would."""
            paused = False

            def __init__(self):
                super().__init__()
                self.waiters = []

            def send_message(self, data):
                super().send_message(data)
                self.paused = len(self.sent) % 2 == 0

            def when_writable(self):
                d = Deferred()
                self.waiters.append(d)
                return d

            def resume(self):
                self.paused = False
                waiters, self.waiters = self.waiters, []
                for d in waiters:
                    d.callback(None)

        self.manager.detach(self.connection)
        for n in range(3):
            self.manager.deliver(self.session, "tell_received", b"e%d" % n)
        slow = SlowConnection()
        result = self.manager.authenticate(slow, "secret-one", self.session_id)
        self.assertNoResult(result)
        self.assertEqual(slow.sent, [b"e0", b"e1"])
        self.manager.deliver(self.session, "tell_received", b"new")   # waits behind the replay
        self.assertEqual(slow.sent, [b"e0", b"e1"])
        slow.resume()
        self.assertEqual(slow.sent, [b"e0", b"e1", b"e2", b"new"])
        self.assertEqual(self.successResultOf(result)["replayed"], 4)
        self.manager.deliver(self.session, "tell_received", b"later")
        self.assertEqual(slow.sent[-1], b"later")

    def test_a_replay_cut_short_leaves_the_rest_in_the_session(self):
        class StuckConnection(FakeConnection):
            paused = True

            def when_writable(self):
                self.waiter = Deferred()
                return self.waiter

        self.manager.detach(self.connection)
        for n in range(3):
            self.manager.deliver(self.session, "tell_received", b"e%d" % n)
        stuck = StuckConnection()
        result = self.manager.authenticate(stuck, "secret-one", self.session_id)
        self.assertEqual(stuck.sent, [])
        self.manager.detach(stuck)      # the connection is lost while paused
        stuck.waiter.callback(None)
        self.successResultOf(result)
        new = FakeConnection()
        replay = self.manager.authenticate(new, "secret-one", self.session_id)
        self.assertEqual(new.sent, [b"e0", b"e1", b"e2"])
        self.assertEqual(replay["replayed"], 3)

    def test_dropped_count_resets_after_report(self):
        self.manager.detach(self.connection)
        for n in range(4):
            self.manager.deliver(self.session, "tell_received", b"e%d" % n)
        new = FakeConnection()
        self.assertEqual(self.manager.authenticate(new, "secret-one", self.session_id)["dropped"], 1)
        self.manager.detach(new)
        newer = FakeConnection()
        self.assertEqual(self.manager.authenticate(newer, "secret-one", self.session_id)["dropped"], 0)

    def test_restore_session_on_authenticated_connection(self):
        self.manager.detach(self.connection)
        self.manager.deliver(self.session, "tell_received", b"kept")
        new = FakeConnection()
        fresh = self.manager.authenticate(new, "secret-one")["session_id"]
        result = self.manager.restore_session(new, self.session_id)
        self.assertEqual(result, {"status": "authenticated", "mud_name": "OurMud", "session_id": self.session_id,
                                  "resumed": True, "replayed": 1, "dropped": 0})
        self.assertEqual(new.sent, [b"kept"])
        self.assertIs(new.session, self.session)
        # The throwaway session the connection held ends at once.
        self.assertIsNone(self.manager.get(fresh))
        self.assertEqual([s.id for s in self.ended], [fresh])
        self.assertEqual(new.closed, [])

    def test_expiry_after_timeout(self):
        self.session.channels.add("imud_code")
        self.manager.detach(self.connection)
        self.clock.advance(599)
        self.assertIs(self.manager.get(self.session_id), self.session)
        self.clock.advance(1)
        self.assertIsNone(self.manager.get(self.session_id))
        self.assertEqual(self.ended, [self.session])
        with self.assertRaises(RPCError) as caught:
            self.manager.authenticate(FakeConnection(), "secret-one", self.session_id)
        self.assertEqual(caught.exception.code, SESSION_EXPIRED)

    def test_reattach_cancels_expiry(self):
        self.manager.detach(self.connection)
        self.clock.advance(500)
        new = FakeConnection()
        self.manager.authenticate(new, "secret-one", self.session_id)
        self.clock.advance(200)
        self.assertIs(self.manager.get(self.session_id), self.session)
        self.assertEqual(self.ended, [])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_detach_after_stop_starts_no_timer(self):
        # A connection whose close was in flight when the gateway stopped.
        self.manager.stop()
        self.manager.detach(self.connection)
        self.assertFalse(self.session.attached)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_attach_while_attached_elsewhere_closes_old(self):
        new = FakeConnection()
        result = self.manager.authenticate(new, "secret-one", self.session_id)
        self.assertTrue(result["resumed"])
        self.assertEqual(len(self.connection.closed), 1)
        self.assertIsNone(self.connection.session)
        self.assertIs(self.session.connection, new)
        # The old connection's late detach does not detach the session.
        self.manager.detach(self.connection)
        self.assertIs(self.session.connection, new)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_detach_unauthenticated_connection_is_harmless(self):
        self.manager.detach(FakeConnection())
        self.assertEqual(self.manager.count(), 1)

    def test_detached_sessions_bounded_by_max_connections(self):
        # A MUD reconnecting in a loop without its session_id: the sessions
        # detached longest end first, and a reload applies a smaller bound.
        config = make_config(session={"timeout": 600, "max_queue_size": 3, "queue_ttl": 100})
        config = with_overrides(config, {"api.max_connections": 2})
        self.manager.reconfigure(config)
        left = []
        for _ in range(4):
            connection = FakeConnection()
            self.manager.authenticate(connection, "secret-one")
            left.append(connection.session)
            self.clock.advance(1)
            self.manager.detach(connection)
        self.assertEqual(self.manager.detached_count(), 2)
        self.assertEqual([s for s in left if self.manager.is_live(s)], left[2:])
        self.assertEqual(self.ended, left[:2])
        config = with_overrides(config, {"api.max_connections": 1})
        self.manager.reconfigure(config)
        self.assertEqual([s for s in left if self.manager.is_live(s)], left[3:])
        self.assertTrue(self.manager.is_live(self.session))   # attached: never ended

    def test_counts(self):
        other = FakeConnection()
        self.manager.authenticate(other, "secret-one")
        self.manager.detach(other)
        self.assertEqual((self.manager.count(), self.manager.attached_count(), self.manager.detached_count()),
                         (2, 1, 1))
        self.assertEqual(len(self.manager.sessions()), 2)


class AuthDisabledTests(SynchronousTestCase):
    def test_connections_authenticated_on_open(self):
        manager = SessionManager(make_config([], enabled=False), make_clock())
        connection = FakeConnection()
        session = manager.connection_opened(connection)
        self.assertIs(connection.session, session)
        self.assertEqual(session.mud_name, "OurMud")
        self.assertTrue(session.has_permission("admin"))
        result = manager.authenticate(connection, "anything at all")
        self.assertEqual(result["session_id"], session.id)

    def test_first_authenticate_says_authenticated_then_success(self):
        """The connection is authenticated on open, but a client that calls
        authenticate waits for "authenticated" (the older gateway's C client
        does); only a repeated call is "success"."""
        manager = SessionManager(make_config([], enabled=False), make_clock())
        connection = FakeConnection()
        session = manager.connection_opened(connection)
        first = manager.authenticate(connection, "anything at all")
        self.assertEqual((first["status"], first["session_id"]), ("authenticated", session.id))
        again = manager.authenticate(connection, "whatever")
        self.assertEqual(again, {**first, "status": "success"})

    def test_connection_opened_does_nothing_with_auth(self):
        manager = SessionManager(make_config(), make_clock())
        connection = FakeConnection()
        self.assertIsNone(manager.connection_opened(connection))
        self.assertIsNone(connection.session)


class ReconfigureTests(SynchronousTestCase):
    def setUp(self):
        self.clock = make_clock()
        self.keys = [{"key": "secret-one", "mud_name": "OurMud", "permissions": ["*"]},
                     {"key": "secret-two", "mud_name": "OurMud", "permissions": ["info"]}]
        self.manager = SessionManager(make_config(self.keys), self.clock)
        self.ended = []
        self.manager.on_session_end.append(self.ended.append)

    def test_removed_key_ends_its_sessions(self):
        one, two = FakeConnection(), FakeConnection()
        self.manager.authenticate(one, "secret-one")
        self.manager.authenticate(two, "secret-two")
        session_two = two.session
        detached = FakeConnection()
        self.manager.authenticate(detached, "secret-two")
        self.manager.detach(detached)
        self.manager.reconfigure(make_config(self.keys[:1]))
        self.assertEqual(self.manager.count(), 1)
        self.assertEqual(len(self.ended), 2)
        self.assertIn(session_two, self.ended)
        self.assertEqual(len(two.closed), 1)
        self.assertIsNone(two.session)
        self.assertIsNotNone(one.session)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_changed_permissions_apply_at_once(self):
        connection = FakeConnection()
        self.manager.authenticate(connection, "secret-two")
        self.assertFalse(connection.session.has_permission("tell"))
        keys = [self.keys[0], {**self.keys[1], "permissions": ["info", "tell"]}]
        self.manager.reconfigure(make_config(keys))
        self.assertTrue(connection.session.has_permission("tell"))

    def test_remove_key_sessions(self):
        connection = FakeConnection()
        self.manager.authenticate(connection, "secret-one")
        self.manager.remove_key_sessions(connection.session.key_id)
        self.assertEqual(self.manager.count(), 0)
        self.assertEqual(len(connection.closed), 1)
