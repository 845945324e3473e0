"""An in-process I3 router that behaves like the Dead Souls routers.

Every test of the gateway talks to this instead of the public network, so
it copies what the real router does (I3-PROTOCOL.md, and the frames in
``tests/data/``), including the unfriendly parts:

* It reads strictly, like the FluffOS driver: a frame with whitespace
  between tokens, a missing trailing comma or ``([,])`` is dropped without
  a word (``strict_lpc``). It writes like FluffOS too: a newline inside a
  string goes out as a raw CR.
* A malformed or refused ``startup-req-3`` gets no answer at all.
* After a startup it sends ``startup-reply``, the mudlist changes since the
  MUD's ``old_mudlist_id`` (to the MUD), the chanlist (only to a MUD with a
  ``channel`` service), the whole mudlist again one MUD a packet with
  ``target_mud`` 0, then the MUD's own entry under a new id, which every
  connected MUD receives.
* Channel messages go to every listener, the sender included (the echo);
  ``target_mud`` 0 broadcasts go to every connected MUD, sender included.
* A packet to a MUD it knows but which is down is dropped silently; to a
  MUD it has never heard of it answers ``unk-dst``; an unknown type
  addressed to it gets ``not-imp``.
* Flood control (off unless asked): more than 10 weighted packets from one
  MUD in one wall-clock second blocks that MUD for ``block_seconds``.
* Restarted from a clean state, the real router re-creates its channels
  only about 15 s after start; until then a ``channel-listen`` (or a
  message) to one of them gets ``unk-channel``. ``channel_delay`` (off
  unless asked) does the same: the initial channels appear that many
  seconds after the router object is made, announced by a chanlist update.
* It closes a connection accepted within a second of the one before
  (``accept_gap``, off unless asked), so a client reconnecting at once
  must try again.

Test hooks are plain attributes; see ``I3Router``. Nothing here raises on
bad input: what cannot be read is recorded in ``.rejected`` and logged.

tests/integration/test_router_fidelity.py replays the captured conversation
and compares every frame. Differences kept on purpose:

* A MUD that disconnects or shuts down is announced down (state 0) at once.
  The real router schedules that announcement and sends the MUD's state as
  it is when the batch goes out, so a quick reconnect shows as two "up"
  entries and no "down" (ProbeB in the capture).
* Mapping keys go out in insertion order, the startup's one-MUD mudlist
  packets too; FluffOS uses its hash order. Nobody may rely on either.
* Mudlist ids count from 0 for each router object; the real one keeps a
  persistent counter. Passwords are random unless ``rng`` is given.
* The startup answer is written at once; the real router defers its tail,
  so other traffic can land between its packets.
* A new router already has ``DEFAULT_CHANNELS``, hosted by "Frontiers"
  (pass ``channels=()`` for an empty chanlist); the chanlist id starts at
  1 either way, as on the real router.
* Every malformed or refused startup is met with silence, as
  I3-PROTOCOL.md says; some Dead Souls versions answer a few of them with
  ``bad-pkt``. A wrong password is refused whatever address it comes from:
  the real router lets one from the MUD's last address in with a
  ``warning``, but on loopback every MUD shares one address, and the
  gateway's password handling could not be tested.
"""

import random
import struct
from dataclasses import dataclass, field

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from intermud3 import lpc
from intermud3.mudmode import DEFAULT_MAX_FRAME_BYTES, MudModeProtocol
from intermud3.packets import TTL, weight
from intermud3.testing.strict_lpc import strict_problem

__all__ = ["I3Router", "Channel", "DEFAULT_CHANNELS"]

_log = Logger()

_PREFIX = struct.Struct("!I")

# The fields of a startup-req-3 that must be ints and strings (by index).
_STARTUP_INTS = range(6, 12)      # password .. imud_udp_port
_STARTUP_STRINGS = range(12, 18)  # mudlib .. admin_email
_STARTUP_LENGTH = 20

# A restart_delay above a week deletes the MUD from the list.
_DELETE_AFTER = 604800

