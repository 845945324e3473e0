"""etc/prometheus/alerts.yml and etc/grafana/*.json are built only from
metric series a running gateway really exports on /metrics."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase
from twisted.web.client import Agent, readBody

from tests.integration.harness import Loopback

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "etc" / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((ROOT / "etc" / "grafana").glob("*.json"))
METRIC_NAME = re.compile(r"\bintermud3_[a-z0-9_]+\b")


def series_names(exposition):
    """Every series name a PromQL query could use, from /metrics text."""
    names = set()
    for family in text_string_to_metric_families(exposition):
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def alert_expressions():
    rules = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


def dashboard_expressions(path):
    dashboard = json.loads(path.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


class MetricNamesTests(TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        loop = Loopback(self)
        router = loop.router()
        svc = yield loop.ready_gateway("MetricsMUD", [router])
        port = svc.web_listener.getHost().port
        response = yield Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}/metrics".encode())
        self.assertEqual(response.code, 200)
        self.exposition = (yield readBody(response)).decode("utf-8")
        self.exported = series_names(self.exposition)

    def test_every_metric_of_the_alerts_is_exported(self):
        used = set()
        for name, rule in alert_expressions().items():
            found = set(METRIC_NAME.findall(rule["expr"]))
            self.assertTrue(found, name)
            used |= found
        self.assertEqual(used - self.exported, set())

    def test_every_metric_of_the_dashboards_is_exported(self):
        self.assertTrue(DASHBOARDS)
        for path in DASHBOARDS:
            used = {name for expr in dashboard_expressions(path) for name in METRIC_NAME.findall(expr)}
            self.assertTrue(used, path)
            self.assertEqual(used - self.exported, set(), path.name)

    def test_no_created_series(self):
        self.assertIn("intermud3_router_reconnects_total", self.exported)
        self.assertNotIn("_created", self.exposition)


class AlertRulesTests(TestCase):
    def test_the_issues_alerts_are_there_with_severity_and_summary(self):
        rules = alert_expressions()
        wanted = {"intermud3_router_connected": "link down",
                  "intermud3_router_reconnects_total": "reconnect storm",
                  "intermud3_outbound_queue_depth": "queue growing",
                  "intermud3_outbound_expired_total": "messages expiring",
                  "intermud3_packet_decode_errors_total": "decode errors",
                  "intermud3_api_requests_total": "API errors"}
        exprs = " ".join(rule["expr"] for rule in rules.values())
        for metric, what in wanted.items():
            self.assertIn(metric, exprs, what)
        for name, rule in rules.items():
            self.assertIn(rule["labels"]["severity"], ("warning", "critical"), name)
            self.assertTrue(rule["annotations"]["summary"], name)


class PromtoolTests(TestCase):
    def setUp(self):
        if shutil.which("promtool") is None:
            raise SkipTest("promtool is not installed (Debian package prometheus)")

    def test_promtool_accepts_the_rules(self):
        result = subprocess.run(["promtool", "check", "rules", str(ALERTS)],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("SUCCESS", result.stdout)
