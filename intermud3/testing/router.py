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

from twisted.internet import defer
from twisted.internet.protocol import ServerFactory
from twisted.logger import Logger

from intermud3 import lpc
from intermud3.mudmode import DEFAULT_MAX_FRAME_BYTES, MudModeProtocol
from intermud3.testing.router_channels import DEFAULT_CHANNEL_HOST, DEFAULT_CHANNELS, Channel, RouterChannels
from intermud3.testing.router_conditions import Conditions
from intermud3.testing.router_flood import FloodControl
from intermud3.testing.router_mudlist import RouterMudlist
from intermud3.testing.router_routing import Routing
from intermud3.testing.router_startup import Startups, header_problem, startup_problem
from intermud3.testing.router_wire import RouterWriter
from intermud3.testing.strict_lpc import strict_problem

__all__ = ["I3Router", "Channel", "DEFAULT_CHANNELS", "DEFAULT_CHANNEL_HOST"]

_log = Logger()


def _forward(part, name, doc):
    """A property of the router kept by one of its parts."""
    return property(lambda self: getattr(getattr(self, part), name),
                    lambda self, value: setattr(getattr(self, part), name, value), doc=doc)


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

    This class accepts connections, reads strictly and refuses startups;
    its parts, built here, do the rest: write (router_wire.py), check and
    answer startups (router_startup.py), route (router_routing.py), keep
    the mudlist (router_mudlist.py), run the channels
    (router_channels.py), count floods (router_flood.py) and wait on
    conditions (router_conditions.py).
    """

    protocol = _RouterConnection
    noisy = False  # no "Starting factory" lines per test

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

        self.received = []
        self.rejected = []
        self.connections = {}
        self.passwords = {}
        self.accept_gap = accept_gap
        self.refused_connections = []
        self._last_accept = None
        self._listening_port = None
        self._links = set()           # every open connection, started or not

        self.conditions = Conditions(self, clock)
        self._changed = self.conditions.changed
        self.wait_for = self.conditions.wait_for
        self.out = RouterWriter(name)
        self.sent = self.out.sent
        self.mudlist = RouterMudlist(self.connections, self.out, self._changed)
        self.muds = self.mudlist.muds
        self.flood = FloodControl(clock, self.out, self._reject)
        self.flood_blocked = self.flood.blocked
        self.channel_service = RouterChannels(
            self.connections, self.muds, self.out, self._reject, self._changed)
        self.channels = self.channel_service.channels
        self.listening = self.channel_service.listening
        self.routing = Routing(connections=self.connections, mudlist=self.mudlist,
                               channels=self.channel_service, out=self.out, reject=self._reject)
        self.startups = Startups(
            connections=self.connections, passwords=self.passwords, mudlist=self.mudlist,
            channels=self.channel_service, out=self.out,
            rng=rng if rng is not None else random.SystemRandom(), routers=self._router_entries,
            received=self.received, changed=self._changed)
        self._channels_call = None
        if channel_delay > 0:
            self._channels_call = clock.callLater(channel_delay, self._open_channels, tuple(channels))
        else:
            self.channel_service.open_defaults(channels)

    # Settings tests change, kept by the part that uses them.
    silent = _forward("out", "silent", "read everything, write nothing")
    flood_limit = _forward("flood", "limit", "weighted packets a MUD may send in one second")
    block_seconds = _forward("flood", "block_seconds", "how long a flooding MUD is ignored")
    new_channel_type_quirk = _forward(
        "channel_service", "new_channel_type_quirk", "a new channel's broadcast shows type ({})")
    ignore_self_probes = _forward(
        "routing", "ignore_self_probes", "an auth-mud-req to its own MUD is not routed back")
    mudlist_entries_per_packet = _forward(
        "startups", "entries_per_packet", "MUDs in one targeted mudlist packet at startup")
    mudlist_id = _forward("mudlist", "mudlist_id", "the latest mudlist id")
    chanlist_id = _forward("channel_service", "chanlist_id", "the latest chanlist id")

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
        self.conditions.cancel_all()
        if self._channels_call is not None and self._channels_call.active():
            self._channels_call.cancel()
        return defer.gatherResults(waits, consumeErrors=True)

    def _open_channels(self, names):
        self._channels_call = None
        self.channel_service.open_delayed(names)

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
            self.channel_service.stop_listening(name)
            if name in self.muds:
                self.mudlist.mark(name, 0)
            _log.info("MUD {mud} disconnected", mud=name)
        self._changed()

    # ------------------------------------------------------------ test hooks

    def freeze(self):
        """Stop reading from and writing to every link; sockets stay open."""
        self.out.silent = True
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
        return self.out.write(self.connections[mud], packet, force=True)

    def set_mud(self, name, info):
        """Add or change a MUD (13-field info), or delete it (info 0/None),
        and tell every connected MUD."""
        if not info:
            self.remove_mud(name)
            return
        self.muds[name] = list(info)
        self.mudlist.announce({name: self.muds[name]})

    def remove_mud(self, name):
        self.muds.pop(name, None)
        self.passwords.pop(name, None)
        self.mudlist.announce({name: 0})

    def add_channel(self, name, owner=DEFAULT_CHANNEL_HOST, type=0):
        """Create a channel and tell every channel-capable MUD, as a
        ``channel-add`` from ``owner`` would."""
        self.channel_service.create(name, owner, type)

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
        if self.flood_control and self.flood.flooded(conn, packet, raw):
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
        header = header_problem(packet)
        if header is not None:
            self.out.error(conn, packet, "bad-pkt", "Invalid initial data")
            self._reject(conn, header, raw)
            return
        target = packet[4]
        if target != 0 and target != self.name and target not in self.muds:
            self.received.append((conn.mud, packet))
            self.out.error(conn, packet, "unk-dst", "destination unknown")
            self._changed()
            return
        self.received.append((conn.mud, packet))
        self.routing.route(conn, packet, raw)
        self._changed()

    # ------------------------------------------------------------ startup

    def _startup(self, conn, packet, raw):
        problem = startup_problem(packet, self.name) or self._refusal(conn, packet)
        if problem is not None:
            # A real router answers nothing: the gateway must time out.
            self._reject(conn, problem, raw)
            return
        self.startups.accept(conn, packet)

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

    def _router_entries(self):
        return self.router_list or [[self.name, f"{self.address} {self.port}"]]
