"""Every Prometheus metric of the gateway, in one registry of its own.

The registry is injected (tests make a fresh one each) and served by
api/web.py with generate_latest(); nothing here touches the reactor.
"""

from bisect import bisect_left

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

# No `*_created` series: they double every counter's lines on /metrics and
# nothing (alerts, dashboard, rate()) reads them. A process-wide switch.
disable_created_metrics()


class _Count:
    __slots__ = ("value",)

    def __init__(self):
        self.value = 0.0

    def inc(self, amount=1.0):
        self.value += amount


class _Spread:
    """One histogram series: a count per bucket (not cumulative) and the sum."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)   # the last: over every bound (+Inf)
        self.sum = 0.0

    def observe(self, value):
        # Prometheus buckets are "le": a value equal to a bound is in it.
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value


class _PerRequest:
    """A labelled family counted on the reactor thread, for what changes
    once or more per message (requests, packets written). prometheus_client's
    own Counter and Histogram take a lock for every increment, about a tenth
    of a tell's CPU on this path; these are plain numbers read at scrape
    time. The text on /metrics is the same as prometheus_client's."""

    def __init__(self, name, documentation, labelnames, registry):
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._series = {}
        if not self.labelnames:
            self.labels()   # shown as 0 from the start, as prometheus_client does
        registry.register(self)

    def labels(self, **labels):
        key = tuple(str(labels[name]) for name in self.labelnames)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self._new_series()
        return series

    def describe(self):
        return [self._family()]


class ReactorCounter(_PerRequest):
    _new_series = staticmethod(_Count)

    def inc(self, amount=1.0):
        """For an unlabelled counter."""
        self._series[()].value += amount

    def _family(self):
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self):
        family = self._family()
        for key, count in list(self._series.items()):
            family.add_metric(key, count.value)
        yield family


class ReactorHistogram(_PerRequest):
    def __init__(self, name, documentation, labelnames, registry, buckets=Histogram.DEFAULT_BUCKETS):
        self.bounds = tuple(float(b) for b in buckets if b != float("inf"))
        self._labels = [floatToGoString(b) for b in self.bounds] + ["+Inf"]
        super().__init__(name, documentation, labelnames, registry)

    def _new_series(self):
        return _Spread(self.bounds)

    def _family(self):
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self):
        family = self._family()
        for key, spread in list(self._series.items()):
            total, buckets = 0, []
            for label, count in zip(self._labels, spread.counts):
                total += count
                buckets.append((label, total))
            family.add_metric(key, buckets, spread.sum)
        yield family


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
        self.packets_sent = ReactorCounter(
            "intermud3_packets_sent", "I3 packets written to the router", ["type"], r)
        self.packet_decode_errors = Counter(
            "intermud3_packet_decode_errors", "Frames from the router that could not be decoded", registry=r)
        self.packet_quote_repairs = Counter(
            "intermud3_packet_quote_repairs",
            "Frames read only after escaping quotes left unescaped in their strings", registry=r)
        self.router_bytes_received = Counter(
            "intermud3_router_bytes_received", "Bytes received from the router", registry=r)
        self.router_bytes_sent = ReactorCounter(
            "intermud3_router_bytes_sent", "Bytes written to the router", [], r)
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
        self.api_requests = ReactorCounter(
            "intermud3_api_requests", "JSON-RPC requests handled", ["method", "outcome"], r)
        self.api_request_duration = ReactorHistogram(
            "intermud3_api_request_duration_seconds", "Time to answer a JSON-RPC request", ["method"], r)
        self.api_auth_failures = Counter(
            "intermud3_api_auth_failures", "Failed API authentications (wrong key)", registry=r)
        self.events_delivered = Counter(
            "intermud3_events_delivered", "Events written to API clients", ["event"], registry=r)
        self.events_dropped = Counter(
            "intermud3_events_dropped", "Events dropped by a bound (queue size, TTL, buffer)", ["event"], registry=r)
