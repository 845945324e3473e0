"""What the TCP and WebSocket transports share: one API connection.

`APIConnection` is the object sessions and the dispatcher see (docs/
ARCHITECTURE.md "API connections"): `.transport_name`, `.peer`, `.session`,
`send_message(data)` and `close(reason)`. The transports only frame bytes;
everything else lives here once:

* Dispatch: every received message goes to the dispatcher of its
  `APIContext` (the API's parts, built once in service.py).
  A synchronous handler's reply is written at once; requests that wait (a
  query may wait seconds, and JSON-RPC replies carry ids) run concurrently,
  and each reply is written when ready.
* A bounded send buffer. `transport.write` buffers without limit, so the
  connection registers itself as a streaming (push) producer on its
  transport. While the transport says "paused" (its own buffer is full),
  messages wait in a deque counted in bytes; past
  `api.max_send_buffer_bytes` the connection is aborted and its session
  detached at once, so the session keeps later events for replay. On
  "resume" the deque is flushed in order.
* Counting: `ConnectionRegistry` enforces `api.max_connections` across both
  transports and HTTP requests still in their headers, and
  `api.max_connections_per_ip` per source address, and keeps the
  `intermud3_api_connections{transport}` gauge. When every slot is taken,
  the oldest connection that has not authenticated makes room, so a flood
  of idle connections never locks the MUD out.
* An authentication deadline: a connection still without a session
  `api.auth.timeout` seconds after it opened is closed.
"""

import collections
import json

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import implementer

from intermud3.api.rpc import waits
from intermud3.endofturn import EndOfTurn

_log = Logger()


def format_peer(address):
    """'host:port' for an IPv4/IPv6 address object, else its str()."""
    host = getattr(address, "host", None)
    port = getattr(address, "port", None)
    if host is None or port is None:
        return str(address)
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def peer_host(address):
    """The source address of a connection, the key of the per-IP cap."""
    return getattr(address, "host", None) or str(address)


def set_no_delay(transport):
    """Turn Nagle off: small JSON lines must not wait for a delayed ACK."""
    try:
        transport.setTcpNoDelay(True)
    except (AttributeError, OSError, NotImplementedError):
        # Not a TCP socket (a test transport, a UNIX socket): nothing to do.
        pass


class ConnectionRegistry:
    """Every open API connection, both transports, with shared bounds.

    `max_connections` and `max_per_ip` are ints or callables returning one,
    so reloaded values apply to the next accept. A counted connection has
    `.transport_name`, `.host`, `.authenticated` and `abort()`.
    """

    def __init__(self, max_connections, metrics=None, max_per_ip=None):
        self._limit = max_connections if callable(max_connections) else (lambda: max_connections)
        if max_per_ip is None:
            max_per_ip = 0      # no bound per address but the total
        self._per_ip_limit = max_per_ip if callable(max_per_ip) else (lambda: max_per_ip)
        self._metrics = metrics
        self._gauges = {}  # transport name -> its labelled gauge, bound once
        # Insertion-ordered, so the oldest unauthenticated one is found first.
        self._open = {}
        # transport -> the entry that holds its slot (for release_transport
        # without a scan: a WebSocket upgrade would otherwise cost O(open)).
        self._by_transport = {}
        self._per_host = collections.Counter()
        self._empty_waiters = []

    @property
    def max_connections(self):
        return self._limit()

    def admit(self, connection):
        """Count a new connection: None when admitted, else why it may not open."""
        per_ip = self._per_ip_limit()
        if per_ip and self._per_host[connection.host] >= per_ip:
            return "too many connections from this address"
        if len(self._open) >= self.max_connections and not self._evict_one():
            return "too many connections"
        self._open[connection] = None
        transport = getattr(connection, "transport", None)
        if transport is not None:
            self._by_transport[transport] = connection
        self._per_host[connection.host] += 1
        if self._metrics is not None:
            self._gauge(connection.transport_name).inc()
        return None

    def add(self, connection):
        """Count a new connection; False (and nothing counted) when refused."""
        return self.admit(connection) is None

    def _evict_one(self):
        """Drop the oldest connection that has not authenticated; False if none."""
        for victim in self._open:
            if not victim.authenticated:
                _log.info("Dropping unauthenticated {transport} connection {host} to make room",
                          transport=victim.transport_name, host=victim.host)
                self.remove(victim)
                victim.abort()
                return True
        return False

    def _gauge(self, transport_name):
        gauge = self._gauges.get(transport_name)
        if gauge is None:
            gauge = self._gauges[transport_name] = self._metrics.api_connections.labels(transport_name)
        return gauge

    def remove(self, connection):
        """Forget a connection; safe to call more than once."""
        if connection not in self._open:
            return
        del self._open[connection]
        transport = getattr(connection, "transport", None)
        if transport is not None and self._by_transport.get(transport) is connection:
            del self._by_transport[transport]
        self._per_host[connection.host] -= 1
        if not self._per_host[connection.host]:
            del self._per_host[connection.host]
        if self._metrics is not None:
            self._gauge(connection.transport_name).dec()
        if not self._open:
            waiters, self._empty_waiters = self._empty_waiters, []
            for waiter in waiters:
                waiter.callback(None)

    def release_transport(self, transport):
        """Forget the slot held for `transport` by another protocol (the HTTP
        request a WebSocket upgrade takes over)."""
        entry = self._by_transport.get(transport)
        if entry is not None:
            self.remove(entry)

    def when_empty(self):
        """A Deferred firing once no connection is open (now, if none is)."""
        if not self._open:
            return defer.succeed(None)
        waiter = defer.Deferred()
        self._empty_waiters.append(waiter)
        return waiter

    def count(self, transport_name=None):
        if transport_name is None:
            return len(self._open)
        return sum(1 for c in self._open if c.transport_name == transport_name)

    def connections(self, transport_name=None):
        return [c for c in self._open
                if transport_name is None or c.transport_name == transport_name]

    def close_all(self, code=1001, reason="server shutting down", transport_name=None):
        """Close every connection (the service's graceful stop)."""
        for connection in self.connections(transport_name):
            connection.close(reason, code=code)

    def abort_all(self):
        """Drop every connection at once (a graceful close that took too long)."""
        for connection in self.connections():
            connection.abort()


