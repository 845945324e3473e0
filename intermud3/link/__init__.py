"""The router link, cut by job (docs/ARCHITECTURE.md, "The router link"):

* ``router_link``: ``RouterLink``, the service: state, observers, sending;
* ``protocol``: ``RouterProtocol``, one connection (handshake, heartbeat);
* ``rotation``: which router next (pure);
* ``backoff``: how long to wait before the next attempt (pure);
* ``persistence``: passwords and lists, as observers of received packets;
* ``stats``: counters and metrics.
"""

from intermud3.link.persistence import persist
from intermud3.link.rotation import MAX_LEARNED_ROUTERS, parse_router_list
from intermud3.link.router_link import STATES, RouterLink

__all__ = ["RouterLink", "STATES", "MAX_LEARNED_ROUTERS", "parse_router_list", "persist"]
