"""who, finger, locate and channel_who: requests to the network, paired
with their answers (API.md "Queries", channel_who).

Each call sends one I3 request packet (channel_who: one per target MUD) and
keeps a pending entry with a Deferred, like txtorcon's command queue
(pending.py pairs answers with requests; an ``error`` is handed over by
services/i3_errors.py). Routers
drop packets to a MUD that is down without a word, so every request has a
timeout on the injected clock.

Failures (services/failures.py):

* ``RemoteError``: a remote ``error`` answered;
* ``TimedOut``: no answer in time (locate and channel_who succeed with
  what arrived instead, when anything did);
* ``LinkDown``: the link was not ready, or left "ready" while we waited;
* ``TooManyPending``: the session already has
  ``api.session.max_pending_queries`` calls waiting (``wait: false`` calls
  count until their answer or timeout);
* ``Cancelled``: the session ended for good while waiting;
* ``UnknownChannel``: channel_who names no MUD and the chanlist does not
  know the channel.
"""


from twisted.logger import Logger

from intermud3 import packets
from intermud3.outbound import Unsendable
from intermud3.services import query_replies as replies
from intermud3.services.failures import (
    Cancelled,
    LinkDown,
    RemoteError,
    TimedOut,
    TooLarge,
    TooManyPending,
    UnknownChannel,
)
from intermud3.names import fold
from intermud3.services.inbound import text_field as _text
from intermud3.services.pending import KINDS, REPLY_KIND, Call, PendingRequests, Request

__all__ = ["Queries", "KINDS"]

_log = Logger()


