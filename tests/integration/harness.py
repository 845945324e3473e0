"""Loopback harness: the in-repo router, real gateways and real API clients.

Everything listens on 127.0.0.1 port 0. Helpers return Deferreds; tests
wait on them (never sleep) and tear everything down with `cleanup`.
"""

import itertools
import json
import tempfile

import yaml
from twisted.internet import defer, protocol, reactor
from twisted.protocols.basic import LineReceiver

from intermud3 import config as configuration
from intermud3.service import GatewayService
from intermud3.testing.router import I3Router

API_KEY = "test-key-0123456789"


def gateway_config(mud_name, routers, state_dir, **sections):
    """A validated config for a gateway on loopback ports chosen by the OS."""
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
    return configuration.load_text(yaml.safe_dump(raw), environ={})


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
        yield wait_until(lambda: svc.gateway.link.ready)
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
    """Fire when predicate() is true; fail after timeout seconds."""
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


class RPCFailure(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error
        self.code = error.get("code")
        self.data = error.get("data")


class EventInbox:
    """Events a test client received, and the tests waiting for some."""

    def __init__(self):
        self.events = []
        self._waiters = []

    def add(self, event):
        self.events.append(event)
        self._wake()

    def wait(self, name, predicate=lambda params: True, timeout=5.0):
        """Fire with the params of the first event `name` matching predicate
        (taking it out of `events`); fail after `timeout` seconds."""
        d = defer.Deferred()
        self._waiters.append((name, predicate, d))
        self._wake()

        def expire():
            if not d.called:
                d.errback(AssertionError(f"no {name} event within {timeout}s; got {self.names()}"))

        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def names(self):
        return [e["method"] for e in self.events]

    def _wake(self):
        for waiter in list(self._waiters):
            name, predicate, d = waiter
            if d.called:
                self._waiters.remove(waiter)
                continue
            for event in self.events:
                if event["method"] == name and predicate(event["params"]):
                    self._waiters.remove(waiter)
                    self.events.remove(event)
                    d.callback(event["params"])
                    break


class JSONLineClient(LineReceiver):
    """A MUD-side API client over TCP lines: calls, replies and events."""

    delimiter = b"\n"
    MAX_LENGTH = 10 * 1024 * 1024

    def __init__(self):
        self._ids = itertools.count(1)
        self._pending = {}
        self.inbox = EventInbox()
        self.events = self.inbox.events
        self.welcomed = defer.Deferred()
        self.closed = defer.Deferred()
        self.raw = []

    def lineReceived(self, line):
        message = json.loads(line)
        self.raw.append(message)
        if isinstance(message, list):
            for item in message:
                self._reply(item)
            return
        if "method" in message:
            if message["method"] == "welcome" and not self.welcomed.called:
                self.welcomed.callback(message)
                return
            self.inbox.add(message)
        else:
            self._reply(message)

    def _reply(self, message):
        d = self._pending.pop(message.get("id"), None)
        if d is None:
            return
        if "error" in message:
            d.errback(RPCFailure(message["error"]))
        else:
            d.callback(message["result"])

    def call(self, method, params=None):
        request_id = next(self._ids)
        d = self._pending[request_id] = defer.Deferred()
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        self.sendLine(json.dumps(request).encode())
        return d

    def send_raw(self, line):
        self.sendLine(line if isinstance(line, bytes) else line.encode())

    def event(self, name, predicate=lambda params: True, timeout=5.0):
        return self.inbox.wait(name, predicate, timeout)

    def event_names(self):
        return self.inbox.names()

    def connectionLost(self, reason):
        for d in self._pending.values():
            d.errback(reason)
        self._pending.clear()
        if not self.closed.called:
            self.closed.callback(None)

    def disconnect(self):
        if self.transport is not None and self.transport.connected:
            self.transport.loseConnection()
            return self.closed
        return None
