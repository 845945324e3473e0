"""The durable outbound queue for messages (API.md "Messages": sent/queued).

``Outbox.submit`` writes a message packet at once when the link is ready,
the pacer has room and nothing older is waiting; otherwise it stores the
packet in the SQLite queue (before answering, so "queued" survives a kill)
and pushes it, oldest first, whenever the link reports it is writable
(after each handshake, once the link's on_ready observers have run). Each
stored message leaves the queue exactly once: written (then
``message_sent``) or past its TTL (then ``message_expired``).
"""

import uuid
from collections import OrderedDict

from twisted.logger import Logger

from intermud3 import lpc
from intermud3.api.errors import gateway_error, invalid_params
from intermud3.mudmode import FrameTooLarge

__all__ = ["Outbox", "permission_for", "ensure_fits", "DEFAULT_MAX_REMEMBERED"]

_log = Logger()

# client_msg_id results kept for retries; beyond this the oldest are forgotten.
DEFAULT_MAX_REMEMBERED = 10000


def permission_for(kind):
    """The permission whose holders hear about a message of ``kind`` when
    the session that sent it is gone."""
    if kind == "channel_admin":
        return "admin"
    if kind.startswith("channel_"):
        return "channel"
    return "tell"


def ensure_fits(gateway, packet, field):
    """-32602 naming ``field`` (with ``max_bytes``) when ``packet`` would
    be a frame over ``router.max_send_bytes``: checked before anything is
    sent or queued, so an oversized message never sits in the queue."""
    limit = gateway.config["router"]["max_send_bytes"]
    try:
        size = gateway.link.frame_size(packet)
    except lpc.LPCError as error:
        raise invalid_params(field, f"{field} cannot be written as I3 text: {error}")
    if size > limit:
        raise invalid_params(
            field, f"{field} is too long for one I3 packet ({size} bytes, the limit is {limit})",
            max_bytes=limit)


