"""The durable lane for messages (API.md "Messages").

A message goes out at once when the link is ready, the pacer has room and
nothing is ahead of it ("sent"); otherwise it is queued, in memory and in
the store, and answered "queued" only once its row is committed. The queue
is drained in order, linearly, from memory; ``may_send`` may hold a
message back (its channel unknown to the router) without blocking the ones
behind it. Before a queued message is written its row is marked sent
(committed), so a restart can never send it twice; if the link drops
before the write, the mark is undone.
"""

import itertools
import os
from collections import OrderedDict

from twisted.logger import Logger

from intermud3 import permissions
from intermud3.outbound.expiry import QueueExpiry
from intermud3.outbound.frames import Unsendable, encode, encode_field
from intermud3.outbound.outcomes import ANY_KEY, Outcomes, queued_id
from intermud3.outbound.repeats import Repeats
from intermud3.services import failures

__all__ = ["Outbox", "MessageEvents", "DEFAULT_MAX_REMEMBERED", "DRAIN_BATCH"]

_log = Logger()


# client_msg_id results and message outcomes kept in memory; beyond this the
# oldest are forgotten (outcomes of queued messages stay in the store).
DEFAULT_MAX_REMEMBERED = 10000

# Queued messages marked and written per store round trip: bounds the
# work of one reactor turn however long the queue is.
DRAIN_BATCH = 128


class _Queued:
    """One message in the durable queue (the memory mirror of its row)."""

    __slots__ = ("id", "kind", "out", "created", "expires", "owner", "key_id",
                 "client_msg_id", "durable", "sending", "waiters")

    def __init__(self, row_id, kind, out, created, expires, owner, key_id, client_msg_id,
                 durable):
        self.id = row_id
        self.kind = kind
        self.out = out
        self.created = created
        self.expires = expires
        self.owner = owner
        self.key_id = key_id
        self.client_msg_id = client_msg_id
        self.durable = durable
        self.sending = False  # in the batch being marked sent
        self.waiters = []     # Deferreds of repeats waiting for durability

    @property
    def message_id(self):
        return queued_id(self.id)


class MessageEvents:
    """Tells a message's MUD what became of it (message_sent,
    message_expired): the session that queued it while it exists, else
    every session holding the kind's permission."""

    def __init__(self, sessions, hub):
        self._sessions = sessions
        self._hub = hub

    def publish(self, event, message):
        session = self._sessions.get(message.owner) if message.owner else None
        self._hub.publish(
            event, {"message_id": message.message_id, "method": message.kind},
            permission=permissions.for_packet(message.out.type), session=session)


