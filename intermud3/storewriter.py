"""SQLite work off the reactor thread, with group commit.

The gateway never waits on SQLite in a reactor callback: every write (and
the few reads that cannot be served from memory, like a history search)
is handed to a ``StoreWriter`` as a function of the ``StateStore`` and
comes back as a Deferred. The threaded writer owns the store's connection
on one thread and runs whatever has piled up since its last batch in one
transaction: under load many rows share a COMMIT, and each caller's
Deferred fires (on the reactor thread) only after the COMMIT that made its
work durable. A function that fails rolls back alone (a savepoint in
``Database.transaction``, state/db.py); a COMMIT that fails fails the whole batch.

``InlineStoreWriter`` runs the same batches on the calling thread, at once
or when told (``run_pending``): for tests on a ``Clock`` and for tools that
have no reactor running.
"""

import queue
import sqlite3
import threading

from twisted.internet import defer
from twisted.logger import Logger

from intermud3.state import WRITER_LOCK_TIMEOUT, StateError

__all__ = ["StoreWriter", "ThreadedStoreWriter", "InlineStoreWriter", "MAX_BATCH"]

_log = Logger()

# Operations per transaction at most: bounds how long one COMMIT keeps
# callers waiting and how much one failed COMMIT takes down with it.
MAX_BATCH = 512

# Put on the queue to end the thread after the work before it.
_STOP = object()


class _Operation:
    __slots__ = ("function", "args", "kwargs", "deferred", "write")

    def __init__(self, function, args, kwargs, write):
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.deferred = defer.Deferred()
        self.write = write


class StoreWriter:
    """Runs functions of the store in batches; subclasses choose the thread."""

    def __init__(self, store, *, max_batch=MAX_BATCH):
        self.store = store
        self.max_batch = max_batch
        self.batches = 0            # transactions committed (or failed)
        self.operations = 0         # functions run
        self.closed = False

    def write(self, function, *args, **kwargs):
        """Deferred firing with ``function(store, *args, **kwargs)`` once
        committed; failing with its exception (a StateError for SQLite
        failures)."""
        return self._submit(_Operation(function, args, kwargs, True))

    def read(self, function, *args, **kwargs):
        """As ``write``, for a function that only reads (it sees every write
        submitted before it)."""
        return self._submit(_Operation(function, args, kwargs, False))

    def flush(self):
        """Deferred firing once everything submitted so far is committed."""
        return self.read(lambda store: None)

    def _submit(self, operation):
        if self.closed:
            return defer.fail(StateError("%s: the state database is closed" % self.store.path))
        self._enqueue(operation)
        return operation.deferred

    # -- the batch (runs on the writer's thread) -----------------------------

    def _run_batch(self, operations):
        """Run ``operations`` in one transaction; [(operation, ok, value)]."""
        outcomes = []
        writes = any(op.write for op in operations)
        try:
            if writes:
                self.store.begin()
        except (StateError, sqlite3.Error) as error:
            failure = _state_error(self.store, "starting a transaction", error)
            return [(op, False, failure) for op in operations]
        for op in operations:
            try:
                outcomes.append((op, True, op.function(self.store, *op.args, **op.kwargs)))
            except Exception as error:  # handed to the caller's Deferred
                outcomes.append((op, False, _state_error(self.store, "a state operation", error)))
        if writes:
            try:
                self.store.commit()
            except (StateError, sqlite3.Error) as error:
                failure = _state_error(self.store, "committing", error)
                outcomes = [(op, False, failure) for op, _, _ in outcomes]
        self.batches += 1
        self.operations += len(operations)
        return outcomes

    @staticmethod
    def _fire(outcomes):
        """Fire each caller's Deferred (on the reactor thread)."""
        for op, ok, value in outcomes:
            if ok:
                op.deferred.callback(value)
            else:
                op.deferred.errback(value)


def _state_error(store, doing, error):
    if isinstance(error, StateError) or not isinstance(error, sqlite3.Error):
        return error
    return StateError("%s: %s failed: %s" % (store.path, doing, error))


class ThreadedStoreWriter(StoreWriter):
    """One thread owns the SQLite connection; batches whatever is waiting."""

    def __init__(self, store, reactor, *, max_batch=MAX_BATCH):
        super().__init__(store, max_batch=max_batch)
        self._reactor = reactor
        self._queue = queue.SimpleQueue()
        store.wait_for_locks(WRITER_LOCK_TIMEOUT)
        self._thread = threading.Thread(
            target=self._work, name="intermud3-store", daemon=True)
        self._thread.start()

    def _enqueue(self, operation):
        self._queue.put(operation)

    def _work(self):
        get = self._queue.get
        while True:
            batch = [get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in batch
            operations = [op for op in batch if op is not _STOP]
            if operations:
                outcomes = self._run_batch(operations)
                self._reactor.callFromThread(self._fire, outcomes)
            if stop:
                return

    def close(self):
        """Deferred firing once everything submitted is committed, the
        thread has ended and the store is closed. Nothing is accepted after."""
        if self.closed:
            return defer.succeed(None)
        done = self.flush()
        self.closed = True
        self._queue.put(_STOP)

        def finish(result):
            # The thread has run its last batch (the flush came before _STOP)
            # and touches the connection no more once it returns.
            self._thread.join()
            self.store.close()
            return result
        return done.addBoth(finish)


class InlineStoreWriter(StoreWriter):
    """Runs batches on the calling thread: at once (``autorun``), or when
    ``run_pending`` is called, so tests can hold a COMMIT back."""

    def __init__(self, store, *, autorun=True, max_batch=MAX_BATCH):
        super().__init__(store, max_batch=max_batch)
        self.autorun = autorun
        self._pending = []

    def _enqueue(self, operation):
        self._pending.append(operation)
        if self.autorun:
            self.run_pending()

    def run_pending(self):
        """Run every waiting operation, in batches of ``max_batch``."""
        while self._pending:
            batch, self._pending = (self._pending[:self.max_batch],
                                    self._pending[self.max_batch:])
            self._fire(self._run_batch(batch))

    def close(self):
        if not self.closed:
            self.run_pending()
            self.closed = True
            self.store.close()
        return defer.succeed(None)
