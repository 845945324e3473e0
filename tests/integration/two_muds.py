"""Two gateways on one in-repo router, and what the router saw between them.

Shared by test_queries_e2e.py and test_network_e2e.py: "MudA" and "MudB"
are real GatewayServices on loopback with a TCP API client each; the
router's ``received`` and ``sent`` lists are the wire truth the tests read.
"""

import shutil
import tempfile

from twisted.internet import defer, protocol, reactor

from tests.integration.harness import API_KEY, Loopback
from tests.integration.waits import gateway_sees
from tests.vectors import load_vectors

A, B = "MudA", "MudB"

TELL_ONLY_KEY = "tell-only-key-0123456789"


def two_keys(mud):
    """api.auth for ``mud`` with two keys: everything, and tell only (no info)."""
    return {"auth": {"api_keys": [
        {"key": API_KEY, "mud_name": mud, "permissions": ["*"]},
        {"key": TELL_ONLY_KEY, "mud_name": mud, "permissions": ["tell"]}]}}


def mud_info(state=-1, driver="FluffOS v2017", services=None, port=5000):
    """A 13-field mudlist entry as the router holds it."""
    return [state, "127.0.0.1", port, 0, 0, "TestLib", "TestLib", driver, "LP",
            "open", "admin@example.org", services if services is not None else {"tell": 1}, 0]


def player(name, **fields):
    """One presence_sync user, with plausible defaults."""
    user = {"name": name, "visname": name.capitalize(), "title": f"{name.capitalize()} the tester",
            "level": 10, "idle": 7, "race": "elf", "login_time": 1700000000, "gender": 1,
            "channels": []}
    user.update(fields)
    return user


class TwoMuds:
    """Router, MudA, MudB and their clients for one test."""

    def __init__(self, testcase):
        root = tempfile.mkdtemp(prefix="i3gw-e2e-")
        # Registered before the Loopback, so it runs after every gateway stopped.
        testcase.addCleanup(shutil.rmtree, root, ignore_errors=True)
        self._root = root
        self.loop = Loopback(testcase)
        self.router = None
        self.a = self.b = None            # GatewayService
        self.client_a = self.client_b = None
        self.tell_only = None             # a session on A without "info"
        self.dirs = {}

    def state_dir(self, mud):
        if mud not in self.dirs:
            self.dirs[mud] = tempfile.mkdtemp(prefix=f"{mud}-", dir=self._root)
        return self.dirs[mud]

    @defer.inlineCallbacks
    def start(self, a_sections=None, b_sections=None):
        self.router = self.loop.router()
        a_sections = dict(a_sections or {})
        a_sections.setdefault("api", two_keys(A))
        self.a = yield self.start_gateway(A, **a_sections)
        self.b = yield self.start_gateway(B, **(b_sections or {}))
        yield self.synced(self.a, B)
        yield self.synced(self.b, A)
        self.client_a = yield self.loop.tcp_client(self.a)
        self.client_b = yield self.loop.tcp_client(self.b)
        self.tell_only = yield self.loop.tcp_client(self.a, authenticate=False)
        yield self.tell_only.call("authenticate", {"api_key": TELL_ONLY_KEY})

    def start_gateway(self, mud, **sections):
        return self.loop.ready_gateway(mud, [self.router], state_dir=self.state_dir(mud), **sections)

    @staticmethod
    def synced(svc, *muds):
        """Fire once ``svc``'s mudlist shows every one of ``muds`` up."""
        lists = svc.gateway.lists

        def known():
            return all(lists.mud_entry(m) and lists.mud_entry(m)["status"] == "up" for m in muds)
        return gateway_sees(svc, known, f"mudlist shows {', '.join(muds)} up")

    # -- the wire ------------------------------------------------------------

    def received_from(self, mud, ptype=None):
        """Packets the router accepted from ``mud`` (of ``ptype``), in order."""
        return [p for m, p in self.router.received if m == mud and (ptype is None or p[0] == ptype)]

    def sent_to(self, mud, ptype=None):
        return [p for m, p in self.router.sent if m == mud and (ptype is None or p[0] == ptype)]

    def wait_received(self, mud, ptype, predicate=lambda packet: True, timeout=5):
        """Fire with the first packet of ``ptype`` the router accepted from ``mud``."""
        def found(router):
            for m, packet in router.received:
                if m == mud and packet[0] == ptype and predicate(packet):
                    return packet
            return None
        return self.router.wait_for(found, timeout)

    @defer.inlineCallbacks
    def flush(self, mud):
        """Make sure everything ``mud`` sent so far reached the router: ask it
        an auth-mud-req on behalf of the other MUD and wait for the reply,
        which its link writes after anything sent before. Returns the
        packets ``mud`` sent in between, the reply left out."""
        mark = len(self.router.received)
        other = B if mud == A else A
        self.router.send_packet(mud, ["auth-mud-req", 5, other, 0, mud, 0])

        def replied(router):
            return any(m == mud and p[0] == "auth-mud-reply" and p[4] == other
                       for m, p in router.received[mark:])
        yield self.router.wait_for(replied)
        return [p for m, p in self.router.received[mark:] if m == mud and p[0] != "auth-mud-reply"]


# -- shapes of real frames ------------------------------------------------------

def _kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def shape(value):
    """The LPC shape of a value: kinds, with arrays described by their first element."""
    if isinstance(value, list):
        return ["array", shape(value[0]) if value else None]
    return _kind(value)


def vector(ptype, note_contains="", conn=None):
    """The first captured frame of ``ptype`` (decoded) whose note holds the text."""
    for v in load_vectors():
        decoded = v.decoded
        if (isinstance(decoded, list) and decoded and decoded[0] == ptype
                and note_contains in v.note and (conn is None or v.conn == conn)):
            return decoded
    raise LookupError(f"no {ptype} vector with note {note_contains!r}")


def same_shape(ours, theirs, nullable=(3, 5)):
    """True when two packets have the same length and kinds field by field;
    positions in ``nullable`` (by default the header's two users, "a name
    or 0") may be 0 or a string on either side."""
    if len(ours) != len(theirs):
        return False
    for index, (mine, real) in enumerate(zip(ours, theirs)):
        if index in nullable and _kind(mine) in ("int", "string") and _kind(real) in ("int", "string"):
            continue
        if isinstance(mine, list) and isinstance(real, list) and (not mine or not real):
            continue  # an empty array matches any array
        if shape(mine) != shape(real):
            return False
    return True


# -- HTTP -----------------------------------------------------------------------

class _Collect(protocol.Protocol):
    def __init__(self, request):
        self.request = request
        self.data = []
        self.done = defer.Deferred()

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        self.data.append(data)

    def connectionLost(self, reason):
        self.done.callback(b"".join(self.data))


@defer.inlineCallbacks
def http_get(svc, path):
    """(status, body bytes) of an HTTP/1.0 GET on the gateway's web port;
    the server closes after answering, so both sides are done at the end."""
    port = svc.web_listener.getHost().port
    request = f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode()
    client = yield protocol.ClientCreator(reactor, _Collect, request).connectTCP("127.0.0.1", port)
    raw = yield client.done
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body
