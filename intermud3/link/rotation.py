"""Which router to try next: the failover rotation, with no I/O.

The rotation starts as the configured router list. A ``startup-reply``
carries the router's own list: its routers join the rotation (bounded,
``MAX_LEARNED_ROUTERS``) and, once per connection attempt chain, its first
entry is where the router prefers us to be.
"""

__all__ = ["RouterRotation", "parse_router_list", "MAX_LEARNED_ROUTERS"]

# Routers learned from startup-reply router lists join the failover rotation;
# a hostile router must not grow it without bound.
MAX_LEARNED_ROUTERS = 16


def parse_router_list(value):
    """``({({"*name","ip port",}),...})`` -> [{"name","host","port","tls"}].

    Entries that do not read as a name and an "address port" pair are
    skipped: the list is advice from the network, not a command.
    """
    routers = []
    if not isinstance(value, (list, tuple)):
        return routers
    for entry in value:
        if not isinstance(entry, (list, tuple)) or len(entry) < 2:
            continue
        name, address = entry[0], entry[1]
        if not isinstance(name, str) or not name or not isinstance(address, str):
            continue
        parts = address.split()
        if len(parts) != 2:
            continue
        try:
            port = int(parts[1])
        except ValueError:
            continue
        if not 0 < port < 65536:
            continue
        routers.append({"name": name, "host": parts[0], "port": port, "tls": False})
    return routers


class RouterRotation:
    """The routers in failover order and the one being tried or used.

    ``routers`` is the configured list (each a ``{"name","host","port",
    "tls"}`` mapping), copied. A redirect is allowed once after each
    failure or explicit choice, so two routers that each prefer the other
    cannot bounce us between them.
    """

    def __init__(self, routers):
        self.reset(routers)

    def reset(self, routers):
        """Start over on a new configured list (a reload changed it)."""
        self.routers = [dict(router) for router in routers]
        self._learned = 0
        self._index = 0
        self._redirect_allowed = True

    def __len__(self):
        return len(self.routers)

    def current(self):
        """The router being tried or used."""
        return self.routers[self._index % len(self.routers)]

    def first(self):
        """Back to the head of the list, as on start."""
        self._index = 0
        self._redirect_allowed = True
        return self.routers[0]

    def failed(self):
        """The current router failed: the next one in the list."""
        self._index = (self._index + 1) % len(self.routers)
        self._redirect_allowed = True
        return self.routers[self._index]

    def choose(self, router):
        """Go to ``router`` (our configured entry when the name is known,
        else it joins the rotation while there is room) and return the
        entry now current."""
        self._redirect_allowed = True
        index = self._position(router)
        if index is not None:
            self._index = index
        return self.current()

    def named(self, name):
        """The rotation's entry for a router name, or None."""
        for entry in self.routers:
            if entry["name"] == name:
                return entry
        return None

    def learn(self, listed):
        """Routers of a startup-reply's list join the rotation, bounded."""
        known = {entry["name"] for entry in self.routers}
        for entry in listed:
            if entry["name"] not in known:
                if not self._join(entry):
                    break
                known.add(entry["name"])

    def redirect(self, connected, listed):
        """Where a startup-reply from router ``connected`` (a name) sends
        us: the entry of its list's first router when that is another one
        and no redirect happened since the last choice or failure; else None
        (also when that router is unknown and no more may be learned)."""
        if not listed or listed[0]["name"] == connected or not self._redirect_allowed:
            return None
        index = self._position(listed[0])
        if index is None:
            return None
        self._index = index
        self._redirect_allowed = False
        return self.routers[self._index]

    def _position(self, router):
        for index, entry in enumerate(self.routers):
            if entry["name"] == router["name"]:
                return index
        if not self._join(router):
            return None
        return len(self.routers) - 1

    def _join(self, router):
        """Add a router the network named; False once MAX_LEARNED_ROUTERS
        have joined (a hostile router must not grow the rotation)."""
        if self._learned >= MAX_LEARNED_ROUTERS:
            return False
        self.routers.append(dict(router))
        self._learned += 1
        return True
