"""Two gateways, "MudA" and "MudB", on one in-repo router, with API clients.

Shared by the message and channel end-to-end tests: building the pair,
reading what the router received, and comparing a packet's shape with the
real frames in ``tests/data/``.
"""

import shutil
import tempfile

from twisted.internet import defer

from intermud3.testing.router import I3Router
from tests.integration.harness import Loopback
from tests.integration.waits import gateway_sees
from tests.vectors import load_vectors

A, B = "MudA", "MudB"

# Short handshake and backoff: tests flip routers on and off.
FAST_LINK = {"handshake_timeout": 0.3,
             "backoff": {"initial": 0.02, "max": 0.1, "factor": 2, "jitter": False}}


class MudPair:
    """``router``; gateways ``a``, ``b`` (GatewayService); clients ``ca``, ``cb``."""

    def __init__(self, loop, router, a, b, ca, cb):
        self.loop, self.router = loop, router
        self.a, self.b, self.ca, self.cb = a, b, ca, cb

    def received(self, mud, ptype):
        """Every packet of ``ptype`` the router accepted from ``mud``, in order."""
        return [p for m, p in self.router.received if m == mud and p[0] == ptype]

    def wait_received(self, mud, ptype, count=1, timeout=5):
        """Fires with the packets once the router accepted ``count`` of them."""
        def enough(router):
            found = self.received(mud, ptype)
            return found if len(found) >= count else None
        return self.router.wait_for(enough, timeout=timeout)


def make_loop(testcase):
    """A harness Loopback whose state directories live under ``loop.root``,
    removed after every gateway has stopped."""
    root = tempfile.mkdtemp(prefix="i3gw-pair-")
    # Registered first, so it runs last (cleanups run in reverse order).
    testcase.addCleanup(shutil.rmtree, root, ignore_errors=True)
    loop = Loopback(testcase)
    loop.root = root
    return loop


def state_dir(loop, mud):
    return tempfile.mkdtemp(prefix=f"{mud}-", dir=loop.root)


@defer.inlineCallbacks
def start_pair(loop, router=None, a=None, b=None, **router_options):
    """``loop`` from make_loop. Router (new unless given), ready gateways MudA and MudB that know each
    other from the mudlist, and one authenticated TCP client on each.
    ``a``/``b``: config sections for that gateway (merged over the harness's)."""
    router = router if router is not None else loop.router(**router_options)
    gw_a = yield loop.ready_gateway(A, [router], state_dir(loop, A), **(a or {}))
    gw_b = yield loop.ready_gateway(B, [router], state_dir(loop, B), **(b or {}))
    yield gateway_sees(gw_a, lambda: B in gw_a.gateway.lists.muds, f"{A} knows {B}")
    yield gateway_sees(gw_b, lambda: A in gw_b.gateway.lists.muds, f"{B} knows {A}")
    ca = yield loop.tcp_client(gw_a)
    cb = yield loop.tcp_client(gw_b)
    return MudPair(loop, router, gw_a, gw_b, ca, cb)


def listen_router(loop, port, cls=I3Router, **kwargs):
    """A router on a given port (a router "coming back"), stopped at cleanup."""
    from twisted.internet import reactor

    router = cls("*test", **kwargs)
    router.listen(reactor, port, "127.0.0.1")
    loop._stoppers.append(lambda: defer.maybeDeferred(router.shutdown))
    return router


def vector_packet(ptype):
    """The first real frame of ``ptype`` sent to the router (its decoded value)."""
    for vector in load_vectors():
        if vector.dir == "to-router" and vector.decoded[0] == ptype:
            return vector.decoded
    raise LookupError(f"no to-router vector of type {ptype}")


def _kind(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "zero" if value == 0 else "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def assert_shaped_like_vector(testcase, packet, ptype=None):
    """``packet`` has the real frame's length, ttl and the same kind of value
    (0, int, string, array, mapping) in every position."""
    real = vector_packet(ptype or packet[0])
    testcase.assertEqual(len(packet), len(real), f"{packet} vs real {real}")
    testcase.assertEqual(packet[:2], real[:2])
    testcase.assertEqual([_kind(v) for v in packet], [_kind(v) for v in real],
                         f"{packet} vs real {real}")
