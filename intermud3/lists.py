"""The I3 mudlist and chanlist, held in memory and persisted in the store.

Every mudlist and chanlist-reply packet is a delta to merge (I3-PROTOCOL.md
section 3). Routers send odd data now and then, so nothing here trusts the
shape of an entry: a malformed one is kept as it came and read leniently,
a missing field counting as 0.
"""

from collections import namedtuple

from twisted.logger import Logger

from intermud3 import lpc
from intermud3.names import fold
from intermud3.state import StateError

_log = Logger()


class _Problems:
    """Entries of one list packet that were not taken, logged as one line
    per packet (a 1.4 MB mudlist once made 5,000 warning lines)."""

    EXAMPLES = 3

    def __init__(self):
        self._found = {}   # kind -> [count, first few names]

    def add(self, kind, name):
        found = self._found.setdefault(kind, [0, []])
        found[0] += 1
        if len(found[1]) < self.EXAMPLES:
            found[1].append(name)

    def log(self, what, router):
        if not self._found:
            return
        summary = "; ".join(f"{kind}: {count} (e.g. {', '.join(map(str, names))})"
                            for kind, (count, names) in self._found.items())
        _log.warn("{what} from {router}: {summary}", what=what.capitalize(), router=router,
                  summary=summary)

# The real network has about 160 MUDs and 170 channels; a router that
# sends more than this many names is not describing it. New names beyond
# the bound are ignored (updates and deletions of held ones still apply).
MAX_MUDS = 10000
MAX_CHANNELS = 10000

# Positions in a 13-field mudlist info entry.
STATE, HOST, PLAYER_PORT, TCP_PORT, UDP_PORT, MUDLIB, BASE_MUDLIB, DRIVER, \
    MUD_TYPE, OPEN_STATUS, ADMIN_EMAIL, SERVICES, OTHER_DATA = range(13)

MudChange = namedtuple("MudChange", "name was_up is_up info")


def _field(info, index):
    return info[index] if index < len(info) else 0


def _int(value):
    # bool is an int to Python, never to LPC.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def is_up(info) -> bool:
    """State -1 is up; 0, n > 0 and anything malformed is down."""
    return _int(_field(info, STATE)) == -1


def _services(value):
    """A mudlist services mapping as {name: int}; other keys and values
    (junk from the network) are left out."""
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and _int(v) is not None}


def _is_deletion(value):
    return value is None or (_int(value) == 0)