# Packets only a router may send; a MUD sending one to another MUD is refused.
_ROUTER_ONLY = frozenset(["startup-reply", "chanlist-reply", "mudlist", "bad-mojo"])

# Channels the real network always has; the vectors show them hosted by
# "Frontiers" (a MUD that is not in the local mudlist).
DEFAULT_CHANNELS = ("dead_test4", "dchat", "imud_gossip")
DEFAULT_CHANNEL_HOST = "Frontiers"


@dataclass
class Channel:
    """A channel the router hosts the listing of."""

    owner: str          # host_mud in the chanlist
    type: int = 0       # 0 ban list, 1 admission list, 2 filtered by the owner
    members: set = field(default_factory=set)  # banned (type 0) or admitted (1, 2)

    def admits(self, mud):
        if self.type == 0:
            return mud not in self.members
        return mud == self.owner or mud in self.members


class _RouterConnection(MudModeProtocol):
    """One MUD's link to the router; all decisions are the factory's."""

    # The real router accepts frames up to 2 MiB and writes whole mudlists.
    max_frame_bytes = DEFAULT_MAX_FRAME_BYTES
    max_send_bytes = DEFAULT_MAX_FRAME_BYTES

    mud = None   # the MUD name once a startup-req-3 is accepted
    refused = False   # closed on accept (accept_gap): nothing it sends counts
    peer = "?"
    host = "?"

    def connectionMade(self):
        super().connectionMade()
        address = self.transport.getPeer()
        self.host = getattr(address, "host", "?")
        self.peer = f"{self.host}:{getattr(address, 'port', '?')}"
        self.closed = defer.Deferred()
        self.factory._connectionMade(self)

    def stringReceived(self, string):
        # Replaces the lenient decode of MudModeProtocol: strict first.
        self.factory._frameReceived(self, string)

    def lengthLimitExceeded(self, length):
        self.factory._reject(self, f"frame of {length} bytes is over {self.max_frame_bytes}", b"")
        super().lengthLimitExceeded(length)

    def connectionLost(self, reason):
        super().connectionLost(reason)
        self.factory._connectionLost(self, reason)
        self.closed.callback(None)


