"""The network as the MUD sees it: the mudlist methods, MUDs going up and
down, and the router link's own ups and downs (API.md "Queries" mudlist /
mud_info, "Events" mud_online / mud_offline / gateway_*).
"""

from twisted.logger import Logger

from intermud3.api import params as p
from intermud3.api.errors import invalid_params

__all__ = ["Network"]

_log = Logger()

MAX_FILTER_TEXT = 128


class Network:
    def __init__(self, gateway):
        self.gateway = gateway
        self._handshakes = 0
        self._ready_router = None   # the router we were ready on, for "disconnected"
        gateway.lists.on_mud_change.append(self._mud_changed)
        gateway.link.on_state.append(self._link_state)

    def handlers(self):
        return {"mudlist": self.mudlist, "mud_info": self.mud_info}

    # -- methods -------------------------------------------------------------------

    def mudlist(self, call, params):
        filters = p.mapping(params, "filter")
        status = _filter_text(filters, "status")
        if status is not None and status not in ("up", "down"):
            raise invalid_params("filter.status", 'filter.status must be "up" or "down"')
        muds = self.gateway.lists.filtered(
            status=status,
            driver=_filter_text(filters, "driver"),
            has_service=_filter_text(filters, "has_service"),
            name=_filter_text(filters, "name"))
        return {"status": "success", "muds": muds, "count": len(muds),
                "mudlist_id": self.gateway.lists.mudlist_id}

    def mud_info(self, call, params):
        name = p.text(params, "mud", max_len=MAX_FILTER_TEXT).strip()
        entry = self.gateway.lists.mud_entry(name) if name else None
        if entry is None:
            raise invalid_params("mud", f"no MUD called {name!r} in the mudlist")
        return entry

    # -- events ----------------------------------------------------------------------

    def _mud_changed(self, change):
        if change.was_up == change.is_up:
            return
        event = "mud_online" if change.is_up else "mud_offline"
        self.gateway.hub.publish(event, {"mud_name": change.name, "info": change.info},
                                 permission="info")

    def _link_state(self, state, reason):
        link = self.gateway.link
        if state == "ready":
            router = _router_name(link.router)
            self._ready_router = router
            self._handshakes += 1
            self.gateway.hub.publish("gateway_connected", {"router": router, "reason": reason})
            if self._handshakes > 1:
                self.gateway.hub.publish("gateway_reconnected", {
                    "message": f"Reconnected to router {router}", "status": "connected"})
        elif self._ready_router is not None:
            router, self._ready_router = self._ready_router, None
            self.gateway.hub.publish("gateway_disconnected", {"router": router, "reason": reason})


def _router_name(router):
    if isinstance(router, dict):
        return router.get("name")
    return None


def _filter_text(filters, key):
    """One filter: a non-empty string, or None when absent or empty."""
    field = f"filter.{key}"
    value = filters.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid_params(field, f"{field} must be a string")
    if len(value) > MAX_FILTER_TEXT:
        raise invalid_params(field, f"{field} is longer than {MAX_FILTER_TEXT} characters",
                             max_len=MAX_FILTER_TEXT)
    return value