class Outbox:
    def __init__(self, gateway, *, max_remembered=DEFAULT_MAX_REMEMBERED):
        self.gateway = gateway
        self.clock = gateway.clock
        self.max_remembered = max_remembered
        # (key_id, client_msg_id) -> (forget_at, result), oldest first.
        self._results = OrderedDict()
        self._expiry_call = None
        self._draining = False
        self._stopped = False
        # Asked before a stored or new packet is written: False keeps it
        # queued, and the queue goes on with later packets (ChannelService
        # holds a channel message until the router knows its channel).
        self.may_send = lambda packet: True
        # Not on_ready: the link calls on_writable after every on_ready
        # observer, so what those send on a new connection (channel-listen
        # above all: a router drops a channel message from a MUD that is not
        # listening) goes before the queued messages.
        gateway.link.on_writable.append(self.drain)
        # Rows left by an earlier process: their expiry timer starts now and
        # they go out after the first handshake.
        self._restore_results()
        self._refresh()

    # -- accepting messages ------------------------------------------------

    def submit(self, kind, packet, session, client_msg_id=None, accepted=None):
        """Send or queue ``packet``; ``{"status": "sent"|"queued", "message_id"}``.

        Raises -32004 ``queue_full`` / ``link_down`` when it can do neither,
        and lets ``FrameTooLarge`` through (callers check sizes first).
        A repeat of the same ``client_msg_id`` from the same key within
        ``api.session.timeout`` returns the first result and sends nothing.
        ``accepted(result)`` runs once when the message is newly sent or
        queued (never for a repeat), for the caller's side effects.
        """
        remember_as = None
        if client_msg_id is not None:
            remember_as = (getattr(session, "key_id", None), client_msg_id)
            earlier = self._recall(remember_as)
            if earlier is not None:
                return dict(earlier)
        result = self._send_or_queue(kind, packet, session, client_msg_id)
        if remember_as is not None:
            self._remember(remember_as, result)
        if accepted is not None:
            try:
                accepted(dict(result))
            except Exception:
                # The message is on its way: a side effect failing must not
                # turn that into an error the MUD would retry.
                _log.failure("After accepting a {kind} message", kind=kind)
        return dict(result)

    def _send_or_queue(self, kind, packet, session, client_msg_id):
        link = self.gateway.link
        store = self.gateway.store
        depth = store.queue_depth()
        if depth and link.ready:
            # Older messages first: push what the pacer allows now.
            self.drain()
            depth = store.queue_depth()
        if not self._older_may_send(depth) and self.may_send(packet) and link.try_send(packet):
            return {"status": "sent", "message_id": uuid.uuid4().hex}
        queue = self.gateway.config["router"]["queue"]
        if not queue["enabled"]:
            # Without the queue a message we cannot write now is refused: a
            # ready link with a busy pacer is "full", a down link "link_down".
            reason = "queue_full" if link.ready else "link_down"
            raise gateway_error(_REFUSED[reason], reason=reason)
        if depth >= queue["max_messages"]:
            raise gateway_error(_REFUSED["queue_full"], reason="queue_full")
        now = self.clock.seconds()
        row_id = store.enqueue(
            kind, packet, created=now, expires=now + queue["ttl"],
            owner=getattr(session, "id", None), client_msg_id=client_msg_id)
        self._set_gauge(depth + 1)
        self._schedule_expiry(now + queue["ttl"])
        return {"status": "queued", "message_id": _queued_id(row_id)}

    # -- client_msg_id ---------------------------------------------------------

    def _recall(self, key):
        self._forget_old()
        entry = self._results.get(key)
        if entry is None:
            entry = self._results.get((_ANY_KEY, key[1]))
        return None if entry is None else entry[1]

    def _restore_results(self):
        """Remember the queued rows of an earlier process by client_msg_id,
        so a MUD retrying across a gateway restart does not send twice.
        The store does not keep the API key, so these match any key (every
        key of a gateway speaks for the same MUD)."""
        timeout = self.gateway.config["api"]["session"]["timeout"]
        for row in self.gateway.store.pending():
            if row.client_msg_id is None:
                continue
            self._results[(_ANY_KEY, row.client_msg_id)] = (
                row.created + timeout, {"status": "queued", "message_id": _queued_id(row.id)})
        while len(self._results) > self.max_remembered:
            self._results.popitem(last=False)
        self._forget_old()

    def _remember(self, key, result):
        timeout = self.gateway.config["api"]["session"]["timeout"]
        self._results[key] = (self.clock.seconds() + timeout, dict(result))
        self._results.move_to_end(key)
        while len(self._results) > self.max_remembered:
            self._results.popitem(last=False)

    def _forget_old(self):
        now = self.clock.seconds()
        while self._results:
            key, (forget_at, _) = next(iter(self._results.items()))
            if forget_at > now:
                break
            del self._results[key]

    # -- pushing the queue -------------------------------------------------

    def drain(self):
        """Write waiting messages in order while the link takes them now.

        Each one is deleted from the store in the same reactor turn as its
        write, so it can be neither lost nor sent twice by a restart.
        """
        if self._draining or self._stopped:
            return  # try_send may call back into us through on_writable
        self._draining = True
        try:
            self._drain()
        finally:
            self._draining = False
            self._refresh()

    def _drain(self):
        store = self.gateway.store
        link = self.gateway.link
        if not store.queue_depth():
            return
        now = self.clock.seconds()
        for row in store.pending():
            if row.expires <= now:
                self._expire(row)
                continue
            if not link.ready:
                return
            if not self.may_send(row.packet):
                continue     # held; later messages may go
            try:
                written = link.try_send(row.packet)
            except (FrameTooLarge, lpc.LPCError) as error:
                # Cannot happen for packets we sized before queueing, but a
                # changed max_send_bytes could; never block the queue on it.
                _log.warn("Queued {kind} message {message_id} cannot be sent ({error}); dropped",
                          kind=row.kind, message_id=_queued_id(row.id), error=str(error))
                store.delete(row.id)
                self._notify("message_expired", row)
                continue
            if not written:
                return
            store.delete(row.id)
            self._notify("message_sent", row)

    def _older_may_send(self, depth):
        """Whether a queued message that may go is still waiting (then a
        new one goes behind it); held messages do not count."""
        return depth > 0 and any(self.may_send(row.packet) for row in self.gateway.store.pending())

    # -- expiry -------------------------------------------------------------

    def expire(self):
        """Drop every queued message past its TTL, telling its MUD."""
        self._expiry_call = None
        if self._stopped:
            return
        now = self.clock.seconds()
        for row in self.gateway.store.pending():
            if row.expires <= now:
                self._expire(row)
        self._refresh()

    def _expire(self, row):
        self.gateway.store.delete(row.id)
        _log.info("Queued {kind} message {message_id} expired unsent",
                  kind=row.kind, message_id=_queued_id(row.id))
        self._notify("message_expired", row)

    def _refresh(self):
        """Update the depth gauge and aim the expiry timer at the next TTL."""
        store = self.gateway.store
        depth = store.queue_depth()
        self._set_gauge(depth)
        if self._expiry_call is not None and self._expiry_call.active():
            self._expiry_call.cancel()
        self._expiry_call = None
        if depth:
            self._schedule_expiry(min(row.expires for row in store.pending()))

    def _schedule_expiry(self, when):
        if self._stopped:
            return
        call = self._expiry_call
        if call is not None and call.active():
            if call.getTime() <= when:
                return
            call.cancel()
        delay = max(0.0, when - self.clock.seconds())
        self._expiry_call = self.clock.callLater(delay, self.expire)

    def _set_gauge(self, depth):
        metrics = getattr(self.gateway, "metrics", None)
        if metrics is not None:
            metrics.outbound_queue_depth.set(depth)

    def stop(self):
        """Cancel the expiry timer (the rows stay stored for the next run)."""
        self._stopped = True
        if self._expiry_call is not None and self._expiry_call.active():
            self._expiry_call.cancel()
        self._expiry_call = None

    # -- events --------------------------------------------------------------

    def _notify(self, event, row):
        """``event`` to the session that queued ``row`` while it exists,
        else to every session holding the kind's permission."""
        session = self.gateway.sessions.get(row.owner) if row.owner else None
        self.gateway.hub.publish(
            event, {"message_id": _queued_id(row.id), "method": row.kind},
            permission=permission_for(row.kind), session=session)


# The key of a client_msg_id restored from the store (see _restore_results).
_ANY_KEY = None

_REFUSED = {
    "queue_full": "The outbound queue is full",
    "link_down": "The router link is down and the outbound queue is disabled",
}


def _queued_id(row_id):
    # Store ids use AUTOINCREMENT: never reused, even across restarts.
    return f"q{row_id}"
