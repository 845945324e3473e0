"""Bytes leave at the end of the reactor's turn, not on the next one.

Twisted's TCP transport buffers a write and asks the reactor to say when
the socket can take it, so the bytes leave on the *next* turn: one more
poll, then a write event dispatched per socket. A tell written to the
router and its reply written to the client each wait for that turn, and
each turn costs CPU. `EndOfTurn.written(transport)` notes a transport we
just wrote to; once per turn, in a zero-delay call (the reactor runs it
before it polls again), each noted transport writes what it holds with
Twisted's own `doWrite`. Still one send per socket per turn, one poll
sooner.

Only plain TCP transports are written early; TLS, ones closing and any
other kind keep Twisted's way. When `doWrite` reports the connection done
or lost, the transport is handed back to the reactor, which sees the same
and closes it as it always did.
"""

from twisted.internet import tcp


class EndOfTurn:
    def __init__(self, clock):
        self._clock = clock
        self._pending = {}      # transports written to this turn, in order
        self._call = None

    def written(self, transport):
        """``transport`` was just written to: send its bytes this turn."""
        if not isinstance(transport, tcp.Connection) or transport.TLS:
            return
        self._pending[transport] = None
        if self._call is None:
            self._call = self._clock.callLater(0, self._flush)

    def _flush(self):
        self._call = None
        pending, self._pending = self._pending, {}
        for transport in pending:
            if not transport.connected or transport.disconnecting:
                continue
            if transport.doWrite() is not None:
                # Lost or done: the reactor reads the same from the socket
                # on its next turn and closes the connection its own way.
                transport.startWriting()

    def stop(self):
        """Cancel the pending flush (the reactor flushes as usual)."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._pending = {}
