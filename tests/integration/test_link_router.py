"""RouterLink against the in-repo I3Router over loopback TCP, real StateStore."""

import shutil
import struct
import tempfile

import yaml

from twisted.internet import defer, reactor
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from intermud3.link import RouterLink, persist
from intermud3.lists import NetworkLists
from intermud3.metrics import Metrics
from intermud3.mudmode import frame
from intermud3.state import StateStore
from intermud3.testing.router import I3Router
from intermud3.config import load_text
from tests.integration.harness import wait_until
from tests.integration.waits import link_sees

MUD = "LinkTest"
TIMEOUT = 10


def link_config(routers, state_dir, mud=MUD, **router_section):
    """A validated config with short timings, pointing at loopback routers."""
    timings = {
        "connect_timeout": 2, "handshake_timeout": 1,
        "backoff": {"initial": 0.05, "max": 0.2, "factor": 2, "jitter": False},
        "keepalive_interval": 60, "keepalive_timeout": 10, "send_rate": 0,
    }
    timings.update(router_section)
    raw = {
        "mud": {"name": mud, "port": 4000},
        "routers": [{"name": r.name, "host": "127.0.0.1", "port": r.port} for r in routers],
        "router": timings,
        "state": {"directory": state_dir},
    }
    return load_text(yaml.safe_dump(raw), environ={})


def wait_state(link, state, timeout=TIMEOUT, count=1):
    """Fire once ``link`` has entered ``state`` ``count`` more times."""
    d = defer.Deferred()
    seen = []

    def observer(new_state, reason):
        if new_state == state and not d.called:
            seen.append(reason)
            if len(seen) >= count:
                link.on_state.remove(observer)
                d.callback(reason)
    link.on_state.append(observer)
    d.addTimeout(timeout, reactor)
    return d


