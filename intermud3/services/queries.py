"""who, finger, locate and channel_who: requests to the network, paired
with their answers (API.md "Queries", channel_who).

Each call sends one I3 request packet (channel_who: one per target MUD) and
keeps a pending entry with a Deferred, like txtorcon's command queue. A
reply completes the OLDEST pending request with the same type, MUD
(case-insensitive), asking user and channel; an ``error`` completes the
request whose packet it carries (services/errors.py hands it over). Routers
drop packets to a MUD that is down without a word, so every request has a
timeout on the injected clock.

Failures are -32004 (``gateway_error``) with ``data``:

* ``{"i3_error": CODE, "i3_message": TEXT}``: a remote ``error`` answered;
* ``{"reason": "timeout"}``: no answer in time (locate and channel_who
  succeed with what arrived instead, when anything did);
* ``{"reason": "link_down"}``: the link was not ready, or left "ready"
  while we waited;
* ``{"reason": "too_many_pending"}``: the session already has
  ``api.session.max_pending_queries`` calls waiting (``wait: false`` calls
  count until their answer or timeout);
* ``{"reason": "cancelled"}``: the session ended for good while waiting.
"""

import math

from twisted.internet import defer
from twisted.logger import Logger

from intermud3 import packets
from intermud3.api import params as p
from intermud3.api.errors import gateway_error, invalid_params
from intermud3.outbound import Unsendable
from intermud3.services.inbound import fold
from intermud3.services.inbound import text_field as _text
from intermud3.services.text import clean, username

__all__ = ["Queries", "MAX_TIMEOUT", "MAX_CHANNEL_WHO_TARGETS"]

_log = Logger()

MAX_TIMEOUT = 60.0
MAX_CHANNEL_WHO_TARGETS = 10
MAX_NAME = 64

# request kind -> (request type, reply type, default timeout)
_KINDS = {
    "who": ("who-req", "who-reply", 5.0),
    "finger": ("finger-req", "finger-reply", 5.0),
    "locate": ("locate-req", "locate-reply", 3.0),
    "chan-who": ("chan-who-req", "chan-who-reply", 5.0),
}
_REPLY_KIND = {reply: kind for kind, (_, reply, _) in _KINDS.items()}
_REQUEST_KIND = {request: kind for kind, (request, _, _) in _KINDS.items()}
# For an error that carries 0 instead of our packet: the kinds its code answers.
_UNCARRIED_ERROR_KINDS = {"unk-user": ("finger",), "unk-channel": ("chan-who",)}


def _user(value):
    """A user name as matched: case-folded (routers such as CoffeeMud's
    send ALICE for our alice), or None for 0."""
    return value.casefold() if isinstance(value, str) and value else None