class I3Router(ServerFactory):
    """A Dead Souls-like I3 router for tests and for trying the gateway offline.

    Hooks for tests:
      ``received``: (mud, packet) for every packet accepted;
      ``rejected``: (mud or peer, reason, raw bytes) for every one dropped;
      ``sent``: (mud, packet) for every packet written;
      ``connections``: mud name -> connection; ``passwords``: name -> int;
      ``muds``: name -> 13-field mudlist info; ``channels``: name ->
      ``Channel``; ``listening``: channel -> set of MUD names;
      ``router_list``: what startup-reply offers (None: this router only);
      ``refuse_startups``: stay silent on every startup;
      ``silent``: read everything, write nothing (a router gone quiet);
      ``ignore_self_probes``: an ``auth-mud-req`` a MUD addresses to itself
      is only logged, never routed back (as CoffeeMud's router does; the
      Dead Souls router, the default here, sends it back);
      ``freeze()``: stop reading and writing on every link, TCP left up
      (the router's process stopped);
      ``flood_blocked``: MUD -> time its block ends;
      ``refused_connections``: peers closed by ``accept_gap``.
    Methods: ``listen``, ``drop``, ``send_raw``, ``send_packet``,
    ``set_mud``, ``remove_mud``, ``add_channel``, ``wait_for``, ``shutdown``.
    """

    protocol = _RouterConnection
    noisy = False  # no "Starting factory" lines per test

    # Flood control, as the Dead Souls router counts it.
    flood_limit = 10
    block_seconds = 60.0
    # How many MUDs go in one targeted mudlist packet at startup.
    mudlist_entries_per_packet = 100
    # A just-created channel shows type ({}) in the broadcast that
    # announces it, as the real router does (see the vectors).
    new_channel_type_quirk = True

    def __init__(self, name="*test", *, clock=None, flood_control=False,
                 address="127.0.0.1", channels=DEFAULT_CHANNELS, rng=None,
                 channel_delay=0.0, accept_gap=0.0):
        if clock is None:
            from twisted.internet import reactor as clock
        self.name = name
        self.clock = clock
        self.flood_control = flood_control
        self.address = address
        self.port = None
        self.router_list = None
        self.refuse_startups = False
        self.silent = False
        self.ignore_self_probes = False
        self._rng = rng if rng is not None else random.SystemRandom()

        self.received = []
        self.rejected = []
        self.sent = []
        self.connections = {}
        self.passwords = {}
        self.muds = {}
        self.channels = {}
        self.accept_gap = accept_gap
        self.refused_connections = []
        self._last_accept = None
        self._channels_call = None
        if channel_delay > 0:
            self._channels_call = clock.callLater(channel_delay, self._open_channels, tuple(channels))
        else:
            self.channels = {name_: Channel(DEFAULT_CHANNEL_HOST) for name_ in channels}
        self.listening = {}
        self.flood_blocked = {}
        self.mudlist_id = 0
        # The real router's chanlist starts at id 1, even when empty.
        self.chanlist_id = 1

        self._listening_port = None
        self._links = set()           # every open connection, started or not
        self._mud_changed = {}        # name -> mudlist id of its last change
        self._flood_counts = {}       # mud -> (second, weighted count)
        self._waiters = []

    # ------------------------------------------------------------ lifecycle

    def listen(self, reactor, port=0, interface="127.0.0.1"):
        """Listen on TCP; sets ``.port`` and returns the IListeningPort."""
        self._listening_port = reactor.listenTCP(port, self, interface=interface)
        self.port = self._listening_port.getHost().port
        _log.info("I3 router {name} listening on {interface}:{port}",
                  name=self.name, interface=interface, port=self.port)
        return self._listening_port

    def shutdown(self):
        """Stop listening and drop every link; the Deferred fires when all are closed."""
        waits = []
        if self._listening_port is not None:
            waits.append(defer.maybeDeferred(self._listening_port.stopListening))
            self._listening_port = None
        for conn in list(self._links):
            waits.append(conn.closed)
            conn.transport.loseConnection()
        # Pending waiters never fire now; their timers must not outlive us.
        for _, _, call in self._waiters:
            call.cancel()
        if self._channels_call is not None and self._channels_call.active():
            self._channels_call.cancel()
        self._waiters = []
        return defer.gatherResults(waits, consumeErrors=True)

    def _open_channels(self, names):
        """The delayed start-up channels, announced as the real router does
        when it re-creates them: one chanlist update each."""
        self._channels_call = None
        for name in names:
            if name not in self.channels:
                self._create_channel(name, DEFAULT_CHANNEL_HOST, 0)

    def _connectionMade(self, conn):
        now = self.clock.seconds()
        last = self._last_accept
        if self.accept_gap > 0 and last is not None and now - last < self.accept_gap:
            _log.info("Closing {peer}: accepted within {gap}s of the previous connection",
                      peer=conn.peer, gap=self.accept_gap)
            self.refused_connections.append(conn.peer)
            conn.refused = True
            conn.transport.loseConnection()
        else:
            self._last_accept = now
        self._links.add(conn)
        _log.debug("Connection from {peer}", peer=conn.peer)
        self._changed()

    def _connectionLost(self, conn, reason):
        self._links.discard(conn)
        name = conn.mud
        if name is not None and self.connections.get(name) is conn:
            del self.connections[name]
            self._stop_listening(name)
            if name in self.muds:
                self._mark(name, 0)
            _log.info("MUD {mud} disconnected", mud=name)
        self._changed()

    # ------------------------------------------------------------ test hooks

    def freeze(self):
        """Stop reading from and writing to every link; sockets stay open."""
        self.silent = True
        for conn in self._links:
            conn.transport.pauseProducing()

    def drop(self, mud):
        """Close ``mud``'s link; the Deferred fires once it is closed."""
        conn = self.connections.get(mud)
        if conn is None:
            return defer.succeed(None)
        conn.transport.loseConnection()
        return conn.closed

    def send_raw(self, mud, data):
        """Write ``data`` as it is on ``mud``'s link (even when silent)."""
        self.connections[mud].transport.write(data)

    def send_packet(self, mud, packet):
        """Write one packet to ``mud`` as the router would (even when silent)."""
        return self._write(self.connections[mud], packet, force=True)

    def set_mud(self, name, info):
        """Add or change a MUD (13-field info), or delete it (info 0/None),
        and tell every connected MUD."""
        if not info:
            self.remove_mud(name)
            return
        self.muds[name] = list(info)
        self._announce({name: self.muds[name]})

    def remove_mud(self, name):
        self.muds.pop(name, None)
        self.passwords.pop(name, None)
        self._announce({name: 0})

    def add_channel(self, name, owner=DEFAULT_CHANNEL_HOST, type=0):
        """Create a channel and tell every channel-capable MUD, as a
        ``channel-add`` from ``owner`` would."""
        self._create_channel(name, owner, type)

    def wait_for(self, predicate, timeout=5):
        """A Deferred firing with predicate(self) once it is true.

        Checked now and after every packet and state change; fails with
        ``defer.TimeoutError`` after ``timeout`` seconds of ``clock`` (with
        a ``task.Clock``, only when the test advances it).
        """
        d = defer.Deferred(lambda _: self._forget(entry))
        result = predicate(self)
        if result:
            d.callback(result)
            return d
        entry = [predicate, d, None]

        def expire():
            self._waiters.remove(entry)
            d.errback(defer.TimeoutError(f"router condition not met in {timeout}s"))

        entry[2] = self.clock.callLater(timeout, expire)
        self._waiters.append(entry)
        return d

    def _forget(self, entry):
        if entry in self._waiters:
            self._waiters.remove(entry)
            entry[2].cancel()

    def _changed(self):
        for entry in list(self._waiters):
            predicate, d, call = entry
            if entry not in self._waiters:
                continue
            try:
                result = predicate(self)
            except Exception:
                self._forget(entry)
                d.errback()
                continue
            if result:
                self._forget(entry)
                d.callback(result)

    # ------------------------------------------------------------ reading

    def _reject(self, conn, reason, raw):
        who = conn.mud or conn.peer
        self.rejected.append((who, reason, bytes(raw)))
        _log.info("Router dropped a frame from {who}: {reason}", who=who, reason=reason)
        self._changed()

    def _frameReceived(self, conn, raw):
        if conn.refused:
            return
        try:
            self._handle(conn, raw)
        except Exception:
            # A router bug must not take the test's reactor down with it.
            _log.failure("Router failed on a frame from {who}", who=conn.mud or conn.peer)
            self._reject(conn, "router error (see log)", raw)

    def _handle(self, conn, raw):
        # FluffOS reads strictly and drops an unreadable packet silently.
        problem = strict_problem(raw)
        if problem is not None:
            self._reject(conn, f"not strict LPC: {problem}", raw)
            return
        try:
            packet = lpc.decode(raw)
        except lpc.LPCError as exc:
            self._reject(conn, f"undecodable: {exc}", raw)
            return
        if not isinstance(packet, list) or len(packet) < 6 or not isinstance(packet[0], str):
            self._reject(conn, "not a packet (an array of six or more, type first)", raw)
            return
        if self.flood_control and self._flooded(conn, packet, raw):
            return
        if conn.mud is None and packet[0] != "startup-req-3":
            self._reject(conn, f"{packet[0]} before startup", raw)
            return
        if packet[0] == "startup-req-3":
            self._startup(conn, packet, raw)
            return
        if packet[2] != conn.mud:
            self._reject(conn, f"originator {packet[2]!r} is not this link's MUD", raw)
            return
        header = self._header_problem(packet)
        if header is not None:
            self._error(conn, packet, "bad-pkt", "Invalid initial data")
            self._reject(conn, header, raw)
            return
        target = packet[4]
        if target != 0 and target != self.name and target not in self.muds:
            self.received.append((conn.mud, packet))
            self._error(conn, packet, "unk-dst", "destination unknown")
            self._changed()
            return
        self.received.append((conn.mud, packet))
        self._dispatch(conn, packet, raw)
        self._changed()

    @staticmethod
    def _header_problem(packet):
        if not isinstance(packet[1], int):
            return "ttl is not an int"
        if not isinstance(packet[2], str) or not packet[2]:
            return "originator_mud is not a name"
        for index, label in ((3, "originator_user"), (4, "target_mud"), (5, "target_user")):
            value = packet[index]
            if not isinstance(value, str) and value != 0:
                return f"{label} is neither a string nor 0"
        return None

    def _flooded(self, conn, packet, raw):
        """Counts the packet; True when it is dropped for flooding."""
        key = packet[2] if isinstance(packet[2], str) else conn.peer
        now = self.clock.seconds()
        second = int(now)
        counted_second, count = self._flood_counts.get(key, (second, 0))
        if counted_second != second:
            count = 0
        count += weight(packet[0])
        self._flood_counts[key] = (second, count)
        own = conn.mud is not None and conn.mud == key
        until = self.flood_blocked.get(key)
        if until is not None:
            if now < until:
                if own and count < 2:
                    self._error(conn, packet, "not-allowed",
                                "Your packets are being temporarily dropped due to flooding.")
                self._reject(conn, "flood: blocked", raw)
                return True
            del self.flood_blocked[key]
        if count > self.flood_limit:
            self.flood_blocked[key] = now + self.block_seconds
            if own:
                self._error(conn, packet, "not-allowed",
                            "Flood detected! Your packets will be temporarily ignored.")
            _log.warn("Router blocks {mud} for flooding ({count} in one second)", mud=key, count=count)
            self._reject(conn, f"flood: {count} weighted packets in one second", raw)
            return True
        return False

    # ------------------------------------------------------------ startup

    def _startup_problem(self, packet):
        if len(packet) != _STARTUP_LENGTH:
            return f"startup-req-3 has {len(packet)} elements, not {_STARTUP_LENGTH}"
        header = self._header_problem(packet)
        if header is not None:
            return header
        if packet[4] != self.name:
            return f"startup-req-3 is addressed to {packet[4]!r}, not {self.name!r}"
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

    def _startup(self, conn, packet, raw):
        problem = self._startup_problem(packet) or self._refusal(conn, packet)
        if problem is not None:
            # A real router answers nothing: the gateway must time out.
            self._reject(conn, problem, raw)
            return
        name, password = packet[2], packet[6]
        known = self.passwords.get(name)
        existing = self.connections.get(name)
        if existing is not None and existing is not conn:
            # Same name and password: the old link is stale; it goes quietly.
            existing.mud = None
            existing.transport.loseConnection()
        if known is None or password == 0:
            password = self._rng.randint(100000000, 999999999)
        conn.mud = name
        self.connections[name] = conn
        self.passwords[name] = password
        self._stop_listening(name)
        services = packet[18]
        self.muds[name] = [-1, conn.host] + packet[9:12] + packet[12:18] + [services, packet[19]]
        self.mudlist_id += 1
        self._mud_changed[name] = self.mudlist_id
        self.received.append((name, packet))
        _log.info("MUD {mud} started up from {peer}", mud=name, peer=conn.peer)

        routers = self.router_list or [[self.name, f"{self.address} {self.port}"]]
        self._write(conn, self._packet("startup-reply", name, 0, routers, password))
        old_id = packet[7]
        changes = [(n, info) for n, info in self.muds.items() if self._mud_changed.get(n, 0) > old_id]
        for start in range(0, len(changes), self.mudlist_entries_per_packet):
            chunk = dict(changes[start:start + self.mudlist_entries_per_packet])
            self._write(conn, self._packet("mudlist", name, 0, self.mudlist_id, chunk))
        if "channel" in services:
            self._write(conn, self._packet("chanlist-reply", name, 0, self.chanlist_id, self._chanlist()))
        # The real router then repeats the whole list, one MUD a packet,
        # addressed to 0 but sent to this MUD alone.
        for other, info in list(self.muds.items()):
            self._write(conn, self._packet("mudlist", 0, 0, self.mudlist_id, {other: info}))
        self._announce({name: self.muds[name]})
        self._changed()

    def _refusal(self, conn, packet):
        """Why a well-formed startup is refused, or None."""
        if self.refuse_startups:
            return "refusing every startup"
        name, password = packet[2], packet[6]
        if conn.mud is not None and conn.mud != name:
            return f"link already registered as {conn.mud!r}"
        known = self.passwords.get(name)
        # Password 0 asks for a new one; any other must be the stored one.
        if known is not None and password not in (0, known):
            return "wrong password"
        existing = self.connections.get(name)
        if existing is not None and existing is not conn and password != known:
            return "MUD already connected on another link"
        return None

    # ------------------------------------------------------------ routing

    def _dispatch(self, conn, packet, raw):
        ptype, target = packet[0], packet[4]
        if self.ignore_self_probes and ptype == "auth-mud-req" and target == conn.mud:
            _log.info("auth-mud-req from {mud} to itself: logged, not answered", mud=conn.mud)
            return
        if ptype.startswith("channel-"):
            self._channel_packet(conn, packet, raw)
        elif ptype == "chan-filter-reply":
            self._filter_reply(conn, packet, raw)
        elif target == 0:
            for other in list(self.connections.values()):
                self._write(other, packet)
        elif target == self.name:
            self._router_command(conn, packet, raw)
        elif ptype in _ROUTER_ONLY:
            self._error(conn, packet, "not-allowed", "You are not allowed to send this kind of packet.")
        elif target in self.connections:
            self._write(self.connections[target], packet)
        else:
            # Known but down: the real router says nothing.
            self._reject(conn, f"{target} is down", raw)

    def _router_command(self, conn, packet, raw):
        ptype = packet[0]
        if ptype == "shutdown":
            if len(packet) != 7 or not isinstance(packet[6], int):
                self._error(conn, packet, "bad-pkt", f"Wrong number of elements for packet: {ptype}")
                return
            self._shutdown_mud(conn, packet[6])
        elif ptype in ("chanlist-req", "chanlist-request"):
            self._write(conn, self._packet("chanlist-reply", conn.mud, 0, self.chanlist_id, self._chanlist()))
        else:
            self._error(conn, packet, "not-imp", f"Unknown command sent to router: {ptype}")

    def _shutdown_mud(self, conn, delay):
        name = conn.mud
        del self.connections[name]
        self._stop_listening(name)
        conn.mud = None
        _log.info("MUD {mud} shut down (restart delay {delay})", mud=name, delay=delay)
        if delay > _DELETE_AFTER:
            self.muds.pop(name, None)
            self._announce({name: 0})
        else:
            self._mark(name, max(delay, 0))
        conn.transport.loseConnection()

    # ------------------------------------------------------------ channels

    def _channel_packet(self, conn, packet, raw):
        kind = packet[0][len("channel-"):]
        if kind in ("m", "e", "t"):
            self._channel_message(conn, packet, raw)
        elif kind == "listen":
            self._channel_listen(conn, packet, raw)
        elif kind == "add":
            self._channel_add(conn, packet, raw)
        elif kind == "remove":
            self._channel_remove(conn, packet, raw)
        elif kind == "admin":
            self._channel_admin(conn, packet, raw)
        else:
            self._error(conn, packet, "unk-type", f"I don't know what {packet[0]} means.")

    def _channel_message(self, conn, packet, raw):
        ptype = packet[0]
        if ptype == "channel-t":
            if len(packet) != 13 or not all(isinstance(v, str) for v in packet[9:13]):
                self._error(conn, packet, "bad-pkt", "Bad packet format.")
                return
            if "$N" not in packet[9]:
                suffix = f" (from {packet[3]}@{packet[2]})"
                packet[9] += suffix
                packet[10] += suffix
        else:
            if len(packet) != 9:
                self._error(conn, packet, "bad-pkt", "Bad packet format.")
                return
            if ptype == "channel-e" and isinstance(packet[8], str) and "$N" not in packet[8]:
                packet[8] += f" (from {packet[3]}@{packet[2]})"
        if packet[4] != 0 or packet[5] != 0 or not all(isinstance(v, str) for v in packet[6:9]):
            self._error(conn, packet, "bad-pkt", "Bad packet format.")
            return
        name = packet[6]
        channel = self.channels.get(name)
        if channel is None:
            self._error(conn, packet, "unk-channel", f"Unknown channel: {name}")
            return
        if conn.mud not in self.listening.get(name, ()):
            # The real router makes the sender listen instead of sending.
            self._error(conn, packet, "warning",
                        f"Your mud wasn't listening to {name}, so I'll start you listening right now.")
            if channel.admits(conn.mud):
                self.listening.setdefault(name, set()).add(conn.mud)
            return
        if channel.type == 2 and conn.mud != channel.owner:
            owner = self.connections.get(channel.owner)
            if owner is None:
                self._error(conn, packet, "unk-dst", f"{channel.owner} is not online to filter {name}")
                return
            self._write(owner, [
                "chan-filter-req", TTL, self.name, 0, channel.owner, 0, name, packet])
            return
        self._to_listeners(name, packet)

    def _to_listeners(self, name, packet):
        for mud in sorted(self.listening.get(name, ())):
            conn = self.connections.get(mud)
            if conn is not None:
                self._write(conn, packet)

    def _filter_reply(self, conn, packet, raw):
        inner = packet[7] if len(packet) > 7 else None
        name = packet[6] if len(packet) > 6 else None
        channel = self.channels.get(name) if isinstance(name, str) else None
        if channel is None or channel.owner != conn.mud:
            self._error(conn, packet, "not-allowed", f"You are not the owner of {name}")
            return
        if (not isinstance(inner, list) or len(inner) < 7
                or inner[0] not in ("channel-m", "channel-e", "channel-t") or inner[6] != name):
            self._error(conn, packet, "not-allowed", "Not a channel packet for that channel.")
            return
        self._to_listeners(name, inner)

    def _channel_listen(self, conn, packet, raw):
        if len(packet) != 8 or not isinstance(packet[6], str) or not isinstance(packet[7], int):
            self._reject(conn, "channel-listen needs a channel name and an int flag", raw)
            return
        name, on = packet[6], packet[7]
        channel = self.channels.get(name)
        if channel is None:
            self._error(conn, packet, "unk-channel", f"Unknown channel: {name}")
            return
        listeners = self.listening.setdefault(name, set())
        if bool(on) == (conn.mud in listeners):
            return  # no change
        if on and not channel.admits(conn.mud):
            reason = f"Banned from {name}" if channel.type == 0 else f"Not in allow list for {name}"
            self._send_error(conn, conn.mud, 0, "not-allowed", reason, packet)
            return
        if on:
            listeners.add(conn.mud)
        else:
            listeners.discard(conn.mud)

    def _channel_add(self, conn, packet, raw):
        if len(packet) != 8 or not isinstance(packet[6], str) or not isinstance(packet[7], int):
            self._error(conn, packet, "bad-pkt", "Bad packet format.")
            return
        name = packet[6]
        if name in self.channels:
            self._reject(conn, f"channel {name} already exists", raw)
            return
        self._create_channel(name, conn.mud, packet[7])

    def _create_channel(self, name, owner, type):
        # The real router announces a new channel with the whole chanlist.
        self.channels[name] = Channel(owner, type)
        self.chanlist_id += 1
        listing = self._chanlist()
        if self.new_channel_type_quirk:
            listing[name] = [owner, []]
        self._broadcast_chanlist(listing)

    def _owned_channel(self, conn, packet, name):
        """The channel `name` if the sender owns it; else None, answered with
        unk-channel or not-allowed."""
        channel = self.channels.get(name) if isinstance(name, str) else None
        if channel is None:
            self._error(conn, packet, "unk-channel", f"Unknown channel: {name}")
        elif channel.owner != conn.mud:
            self._error(conn, packet, "not-allowed", f"Channel {name} owned by: {channel.owner}")
            channel = None
        return channel

    def _channel_remove(self, conn, packet, raw):
        name = packet[6] if len(packet) > 6 else None
        if self._owned_channel(conn, packet, name) is None:
            return
        del self.channels[name]
        self.listening.pop(name, None)
        self.chanlist_id += 1
        self._broadcast_chanlist({name: 0})

    def _channel_admin(self, conn, packet, raw):
        if len(packet) != 9:
            self._error(conn, packet, "bad-pkt", "Bad packet format.")
            return
        name = packet[6]
        channel = self._owned_channel(conn, packet, name)
        if channel is None:
            return
        added = [m for m in packet[7] if isinstance(m, str)] if isinstance(packet[7], list) else []
        removed = [m for m in packet[8] if isinstance(m, str)] if isinstance(packet[8], list) else []
        channel.members.update(added)
        channel.members.difference_update(removed)
        listeners = self.listening.get(name, set())
        for mud in list(listeners):
            if not channel.admits(mud):
                listeners.discard(mud)

    def _stop_listening(self, mud):
        # Listening is per connection: a MUD listens again after reconnecting.
        for listeners in self.listening.values():
            listeners.discard(mud)

    def _chanlist(self):
        return {name: [c.owner, c.type] for name, c in self.channels.items()}

    def _broadcast_chanlist(self, listing):
        for name, conn in list(self.connections.items()):
            services = self.muds.get(name, [0] * 13)[11]
            if isinstance(services, dict) and "channel" in services:
                self._write(conn, self._packet("chanlist-reply", name, 0, self.chanlist_id, listing))
        self._changed()

    # ------------------------------------------------------------ mudlist

    def _mark(self, name, state):
        self.muds[name][0] = state
        self._announce({name: self.muds[name]})

    def _announce(self, delta):
        """A mudlist change under a new id, to every connected MUD."""
        self.mudlist_id += 1
        for name in delta:
            self._mud_changed[name] = self.mudlist_id
        for name, conn in list(self.connections.items()):
            self._write(conn, self._packet("mudlist", name, 0, self.mudlist_id, delta))
        self._changed()

    # ------------------------------------------------------------ writing

    def _packet(self, ptype, t_mud, t_user, *fields):
        return [ptype, TTL, self.name, 0, t_mud, t_user, *fields]

    def _error(self, conn, packet, code, message):
        self._send_error(conn, packet[2], packet[3], code, message, packet)

    def _send_error(self, conn, mud, user, code, message, packet):
        self._write(conn, self._packet("error", mud, user, code, message, packet))

    def _write(self, conn, packet, *, force=False):
        """Writes one packet as FluffOS would; False when nothing was written."""
        if self.silent and not force:
            return False
        try:
            # FluffOS writes a newline inside a string as a raw CR; the
            # strict encoder emits LF nowhere else.
            text = lpc.encode(packet).replace(b"\n", b"\r") + b"\x00"
        except lpc.LPCError as exc:
            _log.warn("Router cannot write a {type} packet: {error}", type=packet[0], error=str(exc))
            return False
        data = _PREFIX.pack(len(text)) + text
        if len(data) > conn.max_send_bytes:
            _log.warn("Router frame of {size} bytes is too large; not sent", size=len(data))
            return False
        conn.transport.write(data)
        self.sent.append((conn.mud, packet))
        return True