class LinkRouterCase(TestCase):
    def tempdir(self):
        # Private and removed afterwards: nothing is left in the work tree.
        directory = tempfile.mkdtemp(prefix="i3link-test-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        return directory

    def router(self, name="*test", **kwargs):
        router = I3Router(name, **kwargs)
        router.listen(reactor, 0, "127.0.0.1")
        self.addCleanup(router.shutdown)
        return router

    def store(self, directory=None):
        store = StateStore(directory or self.tempdir())
        self.addCleanup(store.close)
        return store

    def link(self, routers, store=None, **router_section):
        store = store or self.store()
        config = link_config(routers, self.tempdir(), **router_section)
        metrics = Metrics()
        link = RouterLink(config, store, clock=reactor, metrics=metrics)
        persist(link, store, NetworkLists(store), metrics)
        self.addCleanup(self._stop, link)
        return link

    @staticmethod
    def _stop(link):
        if link.running:
            return link.stopService()
        return None

    @defer.inlineCallbacks
    def start_ready(self, link):
        ready = wait_state(link, "ready")
        link.startService()
        yield ready



class LinkRouterTests(LinkRouterCase):

    # -- handshake and password --------------------------------------------

    @defer.inlineCallbacks
    def test_strict_handshake_and_password_persisted(self):
        router = self.router()
        store = self.store()
        link = self.link([router], store)
        yield self.start_ready(link)
        self.assertEqual(router.rejected, [])
        startups = [p for mud, p in router.received if p[0] == "startup-req-3"]
        self.assertEqual(len(startups), 1)
        self.assertEqual(startups[0][6], 0)   # first time: no password
        self.assertEqual(store.router_record("*test", MUD)["password"], router.passwords[MUD])
        yield router.wait_for(lambda r: MUD in r.connections)
        # The router's own mudlist reaches the lists.
        yield router.wait_for(lambda r: any(m == MUD and p[0] == "mudlist" for m, p in r.sent))
        self.assertEqual(link.router["name"], "*test")
        self.assertEqual(link.decode_errors, 0)

    @defer.inlineCallbacks
    def test_password_resent_after_restart(self):
        router = self.router()
        directory = self.tempdir()
        first_store = StateStore(directory)
        link = self.link([router], first_store)
        yield self.start_ready(link)
        password = router.passwords[MUD]
        yield link.stopService()
        first_store.close()
        yield router.wait_for(lambda r: MUD not in r.connections)

        store = self.store(directory)
        again = self.link([router], store)
        yield self.start_ready(again)
        startups = [p for mud, p in router.received if p[0] == "startup-req-3"]
        self.assertEqual(startups[-1][6], password)
        self.assertEqual(router.passwords[MUD], password)

    @defer.inlineCallbacks
    def test_renamed_mud_starts_with_password_0_and_the_old_name_keeps_its_own(self):
        router = self.router()
        store = self.store()
        link = self.link([router], store)
        yield self.start_ready(link)
        password = router.passwords[MUD]

        def startups(name):
            return [p for mud, p in router.received if p[0] == "startup-req-3" and mud == name]

        # A reload renames the MUD: the router has never issued it a password.
        ready = wait_state(link, "ready")
        link.reconfigure(link_config([router], self.tempdir(), mud="LinkRenamed"))
        yield ready
        self.assertEqual(startups("LinkRenamed")[0][6], 0)
        self.assertEqual(store.router_record("*test", "LinkRenamed")["password"],
                         router.passwords["LinkRenamed"])
        self.assertNotEqual(router.passwords["LinkRenamed"], password)

        # The old name comes back with its own password, which the router
        # still holds for it (it refuses any other but 0).
        ready = wait_state(link, "ready")
        link.reconfigure(link_config([router], self.tempdir()))
        yield ready
        self.assertEqual(startups(MUD)[-1][6], password)
        self.assertEqual(router.passwords[MUD], password)
        self.assertEqual(router.rejected, [])
        self.assertEqual(router.rejected, [])

    # -- failover, reconnect, redirect --------------------------------------

    @defer.inlineCallbacks
    def test_failover_when_the_first_router_refuses(self):
        first = self.router("*first")
        first.refuse_startups = True
        second = self.router("*second")
        link = self.link([first, second], handshake_timeout=0.3)
        yield self.start_ready(link)
        self.assertEqual(link.router["name"], "*second")
        self.assertEqual(link.reconnects, 1)
        self.assertTrue(any("refusing" in reason for _, reason, _ in first.rejected))

    @defer.inlineCallbacks
    def test_failover_past_a_closed_port(self):
        closed = I3Router("*closed")
        port = closed.listen(reactor, 0, "127.0.0.1")
        yield port.stopListening()
        second = self.router("*second")
        link = self.link([closed, second])
        yield self.start_ready(link)
        self.assertEqual(link.router["name"], "*second")

    @defer.inlineCallbacks
    def test_reconnect_after_the_router_drops_the_link(self):
        router = self.router()
        link = self.link([router])
        yield self.start_ready(link)
        ready_again = wait_state(link, "ready")
        yield router.drop(MUD)
        yield ready_again
        self.assertEqual(link.reconnects, 1)
        self.assertEqual(router.rejected, [])   # the stored password was accepted
        yield router.wait_for(lambda r: MUD in r.connections)

    @defer.inlineCallbacks
    def test_dead_link_detected_when_the_router_goes_silent(self):
        router = self.router()
        link = self.link([router], keepalive_interval=0.2, keepalive_timeout=0.3)
        yield self.start_ready(link)
        # Pings are echoed while the router talks.
        yield router.wait_for(lambda r: sum(1 for m, p in r.received if p[0] == "auth-mud-req") >= 2)
        self.assertTrue(link.ready)
        backoff = wait_state(link, "backoff")
        router.silent = True
        reason = yield backoff
        self.assertIn("keepalive", reason)
        ready_again = wait_state(link, "ready")
        router.silent = False
        yield ready_again

    @defer.inlineCallbacks
    def test_redirect_to_the_preferred_router(self):
        preferred = self.router("*B")
        first = self.router("*A")
        first.router_list = [["*B", f"127.0.0.1 {preferred.port}"], ["*A", f"127.0.0.1 {first.port}"]]
        link = self.link([first])
        yield self.start_ready(link)
        self.assertEqual(link.router["name"], "*B")
        yield first.wait_for(lambda r: MUD not in r.connections)
        self.assertIn(MUD, preferred.connections)
        self.assertEqual(preferred.rejected, [])

    # -- stop ------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_shutdown_received_by_the_router_on_stop(self):
        router = self.router()
        link = self.link([router])
        yield self.start_ready(link)
        yield link.stopService()
        self.assertEqual(link.state, "stopped")
        shutdowns = yield router.wait_for(
            lambda r: [p for m, p in r.received if p[0] == "shutdown"])
        self.assertEqual(shutdowns[0], ["shutdown", 5, MUD, 0, "*test", 0, 0])
        yield router.wait_for(lambda r: MUD not in r.connections)

    # -- bad frames ------------------------------------------------------------

    @defer.inlineCallbacks
    def test_malformed_frames_survived_and_oversized_prefix_reconnects(self):
        router = self.router()
        link = self.link([router], max_frame_bytes=65536)
        yield self.start_ready(link)
        body = b'({"tell",5,"X",0,(["oops\x00'
        router.send_raw(MUD, struct.pack("!I", len(body)) + body)
        router.send_raw(MUD, frame(42))
        # A packet the link must still read after the junk: its echo proves it.
        seen = defer.Deferred()
        link.on_packet.append(lambda p: p.type == "who-req" and not seen.called and seen.callback(p))
        router.send_packet(MUD, ["who-req", 5, "Other", "bob", MUD, 0])
        packet = yield seen.addTimeout(TIMEOUT, reactor)
        self.assertEqual(packet.o_user, "bob")
        self.assertEqual(link.decode_errors, 2)
        self.assertTrue(link.ready)

        ready_again = wait_state(link, "ready")
        router.send_raw(MUD, struct.pack("!I", 10 * 1024 * 1024))
        yield ready_again
        self.assertEqual(link.reconnects, 1)


class HalfOpenRouterTests(LinkRouterCase):
    """Keepalive against the in-repo router over real TCP, the link's timers
    on a Clock: a frozen router is noticed; an idle router that ignores
    self-addressed probes (CoffeeMud-like) is kept."""

    def clocked_link(self, router):
        store = self.store()
        config = link_config([router], self.tempdir(), keepalive_interval=30, keepalive_timeout=60)
        self.clock = Clock()
        metrics = Metrics()
        link = RouterLink(config, store, clock=self.clock, metrics=metrics)
        self.lists = NetworkLists(store)
        persist(link, store, self.lists, metrics)
        self.addCleanup(self._stop, link)
        return link

    @defer.inlineCallbacks
    def ready(self, link, router):
        # The connect and handshake run on the real reactor; their timers
        # sit on the Clock, which stays still meanwhile.
        ready = wait_state(link, "ready")
        link.startService()
        yield ready
        # The startup's chanlist merged, on a turn after the link handled it.
        yield link_sees(link, lambda: self.lists.chanlist_id == router.chanlist_id != 0,
                        "the chanlist merged", timeout=TIMEOUT)

    def probes(self, router):
        return [p for mud, p in router.received if p[0] == "auth-mud-req" and p[2] == p[4] == MUD]

    @defer.inlineCallbacks
    def test_a_frozen_router_is_noticed(self):
        router = self.router()
        link = self.clocked_link(router)
        yield self.ready(link, router)
        self.clock.advance(30)
        yield router.wait_for(lambda r: self.probes(r))
        # The link keeps its probe's answer to itself (no observer sees it): poll.
        yield wait_until(lambda: link.answers_probes.get("*test") is True, timeout=TIMEOUT)
        router.freeze()
        lost = wait_state(link, "backoff")
        self.clock.advance(30)      # silence: the next probe goes out
        self.clock.advance(60)      # unanswered: the link is dead
        reason = yield lost
        self.assertEqual(reason, "keepalive timeout")

    @defer.inlineCallbacks
    def test_an_idle_router_that_ignores_probes_is_kept_for_an_hour(self):
        router = self.router()
        router.ignore_self_probes = True
        link = self.clocked_link(router)
        yield self.ready(link, router)
        for _ in range(120):
            self.clock.advance(30)
            yield deferLater(reactor, 0, lambda: None)   # let the probe reach the router
        self.assertEqual(link.state, "ready")
        self.assertIs(link.answers_probes["*test"], False)
        self.assertEqual(len(self.probes(router)), 1)
        self.assertEqual(link.reconnects, 0)
