"""Every Prometheus metric of the gateway, in one registry of its own.

The registry is injected (tests make a fresh one each) and served by
api/web.py with generate_latest(); nothing here touches the reactor.
"""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

# No `*_created` series: they double every counter's lines on /metrics and
# nothing (alerts, dashboard, rate()) reads them. A process-wide switch.
disable_created_metrics()


class Metrics:
    def __init__(self, registry=None):
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.router_connected = Gauge(
            "intermud3_router_connected", "1 while the router link is ready", ["router"], registry=r)
        self.router_reconnects = Counter(
            "intermud3_router_reconnects", "Router link (re)connection attempts after the first",
            ["router"], registry=r)
        self.packets_received = Counter(
            "intermud3_packets_received", "I3 packets received from the router", ["type"], registry=r)
        self.packets_sent = Counter(
            "intermud3_packets_sent", "I3 packets written to the router", ["type"], registry=r)
        self.packet_decode_errors = Counter(
            "intermud3_packet_decode_errors", "Frames from the router that could not be decoded", registry=r)
        self.packet_quote_repairs = Counter(
            "intermud3_packet_quote_repairs",
            "Frames read only after escaping quotes left unescaped in their strings", registry=r)
        self.router_bytes_received = Counter(
            "intermud3_router_bytes_received", "Bytes received from the router", registry=r)
        self.router_bytes_sent = Counter(
            "intermud3_router_bytes_sent", "Bytes written to the router", registry=r)
        self.outbound_queue_depth = Gauge(
            "intermud3_outbound_queue_depth", "Messages waiting in the durable outbound queue", registry=r)
        self.store_write_failures = Counter(
            "intermud3_store_write_failures", "State database writes that failed", ["kind"],
            registry=r)
        self.outbound_expired = Counter(
            "intermud3_outbound_expired", "Queued messages dropped unsent at router.queue.ttl", registry=r)
        self.mudlist_size = Gauge("intermud3_mudlist_size", "MUDs in the mudlist", registry=r)
        self.chanlist_size = Gauge("intermud3_chanlist_size", "Channels in the chanlist", registry=r)
        self.api_connections = Gauge(
            "intermud3_api_connections", "Open API connections", ["transport"], registry=r)
        self.api_requests = Counter(
            "intermud3_api_requests", "JSON-RPC requests handled", ["method", "outcome"], registry=r)
        self.api_request_duration = Histogram(
            "intermud3_api_request_duration_seconds", "Time to answer a JSON-RPC request", ["method"], registry=r)
        self.api_auth_failures = Counter(
            "intermud3_api_auth_failures", "Failed API authentications (wrong key)", registry=r)
        self.events_delivered = Counter(
            "intermud3_events_delivered", "Events written to API clients", ["event"], registry=r)
        self.events_dropped = Counter(
            "intermud3_events_dropped", "Events dropped by a bound (queue size, TTL, buffer)", ["event"], registry=r)
