"""Loopback harness: the in-repo router, real gateways and real API clients.

Everything listens on 127.0.0.1 port 0. Helpers return Deferreds; tests
wait on them (never sleep) and tear everything down with `cleanup`.
"""

import tempfile

import yaml
from twisted.internet import defer, protocol, reactor

from intermud3 import config as configuration
from intermud3.service import GatewayService
from intermud3.testing.client import EventInbox, JSONLineClient, RPCFailure  # noqa: F401 (re-exported)
from intermud3.testing.router import I3Router
from tests.integration.waits import link_ready

API_KEY = "test-key-0123456789"


def gateway_config(mud_name, routers, state_dir, **sections):
    """A validated config for a gateway on loopback ports chosen by the OS."""
    raw = raw_gateway_config(mud_name, routers, state_dir, **sections)
    return configuration.load_text(yaml.safe_dump(raw), environ={})


def raw_gateway_config(mud_name, routers, state_dir, **sections):
    """The same as a YAML-ready dict (for tests that write the file)."""
    raw = {
        "mud": {"name": mud_name, "port": 4000},
        "routers": [{"name": r.name, "host": "127.0.0.1", "port": r.port} for r in routers],
        "router": {
            "connect_timeout": 2, "handshake_timeout": 2,
            "backoff": {"initial": 0.05, "max": 0.2, "factor": 2, "jitter": False},
            "keepalive_interval": 60, "keepalive_timeout": 10,
            "send_rate": 0,
        },
        "api": {
            "host": "127.0.0.1", "port": 0,
            "tcp": {"port": 0},
            "auth": {"api_keys": [{"key": API_KEY, "mud_name": mud_name, "permissions": ["*"]}]},
            "rate_limits": {"default": {"per_minute": 6000, "burst": 1000}, "by_method": {}},
        },
        "state": {"directory": state_dir},
        "logging": {"level": "warn"},
    }
    for name, values in sections.items():
        _merge(raw.setdefault(name, {}), values)
    return raw


def _merge(target, values):
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value


class Loopback:
    """Owns routers, gateways and clients of one test; `cleanup` stops them all."""

    def __init__(self, testcase):
        self.testcase = testcase
        self._stoppers = []
        testcase.addCleanup(self.cleanup)

    def router(self, name="*test", **kwargs):
        router = I3Router(name, **kwargs)
        router.listen(reactor, 0, "127.0.0.1")
        self._stoppers.append(lambda: defer.maybeDeferred(router.shutdown))
        return router

    def state_dir(self):
        return tempfile.mkdtemp(prefix="i3gw-test-")

    def gateway(self, mud_name, routers, state_dir=None, **sections):
        """Start a GatewayService; returns it (its link is connecting)."""
        config = gateway_config(mud_name, routers, state_dir or self.state_dir(), **sections)
        svc = GatewayService(config, reactor=reactor)
        svc.startService()
        self._stoppers.append(lambda: self._stop_service(svc))
        return svc

    def _stop_service(self, svc):
        if svc.running:
            return svc.stopService()
        return None

    def stop_gateway(self, svc):
        return self._stop_service(svc)

    @defer.inlineCallbacks
    def ready_gateway(self, mud_name, routers, state_dir=None, **sections):
        svc = self.gateway(mud_name, routers, state_dir, **sections)
        yield link_ready(svc)
        return svc

    @defer.inlineCallbacks
    def tcp_client(self, svc, authenticate=True):
        port = svc.tcp_listener.getHost().port
        client = yield protocol.ClientCreator(reactor, JSONLineClient).connectTCP("127.0.0.1", port)
        self._stoppers.append(client.disconnect)
        yield client.welcomed
        if authenticate:
            yield client.call("authenticate", {"api_key": API_KEY})
        return client

    @defer.inlineCallbacks
    def cleanup(self):
        while self._stoppers:
            stop = self._stoppers.pop()
            yield stop()


def wait_until(predicate, timeout=5.0, interval=0.01):
    """Fire when predicate() is true; fail after timeout seconds.

    Polls: only for what raises no event (a file appearing, a timer of the
    code under test). Anything else has a wait in tests/integration/waits.py,
    router.wait_for, client.event or Child.wait_output."""
    d = defer.Deferred()
    deadline = reactor.seconds() + timeout

    def check():
        try:
            if predicate():
                d.callback(None)
                return
        except Exception:
            d.errback()
            return
        if reactor.seconds() > deadline:
            d.errback(AssertionError(f"condition not met within {timeout}s: {predicate}"))
        else:
            reactor.callLater(interval, check)

    check()
    return d


@defer.inlineCallbacks
def assert_rpc_error(testcase, deferred, code, **data):
    """`deferred` (a call) must fail with error `code` and these `data`
    members; fires with the RPCFailure."""
    try:
        result = yield deferred
    except RPCFailure as failure:
        testcase.assertEqual(failure.code, code, failure.error)
        for key, value in data.items():
            testcase.assertEqual((failure.data or {}).get(key), value, failure.error)
        return failure
    testcase.fail(f"expected error {code}, got the result {result!r}")