class Outbox:
    """The durable queue and its drain to the router link.

    ``link``: the RouterLink (ready, try_send, reserve, write_reserved,
    connection, on_writable); ``store``: the Store; ``config()``: the
    gateway configuration now (a reload swaps it); ``sessions`` and
    ``hub``: where message_sent / message_expired events go.
    """

    def __init__(self, *, link, store, clock, config, sessions, hub, metrics=None,
                 max_remembered=DEFAULT_MAX_REMEMBERED):
        self.link = link
        self.store = store
        self.clock = clock
        self.config = config
        self._metrics = metrics
        self._events = MessageEvents(sessions, hub)
        self.outcomes = Outcomes(store, clock, config, max_remembered=max_remembered)
        self.repeats = Repeats(clock, config, max_remembered=max_remembered)
        self._record_outcome = self.outcomes.record
        self._queue = OrderedDict()     # id -> _Queued, oldest first
        self._expiry = QueueExpiry(clock, self._queue, store=store, remove=self._remove,
                                   outcomes=self.outcomes, events=self._events, metrics=metrics)
        self._sending = None            # the batch being marked sent, or None
        self._drain_call = None
        self._stopped = False
        # Ids of messages sent at once: unique within the process (a random
        # prefix) without a system call per message.
        self._sent_prefix = os.urandom(6).hex()
        # Asked before a queued or new packet is written: False keeps it
        # queued, and the queue goes on with later messages (ChannelService
        # holds a channel message until the router knows its channel).
        self.may_send = lambda packet: True
        self._sent_counter = itertools.count(1)
        # The link calls on_writable after its on_ready observers, so what
        # those send on a new connection (channel-listen above all: a router
        # drops a channel message from a MUD that does not listen) goes
        # before the queued messages.
        link.on_writable.append(self.drain)
        self._restore()
        self.outcomes.purge()

    # -- accepting messages ------------------------------------------------

    def encode(self, packet, field):
        """The message's OutFrame, encoded once; -32602 naming ``field``
        when it can never be sent (checked before it is sent or queued)."""
        return encode_field(packet, self.config().router.max_send_bytes, field)

    def submit(self, kind, out, session, client_msg_id=None, accepted=None):
        """Send or queue ``out`` (an OutFrame); ``{"status": "sent"|"queued",
        "message_id"}``, or a Deferred of it while a queued row is made
        durable.

        Raises (or fails with) -32004: ``queue_full`` / ``link_down`` when
        it can do neither, ``store_unavailable`` when the row cannot be
        stored. A repeat of the same ``client_msg_id`` from the same key
        within ``api.session.timeout`` returns the first result and sends
        nothing. ``accepted(result)`` runs once when the message is newly
        sent or queued (never for a repeat), for the caller's side effects.
        """
        key_id = getattr(session, "key_id", None)
        remember_as = None
        if client_msg_id is not None:
            remember_as = (key_id, client_msg_id)
            earlier = self.repeats.recall(remember_as)
            if earlier is not None:
                return earlier
        link = self.link
        if self._queue and link.ready:
            self.drain()    # older messages first, as far as they can go now
        if not self._older_may_send() and self.may_send(out.packet) and link.try_send(out):
            message_id = f"{self._sent_prefix}{next(self._sent_counter):x}"
            result = {"status": "sent", "message_id": message_id}
            self._record_outcome(message_id, key_id, client_msg_id, "sent")
            return self._accept(result, remember_as, accepted, kind)
        message = self._queue_message(kind, out, session, key_id, client_msg_id)
        if remember_as is not None:
            self.repeats.remember(remember_as, message)
        d = self.store.enqueue(
            message.id, kind, out.packet, created=message.created, expires=message.expires,
            owner=message.owner, client_msg_id=client_msg_id, key_id=key_id)
        d.addCallbacks(self._durable, self._not_durable, callbackArgs=(message,),
                       errbackArgs=(message, remember_as))
        d.addCallback(self._accept, remember_as, accepted, kind)
        return d

    def _older_may_send(self):
        """Whether a queued message that may go is still waiting (a new one
        then goes behind it); held messages do not count."""
        may_send = self.may_send
        return any(may_send(message.out.packet) for message in self._queue.values())

    def _queue_message(self, kind, out, session, key_id, client_msg_id):
        queue = self.config().router.queue
        if not queue.enabled:
            # Without the queue a message we cannot write now is refused: a
            # ready link with a busy pacer is "full", a down link "link_down".
            if self.link.ready:
                raise failures.QueueFull(_REFUSED["queue_full"])
            raise failures.LinkDown(_REFUSED["link_down"])
        if len(self._queue) >= queue.max_messages:
            raise failures.QueueFull(_REFUSED["queue_full"])
        now = self.clock.seconds()
        message = _Queued(self.store.new_message_id(), kind, out, now, now + queue.ttl,
                          getattr(session, "id", None), key_id, client_msg_id, durable=False)
        self._add(message)
        return message

    def _durable(self, _, message):
        message.durable = True
        result = {"status": "queued", "message_id": message.message_id}
        self._record_outcome(message.message_id, message.key_id, message.client_msg_id, "queued")
        for waiter in message.waiters:
            waiter.callback(dict(result))
        message.waiters = []
        # After this call's reply (the drain may send it at once); one
        # pending drain serves every message made durable meanwhile.
        if self._drain_call is None or not self._drain_call.active():
            self._drain_call = self.clock.callLater(0, self.drain)
        return result

    def _not_durable(self, failure, message, remember_as):
        # The store counted and logged it (once per episode, not per message).
        self._remove(message)
        if remember_as is not None:
            self.repeats.forget(remember_as)
        error = failures.StoreUnavailable(_REFUSED["store_unavailable"])
        for waiter in message.waiters:
            waiter.errback(error)
        message.waiters = []
        raise error

    def _accept(self, result, remember_as, accepted, kind):
        if remember_as is not None:
            self.repeats.remember(remember_as, result)     # keeps a copy
        if accepted is not None:
            try:
                accepted(result)    # for side effects; it does not change it
            except Exception:
                # The message is on its way: a side effect failing must not
                # turn that into an error the MUD would retry.
                _log.failure("After accepting a {kind} message", kind=kind)
        return result

    # -- the queue in memory -------------------------------------------------

    def _add(self, message):
        self._queue[message.id] = message
        self._set_gauge()
        self._expiry.add(message)

    def _remove(self, message):
        if self._queue.pop(message.id, None) is not None:
            self._set_gauge()

    def _restore(self):
        """Queued rows of an earlier process: back in memory, their
        client_msg_ids remembered (for any key); they go out after the
        first handshake, or expire."""
        limit = self.config().router.max_send_bytes
        for row in self.store.queued_at_start:
            try:
                out = encode(row.packet, limit)
            except Unsendable as error:
                # Possible after max_send_bytes was lowered: never block the queue.
                _log.warn("Queued {kind} message {message_id} {error}; dropped",
                          kind=row.kind, message_id=queued_id(row.id), error=str(error))
                self.store.finish([row.id], "expired", self.clock.seconds())
                continue
            message = _Queued(row.id, row.kind, out, row.created, row.expires, row.owner,
                              ANY_KEY, row.client_msg_id, durable=True)
            self._add(message)
            if row.client_msg_id is not None:
                self.repeats.remember_restored(
                    row.client_msg_id, row.created,
                    {"status": "queued", "message_id": message.message_id})
        self.store.queued_at_start = []

    # -- pushing the queue -------------------------------------------------

    @property
    def depth(self):
        """Messages in the queue (durable or being made so)."""
        return len(self._queue)

    def drain(self):
        """Mark the next messages the link can take as sent, then write them.

        The marks are committed before the writes (``_write_batch``): a
        restart after the mark never sends them again. At most one batch is
        in flight; the next starts when it is written.
        """
        if self._sending is not None or self._stopped:
            return
        self._expiry.expire_due()
        link = self.link
        batch = []
        may_send = self.may_send
        for message in self._queue.values():
            if not message.durable or len(batch) >= DRAIN_BATCH:
                break
            if not may_send(message.out.packet):
                continue     # held; later messages may go
            if not link.reserve(message.out.type):
                break
            batch.append(message)
        if not batch:
            return
        for message in batch:
            message.sending = True
        self._sending = batch
        connection = link.connection
        d = self.store.writer.write(_mark_sent, [m.id for m in batch], self.clock.seconds())
        d.addCallbacks(self._write_batch, self._mark_failed,
                       callbackArgs=(batch, connection), errbackArgs=(batch,))

    def _write_batch(self, _, batch, connection):
        self._sending = None
        link = self.link
        if self._stopped or link.connection is not connection or not link.ready:
            # Marked but not written: undo the marks; they go out later.
            for message in batch:
                message.sending = False
            self.store.until_done("outcomes", "unfinish", [m.id for m in batch])
            return
        now = self.clock.seconds()
        queue = self._queue
        for message in batch:
            link.write_reserved(message.out)
            del queue[message.id]
            self._record_outcome(message.message_id, message.key_id, message.client_msg_id,
                                 "sent", now)
            self._events.publish("message_sent", message)
        self._set_gauge()
        self.drain()

    def _mark_failed(self, failure, batch):
        # The store cannot record the marks: nothing is written (it could
        # then go twice); the drain retries when the link is next writable
        # or the expiry timer runs.
        self._sending = None
        for message in batch:
            message.sending = False
        self.store.report_failure(failure, "outcomes")
        self.clock.callLater(1.0, self.drain)

    # -- outcomes, gauges, stop ------------------------------------------------

    def status(self, session, message_id=None, client_msg_id=None):
        """Deferred[{"message_id","client_msg_id","status","at"} or None]
        for a message of ``session``'s key (outcomes.py)."""
        return self.outcomes.status(getattr(session, "key_id", None), message_id=message_id,
                                    client_msg_id=client_msg_id)

    def _set_gauge(self):
        if self._metrics is not None:
            self._metrics.outbound_queue_depth.set(len(self._queue))

    def stop(self):
        """Stop the timers (queued messages stay stored for the next run)."""
        self._stopped = True
        self._expiry.stop()
        self.outcomes.stop()
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain_call = None


def _mark_sent(state, ids, at):
    state.finish(ids, "sent", at)


_REFUSED = {
    "queue_full": "The outbound queue is full",
    "link_down": "The router link is down and the outbound queue is disabled",
    "store_unavailable": "The state database cannot store the message",
}
