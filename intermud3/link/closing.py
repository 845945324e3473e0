"""Closing the router connection at stop, within a bound.

``stopService`` hands the connection to ``Closing.close``: it is closed
politely (its buffered output, the ``shutdown`` packet, is written first)
and aborted if it is not gone after ``timeout`` seconds, so a router that
never acknowledges cannot hold the gateway's stop.
"""

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

__all__ = ["Closing"]

# One log component, `link`, for the whole package (logging.components).
_log = Logger(namespace="intermud3.link")


class Closing:
    def __init__(self, clock, timeout):
        self.clock = clock
        self.timeout = timeout
        self.protocol = None       # the connection being closed, if any
        self._timer = None
        self._waiters = []

    def close(self, protocol):
        """Close ``protocol`` (None: nothing new to close). The Deferred
        fires once it is gone, and the one closing before it (a second
        stop is aborted at once)."""
        if protocol is None and self.protocol is None:
            return succeed(None)
        done = Deferred()
        self._waiters.append(done)
        if protocol is not None:
            if self.protocol is not None:
                self.protocol.transport.abortConnection()
            self.protocol = protocol
            self._cancel_timer()
            self._timer = self.clock.callLater(self.timeout, self._abort, protocol)
            protocol.transport.loseConnection()
        return done

    def lost(self, protocol):
        """True when ``protocol`` was the one closing (it is gone now)."""
        if protocol is not self.protocol:
            return False
        self.protocol = None
        self._release()
        return True

    def _abort(self, protocol):
        self._timer = None
        _log.warn("The router connection did not close in {seconds}s; aborting it",
                  seconds=self.timeout)
        protocol.transport.abortConnection()
        self.protocol = None
        self._release()

    def _release(self):
        self._cancel_timer()
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.callback(None)

    def _cancel_timer(self):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
