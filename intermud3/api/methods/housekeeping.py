"""Handlers of the link and housekeeping methods (API.md "Link and housekeeping").

`handlers(...)` returns {method name: handler(call, params)} over the parts
they read: `link` (state, router, counters, reconnect), `lists`, `outbox`
(depth), `sessions` (whose clock is the gateway's clock), `auth_guard`,
`started_at` and `reload()`.
"""

from twisted.internet import defer

from intermud3.api import params as read
from intermud3.api.errors import NOT_AUTHENTICATED, RPCError, invalid_params
from intermud3.api.sessions import INVALID_KEY
from intermud3.colour import api as colour_api
from intermud3.events import iso_timestamp

# mudlist info: element 0 is the state, -1 meaning up.
_MUD_UP = -1


def handlers(*, sessions, link, lists, outbox, auth_guard, started_at, reload):
    """``reload()`` re-reads the configuration: a dict or a Deferred of one."""

    def now():
        return sessions.clock.seconds()

    def authenticate(call, params):
        api_key = params.get("api_key")
        if sessions.auth_enabled and (not isinstance(api_key, str) or not api_key):
            raise invalid_params("api_key", "api_key must be a non-empty string")
        session_id = read.text(params, "session_id", default=None)
        # Bad options are refused before anything changes.
        options = colour_api.read_options(params)
        try:
            result = sessions.authenticate(call.connection, api_key, session_id)
        except RPCError as error:
            if error.code != NOT_AUTHENTICATED or error.message != INVALID_KEY:
                raise
            return _wrong_key(call.connection, error)

        def with_options(result):
            session = sessions.get(result["session_id"])
            if session is not None:
                colour_api.apply_options(session, options)
            return result

        # A Deferred while a paced replay is still going out.
        if isinstance(result, defer.Deferred):
            return result.addCallback(with_options)
        return with_options(result)

    def _wrong_key(connection, error):
        """Answer a wrong key only after a growing delay; close a connection
        that keeps guessing once its answer is out. A connection lost in the
        meantime gets its answer (to nobody) at once: no timer outlives it."""
        delay, close = auth_guard.failed(connection, getattr(connection, "host", "?"))
        if delay is None:
            connection.close("too many failed authentications")
            raise error   # to a closed connection: never written
        clock = sessions.clock
        answered = defer.Deferred()
        on_lost = getattr(connection, "on_lost", [])

        def answer():
            if timer.active():
                timer.cancel()
            if answer in on_lost:
                on_lost.remove(answer)
            if close and getattr(connection, "open", True):
                # After the reply (written when `answered` fails).
                clock.callLater(0, connection.close, "too many failed authentications")
            answered.errback(error)

        timer = clock.callLater(delay, answer)
        on_lost.append(answer)
        return answered

    def restore_session(call, params):
        session_id = read.text(params, "session_id")
        return sessions.restore_session(call.connection, session_id)

    def ping(call, params):
        return {"pong": True, "timestamp": iso_timestamp(now())}

    def heartbeat(call, params):
        return {"status": "ok", "timestamp": iso_timestamp(now())}

    def status(call, params):
        router = link.router
        moment = now()
        return {
            "connected": bool(link.ready),
            "router": router["name"] if router else None,
            "router_address": f"{router['host']}:{router['port']}" if router else None,
            "mud_name": call.session.mud_name,
            "session_id": call.session.id,
            "uptime": round(moment - started_at, 3),
            "session_uptime": round(moment - call.session.created_at, 3),
            "state": link.state,
        }

    def stats(call, params):
        return {
            "mud_count": len(lists.muds),
            "online_muds": sum(1 for info in lists.muds.values() if _is_up(info)),
            "channel_count": len(lists.channels),
            "session_count": sessions.count(),
            "mudlist_id": lists.mudlist_id,
            "chanlist_id": lists.chanlist_id,
            "gateway_connected": bool(link.ready),
            "packets_sent": link.packets_sent,
            "packets_received": link.packets_received,
            "reconnects": link.reconnects,
            "queued_outbound": outbox.depth,
        }

    def reconnect(call, params):
        link.reconnect("requested by API")
        return {"status": "reconnecting"}

    def reload_config(call, params):
        # {"status":"reloaded","changed":[...]} or {"status":"rejected","errors":[...]},
        # possibly through a Deferred: the dispatcher awaits either.
        return reload()

    return {
        "authenticate": authenticate,
        "restore_session": restore_session,
        "ping": ping,
        "heartbeat": heartbeat,
        "status": status,
        "stats": stats,
        "reconnect": reconnect,
        "reload_config": reload_config,
    }


def _is_up(info):
    return isinstance(info, (list, tuple)) and len(info) > 0 and info[0] == _MUD_UP