def _number(value):
    """An int field from the network; 0 for anything malformed (infinity
    included: a lenient reader hands over whatever ``1e999`` reads as)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    return 0


def _level(value):
    # Levels are ints on most MUDs, text ("Wizard") on some.
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else 0


class _Call:
    """One API call: one or more requests sharing a Deferred and a timer."""

    def __init__(self, kind, session, wait, finish):
        self.kind = kind
        self.session = session
        self.wait = wait
        self.finish = finish        # callable(call) -> result, at the end
        self.requests = []
        self.deferred = defer.Deferred()
        self.timer = None
        self.done = False
        self.replies = []           # (request, value) as they arrive
        self.errors = []            # (request, code, message)

    def outstanding(self):
        return [r for r in self.requests if not r.answered]


class _Request:
    """One request packet we sent and wait to hear about."""

    def __init__(self, call, kind, mud, user, subject):
        self.call = call
        self.kind = kind
        self.mud = fold(mud)        # None for a broadcast (locate)
        self.user = _user(user)     # our originator user
        self.subject = subject      # target user (finger/locate) or channel
        self.answered = False
        self.answered_by = mud      # the replying MUD's name, once known

    @property
    def request_type(self):
        return _KINDS[self.kind][0]

    @property
    def target_user(self):
        """The user a finger or locate asked about, else None."""
        return self.subject if self.kind in ("finger", "locate") else None


class Queries:
    def __init__(self, gateway):
        self.gateway = gateway
        self._pending = []          # _Request, oldest first
        self._calls_by_session = {}  # session id -> set of _Call
        for reply in _REPLY_KIND:
            gateway.inbound.register(reply, self.reply_received)
        gateway.link.on_state.append(self._link_state)
        gateway.sessions.on_session_end.append(self._session_ended)

    def handlers(self):
        return {
            "who": self.who,
            "finger": self.finger,
            "locate": self.locate,
            "channel_who": self.channel_who,
        }

    # -- methods ---------------------------------------------------------------

    def who(self, call, params):
        target = self._target_mud(params, "target_mud")
        from_user = _from_user(params)
        packet = packets.make("who-req", self.gateway.mud_name, from_user, target, 0)

        def finish(c):
            _, users = c.replies[0]
            return {"status": "success", "mud_name": c.requests[0].answered_by, "users": users}

        return self._start(call.session, params, "who", [(packet, target, from_user, None)],
                           finish, {"mud_name": target})

    def finger(self, call, params):
        target = self._target_mud(params, "target_mud")
        target_user = _name(params, "target_user")
        from_user = _from_user(params)
        packet = packets.make("finger-req", self.gateway.mud_name, from_user, target, 0,
                              target_user.lower())

        def finish(c):
            _, info = c.replies[0]
            return {"status": "success", "mud_name": c.requests[0].answered_by,
                    "user_name": target_user, "user_info": info}

        return self._start(call.session, params, "finger",
                           [(packet, target, from_user, _user(target_user))],
                           finish, {"mud_name": target, "user_name": target_user})

    def locate(self, call, params):
        target_user = _name(params, "target_user")
        from_user = _from_user(params)
        packet = packets.make("locate-req", self.gateway.mud_name, from_user, 0, 0,
                              target_user.lower())

        def finish(c):
            return {"status": "success", "user_name": target_user,
                    "locations": [value for _, value in c.replies]}

        return self._start(call.session, params, "locate",
                           [(packet, None, from_user, _user(target_user))],
                           finish, {"user_name": target_user})

    def channel_who(self, call, params):
        channel = _name(params, "channel")
        targets = self._channel_who_targets(params, channel)
        from_user = _from_user(params)
        sends = [(packets.make("chan-who-req", self.gateway.mud_name, from_user, mud, 0, channel),
                  mud, from_user, channel) for mud in targets]

        def finish(c):
            members = [{"mud": request.answered_by, "users": users}
                       for request, users in c.replies]
            # The flat list is what the older gateway's clients read.
            return {"status": "success", "channel": channel, "members": members,
                    "users": [f"{user}@{m['mud']}" for m in members for user in m["users"]]}

        return self._start(call.session, params, "chan-who", sends, finish,
                           {"channel": channel, "target_muds": targets})

    # -- parameters --------------------------------------------------------------

    def _target_mud(self, params, field, value=None):
        given = p.text(params, field, max_len=MAX_NAME) if value is None else value
        given = _line(given)
        if not given:
            raise invalid_params(field, f"{field} must not be empty")
        return self.gateway.lists.exact_mud(given) or given

    def _channel_who_targets(self, params, channel):
        value = params.get("target_mud")
        if value is None:
            return [self._channel_owner(channel)]
        if isinstance(value, list):
            if not value:
                raise invalid_params("target_mud", "target_mud must name at least one MUD")
            if len(value) > MAX_CHANNEL_WHO_TARGETS:
                raise invalid_params("target_mud",
                                     f"target_mud lists at most {MAX_CHANNEL_WHO_TARGETS} MUDs",
                                     max=MAX_CHANNEL_WHO_TARGETS)
            targets = []
            for index, item in enumerate(value):
                field = f"target_mud[{index}]"
                if not isinstance(item, str) or not item.strip():
                    raise invalid_params(field, f"{field} must be a non-empty string")
                if len(item) > MAX_NAME:
                    raise invalid_params(field, f"{field} is longer than {MAX_NAME} characters",
                                         max_len=MAX_NAME)
                mud = self._target_mud(params, field, item)
                if fold(mud) not in {fold(t) for t in targets}:
                    targets.append(mud)
            return targets
        return [self._target_mud(params, "target_mud")]

    def _channel_owner(self, channel):
        """The MUD hosting ``channel`` by the chanlist: who to ask when the
        caller names no MUD (older clients never do)."""
        owner, _ = self.gateway.lists.channels.get(channel, (None, None))
        if not isinstance(owner, str) or not owner:
            raise invalid_params("target_mud", f"target_mud is needed: the channel list does not "
                                 f"know {channel}", channel=channel)
        return owner

    # -- sending and waiting -------------------------------------------------------

    def _start(self, session, params, kind, sends, finish, requested):
        timeout = _timeout(params, _KINDS[kind][2])
        wait = p.boolean(params, "wait", default=True)
        if not self.gateway.link.ready:
            raise gateway_error("The router link is down", reason="link_down")
        limit = int(self.gateway.config["api"]["session"]["max_pending_queries"])
        sid = session.id if session is not None else None
        if len(self._calls_by_session.get(sid, ())) >= limit:
            raise gateway_error(f"Too many queries pending (at most {limit})",
                                reason="too_many_pending")
        call = _Call(kind, session, wait, finish)
        for _, mud, user, subject in sends:
            request = _Request(call, kind, mud, user, subject)
            call.requests.append(request)
            self._pending.append(request)
        self._calls_by_session.setdefault(sid, set()).add(call)
        call.timer = self.gateway.clock.callLater(timeout, self._timed_out, call)
        for packet, _, _, _ in sends:
            try:
                self.gateway.link.send(packet)
            except Unsendable:
                # Names are bounded, so only a tiny router.max_send_bytes gets here.
                self._fail(call, invalid_params("target_mud", "the request does not fit in one I3 packet"))
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
        self._pending = [r for r in self._pending if r.call is not call]
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
            self._fail(call, _i3_error(code, message))

    def _timed_out(self, call):
        call.timer = None
        if call.done:
            return
        if call.replies or call.kind == "locate":
            self._succeed(call)
        elif call.errors:
            _, code, message = call.errors[0]
            self._fail(call, _i3_error(code, message))
        else:
            self._fail(call, gateway_error(f"No answer to {call.kind} in time", reason="timeout"))

    def _link_state(self, state, reason):
        if state == "ready":
            return
        for call in dict.fromkeys(request.call for request in self._pending):
            self._fail(call, gateway_error(f"The router link went down: {reason}", reason="link_down"))

    def _session_ended(self, session):
        for call in list(self._calls_by_session.get(session.id, ())):
            self._fail(call, gateway_error("The session ended", reason="cancelled"))

    def pending_count(self, session=None):
        """Calls waiting, for one session or all (for tests and stats)."""
        if session is not None:
            return len(self._calls_by_session.get(session.id, ()))
        return sum(len(c) for c in self._calls_by_session.values())

    # -- answers -------------------------------------------------------------

    def _oldest(self, kind, mud, user, subject):
        for request in self._pending:
            if request.kind != kind or request.answered or request.user != user:
                continue
            if kind != "locate" and request.mud != mud:
                continue
            if kind == "chan-who" and fold(request.subject) != fold(subject):
                continue
            return request
        return None

    def _match_locate(self, user, located):
        """A locate-reply belongs to the oldest locate for that user asked by
        `user`; failing a name match (visnames may differ), the oldest."""
        candidates = [r for r in self._pending
                      if r.kind == "locate" and r.user == user and not r.call.done]
        for request in candidates:
            if request.subject == _user(located):
                return request
        return candidates[0] if candidates else None

    def reply_received(self, packet):
        kind = _REPLY_KIND[packet.type]
        asker = _user(packet.t_user)
        if kind == "who":
            value = _who_users(packet.get("who_data"))
            event = {"users": value}
            request = self._oldest(kind, fold(packet.o_mud), asker, None)
        elif kind == "finger":
            value = _finger_info(packet)
            event = {"user_info": value}
            request = self._oldest(kind, fold(packet.o_mud), asker, None)
        elif kind == "locate":
            value = {
                "mud": _text(packet.get("located_mud")),
                "user": _text(packet.get("located_visname")),
                "idle": _number(packet.get("idle")),
                "status": _given(packet.get("status")),
            }
            event = {"located_mud": value["mud"], "located_user": value["user"],
                     "idle": value["idle"], "status": value["status"]}
            request = self._match_locate(asker, value["user"])
        else:
            channel = _text(packet.get("channel"))
            value = _visnames(packet.get("user_list"))
            if channel:
                request = self._oldest(kind, fold(packet.o_mud), asker, channel)
            else:
                request = self._only_chan_who_to(fold(packet.o_mud))
                channel = request.subject if request is not None else channel
            params = {"from_mud": _text(packet.o_mud), "channel": channel, "users": value}
        if kind != "chan-who":
            params = {"from_mud": _text(packet.o_mud), "to_mud": _text(packet.t_mud),
                      "to_user": self.gateway.presence.local_name(packet.t_user), **event}
        session = request.call.session if request is not None else None
        event_name = "chan_who_reply" if kind == "chan-who" else f"{kind}_reply"
        self.gateway.hub.publish(event_name, params, session=session, permission="info")
        if request is None:
            _log.debug("{type} from {mud} matched no pending request",
                       type=packet.type, mud=packet.o_mud)
            return
        request.answered_by = _text(packet.o_mud)
        request.call.replies.append((request, value))
        if kind != "locate":
            request.answered = True
            self._pending.remove(request)
        self._settle(request.call)

    def _only_chan_who_to(self, mud):
        """The pending chan-who request to ``mud`` when it is the only one:
        a reply whose channel a router emptied can still be placed."""
        requests = [r for r in self._pending
                    if r.kind == "chan-who" and not r.answered and r.mud == mud]
        return requests[0] if len(requests) == 1 else None

    def request_for_uncarried_error(self, mud, user, code):
        """The oldest pending request an ``error`` without its packet can
        answer: sent to ``mud`` by ``user``, of a kind ``code`` answers."""
        kinds = _UNCARRIED_ERROR_KINDS.get(code, ())
        for request in self._pending:
            if (request.kind in kinds and not request.answered and request.mud == fold(mud)
                    and request.user == _user(user)):
                return request
        return None

    def request_for_error(self, carried):
        """The pending request whose packet an ``error`` carries (a Packet),
        or None."""
        kind = _REQUEST_KIND.get(carried.type)
        if kind is None:
            return None
        user = _user(carried.o_user)
        subject = carried.fields[0] if carried.fields else None
        for request in self._pending:
            if request.kind != kind or request.answered or request.user != user:
                continue
            if kind != "locate" and request.mud != fold(carried.t_mud):
                continue
            if kind in ("finger", "locate") and request.subject != _user(subject):
                continue
            if kind == "chan-who" and fold(request.subject) != fold(subject):
                continue
            return request
        return None

    def fail(self, request, code, message):
        """An ``error`` answered ``request``: record it, and end the call
        unless it is a locate (a broadcast: one MUD's error does not end it)."""
        call = request.call
        call.errors.append((request, code, message))
        if request.kind == "locate":
            return
        request.answered = True
        self._pending.remove(request)
        self._settle(call)


def _i3_error(code, message):
    return gateway_error(f"I3 error {code}: {message}", i3_error=code, i3_message=message)


def _timeout(params, default):
    value = p.number(params, "timeout", default=default)
    if value <= 0:
        raise invalid_params("timeout", "timeout must be greater than 0", minimum=0)
    return min(float(value), MAX_TIMEOUT)


def _line(text):
    """A name given by the MUD, cleaned for the network like all text
    (services/text.py: ANSI escapes and control characters removed), on
    one line and trimmed."""
    return clean(text).replace("\n", " ").strip()


def _name(params, field):
    value = _line(p.text(params, field, max_len=MAX_NAME))
    if not value:
        raise invalid_params(field, f"{field} must not be empty")
    return value


def _from_user(params):
    """The asking player's I3 name (cleaned, lower-cased), or 0 (the MUD itself)."""
    value = p.text(params, "from_user", default=None, max_len=MAX_NAME)
    return (username(value) if value else "") or 0


def _who_users(data):
    users = []
    if not isinstance(data, (list, tuple)):
        return users
    for entry in data:
        if not isinstance(entry, (list, tuple)) or not entry:
            continue
        users.append({
            "name": _text(entry[0]) or "",
            "idle": _number(entry[1]) if len(entry) > 1 else 0,
            "level": _level(entry[3]) if len(entry) > 3 else 0,
            "extra": (_text(entry[2]) or "") if len(entry) > 2 else "",
        })
    return users


def _given(value):
    """A text field that may be missing: "" and 0 are both I3's "not
    given", which the API reports as null."""
    return _text(value) or None


def _finger_info(packet):
    return {
        "name": _text(packet.get("visname")),
        "title": _given(packet.get("title")),
        "real_name": _given(packet.get("real_name")),
        "email": _given(packet.get("email")),
        "login_time": _login_time(packet.get("loginout_time")),
        "idle_time": _number(packet.get("idle_time")),
        "ip_address": _given(packet.get("ip_name")),
        "level": _level(packet.get("level")),
        "extra": _given(packet.get("extra")),
    }


def _login_time(value):
    # I3 types it a string (ctime()-like); some MUDs send a number.
    if isinstance(value, str):
        return value or None
    return _number(value)


def _visnames(data):
    if not isinstance(data, (list, tuple)):
        return []
    return [name for name in (_text(v) for v in data) if name]
