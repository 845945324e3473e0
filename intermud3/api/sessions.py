"""Sessions: their lifecycle, permissions and event replay.

A session belongs to the API key that created it (keys.py) and outlives its
connection for `api.session.timeout` seconds. While detached it keeps its
channel subscriptions and queues its events (bounded by
`api.session.max_queue_size` and `api.session.queue_ttl`); re-attaching
replays them in order before any new event and reports how many the bounds
dropped, so loss is never silent. The replay follows the client's flow
control: events go out while the connection's transport takes them and wait
in the session while it is paused, so any backlog within the bounds can be
restored over a slow link; a replay cut short leaves the rest in the
session. Until it ends, new events queue behind it (backlog.py). Rate
limits belong to the key: every session of one key shares the same
buckets (keylimits.py).
"""

import secrets
from collections import deque
from itertools import islice

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from intermud3 import colour
from intermud3.api.errors import NOT_AUTHENTICATED, SESSION_EXPIRED, RPCError
from intermud3.api.backlog import EventBacklog
from intermud3.api.keylimits import KeyLimits
from intermud3.api.keys import KeyInfo, KeyRing

_log = Logger()

INVALID_KEY = "Invalid API key"
# key_id of the single identity used when api.auth.enabled is false.
OPEN_KEY_ID = "auth-disabled"


class Session:
    """One MUD client's identity, subscriptions and pending events."""

    def __init__(self, key, clock, limits):
        self.id = secrets.token_urlsafe(24)  # 192 bits
        self.key_id = key.key_id
        self.mud_name = key.mud_name
        self.permissions = key.permissions
        self.channels = set()
        self.connection = None
        # Colour form of delivered text, codes the MUD writes (docs/COLOUR.md).
        self.colour_out = colour.DEFAULT
        self.colour_in = colour.DEFAULT
        # A client has authenticated for this session (header key or
        # `authenticate`); False for the one a connection gets on open when
        # authentication is disabled.
        self.client_authenticated = False
        self.created_at = clock.seconds()
        self.detached_at = None
        # (queued_at, event name, serialised notification), oldest first.
        self.queue = deque()
        self.dropped = 0
        # While a replay is under way: the Deferred of its result.
        self.replay = None
        self.limits = limits

    @property
    def attached(self):
        return self.connection is not None

    def has_permission(self, permission):
        return permission is None or "*" in self.permissions or permission in self.permissions

    def take_token(self, method):
        """None when the call may run (a token is taken), else retry_after seconds."""
        return self.limits.take(method)

    def __repr__(self):
        state = "attached" if self.attached else "detached"
        return f"<Session {self.id[:6]}... key={self.key_id} {state}>"