class APIContext:
    """The parts of the gateway every API transport and connection use,
    built once by the composition root (service.py) and handed to the
    transport factories. ``config()`` is the configuration now (a reload
    replaces it); ``connections`` the ConnectionRegistry."""

    def __init__(self, *, config, clock, sessions, dispatcher, connections, auth_guard,
                 end_of_turn=None):
        self.config = config
        self.clock = clock
        # Sends replies and events at the end of the turn that wrote them.
        self.end_of_turn = end_of_turn if end_of_turn is not None else EndOfTurn(clock)
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.connections = connections
        self.auth_guard = auth_guard


def _event_name(data):
    """The method of a serialised notification (an event), else None."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if isinstance(message, dict) and "id" not in message and isinstance(message.get("method"), str):
        return message["method"]
    return None


@implementer(IPushProducer)
class APIConnection:
    """One client connection, independent of its framing.

    The transport protocol passes three callables: `write_message(data)`
    frames and writes one message, `close_transport(reason, code)` closes
    politely, `abort_transport()` drops the socket at once.
    """

    def __init__(self, context, transport_name, peer, *, write_message,
                 close_transport, abort_transport, host=None):
        self.context = context
        self.transport_name = transport_name
        self.peer = peer
        self.host = host if host is not None else peer.rsplit(":", 1)[0]
        self.session = None
        self._auth_deadline = None
        # callable(): run once when the socket is gone (pending answers).
        self.on_lost = []
        self._write_message = write_message
        self._close_transport = close_transport
        self._abort_transport = abort_transport
        self.max_send_buffer_bytes = context.config().api.max_send_buffer_bytes
        self._held = collections.deque()
        self._held_bytes = 0
        self._paused = False
        self._writable_waiters = []
        self._flushing = False
        self.open = True
        self._detached = False
        # Inbound messages that arrive while the connection is not yet
        # ready (a header-key authentication still running), in order.
        self._inbound_gate = None
        self._inbound_held = []
        self._inbound_held_bytes = 0

    # -- the producer side: the transport tells us when it is full -----------

    def register_with(self, transport):
        """Become the transport's streaming producer.

        Over WebSocket the transport was taken over from twisted.web, whose
        HTTP channel is still registered on it; it has no use for the
        transport any more, so it is unregistered first.
        """
        # Unregistering when nothing is registered is a no-op for TCP and TLS
        # transports alike (TLS keeps its producer in a private attribute).
        transport.unregisterProducer()
        transport.registerProducer(self, True)

    def pauseProducing(self):
        self._paused = True

    def resumeProducing(self):
        self._paused = False
        self._flush()
        if not self._paused and not self._held:
            self._wake_writable_waiters()

    def when_writable(self):
        """A Deferred firing once the transport takes data again (or the
        connection is gone): a session replay waits on it."""
        waiter = Deferred()
        if not self.open or (not self._paused and not self._held):
            waiter.callback(None)
        else:
            self._writable_waiters.append(waiter)
        return waiter

    def _wake_writable_waiters(self):
        waiters, self._writable_waiters = self._writable_waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def stopProducing(self):
        # The transport is going away; connectionLost does the cleanup.
        self._paused = True

    @property
    def authenticated(self):
        return self.session is not None

    @property
    def buffered_bytes(self):
        """Bytes held back while the transport is paused."""
        return self._held_bytes

    @property
    def paused(self):
        return self._paused

    def _flush(self):
        if self._flushing:
            return
        self._flushing = True
        try:
            # A write may pause us again (the transport filled up): stop there.
            while self._held and not self._paused and self.open:
                data = self._held.popleft()
                self._held_bytes -= len(data)
                self._write_message(data)
        finally:
            self._flushing = False

    # -- the surface the rest of the gateway uses ---------------------------

    def send_message(self, data):
        """Send one serialised JSON-RPC message, in order, never blocking.

        Returns True when written or buffered, False when the connection is
        closed or was just dropped for exceeding its send buffer.
        """
        if not self.open:
            return False
        if not self._paused and not self._held:
            self._write_message(data)
            return True
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > self.max_send_buffer_bytes:
            self._overflow()
            return False
        return True

    def close(self, reason, code=1000):
        """Close politely (pending output is written first where possible)."""
        if not self.open:
            return
        _log.info("Closing {transport} connection {peer}: {reason}",
                  transport=self.transport_name, peer=self.peer, reason=reason)
        self.open = False
        self._flush_before_close()
        self._close_transport(reason, code)

    def _flush_before_close(self):
        # Whatever is held goes to the transport, which writes it before
        # closing; the client asked for nothing more, so the bound is moot.
        for data in self._take_held():
            self._write_message(data)

    def _take_held(self):
        """Empty the send buffer; what it held, in order."""
        held = list(self._held)
        self._held.clear()
        self._held_bytes = 0
        return held

    def abort(self):
        self.open = False
        self._abort_transport()

    def _overflow(self):
        _log.warn(
            "Dropping {transport} connection {peer}: send buffer over {limit} bytes "
            "({messages} messages held); its session keeps the events for replay",
            transport=self.transport_name, peer=self.peer,
            limit=self.max_send_buffer_bytes, messages=len(self._held))
        self.open = False
        held = self._take_held()
        session = self.session
        # Detach now, not when the socket is gone: events published in the
        # meantime must go to the session's replay queue, not to this socket.
        self._detach()
        if session is not None:
            self._requeue_events(session, held)
        self._abort_transport()

    def _requeue_events(self, session, held):
        """Give the held events back to the (now detached) session, in order,
        so they are replayed on restore; held replies die with the socket."""
        sessions = self.context.sessions
        for data in held:
            event = _event_name(data)
            if event is None or event == "welcome":
                continue
            try:
                sessions.deliver(session, event, data)
            except Exception:
                _log.failure("Requeueing an event for replay failed")
                return

    # -- inbound ------------------------------------------------------------

    def hold_inbound_until(self, deferred):
        """Queue received messages until `deferred` fires (header auth)."""
        self._inbound_gate = deferred

        def release(result):
            self._inbound_gate = None
            held, self._inbound_held = self._inbound_held, []
            self._inbound_held_bytes = 0
            for data in held:
                self.message_received(data)
            return result

        deferred.addBoth(release)

    def message_received(self, data):
        """Dispatch one complete message; its reply is sent when ready."""
        if not self.open:
            return
        if self._inbound_gate is not None:
            self._inbound_held.append(data)
            self._inbound_held_bytes += len(data)
            if self._inbound_held_bytes > self.max_send_buffer_bytes:
                self.close("too much input before authentication finished")
            return
        try:
            reply = self.context.dispatcher.dispatch(self, data)
        except Exception:
            self._dispatch_failed(None)
            return
        if waits(reply):
            reply.addCallbacks(self._reply, self._dispatch_failed)
        else:
            self._reply(reply)

    def _reply(self, reply):
        if reply is not None and self.open:
            self.send_message(reply)

    def _dispatch_failed(self, failure):
        # The dispatcher answers every client fault itself; reaching here is
        # a bug of ours. Log it (None: the exception being handled) and keep
        # the connection.
        _log.failure("Dispatcher failed on a message from {peer}", failure, peer=self.peer)

    # -- lifecycle ------------------------------------------------------------

    def opened(self):
        """The connection is ready: let the session manager see it.

        With authentication disabled the manager returns the session it
        attached on the spot.
        """
        session = self.context.sessions.connection_opened(self)
        if session is not None and self.session is None:
            self.session = session
        if self.session is None:
            self._start_auth_deadline()
        return session

    def _start_auth_deadline(self):
        clock = self.context.clock
        timeout = self.context.config().api.auth.timeout
        if clock is None:
            return
        self._auth_deadline = clock.callLater(timeout, self._auth_timed_out, timeout)

    def _auth_timed_out(self, timeout):
        self._auth_deadline = None
        if self.open and self.session is None:
            _log.info("{transport} client {peer} did not authenticate within {seconds}s; closing",
                      transport=self.transport_name, peer=self.peer, seconds=timeout)
            self.close("authentication timeout", code=1008)

    def _detach(self):
        if self._detached:
            return
        self._detached = True
        try:
            self.context.sessions.detach(self)
        except Exception:
            _log.failure("Detaching the session of {peer} failed", peer=self.peer)

    def lost(self):
        """The socket is gone: detach the session, stop counting us."""
        self.open = False
        if self._auth_deadline is not None and self._auth_deadline.active():
            self._auth_deadline.cancel()
        self._auth_deadline = None
        self._take_held()
        self._detach()
        self._wake_writable_waiters()
        callbacks, self.on_lost = self.on_lost, []
        # A copy: a callback may remove itself from the list it was in
        # (the wrong-key answer does), which would skip the next one.
        for callback in list(callbacks):
            try:
                callback()
            except Exception:
                _log.failure("on_lost callback of {peer} failed", peer=self.peer)
        self.context.connections.remove(self)
