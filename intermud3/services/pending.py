"""The queries waiting for an answer, and which one an answer belongs to.

A reply completes the OLDEST pending request with the same type, MUD
(case-insensitive), asking user and channel; an ``error`` completes the
request whose packet it carries, or, when a router sent 0 in its place,
the one its sender, user and code can only answer. Queries (queries.py)
owns the calls; this module only keeps and matches their requests.
"""

from twisted.internet import defer

from intermud3.names import fold

__all__ = ["KINDS", "REPLY_KIND", "Call", "Request", "PendingRequests"]

# request kind -> (request type, reply type, default timeout)
KINDS = {
    "who": ("who-req", "who-reply", 5.0),
    "finger": ("finger-req", "finger-reply", 5.0),
    "locate": ("locate-req", "locate-reply", 3.0),
    "chan-who": ("chan-who-req", "chan-who-reply", 5.0),
}
REPLY_KIND = {reply: kind for kind, (_, reply, _) in KINDS.items()}
_REQUEST_KIND = {request: kind for kind, (request, _, _) in KINDS.items()}
# For an error that carries 0 instead of our packet: the kinds its code answers.
_UNCARRIED_ERROR_KINDS = {"unk-user": ("finger",), "unk-channel": ("chan-who",)}


class Call:
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


class Request:
    """One request packet we sent and wait to hear about."""

    def __init__(self, call, kind, mud, user, subject):
        self.call = call
        self.kind = kind
        self.mud = fold(mud)        # None for a broadcast (locate)
        self.user = fold(user)  # our originator user
        self.subject = subject      # target user (finger/locate) or channel
        self.answered = False
        self.answered_by = mud      # the replying MUD's name, once known

    @property
    def request_type(self):
        return KINDS[self.kind][0]

    @property
    def target_user(self):
        """The user a finger or locate asked about, else None."""
        return self.subject if self.kind in ("finger", "locate") else None


class PendingRequests:
    """Requests waiting, oldest first."""

    def __init__(self):
        self._requests = []

    def __iter__(self):
        return iter(self._requests)

    def add(self, request):
        self._requests.append(request)

    def answered(self, request):
        """``request`` is answered for good: it matches nothing any more."""
        request.answered = True
        self._requests.remove(request)

    def forget_call(self, call):
        self._requests = [r for r in self._requests if r.call is not call]

    def calls(self):
        """Every call with a request waiting, oldest first, once each."""
        return list(dict.fromkeys(request.call for request in self._requests))

    def oldest(self, kind, mud, user, subject):
        for request in self._requests:
            if request.kind != kind or request.answered or request.user != user:
                continue
            if kind != "locate" and request.mud != mud:
                continue
            if kind == "chan-who" and fold(request.subject) != fold(subject):
                continue
            return request
        return None

    def for_locate(self, user, located):
        """A locate-reply belongs to the oldest locate for that user asked by
        `user`; failing a name match (visnames may differ), the oldest."""
        candidates = [r for r in self._requests
                      if r.kind == "locate" and r.user == user and not r.call.done]
        for request in candidates:
            if request.subject == fold(located):
                return request
        return candidates[0] if candidates else None

    def only_chan_who_to(self, mud):
        """The pending chan-who request to ``mud`` when it is the only one:
        a reply whose channel a router emptied can still be placed."""
        requests = [r for r in self._requests
                    if r.kind == "chan-who" and not r.answered and r.mud == mud]
        return requests[0] if len(requests) == 1 else None

    def for_uncarried_error(self, mud, user, code):
        """The oldest pending request an ``error`` without its packet can
        answer: sent to ``mud`` by ``user``, of a kind ``code`` answers."""
        kinds = _UNCARRIED_ERROR_KINDS.get(code, ())
        for request in self._requests:
            if (request.kind in kinds and not request.answered and request.mud == fold(mud)
                    and request.user == fold(user)):
                return request
        return None

    def for_error(self, carried):
        """The pending request whose packet an ``error`` carries (a Packet),
        or None."""
        kind = _REQUEST_KIND.get(carried.type)
        if kind is None:
            return None
        user = fold(carried.o_user)
        subject = carried.fields[0] if carried.fields else None
        for request in self._requests:
            if request.kind != kind or request.answered or request.user != user:
                continue
            if kind != "locate" and request.mud != fold(carried.t_mud):
                continue
            if kind in ("finger", "locate") and request.subject != fold(subject):
                continue
            if kind == "chan-who" and fold(request.subject) != fold(subject):
                continue
            return request
        return None