class SessionManager:
    """Creates, attaches, detaches, expires and feeds sessions."""

    def __init__(self, config, clock, metrics=None):
        self.clock = clock
        self.metrics = metrics
        self._sessions = {}
        self._expiry = {}
        self._limits = KeyLimits(clock)
        self._backlog = EventBacklog(clock, metrics)
        # Send one event now or keep it for replay (backlog.py): bound
        # here, as it runs once per recipient of every event.
        self.deliver = self._backlog.deliver
        self._stopped = False
        # callable(session): a session ended for good (expired, key removed).
        self.on_session_end = []
        self._configure(config)

    def _configure(self, config):
        api = config.api
        self.auth_enabled = api.auth.enabled
        self.keys = KeyRing(api.auth.api_keys)
        self.open_key = KeyInfo(OPEN_KEY_ID, b"", config.mud.name, ["*"])
        self.timeout = api.session.timeout
        # Detached sessions keep queues for an hour: a MUD that reconnects
        # in a loop without its session_id must not pile them up. As many
        # may wait as connections may be open.
        self.max_detached = api.max_connections
        self._backlog.configure(api.session.max_queue_size, api.session.queue_ttl)
        self._limits.configure(api.rate_limits)

    # -- lookups -------------------------------------------------------

    def get(self, session_id):
        if not isinstance(session_id, str):
            return None
        return self._sessions.get(session_id)

    def is_live(self, session):
        return session is not None and self._sessions.get(session.id) is session

    def sessions(self):
        return list(self._sessions.values())

    def count(self):
        return len(self._sessions)

    def attached_count(self):
        return sum(1 for s in self._sessions.values() if s.attached)

    def detached_count(self):
        return self.count() - self.attached_count()

    # -- authentication ------------------------------------------------

    def connection_opened(self, connection):
        """With auth disabled, authenticate a new connection as our MUD with "*"."""
        if self.auth_enabled:
            return None
        session = self._new_session(self.open_key)
        self._attach(session, connection)
        return session

    def authenticate(self, connection, api_key, session_id=None):
        """API.md's `authenticate`; raises RPCError -32000 or -32003."""
        key = self.open_key if not self.auth_enabled else self.keys.match(api_key)
        if key is None:
            # Logged as a summary per source by the caller (api/authguard.py).
            raise RPCError(NOT_AUTHENTICATED, INVALID_KEY)
        current = self._current(connection)
        if current is not None and current.key_id != key.key_id:
            # An authenticated connection never changes identity.
            raise RPCError(NOT_AUTHENTICATED, "connection is authenticated with another key")
        # "success" answers authenticating again. With authentication
        # disabled the first call is not "again": clients wait for
        # "authenticated" before they go on (docs/COMPATIBILITY.md).
        status = "success" if current is not None and current.client_authenticated else "authenticated"
        if session_id is not None:
            result = self._resume(connection, current, session_id, key.key_id, status)
        elif current is not None:
            result = self._result(status, current)
        else:
            session = self._new_session(key)
            self._attach(session, connection)
            _log.info("session {session_id} created for {mud} from {peer}",
                      session_id=session.id[:6], mud=session.mud_name,
                      peer=getattr(connection, "peer", "?"))
            result = self._result(status, session)
        if isinstance(result, Deferred):
            return result.addCallback(self._claimed)
        return self._claimed(result)

    def _claimed(self, result):
        session = self.get(result["session_id"])
        if session is not None:  # None: ended at once (dropped mid-replay, timeout 0)
            session.client_authenticated = True
        return result

    def restore_session(self, connection, session_id):
        """Re-attach a session of the same key to this authenticated connection."""
        current = self._current(connection)
        if current is None:
            raise RPCError(NOT_AUTHENTICATED)
        return self._resume(connection, current, session_id, current.key_id, "authenticated")

    def _current(self, connection):
        """The live session `connection` holds, else None."""
        return connection.session if self.is_live(connection.session) else None

    def _resume(self, connection, current, session_id, key_id, status):
        """Continue session `session_id` of key `key_id` on `connection`,
        replaying its kept events. The session the connection held (`current`),
        if another, ends: the client chose to continue this one."""
        session = self.get(session_id)
        # Someone else's session looks exactly like an unknown one.
        if session is None or session.key_id != key_id:
            raise RPCError(SESSION_EXPIRED, "Session expired or unknown")
        if session is current:
            return self._result(status, session, resumed=True)
        if current is not None:
            current.connection = None
            connection.session = None
            self._end(current, "replaced by restored session")
        replay = self._attach(session, connection)

        def result(counts):
            replayed, dropped = counts
            return self._result(status, session, resumed=True, replayed=replayed, dropped=dropped)

        if isinstance(replay, Deferred):
            return replay.addCallback(result)
        return result(replay)

    @staticmethod
    def _result(status, session, *, resumed=False, replayed=0, dropped=0):
        return {"status": status, "mud_name": session.mud_name, "session_id": session.id,
                "resumed": resumed, "replayed": replayed, "dropped": dropped}

    def _new_session(self, key):
        session = Session(key, self.clock, self._limits.for_key(key))
        self._sessions[session.id] = session
        return session

    # -- attach / detach / end -----------------------------------------

    def _attach(self, session, connection):
        """Attach and replay the kept events in order: (replayed, dropped),
        or a Deferred of it while the connection cannot take them all yet."""
        old = session.connection
        if old is not None and old is not connection:
            old.session = None
            session.connection = None
            old.close("session attached to another connection")
        self._cancel_expiry(session)
        session.connection = connection
        session.detached_at = None
        connection.session = session
        return self._backlog.replay(session, connection)

    def detach(self, connection):
        """The connection is gone; its session waits `timeout` seconds for it."""
        session = connection.session
        connection.session = None
        if session is None or session.connection is not connection:
            return
        session.connection = None
        if not self.is_live(session):
            return
        session.detached_at = self.clock.seconds()
        if self.timeout <= 0:
            self._end(session, "session timeout is 0")
            return
        if self._stopped:
            # A connection whose close was still in flight when the gateway
            # stopped: no timer may outlive the stop.
            return
        self._expiry[session.id] = self.clock.callLater(self.timeout, self._expire, session.id)
        self._bound_detached()

    def _bound_detached(self):
        """End the longest-detached sessions beyond `max_detached`. The
        expiry timers are exactly the detached sessions, in the order they
        were detached: no walk over every session on each detach (a
        thousand clients leaving at once made that quadratic)."""
        excess = len(self._expiry) - self.max_detached
        if excess <= 0:
            return
        for session_id in list(islice(self._expiry, excess)):
            session = self._sessions.get(session_id)
            if session is not None:
                self._end(session, "too many detached sessions")

    def stop(self):
        """The gateway is stopping: cancel the expiry timers of detached
        sessions; connections lost from now on start none."""
        self._stopped = True
        for timer in self._expiry.values():
            if timer.active():
                timer.cancel()
        self._expiry.clear()

    def _cancel_expiry(self, session):
        timer = self._expiry.pop(session.id, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _expire(self, session_id):
        self._expiry.pop(session_id, None)
        session = self._sessions.get(session_id)
        if session is not None and not session.attached:
            self._end(session, "expired")

    def end_session(self, session, reason):
        """End a session now; its connection, if any, is closed."""
        if self.is_live(session):
            self._end(session, reason)

    def _end(self, session, reason):
        self._sessions.pop(session.id, None)
        self._cancel_expiry(session)
        self._backlog.discard(session)
        connection = session.connection
        session.connection = None
        if connection is not None:
            connection.session = None
            connection.close(reason)
        _log.info("session {session_id} ended: {reason}", session_id=session.id[:6], reason=reason)
        for callback in list(self.on_session_end):
            try:
                callback(session)
            except Exception:
                _log.failure("on_session_end callback failed")

    def remove_key_sessions(self, key_id):
        for session in self.sessions():
            if session.key_id == key_id:
                self._end(session, "API key removed")

    def reconfigure(self, config):
        """Apply a reloaded config: keys, permissions, limits, bounds.
        Sessions of a key that is gone end; the others get the new grants."""
        self._configure(config)
        self._bound_detached()
        self._limits.reconfigure(
            lambda key_id: self.open_key if key_id == OPEN_KEY_ID else self.keys.by_id(key_id))
        for session in self.sessions():
            if session.key_id == OPEN_KEY_ID and not self.auth_enabled:
                key = self.open_key
            else:
                key = self.keys.by_id(session.key_id)
            if key is None:
                self._end(session, "API key removed")
                continue
            session.mud_name = key.mud_name
            session.permissions = key.permissions
            self._backlog.trim(session)
