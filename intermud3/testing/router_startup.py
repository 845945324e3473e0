"""Startups at the in-repo router: the checks a startup-req-3 must pass
(silence when it fails them, as I3-PROTOCOL.md says) and the answer to
one that passes, in the Dead Souls router's order."""

from twisted.logger import Logger

__all__ = ["Startups", "header_problem", "startup_problem"]

_log = Logger()

# The fields of a startup-req-3 that must be ints and strings (by index).
_STARTUP_INTS = range(6, 12)      # password .. imud_udp_port
_STARTUP_STRINGS = range(12, 18)  # mudlib .. admin_email
_STARTUP_LENGTH = 20


def header_problem(packet):
    """What is wrong with the header of a packet (six or more elements), or None."""
    if not isinstance(packet[1], int):
        return "ttl is not an int"
    if not isinstance(packet[2], str) or not packet[2]:
        return "originator_mud is not a name"
    for index, label in ((3, "originator_user"), (4, "target_mud"), (5, "target_user")):
        value = packet[index]
        if not isinstance(value, str) and value != 0:
            return f"{label} is neither a string nor 0"
    return None


def startup_problem(packet, router_name):
    """What is wrong with the shape of a startup-req-3 to ``router_name``, or None."""
    if len(packet) != _STARTUP_LENGTH:
        return f"startup-req-3 has {len(packet)} elements, not {_STARTUP_LENGTH}"
    header = header_problem(packet)
    if header is not None:
        return header
    if packet[4] != router_name:
        return f"startup-req-3 is addressed to {packet[4]!r}, not {router_name!r}"
    for index in _STARTUP_INTS:
        if not isinstance(packet[index], int):
            return f"startup-req-3 element {index} is not an int"
    for index in _STARTUP_STRINGS:
        if not isinstance(packet[index], str):
            return f"startup-req-3 element {index} is not a string"
    if not isinstance(packet[18], dict):
        return "startup-req-3 services is not a mapping"
    if not isinstance(packet[19], dict) and packet[19] != 0:
        return "startup-req-3 other_data is neither a mapping nor 0"
    return None


class Startups:
    """Registers a MUD whose startup was accepted and answers it:
    startup-reply, the mudlist changes since its ``old_mudlist_id``, the
    chanlist (to a MUD with a ``channel`` service), the whole mudlist one
    MUD a packet, then its own entry announced to every connected MUD.

    ``connections`` and ``passwords`` are the router's; ``routers()`` is
    what startup-reply offers; ``received`` records the accepted packet.
    """

    # How many MUDs go in one targeted mudlist packet.
    entries_per_packet = 100

    def __init__(self, *, connections, passwords, mudlist, channels, out, rng, routers,
                 received, changed):
        self._connections = connections
        self._passwords = passwords
        self._mudlist = mudlist
        self._channels = channels
        self._out = out
        self._rng = rng
        self._routers = routers
        self._received = received
        self._changed = changed

    def accept(self, conn, packet):
        """``packet``, a startup-req-3 that passed every check, from ``conn``."""
        name, password = packet[2], packet[6]
        known = self._passwords.get(name)
        existing = self._connections.get(name)
        if existing is not None and existing is not conn:
            # Same name and password: the old link is stale; it goes quietly.
            existing.mud = None
            existing.transport.loseConnection()
        if known is None or password == 0:
            password = self._rng.randint(100000000, 999999999)
        conn.mud = name
        self._connections[name] = conn
        self._passwords[name] = password
        self._channels.stop_listening(name)
        services = packet[18]
        self._mudlist.started(
            name, [-1, conn.host] + packet[9:12] + packet[12:18] + [services, packet[19]])
        self._received.append((name, packet))
        _log.info("MUD {mud} started up from {peer}", mud=name, peer=conn.peer)

        self._out.write(conn, self._out.packet("startup-reply", name, 0, self._routers(), password))
        old_id = packet[7]
        changes = self._mudlist.changes_since(old_id)
        for start in range(0, len(changes), self.entries_per_packet):
            chunk = dict(changes[start:start + self.entries_per_packet])
            self._out.write(conn, self._out.packet("mudlist", name, 0, self._mudlist.mudlist_id, chunk))
        if "channel" in services:
            self._out.write(conn, self._out.packet("chanlist-reply", name, 0, self._channels.chanlist_id, self._channels.chanlist()))
        # The real router then repeats the whole list, one MUD a packet,
        # addressed to 0 but sent to this MUD alone.
        for other, info in list(self._mudlist.muds.items()):
            self._out.write(conn, self._out.packet("mudlist", 0, 0, self._mudlist.mudlist_id, {other: info}))
        self._mudlist.announce({name: self._mudlist.muds[name]})
        self._changed()
