"""The router link's backoff policy and router rotation, alone (no I/O)."""

import dataclasses

from twisted.trial.unittest import SynchronousTestCase

from intermud3.config import BackoffConfig
from intermud3.link.backoff import backoff_policy, configured_policy
from intermud3.link.rotation import MAX_LEARNED_ROUTERS, RouterRotation


class BackoffPolicyTests(SynchronousTestCase):
    def test_grows_by_factor_up_to_the_maximum(self):
        policy = backoff_policy(1, 30, 2, jitter=False)
        self.assertEqual([policy(n) for n in range(1, 9)], [1, 2, 4, 8, 16, 30, 30, 30])

    def test_a_huge_failure_count_is_the_maximum(self):
        policy = backoff_policy(1, 300, 10, jitter=False)
        self.assertEqual(policy(10 ** 6), 300)

    def test_equal_jitter_lies_between_half_and_all_of_the_delay(self):
        for draw, expected in ((0.0, [0.5, 1, 2, 4]), (0.999999, [1, 2, 4, 8])):
            policy = backoff_policy(1, 30, 2, jitter=True, random=lambda: draw)
            for failures, want in enumerate(expected, 1):
                self.assertAlmostEqual(policy(failures), want, places=4)

    def test_configured_policy_reads_the_settings_each_time(self):
        settings = BackoffConfig(initial=1, max=30, factor=2, jitter=False)
        policy = configured_policy(lambda: settings)
        self.assertEqual(policy(3), 4)
        settings = dataclasses.replace(settings, initial=3, factor=3)
        self.assertEqual(policy(3), 27)
        settings = dataclasses.replace(settings, jitter=True)
        self.assertAlmostEqual(configured_policy(lambda: settings, random=lambda: 0.5)(1), 2.25)


def routers(*names):
    return [{"name": name, "host": "h", "port": 1, "tls": False} for name in names]


class RotationTests(SynchronousTestCase):
    def test_failures_walk_the_list_round(self):
        rotation = RouterRotation(routers("*a", "*b", "*c"))
        self.assertEqual(rotation.first()["name"], "*a")
        self.assertEqual([rotation.failed()["name"] for _ in range(4)], ["*b", "*c", "*a", "*b"])
        self.assertEqual(rotation.current()["name"], "*b")

    def test_the_configured_list_is_copied(self):
        configured = routers("*a")
        rotation = RouterRotation(configured)
        rotation.current()["host"] = "changed"
        self.assertEqual(configured[0]["host"], "h")

    def test_redirect_once_until_the_next_failure_or_choice(self):
        rotation = RouterRotation(routers("*a", "*b"))
        self.assertEqual(rotation.redirect("*a", routers("*b", "*a")), rotation.named("*b"))
        self.assertEqual(rotation.current()["name"], "*b")
        self.assertIsNone(rotation.redirect("*b", routers("*a")))     # no ping-pong
        rotation.failed()
        self.assertEqual(rotation.redirect("*a", routers("*b"))["name"], "*b")
        rotation.choose(rotation.named("*a"))
        self.assertEqual(rotation.redirect("*a", routers("*b"))["name"], "*b")

    def test_no_redirect_to_where_we_are_or_on_an_empty_list(self):
        rotation = RouterRotation(routers("*a"))
        self.assertIsNone(rotation.redirect("*a", routers("*a", "*b")))
        self.assertIsNone(rotation.redirect("*a", []))

    def test_an_unknown_router_joins_when_chosen_or_redirected_to(self):
        rotation = RouterRotation(routers("*a"))
        far = {"name": "*far", "host": "10.0.0.9", "port": 9000, "tls": False}
        self.assertEqual(rotation.redirect("*a", [far]), far)
        self.assertEqual([r["name"] for r in rotation.routers], ["*a", "*far"])
        self.assertEqual(rotation.choose({"name": "*new", "host": "x", "port": 2})["name"], "*new")
        self.assertEqual(len(rotation), 3)

    def test_learning_is_bounded_and_skips_known_names(self):
        rotation = RouterRotation(routers("*a"))
        rotation.learn(routers("*a", *[f"*r{i}" for i in range(50)]))
        self.assertEqual(len(rotation), 1 + MAX_LEARNED_ROUTERS)
        rotation.learn(routers("*more"))
        self.assertIsNone(rotation.named("*more"))

    def test_redirects_to_unknown_routers_share_the_learning_bound(self):
        # A router that names a new "preferred" router on every startup
        # cannot grow the rotation without bound.
        rotation = RouterRotation(routers("*a"))
        for i in range(MAX_LEARNED_ROUTERS + 5):
            rotation.first()
            target = rotation.redirect("*a", routers(f"*new{i}"))
            if i < MAX_LEARNED_ROUTERS:
                self.assertEqual(target["name"], f"*new{i}")
            else:
                self.assertIsNone(target)
        self.assertEqual(len(rotation), 1 + MAX_LEARNED_ROUTERS)
        self.assertEqual(rotation.choose(routers("*other")[0])["name"], "*a")
        self.assertEqual(len(rotation), 1 + MAX_LEARNED_ROUTERS)

    def test_reset_starts_over_on_a_new_list(self):
        rotation = RouterRotation(routers("*a", "*b"))
        rotation.learn(routers("*x"))
        rotation.failed()
        rotation.reset(routers("*c"))
        self.assertEqual([r["name"] for r in rotation.routers], ["*c"])
        self.assertEqual(rotation.current()["name"], "*c")
        rotation.learn(routers(*[f"*r{i}" for i in range(MAX_LEARNED_ROUTERS)]))
        self.assertEqual(len(rotation), 1 + MAX_LEARNED_ROUTERS)
