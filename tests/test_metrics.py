"""metrics.ReactorCounter and ReactorHistogram: lock-free counts for the
per-message families, shown on /metrics exactly as prometheus_client's own
Counter and Histogram show the same observations."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from twisted.trial.unittest import SynchronousTestCase

from intermud3.metrics import Metrics, ReactorCounter, ReactorHistogram


class SameTextTests(SynchronousTestCase):
    def test_counters_and_histograms_read_as_prometheus_clients(self):
        theirs, ours = CollectorRegistry(), CollectorRegistry()
        counters = (Counter("t_requests", "Requests", ["method", "outcome"], registry=theirs),
                    ReactorCounter("t_requests", "Requests", ["method", "outcome"], ours))
        histograms = (Histogram("t_seconds", "Time", ["method"], registry=theirs),
                      ReactorHistogram("t_seconds", "Time", ["method"], ours))
        plain = (Counter("t_bytes", "Bytes", registry=theirs), ReactorCounter("t_bytes", "Bytes", [], ours))
        self.assertEqual(generate_latest(ours), generate_latest(theirs))   # the unlabelled 0
        # Values on a bucket's bound belong to it ("le"); past the last, +Inf.
        for method, value in [("tell", 0.005), ("tell", 0.0001), ("who", 2.5), ("tell", 11.0),
                              ("tell", 0.3), ("who", 1e9), ("tell", 0.25)]:
            for counter in counters:
                counter.labels(method=method, outcome="ok").inc()
            for histogram in histograms:
                histogram.labels(method=method).observe(value)
            for counter in plain:
                counter.inc(7)
        self.assertEqual(generate_latest(ours), generate_latest(theirs))

    def test_the_gateways_families_are_registered(self):
        metrics = Metrics()
        metrics.api_requests.labels(method="tell", outcome="ok").inc()
        metrics.router_bytes_sent.inc(10)
        self.assertEqual(metrics.registry.get_sample_value(
            "intermud3_api_requests_total", {"method": "tell", "outcome": "ok"}), 1)
        self.assertEqual(metrics.registry.get_sample_value("intermud3_router_bytes_sent_total"), 10)
