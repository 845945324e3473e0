"""The network as the MUD sees it: the mudlist methods, MUDs going up and
down, and the router link's own ups and downs (API.md "Queries" mudlist /
mud_info, "Events" mud_online / mud_offline / gateway_*).
"""

from twisted.logger import Logger

from intermud3.services.failures import UnknownMud

__all__ = ["Network"]

_log = Logger()


class Network:
    def __init__(self, *, lists, link, hub):
        self._lists = lists
        self._link = link
        self._hub = hub
        self._handshakes = 0
        self._ready_router = None   # the router we were ready on, for "disconnected"
        lists.on_mud_change.append(self._mud_changed)
        link.on_state.append(self._link_state)

    # -- questions -------------------------------------------------------------------

    def mudlist(self, status=None, driver=None, has_service=None, name=None):
        """The mudlist entries that pass every filter given (None: any)."""
        muds = self._lists.filtered(status=status, driver=driver, has_service=has_service,
                                    name=name)
        return {"status": "success", "muds": muds, "count": len(muds),
                "mudlist_id": self._lists.mudlist_id}

    def mud_info(self, name):
        """The mudlist entry of ``name`` (any case); UnknownMud when none."""
        entry = self._lists.mud_entry(name) if name else None
        if entry is None:
            raise UnknownMud("mud", f"no MUD called {name!r} in the mudlist")
        return entry

    # -- events ----------------------------------------------------------------------

    def _mud_changed(self, change):
        if change.was_up == change.is_up:
            return
        event = "mud_online" if change.is_up else "mud_offline"
        self._hub.publish(event, {"mud_name": change.name, "info": change.info},
                                 permission="info")

    def _link_state(self, state, reason):
        link = self._link
        if state == "ready":
            router = _router_name(link.router)
            self._ready_router = router
            self._handshakes += 1
            self._hub.publish("gateway_connected", {"router": router, "reason": reason})
            if self._handshakes > 1:
                self._hub.publish("gateway_reconnected", {
                    "message": f"Reconnected to router {router}", "status": "connected"})
        elif self._ready_router is not None:
            router, self._ready_router = self._ready_router, None
            self._hub.publish("gateway_disconnected", {"router": router, "reason": reason})


def _router_name(router):
    if isinstance(router, dict):
        return router.get("name")
    return None
