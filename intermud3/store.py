"""The gateway's state as the running gateway sees it: memory in front,
SQLite (on the writer thread) behind.

Everything read on a hot path is held in memory, loaded once at start:
the router records, the network lists, the id counters and the queued
messages. Writes go to the ``StoreWriter``: those nobody waits for
(list deltas, history) run in the background, their
failures counted and logged once per episode; those a caller must wait
for (a queued message, before answering "queued") return the writer's
Deferred. Outcome records (a queued message sent or expired) and the router
password are retried with backoff until they land, so a full disk delays them but never loses
or repeats a message.
"""

from twisted.internet import defer
from twisted.internet.interfaces import IReactorThreads
from twisted.logger import Logger

from intermud3.state import StateStore
from intermud3.storewriter import InlineStoreWriter, ThreadedStoreWriter

__all__ = ["Store", "open_store", "RETRY_DELAYS"]

_log = Logger()

# Seconds between retries of a write that must land (outcome records).
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def open_store(directory, *, clock, mud_name, metrics=None):
    """Open the state in ``directory``: on its own writer thread under a
    reactor, inline on a test ``Clock``. StateError when it cannot be."""
    state = StateStore(directory, clock=clock)
    if IReactorThreads.providedBy(clock):
        def make_writer(opened):
            return ThreadedStoreWriter(opened, clock)
    else:
        make_writer = InlineStoreWriter
    try:
        return Store(state, make_writer, mud_name=mud_name, clock=clock, metrics=metrics)
    except Exception:
        state.close()
        raise


