"""What the router tells us that must outlive the process: observers of
the link's received packets (``RouterLink.on_packet_from``, called with
the router's name before the link and the services act on a packet, so
the lists are current when the services see it).

* ``startup-reply``: the router's password for our MUD name (it refuses a
  restart that does not present it).
* ``mudlist`` / ``chanlist-reply``: the delta into the NetworkLists, which
  store it with the list id, per router and MUD name.
"""

from twisted.logger import Logger

from intermud3 import lpc

__all__ = ["persist", "RouterPasswords", "ListUpdates"]

# One log component, `link`, for the whole package (logging.components).
_log = Logger(namespace="intermud3.link")


def persist(link, store, lists, metrics=None):
    """Attach both observers to ``link``; the list-size gauges read
    ``lists`` at each scrape, so lists loaded from the store count too."""
    link.on_packet_from.append(RouterPasswords(link, store))
    link.on_packet_from.append(ListUpdates(link, lists))
    if metrics is not None:
        metrics.mudlist_size.set_function(lambda: len(lists.muds))
        metrics.chanlist_size.set_function(lambda: len(lists.channels))


class RouterPasswords:
    """Saves the password of each ``startup-reply`` under the router it
    came from (our name for it) and our MUD name."""

    def __init__(self, link, store):
        self.link = link
        self.store = store

    def __call__(self, router, packet):
        if packet.type != "startup-reply":
            return
        password = packet.get("password")
        if not lpc.int_or_zero(password):
            return   # none, or one LPC could not send back in startup-req-3
        try:
            self.store.save_password(router, self.link.mud_name, password)
        except Exception:
            _log.failure("Could not save the password of router {router}", router=router)


class ListUpdates:
    """Applies each ``mudlist`` and ``chanlist-reply`` to the lists."""

    _FIELDS = {"mudlist": ("apply_mudlist", "mudlist_id", "info_mapping"),
               "chanlist-reply": ("apply_chanlist", "chanlist_id", "channel_list")}

    def __init__(self, link, lists):
        self.link = link
        self.lists = lists

    def __call__(self, router, packet):
        fields = self._FIELDS.get(packet.type)
        if fields is None:
            return
        method, id_field, delta_field = fields
        delta = packet.get(delta_field)
        if not isinstance(delta, dict):
            _log.warn("Ignored a {type} packet whose list is not a mapping", type=packet.type)
            return
        try:
            getattr(self.lists, method)(router, self.link.mud_name,
                                        packet.get(id_field), delta)
        except Exception:
            _log.failure("Could not apply a {type} packet of {count} entries",
                         type=packet.type, count=len(delta))