class Queries:
    def __init__(self, *, inbound, link, sessions, lists, presence, hub, config, mud_name,
                 clock):
        """``config()`` and ``mud_name()`` give the values now (a reload
        may change them)."""
        self._link = link
        self._lists = lists
        self._presence = presence
        self._hub = hub
        self._config = config
        self._mud_name = mud_name
        self._clock = clock
        self._pending = PendingRequests()
        self._calls_by_session = {}  # session id -> set of Call
        for reply in REPLY_KIND:
            inbound.register(reply, self.reply_received)
        link.on_state.append(self._link_state)
        sessions.on_session_end.append(self._session_ended)

    # -- the questions -----------------------------------------------------------
    # Each takes checked values (the API layer reads the parameters): names
    # cleaned and non-empty, ``from_user`` an I3 user name or 0, ``timeout``
    # in seconds; ``wait`` False answers "requested" at once.

    def who(self, session, target_mud, from_user, timeout, wait):
        target = self._exact(target_mud)
        packet = packets.make("who-req", self._mud_name(), from_user, target, 0)

        def finish(c):
            _, users = c.replies[0]
            return {"status": "success", "mud_name": c.requests[0].answered_by, "users": users}

        return self._start(session, timeout, wait, "who", [(packet, target, from_user, None)],
                           finish, {"mud_name": target})

    def finger(self, session, target_mud, target_user, from_user, timeout, wait):
        target = self._exact(target_mud)
        packet = packets.make("finger-req", self._mud_name(), from_user, target, 0,
                              target_user.lower())

        def finish(c):
            _, info = c.replies[0]
            return {"status": "success", "mud_name": c.requests[0].answered_by,
                    "user_name": target_user, "user_info": info}

        return self._start(session, timeout, wait, "finger",
                           [(packet, target, from_user, fold(target_user))],
                           finish, {"mud_name": target, "user_name": target_user})

    def locate(self, session, target_user, from_user, timeout, wait):
        packet = packets.make("locate-req", self._mud_name(), from_user, 0, 0,
                              target_user.lower())

        def finish(c):
            return {"status": "success", "user_name": target_user,
                    "locations": [value for _, value in c.replies]}

        return self._start(session, timeout, wait, "locate",
                           [(packet, None, from_user, fold(target_user))],
                           finish, {"user_name": target_user})

    def channel_who(self, session, channel, target_muds, from_user, timeout, wait):
        """``target_muds`` None asks the chanlist's owner of the channel."""
        targets = self._channel_who_targets(channel, target_muds)
        ours = self._mud_name()
        sends = [(packets.make("chan-who-req", ours, from_user, mud, 0, channel),
                  mud, from_user, channel) for mud in targets]

        def finish(c):
            members = [{"mud": request.answered_by, "users": users}
                       for request, users in c.replies]
            # The flat list is what the older gateway's clients read.
            return {"status": "success", "channel": channel, "members": members,
                    "users": [f"{user}@{m['mud']}" for m in members for user in m["users"]]}

        return self._start(session, timeout, wait, "chan-who", sends, finish,
                           {"channel": channel, "target_muds": targets})

    def _exact(self, mud):
        # Routers match MUD names exactly: send the mudlist's case when known.
        return self._lists.exact_mud(mud) or mud

    def _channel_who_targets(self, channel, target_muds):
        if target_muds is None:
            return [self._channel_owner(channel)]
        targets = []
        for mud in target_muds:
            mud = self._exact(mud)
            if fold(mud) not in {fold(t) for t in targets}:
                targets.append(mud)
        return targets

    def _channel_owner(self, channel):
        """The MUD hosting ``channel`` by the chanlist: who to ask when the
        caller names no MUD (older clients never do)."""
        owner, _ = self._lists.channels.get(channel, (None, None))
        if not isinstance(owner, str) or not owner:
            raise UnknownChannel("target_mud", f"target_mud is needed: the channel list does not "
                                 f"know {channel}", channel=channel)
        return owner

    # -- sending and waiting -------------------------------------------------------

    def _start(self, session, timeout, wait, kind, sends, finish, requested):
        if not self._link.ready:
            raise LinkDown("The router link is down")
        limit = self._config().api.session.max_pending_queries
        sid = session.id if session is not None else None
        if len(self._calls_by_session.get(sid, ())) >= limit:
            raise TooManyPending(f"Too many queries pending (at most {limit})")
        call = Call(kind, session, wait, finish)
        for _, mud, user, subject in sends:
            request = Request(call, kind, mud, user, subject)
            call.requests.append(request)
            self._pending.add(request)
        self._calls_by_session.setdefault(sid, set()).add(call)
        call.timer = self._clock.callLater(timeout, self._timed_out, call)
        for packet, _, _, _ in sends:
            try:
                self._link.send(packet)
            except Unsendable:
                # Names are bounded, so only a tiny router.max_send_bytes gets here.
                self._fail(call, TooLarge("target_mud", "the request does not fit in one I3 packet"))
                return call.deferred
        if not wait:
            call.deferred.addErrback(lambda failure: None)
            return {"status": "requested", **requested}
        return call.deferred

    def _end(self, call):
        """Forget a call: its requests, its timer, its place in the session."""
        call.done = True
        if call.timer is not None and call.timer.active():
            call.timer.cancel()
        self._pending.forget_call(call)
        sid = call.session.id if call.session is not None else None
        mine = self._calls_by_session.get(sid)
        if mine is not None:
            mine.discard(call)
            if not mine:
                del self._calls_by_session[sid]

    def _succeed(self, call):
        if call.done:
            return
        self._end(call)
        try:
            result = call.finish(call)
        except Exception:
            _log.failure("Building the {kind} result failed", kind=call.kind)
            call.deferred.errback()
            return
        call.deferred.callback(result)

    def _fail(self, call, error):
        if call.done:
            return
        self._end(call)
        call.deferred.errback(error)

    def _settle(self, call):
        """After an answer: finish when nothing is outstanding."""
        if call.kind == "locate" or call.outstanding():
            return  # locate gathers until the timeout
        if call.replies:
            self._succeed(call)
        else:
            _, code, message = call.errors[0]
            self._fail(call, RemoteError(code, message))

    def _timed_out(self, call):
        call.timer = None
        if call.done:
            return
        if call.replies or call.kind == "locate":
            self._succeed(call)
        elif call.errors:
            _, code, message = call.errors[0]
            self._fail(call, RemoteError(code, message))
        else:
            self._fail(call, TimedOut(f"No answer to {call.kind} in time"))

    def _link_state(self, state, reason):
        if state == "ready":
            return
        for call in self._pending.calls():
            self._fail(call, LinkDown(f"The router link went down: {reason}"))

    def _session_ended(self, session):
        for call in list(self._calls_by_session.get(session.id, ())):
            self._fail(call, Cancelled("The session ended"))

    def pending_count(self, session=None):
        """Calls waiting, for one session or all (for tests and stats)."""
        if session is not None:
            return len(self._calls_by_session.get(session.id, ()))
        return sum(len(c) for c in self._calls_by_session.values())

    # -- answers -------------------------------------------------------------

    def reply_received(self, packet):
        kind = REPLY_KIND[packet.type]
        asker = fold(packet.t_user)
        if kind == "who":
            value = replies.who_users(packet.get("who_data"))
            event = {"users": value}
            request = self._pending.oldest(kind, fold(packet.o_mud), asker, None)
        elif kind == "finger":
            value = replies.finger_info(packet)
            event = {"user_info": value}
            request = self._pending.oldest(kind, fold(packet.o_mud), asker, None)
        elif kind == "locate":
            value = replies.located(packet)
            event = {"located_mud": value["mud"], "located_user": value["user"],
                     "idle": value["idle"], "status": value["status"]}
            request = self._pending.for_locate(asker, value["user"])
        else:
            channel = _text(packet.get("channel"))
            value = replies.visnames(packet.get("user_list"))
            if channel:
                request = self._pending.oldest(kind, fold(packet.o_mud), asker, channel)
            else:
                request = self._pending.only_chan_who_to(fold(packet.o_mud))
                channel = request.subject if request is not None else channel
            params = {"from_mud": _text(packet.o_mud), "channel": channel, "users": value}
        if kind != "chan-who":
            params = {"from_mud": _text(packet.o_mud), "to_mud": _text(packet.t_mud),
                      "to_user": self._presence.local_name(packet.t_user), **event}
        session = request.call.session if request is not None else None
        event_name = "chan_who_reply" if kind == "chan-who" else f"{kind}_reply"
        self._hub.publish(event_name, params, session=session, permission="info")
        if request is None:
            _log.debug("{type} from {mud} matched no pending request",
                       type=packet.type, mud=packet.o_mud)
            return
        request.answered_by = _text(packet.o_mud)
        request.call.replies.append((request, value))
        if kind != "locate":
            self._pending.answered(request)
        self._settle(request.call)

    def request_for_uncarried_error(self, mud, user, code):
        """The oldest pending request an ``error`` without its packet can
        answer (pending.py)."""
        return self._pending.for_uncarried_error(mud, user, code)

    def request_for_error(self, carried):
        """The pending request whose packet an ``error`` carries, or None."""
        return self._pending.for_error(carried)

    def fail(self, request, code, message):
        """An ``error`` answered ``request``: record it, and end the call
        unless it is a locate (a broadcast: one MUD's error does not end it)."""
        call = request.call
        call.errors.append((request, code, message))
        if request.kind == "locate":
            return
        self._pending.answered(request)
        self._settle(call)