class Store:
    """The state of one gateway (docs/ARCHITECTURE.md, "intermud3/store.py").

    ``state`` is the opened StateStore; ``make_writer(state)`` builds the
    writer that owns it from then on (the loads here come first, on the
    calling thread).
    """

    def __init__(self, state, make_writer, *, mud_name, clock, metrics=None):
        self.path = state.path
        self.directory = state.directory
        self._clock = clock
        self._metrics = metrics
        self._routers = state.router_records(mud_name)
        self._mudlist = state.load_mudlist()
        self._chanlist = state.load_chanlist()
        self.queued_at_start = state.pending()
        next_ids = state.next_ids()
        self._next_message_id = next_ids["outbound"]
        self._next_history_id = next_ids["history"]
        self.writer = make_writer(state)
        # The kinds of background write failing now ("history", ...): a
        # failure is logged when its kind enters the set, a success clears it.
        self.failing = set()

    # -- routers ---------------------------------------------------------------

    def router_record(self, router, mud):
        record = self._routers.get((router, mud))
        return dict(record) if record else {"password": 0, "mudlist_id": 0, "chanlist_id": 0}

    def save_password(self, router, mud, password):
        # Retried until it lands: after a restart a router refuses a stale
        # password without a word (the link then hangs in handshake). A
        # retry gives way once a newer password is remembered.
        self._remember_router(router, mud, password=password)
        self.until_done("router", "save_password", router, mud, password,
                        wanted=lambda: self.router_record(router, mud)["password"] == password)

    def _remember_router(self, router, mud, **values):
        record = self._routers.setdefault(
            (router, mud), {"password": 0, "mudlist_id": 0, "chanlist_id": 0})
        record.update(values)

    # -- lists -----------------------------------------------------------------

    def load_mudlist(self):
        """The mudlist as stored at start (for NetworkLists, once)."""
        muds, self._mudlist = self._mudlist, {}
        return muds

    def load_chanlist(self):
        channels, self._chanlist = self._chanlist, {}
        return channels

    def apply_mudlist(self, delta, *, router=None, mud=None, list_id=None):
        if list_id is not None:
            self._remember_router(router, mud, mudlist_id=list_id)
        self.background("lists", "apply_mudlist", delta,
                        router=router, mud=mud, list_id=list_id)

    def apply_chanlist(self, delta, *, router=None, mud=None, list_id=None):
        if list_id is not None:
            self._remember_router(router, mud, chanlist_id=list_id)
        self.background("lists", "apply_chanlist", delta,
                        router=router, mud=mud, list_id=list_id)

    # -- history ---------------------------------------------------------------

    def add_history(self, channel, entry, keep, *, at=None):
        """The new entry's id, at once; the row is written in the background."""
        history_id = self._next_history_id
        self._next_history_id += 1
        self.background("history", "add_history", channel, entry, keep,
                        id=history_id, at=at)
        return history_id

    def history(self, channel, limit=50, before=None, after=None, query=None):
        """Deferred[list of entries]: StateStore.history on the writer thread
        (it sees every entry added before the call)."""
        return self.writer.read(_method("history"), channel, limit, before, after, query)

    # -- outbound queue ----------------------------------------------------------

    def new_message_id(self):
        """The id of the next queued message (ids never repeat)."""
        message_id = self._next_message_id
        self._next_message_id += 1
        return message_id

    def enqueue(self, message_id, kind, packet, *, created, expires, owner, client_msg_id,
                key_id):
        """Deferred firing once the row is durable (StateError if it cannot be;
        counted and logged as a "queue" failure, once per episode)."""
        d = self.writer.write(
            _method("enqueue"), kind, packet, created=created, expires=expires,
            owner=owner, client_msg_id=client_msg_id, id=message_id, key_id=key_id)

        def failed(failure):
            self.report_failure(failure, "queue")
            return failure
        return d.addCallbacks(self._landed, failed, callbackArgs=("queue",))

    def finish(self, ids, status, at):
        """Record queued messages as sent or expired; retried until it lands."""
        self.until_done("outcomes", "finish", list(ids), status, at)

    def outcome(self, id=None, client_msg_id=None, key_id=None):
        return self.writer.read(_method("outcome"), id=id, client_msg_id=client_msg_id,
                                key_id=key_id)

    def purge_outcomes(self, before):
        self.background("outcomes", "purge_outcomes", before)

    # -- writing -------------------------------------------------------------------

    def background(self, kind, name, *args, **kwargs):
        """Run StateStore.<name> on the writer; nobody waits for it."""
        d = self.writer.write(_method(name), *args, **kwargs)
        d.addCallbacks(self._landed, self.report_failure, callbackArgs=(kind,),
                       errbackArgs=(kind,))
        return d

    def until_done(self, kind, name, *args, attempt=0, wanted=None, **kwargs):
        """As ``background``, retried with backoff until it succeeds (or the
        store is closed, or ``wanted()`` says a newer write replaced it): for
        records whose loss would repeat a message or lock the gateway out."""
        d = self.writer.write(_method(name), *args, **kwargs)

        def failed(failure):
            self.report_failure(failure, kind)
            if self.writer.closed:
                return None
            delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
            self._clock.callLater(delay, self._retry, kind, name, args, attempt + 1, wanted,
                                  kwargs)
            return None
        d.addCallbacks(self._landed, failed, callbackArgs=(kind,))
        return d

    def _retry(self, kind, name, args, attempt, wanted, kwargs):
        if wanted is None or wanted():
            self.until_done(kind, name, *args, attempt=attempt, wanted=wanted, **kwargs)

    def _landed(self, result, kind):
        if kind in self.failing:
            self.failing.discard(kind)
            _log.info("State database {path}: {kind} writes work again", path=self.path, kind=kind)
        return result

    def report_failure(self, failure, kind):
        """Count a failed write of ``kind``; log it when an episode starts."""
        if self._metrics is not None:
            self._metrics.store_write_failures.labels(kind=kind).inc()
        if kind not in self.failing:
            self.failing.add(kind)
            _log.error("State database: {kind} write failed: {error} (logged once until it works"
                       " again)", kind=kind, error=failure.getErrorMessage())
        return None

    def close(self):
        """Deferred firing once every write is committed and the file closed."""
        return defer.maybeDeferred(self.writer.close)


def _method(name):
    # The writer calls function(state, *args): an unbound StateStore method.
    def call(state, *args, **kwargs):
        return getattr(state, name)(*args, **kwargs)
    call.__name__ = name
    return call
