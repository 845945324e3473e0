"""What the router link counts, for `stats`, `/health` and the metrics.

Counters outlive connections; the link's outbound counters stay on the
link itself (they are on the send path), the rest are here.
"""

import collections

from twisted.logger import Logger

from intermud3.logsetup import debug_wanted
from intermud3.packets import FIELDS
from intermud3.trace import PacketSummary

__all__ = ["LinkStats", "type_label", "RECENT_FAILURES"]

# One log component, `link`, for the whole package (logging.components).
_log = Logger(namespace="intermud3.link")

# Link failures kept for /health's router.last_errors.
RECENT_FAILURES = 5

# Packet types outside FIELDS are counted under one label: metric label
# values must not be chosen by whoever talks to the router.
_OTHER_TYPE = "other"


def type_label(ptype):
    return ptype if ptype in FIELDS else _OTHER_TYPE


class LinkStats:
    """Inbound counters, reconnects and the last failures. ``metrics`` is
    the gateway's Metrics, or None."""

    def __init__(self, metrics=None):
        self.metrics = metrics
        self.packets_received = 0
        self.decode_errors = 0
        self.quote_repairs = 0      # frames read by lpc_repair after failing
        self.reconnects = 0
        # The last few failures, for /health and `intermud3 doctor`.
        self.recent_failures = collections.deque(maxlen=RECENT_FAILURES)

    def bytes_in(self, count):
        if self.metrics is not None:
            self.metrics.router_bytes_received.inc(count)

    def received(self, packet, router, size):
        self.packets_received += 1
        if self.metrics is not None:
            self.metrics.packets_received.labels(type=type_label(packet.type)).inc()
        if debug_wanted():
            _log.debug("Packet in: {type} from router {router}, {size} bytes: {summary}",
                       type=packet.type, router=router, size=size,
                       summary=PacketSummary(packet.value))

    def decode_failed(self, router, error, size):
        self.decode_errors += 1
        if self.metrics is not None:
            self.metrics.packet_decode_errors.inc()
        _log.warn("Skipped an undecodable frame of {size} bytes from router {router}: {error}",
                  size=size, router=router, error=str(error))

    def repaired(self, router, error):
        self.quote_repairs += 1
        if self.metrics is not None:
            self.metrics.packet_quote_repairs.inc()
        _log.info("Read a frame from router {router} by escaping its stray quotes ({error})",
                  router=router, error=str(error))

    def reconnecting(self, router):
        self.reconnects += 1
        if self.metrics is not None:
            self.metrics.router_reconnects.labels(router=router).inc()

    def failed(self, at, router, reason):
        self.recent_failures.append({"at": at, "router": router, "reason": reason})

    def connected(self, router, up):
        if self.metrics is not None:
            self.metrics.router_connected.labels(router=router).set(1 if up else 0)