class NetworkLists:
    """The mudlist and chanlist (docs/ARCHITECTURE.md, "intermud3/lists.py")."""

    def __init__(self, store, *, max_muds=MAX_MUDS, max_channels=MAX_CHANNELS):
        self._store = store
        self.max_muds = max_muds
        self.max_channels = max_channels
        self.muds = {}
        for name, info in store.load_mudlist().items():
            if isinstance(name, str) and isinstance(info, list):
                self.muds[name] = info
        self.channels = dict(store.load_chanlist())
        # Case-folded name -> exact name, for exact_mud().
        self._folded = {}
        for name in self.muds:
            self._folded[fold(name)] = name
        self.mudlist_id = 0
        self.chanlist_id = 0
        self.on_mud_change = []

    # -- merging packets ---------------------------------------------------

    def apply_mudlist(self, router, mud, list_id, delta):
        """Merge one mudlist packet that ``router`` sent to our MUD named
        ``mud`` (the list id is stored for that pair); returns the up/down
        changes of MUDs held before it (a MUD seen the first time reports
        nothing)."""
        if not isinstance(delta, dict):
            _log.warn("Malformed mudlist from {router}: not a mapping", router=router)
            delta = {}
        changes = []
        persist = {}
        problems = _Problems()
        for name, value in delta.items():
            if not isinstance(name, str):
                problems.add("non-string names ignored", repr(name))
                continue
            old = self.muds.get(name)
            if _is_deletion(value):
                if old is None:
                    continue
                if is_up(old):
                    entry = self._entry(name, old)
                    # Gone means down, whatever the last entry said.
                    entry["status"] = "down"
                    entry["restart_in"] = None
                    changes.append(MudChange(name, True, False, entry))
                self._forget(name)
                persist[name] = None
            elif old is None and len(self.muds) >= self.max_muds:
                problems.add(f"ignored: {self.max_muds} MUDs already held", name)
            elif isinstance(value, (list, tuple)):
                info = list(value)
                if len(info) != 13:
                    problems.add("entries without 13 fields", name)
                if old is not None and is_up(old) != is_up(info):
                    changes.append(MudChange(name, is_up(old), is_up(info),
                                             self._entry(name, info)))
                self.muds[name] = info
                self._folded[fold(name)] = name
                persist[name] = info
            else:
                problems.add("malformed entries ignored", name)
        problems.log("mudlist", router)
        # Ids go back to the router in startup-req-3: only what LPC can write.
        self.mudlist_id = lpc.int_or_zero(list_id)
        # The id with its delta, in one transaction: never an id saved
        # without the delta it stands for.
        self._persist(self._store.apply_mudlist, persist,
                      router=router, mud=mud, list_id=self.mudlist_id)
        for change in changes:
            for callback in list(self.on_mud_change):
                try:
                    callback(change)
                except Exception:
                    _log.failure("on_mud_change callback failed for {name}", name=change.name)
        return changes

    def apply_chanlist(self, router, mud, list_id, delta):
        """Merge one chanlist-reply packet (value ({host_mud, type}) or 0),
        as apply_mudlist."""
        if not isinstance(delta, dict):
            _log.warn("Malformed chanlist from {router}: not a mapping", router=router)
            delta = {}
        persist = {}
        problems = _Problems()
        for name, value in delta.items():
            if not isinstance(name, str):
                problems.add("non-string names ignored", repr(name))
                continue
            if _is_deletion(value):
                if self.channels.pop(name, None) is not None:
                    persist[name] = None
            elif name not in self.channels and len(self.channels) >= self.max_channels:
                problems.add(f"ignored: {self.max_channels} channels already held", name)
            elif isinstance(value, (list, tuple)):
                host = value[0] if len(value) > 0 else 0
                # A just-created channel's type shows as ({}): it counts as 0.
                ctype = _int(value[1]) if len(value) > 1 else None
                entry = (host if isinstance(host, (str, int)) else 0, ctype or 0)
                self.channels[name] = entry
                persist[name] = entry
            else:
                problems.add("malformed entries ignored", name)
        problems.log("chanlist", router)
        self.chanlist_id = lpc.int_or_zero(list_id)
        # The id with its delta, in one transaction: never an id saved
        # without the delta it stands for.
        self._persist(self._store.apply_chanlist, persist,
                      router=router, mud=mud, list_id=self.chanlist_id)

    def _forget(self, name):
        del self.muds[name]
        key = fold(name)
        if self._folded.get(key) == name:
            del self._folded[key]
            # Another MUD may differ from it only in case.
            for other in self.muds:
                if fold(other) == key:
                    self._folded[key] = other
                    break

    def _persist(self, write, *args, **kwargs):
        # Memory stays the truth for this run when the disk fails; the next
        # startup then asks the router for what we missed.
        try:
            write(*args, **kwargs)
            return True
        except (StateError, ValueError) as e:
            _log.error("Cannot persist the network lists: {error}", error=e)
            return False

    # -- reading -----------------------------------------------------------

    def exact_mud(self, name):
        """The mudlist's exact spelling of `name` (any case), or None."""
        if not isinstance(name, str):
            return None
        if name in self.muds:
            return name
        return self._folded.get(fold(name))

    def mud_entry(self, name):
        """The API.md mudlist entry of `name` (any case), or None."""
        exact = self.exact_mud(name)
        if exact is None:
            return None
        return self._entry(exact, self.muds[exact])

    @staticmethod
    def _entry(name, info):
        """API.md's mudlist entry. Entries are kept as the router sent them,
        so each field is read here into its API type: text fields are
        strings ("" for 0 or junk), ports ints (0 for junk), services a
        mapping of names to ints."""
        state = _int(_field(info, STATE))

        def text(index):
            value = _field(info, index)
            return value if isinstance(value, str) else ""

        def port(index):
            return _int(_field(info, index)) or 0

        return {
            "name": name,
            "host": text(HOST),
            "port": port(PLAYER_PORT),
            "tcp_port": port(TCP_PORT),
            "udp_port": port(UDP_PORT),
            "driver": text(DRIVER),
            "mudlib": text(MUDLIB),
            "base_mudlib": text(BASE_MUDLIB),
            "mud_type": text(MUD_TYPE),
            "status": "up" if state == -1 else "down",
            "restart_in": state if state is not None and state > 0 else None,
            "services": _services(_field(info, SERVICES)),
            "open_status": text(OPEN_STATUS),
            "admin_email": text(ADMIN_EMAIL),
        }

    def filtered(self, status=None, driver=None, has_service=None, name=None):
        """Mudlist entries, sorted by name, that pass every filter given:
        `status` "up"/"down", `driver` and `name` case-insensitive
        substrings, `has_service` a service the MUD offers."""
        driver = fold(driver)
        name = fold(name)
        out = []
        for mud in sorted(self.muds, key=str.casefold):
            entry = self._entry(mud, self.muds[mud])
            if status is not None and entry["status"] != status:
                continue
            if driver is not None and driver not in entry["driver"].casefold():
                continue
            if name is not None and name not in mud.casefold():
                continue
            if has_service is not None and entry["services"].get(has_service, 0) in (0, None):
                continue
            out.append(entry)
        return out

    def channel_entries(self):
        """[{"name", "owner", "type"}] sorted by name."""
        return [{"name": name, "owner": host, "type": ctype}
                for name, (host, ctype) in sorted(self.channels.items())]
