"""A MUD-side client of the gateway's TCP API, for tests, benchmarks and
trying the gateway by hand: calls by id, replies, and events.

    client = yield ClientCreator(reactor, JSONLineClient).connectTCP(host, port)
    yield client.welcomed
    yield client.call("authenticate", {"api_key": KEY})
    params = yield client.event("tell_received")
"""

import itertools
import json

from twisted.internet import defer
from twisted.protocols.basic import LineReceiver


class RPCFailure(Exception):
    def __init__(self, error):
        super().__init__(error)
        self.error = error
        self.code = error.get("code")
        self.data = error.get("data")


class EventInbox:
    """Events a client received, and the callers waiting for some."""

    def __init__(self, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self._clock = clock
        self.events = []
        self._waiters = []
        self._counters = []     # (enough, Deferred) of wait_count

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

        call = self._clock.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def wait_count(self, name, count, timeout=5.0):
        """Fire with the params of the first `count` events `name` once that
        many have come (leaving them in `events`); fail after `timeout`."""
        d = defer.Deferred()

        def enough():
            found = [e["params"] for e in self.events if e["method"] == name]
            return found[:count] if len(found) >= count else None

        self._counters.append((enough, d))
        self._wake()

        def expire():
            if not d.called:
                got = len([e for e in self.events if e["method"] == name])
                d.errback(AssertionError(f"{got} of {count} {name} events within {timeout}s"))

        call = self._clock.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def names(self):
        return [e["method"] for e in self.events]

    def _wake(self):
        for counter in list(self._counters):
            enough, d = counter
            found = None if d.called else enough()
            if d.called or found is not None:
                self._counters.remove(counter)
                if found is not None:
                    d.callback(found)
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


def answer(pending, message):
    """Fire the Deferred in ``pending`` (request id -> Deferred) that the
    reply ``message`` answers: its result, or an RPCFailure."""
    d = pending.pop(message.get("id"), None)
    if d is None:
        return
    if "error" in message:
        d.errback(RPCFailure(message["error"]))
    else:
        d.callback(message["result"])


class JSONLineClient(LineReceiver):
    """A MUD-side API client over TCP lines: calls, replies and events.

    Events go to `inbox` (see `event`), or, when `on_event(method, params)`
    is set, to it alone (a benchmark that must not keep them).
    """

    delimiter = b"\n"
    MAX_LENGTH = 10 * 1024 * 1024

    def __init__(self):
        self._ids = itertools.count(1)
        self._pending = {}
        self.inbox = EventInbox()
        self.events = self.inbox.events
        self.welcomed = defer.Deferred()
        self.closed = defer.Deferred()
        self.on_event = None

    def lineReceived(self, line):
        message = json.loads(line)
        if isinstance(message, list):
            for item in message:
                self._reply(item)
            return
        if "method" in message:
            if message["method"] == "welcome" and not self.welcomed.called:
                self.welcomed.callback(message)
            elif self.on_event is not None:
                self.on_event(message["method"], message.get("params") or {})
            else:
                self.inbox.add(message)
        else:
            self._reply(message)

    def _reply(self, message):
        answer(self._pending, message)

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
        # A callback may send a new call: take the pending ones out first.
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(reason)
        if not self.closed.called:
            self.closed.callback(None)

    def disconnect(self):
        if self.transport is not None and self.transport.connected:
            self.transport.loseConnection()
            return self.closed
        return None
