"""Routing at the in-repo router: where each packet from a started MUD
goes (channel packets to the channel service, broadcasts to every MUD,
commands to the router itself, the rest to its target MUD)."""

from twisted.logger import Logger

__all__ = ["Routing"]

_log = Logger()

# A restart_delay above a week deletes the MUD from the list.
_DELETE_AFTER = 604800

# Packets only a router may send; a MUD sending one to another MUD is refused.
_ROUTER_ONLY = frozenset(["startup-reply", "chanlist-reply", "mudlist", "bad-mojo"])


class Routing:
    """``connections`` is the router's; ``out`` writes, ``reject``
    records a dropped frame."""

    def __init__(self, *, connections, mudlist, channels, out, reject):
        self._connections = connections
        self._mudlist = mudlist
        self._channels = channels
        self._out = out
        self._reject = reject
        # An auth-mud-req a MUD addresses to itself is only logged, never
        # routed back (as CoffeeMud's router does).
        self.ignore_self_probes = False

    def route(self, conn, packet, raw):
        """A packet from a started MUD, its header checked, its target known."""
        ptype, target = packet[0], packet[4]
        if self.ignore_self_probes and ptype == "auth-mud-req" and target == conn.mud:
            _log.info("auth-mud-req from {mud} to itself: logged, not answered", mud=conn.mud)
            return
        if ptype.startswith("channel-"):
            self._channels.handle(conn, packet, raw)
        elif ptype == "chan-filter-reply":
            self._channels.filter_reply(conn, packet, raw)
        elif target == 0:
            for other in list(self._connections.values()):
                self._out.write(other, packet)
        elif target == self._out.name:
            self._router_command(conn, packet, raw)
        elif ptype in _ROUTER_ONLY:
            self._out.error(conn, packet, "not-allowed", "You are not allowed to send this kind of packet.")
        elif target in self._connections:
            self._out.write(self._connections[target], packet)
        else:
            # Known but down: the real router says nothing.
            self._reject(conn, f"{target} is down", raw)

    def _router_command(self, conn, packet, raw):
        ptype = packet[0]
        if ptype == "shutdown":
            if len(packet) != 7 or not isinstance(packet[6], int):
                self._out.error(conn, packet, "bad-pkt", f"Wrong number of elements for packet: {ptype}")
                return
            self._shutdown_mud(conn, packet[6])
        elif ptype in ("chanlist-req", "chanlist-request"):
            self._out.write(conn, self._out.packet("chanlist-reply", conn.mud, 0, self._channels.chanlist_id, self._channels.chanlist()))
        else:
            self._out.error(conn, packet, "not-imp", f"Unknown command sent to router: {ptype}")

    def _shutdown_mud(self, conn, delay):
        name = conn.mud
        del self._connections[name]
        self._channels.stop_listening(name)
        conn.mud = None
        _log.info("MUD {mud} shut down (restart delay {delay})", mud=name, delay=delay)
        if delay > _DELETE_AFTER:
            self._mudlist.muds.pop(name, None)
            self._mudlist.announce({name: 0})
        else:
            self._mudlist.mark(name, max(delay, 0))
        conn.transport.loseConnection()
