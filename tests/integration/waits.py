"""Waits on events for the integration tests.

Each wait returns a Deferred that fires once a condition holds. The
condition is checked at once and again after every event that can change
it (a router-link state change, a packet the link handled, an API
connection lost), never on a timer. The check runs on the reactor turn
after the event, so a test never resumes inside the code that raised it
(the link's other observers have run by then). After `timeout` seconds the
Deferred fails with an AssertionError saying what it waited for.
"""

from twisted.internet import defer, reactor


class _Wait:
    """One wait: `check()` returns a true value (what the Deferred fires
    with) once the condition holds; `subscribe(wake)` has `wake` called after
    each event and returns a function that undoes that."""

    def __init__(self, check, subscribe, what, timeout, clock):
        self.deferred = defer.Deferred()
        self._check = check
        self._what = what
        self._timeout = timeout
        self._clock = clock
        self._pending = None
        self._unsubscribe = subscribe(self._wake)
        self._expiry = clock.callLater(timeout, self._expire)
        self._settle()

    def _wake(self, *event):
        if self._pending is None and not self.deferred.called:
            self._pending = self._clock.callLater(0, self._settle)

    def _settle(self):
        self._pending = None
        if self.deferred.called:
            return
        try:
            value = self._check()
        except Exception:
            self._finish()
            self.deferred.errback()
            return
        if value:
            self._finish()
            self.deferred.callback(value)

    def _expire(self):
        self._expiry = None
        if not self.deferred.called:
            self._finish()
            self.deferred.errback(AssertionError(f"{self._what}: not within {self._timeout}s"))

    def _finish(self):
        self._unsubscribe()
        for call in (self._pending, self._expiry):
            if call is not None and call.active():
                call.cancel()
        self._pending = self._expiry = None


def when(check, subscribe, what, timeout=5.0, clock=reactor):
    """A Deferred firing with check() once it is true, rechecked after each
    event `subscribe(wake)` reports."""
    return _Wait(check, subscribe, what, timeout, clock).deferred


# -- what to wake on ------------------------------------------------------------

def _observe(*observer_lists):
    """Subscribe to observer lists (the link's on_state, on_packet, ...)."""
    def subscribe(wake):
        for observers in observer_lists:
            observers.append(wake)

        def unsubscribe():
            for observers in observer_lists:
                if wake in observers:
                    observers.remove(wake)
        return unsubscribe
    return subscribe


def _link_events(*links):
    """State changes and received packets (on_packet_from sees every one,
    before the link and its services handle it) of each router link."""
    return _observe(*[link.on_state for link in links], *[link.on_packet_from for link in links])


def _links(services):
    return [svc.gateway.link for svc in services]


def _connections_lost(svc):
    """Each API connection open now, once its socket is gone."""
    def subscribe(wake):
        connections = svc.gateway.api_connections.connections()
        for connection in connections:
            connection.on_lost.append(wake)

        def unsubscribe():
            for connection in connections:
                if wake in connection.on_lost:
                    connection.on_lost.remove(wake)
        return unsubscribe
    return subscribe


# -- the waits tests use -----------------------------------------------------------

def link_ready(*services, timeout=5.0):
    """Fires once every one of these gateways' router links is ready."""
    links = _links(services)
    return when(lambda: all(link.ready for link in links), _link_events(*links),
                "router link ready", timeout)


def link_down(*services, timeout=5.0):
    """Fires once none of these gateways' router links is ready."""
    links = _links(services)
    return when(lambda: not any(link.ready for link in links), _link_events(*links),
                "router link down", timeout)


def link_sees(link, check, what="link state", timeout=5.0):
    """Fires with check() once true, rechecked after each packet ``link``
    receives and each of its state changes (a RouterLink without a gateway)."""
    return when(check, _link_events(link), what, timeout)


def gateway_sees(svc, check, what="gateway state", timeout=5.0):
    """link_sees for a gateway's link: for what the router tells the gateway
    (mudlist, chanlist, replies), checked once its services handled it."""
    return link_sees(svc.gateway.link, check, what, timeout)


def api_connections_closed(svc, check, what="API connections closed", timeout=5.0):
    """Fires with check() once true, rechecked as each API connection open
    now is lost (its session detached, its slot freed): for counts going
    down after clients left. (A connection's on_lost runs before the
    registry forgets it; the check runs a turn later.)"""
    return when(check, _connections_lost(svc), what, timeout)
