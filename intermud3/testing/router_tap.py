"""twistd plugin body of the test router: ``twistd -n i3router --port 8787 --name '*test'``.

Runs the test router alone, so a MUD developer can try the gateway (or
any I3 client) without touching the public network.
"""

from twisted.application import service
from twisted.python import usage

from intermud3.testing.router import I3Router


class Options(usage.Options):
    synopsis = "[--port 8787] [--name '*test'] [--interface 127.0.0.1] [--flood-control]"
    optParameters = [
        ["port", "p", 8787, "TCP port to listen on.", int],
        ["name", "n", "*test", "Router name (begins with '*')."],
        ["interface", "i", "127.0.0.1", "Address to listen on."],
        ["address", "a", None, "Address offered in startup-reply (default: the interface)."],
        ["channel-delay", None, 0.0,
         "Seconds after start before the channels exist (a real router restarted clean: about 15).",
         float],
        ["accept-gap", None, 0.0,
         "Close a connection accepted within this many seconds of the previous one (real: 1).",
         float],
    ]
    optFlags = [
        ["flood-control", "f", "Block a MUD that sends more than 10 packets in a second."],
    ]

    def postOptions(self):
        if not self["name"].startswith("*"):
            raise usage.UsageError("a router name begins with '*'")
        if not 0 <= self["port"] <= 65535:
            raise usage.UsageError("--port must be 0..65535")
        for name in ("channel-delay", "accept-gap"):
            if self[name] < 0:
                raise usage.UsageError(f"--{name} must be 0 or more")


class RouterService(service.Service):
    """Listens with an I3Router while running; drops every link on stop."""

    def __init__(self, router, port, interface, reactor=None):
        self.router = router
        self.port = port
        self.interface = interface
        self._reactor = reactor

    def startService(self):
        super().startService()
        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor
        self.router.listen(reactor, self.port, self.interface)

    def stopService(self):
        super().stopService()
        return self.router.shutdown()


def build(options, reactor=None):
    """The router and its service from parsed ``Options``."""
    address = options["address"] or options["interface"]
    router = I3Router(options["name"], flood_control=options["flood-control"],
                      channel_delay=options["channel-delay"], accept_gap=options["accept-gap"],
                      address=address, clock=reactor)
    return RouterService(router, options["port"], options["interface"], reactor)


def makeService(options):
    return build(options)
