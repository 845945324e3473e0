"""The logging section filters observers that were there before the gateway."""

import io
import json

from twisted.logger import FilteringLogObserver, LogBeginner, LogLevel, LogPublisher, Logger
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import logsetup
from intermud3.config import load_text, with_overrides
from intermud3.logsetup import GatewayLogObserver, InstalledFilter, logging_begun


def logging_config(level="info", fmt="text", components=None):
    return with_overrides(load_text("mud: {name: TestMud}", environ={}), {"logging": {
        "level": level, "format": fmt, "components": components or {}}}).logging


class InstalledFilterTests(SynchronousTestCase):
    def setUp(self):
        self.publisher = LogPublisher()
        self.seen = []
        self.publisher.addObserver(self.seen.append)
        # A filter left installed must not silence other tests' debug events.
        self.addCleanup(setattr, logsetup, "_debug_wanted", True)

    def test_debug_wanted_follows_the_installed_levels(self):
        self.assertTrue(logsetup.debug_wanted())     # nothing installed: every event goes
        installed = InstalledFilter(logging_config("info"), self.publisher)
        self.assertFalse(logsetup.debug_wanted())
        installed.reconfigure(logging_config("info", components={"link": "debug"}))
        self.assertTrue(logsetup.debug_wanted())
        installed.reconfigure(logging_config("debug"))
        self.assertTrue(logsetup.debug_wanted())
        installed.reconfigure(logging_config("warn"))
        self.assertFalse(logsetup.debug_wanted())
        installed.uninstall()
        self.assertTrue(logsetup.debug_wanted())

    def emit(self, namespace, level, text="x"):
        Logger(namespace=namespace, observer=self.publisher).emit(level, text)

    def namespaces(self):
        return [(e["log_namespace"], e["log_level"]) for e in self.seen]

    def test_filters_the_existing_observers_by_level_and_component(self):
        InstalledFilter(logging_config("warn", components={"link": "debug"}), self.publisher)
        self.emit("intermud3.api.tcp", LogLevel.info)
        self.emit("intermud3.api.tcp", LogLevel.error)
        self.emit("intermud3.link", LogLevel.debug)
        self.assertEqual(self.namespaces(), [
            ("intermud3.api.tcp", LogLevel.error), ("intermud3.link", LogLevel.debug)])

    def test_reconfigure_and_uninstall(self):
        installed = InstalledFilter(logging_config("error"), self.publisher)
        self.emit("intermud3.link", LogLevel.info)
        installed.reconfigure(logging_config("info"))
        self.emit("intermud3.link", LogLevel.info)
        installed.uninstall()
        self.emit("intermud3.link", LogLevel.debug)
        self.assertEqual(self.namespaces(), [
            ("intermud3.link", LogLevel.info), ("intermud3.link", LogLevel.debug)])

    def test_json_format_writes_lines_instead_of_the_old_observers(self):
        out = io.StringIO()
        InstalledFilter(logging_config("info", "json"), self.publisher, out=out)
        self.emit("intermud3.link", LogLevel.info, "hello")
        self.assertEqual(self.seen, [])
        line = json.loads(out.getvalue().strip())
        self.assertEqual(line["component"], "link")


class FakeFileObserver:
    """Stands in for twistd's FileLogObserver: it has the file it writes to."""

    def __init__(self):
        self._outFile = io.StringIO()
        self.events = []

    def __call__(self, event):
        self.events.append(event)


class JSONUnderTwistdTests(SynchronousTestCase):
    def setUp(self):
        self.addCleanup(setattr, logsetup, "_debug_wanted", True)

    def test_json_lines_go_to_the_file_twistd_writes_to(self):
        publisher = LogPublisher()
        twistd_observer = FakeFileObserver()
        publisher.addObserver(twistd_observer)
        InstalledFilter(logging_config("info", "json"), publisher)
        Logger(namespace="intermud3.link", observer=publisher).info("hello")
        self.assertEqual(twistd_observer.events, [])
        line = json.loads(twistd_observer._outFile.getvalue().strip())
        self.assertEqual(line["message"], "hello")

    def test_text_lines_too_whatever_format_twists_own_observer_has(self):
        # `twist` writes JSON records when stdout is not a terminal, through
        # a FilteringLogObserver; `format: text` must still mean text.
        publisher = LogPublisher()
        twistd_observer = FakeFileObserver()
        publisher.addObserver(FilteringLogObserver(twistd_observer, []))
        InstalledFilter(logging_config("info", "text"), publisher)
        Logger(namespace="intermud3.link", observer=publisher).info("hello")
        self.assertEqual(twistd_observer.events, [])
        text = twistd_observer._outFile.getvalue()
        self.assertIn("[intermud3.link#info] hello", text)
        self.assertFalse(text.lstrip().startswith("{"))


class LoggingBegunTests(SynchronousTestCase):
    """`twist` starts services before it begins logging: the beginner's
    start-up buffer must be recognised, not wrapped."""

    def test_false_until_the_beginner_begins(self):
        publisher = LogPublisher()
        beginner = LogBeginner(publisher, io.StringIO(), type("Stdio", (), {})(),
                               type("Warnings", (), {"showwarning": None})())
        self.assertFalse(logging_begun(publisher))
        lines = []
        beginner.beginLoggingTo([lines.append], redirectStandardIO=False)
        self.assertTrue(logging_begun(publisher))

    def test_a_plain_publisher_has_begun(self):
        publisher = LogPublisher()
        publisher.addObserver(lambda event: None)
        self.assertTrue(logging_begun(publisher))


class GatewayLogObserverTests(SynchronousTestCase):
    def emit(self, observer, namespace, level, text):
        getattr(Logger(namespace=namespace, observer=observer), level)(text)

    def test_level_and_components(self):
        out = io.StringIO()
        observer = GatewayLogObserver(logging_config("warn", "text", {"link": "debug", "api": "error"}), out)
        self.emit(observer, "intermud3.link", "debug", "link-debug")
        self.emit(observer, "intermud3.link.pacer", "debug", "pacer-debug")
        self.emit(observer, "intermud3.api.tcp", "warn", "api-warn")
        self.emit(observer, "intermud3.api.tcp", "error", "api-error")
        self.emit(observer, "intermud3.state", "info", "state-info")
        self.emit(observer, "intermud3.state", "warn", "state-warn")
        text = out.getvalue()
        for shown in ("link-debug", "pacer-debug", "api-error", "state-warn"):
            self.assertIn(shown, text)
        for hidden in ("api-warn", "state-info"):
            self.assertNotIn(hidden, text)

    def test_json_lines(self):
        out = io.StringIO()
        observer = GatewayLogObserver(logging_config("info", "json", {}), out)
        self.emit(observer, "intermud3.link", "info", "one")
        self.emit(observer, "intermud3.link", "info", "two")
        lines = out.getvalue().splitlines()
        self.assertEqual([json.loads(line)["message"] for line in lines], ["one", "two"])

    def test_reconfigure(self):
        out = io.StringIO()
        observer = GatewayLogObserver(logging_config("error", "text", {}), out)
        self.emit(observer, "intermud3.link", "info", "before")
        observer.reconfigure(logging_config("info", "text", {}))
        self.emit(observer, "intermud3.link", "info", "after")
        self.assertNotIn("before", out.getvalue())
        self.assertIn("after", out.getvalue())

    def test_inner_observer(self):
        seen = []
        observer = GatewayLogObserver(logging_config("info", "text", {}), inner=seen.append)
        self.emit(observer, "intermud3.link", "debug", "no")
        self.emit(observer, "intermud3.link", "info", "yes")
        self.assertEqual([e["log_format"] for e in seen], ["yes"])

    def test_reconfigure_switches_between_text_and_json(self):
        out = io.StringIO()
        observer = GatewayLogObserver(logging_config("info"), out)
        self.emit(observer, "intermud3.link", "info", "as text")
        observer.reconfigure(logging_config("info", "json"))
        self.emit(observer, "intermud3.link", "info", "as json")
        first, second = out.getvalue().splitlines()
        self.assertIn("as text", first)
        self.assertEqual(json.loads(second)["message"], "as json")


class JSONLineTests(SynchronousTestCase):
    """`format: json`: one flat object per line, ready for jq."""

    def lines(self, log_call):
        out = io.StringIO()
        publisher = LogPublisher()
        publisher.addObserver(GatewayLogObserver(logging_config("debug", "json"), out))
        log_call(Logger(namespace="intermud3.link", observer=publisher))
        return [json.loads(line) for line in out.getvalue().splitlines()]

    def test_time_level_component_rendered_message_then_the_fields(self):
        (line,) = self.lines(lambda log: log.warn(
            "Router link {state}: {reason} (router {router})",
            state="backoff", reason="connection refused", router="*i4"))
        self.assertEqual(list(line)[:4], ["time", "level", "component", "message"])
        self.assertRegex(line["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(line["level"], "warn")
        self.assertEqual(line["component"], "link")
        self.assertEqual(line["message"], "Router link backoff: connection refused (router *i4)")
        self.assertEqual((line["state"], line["reason"], line["router"]),
                         ("backoff", "connection refused", "*i4"))
        self.assertFalse([key for key in line if key.startswith("log_")])

    def test_odd_values_become_text_and_a_failure_its_traceback(self):
        def fail(log):
            try:
                raise ValueError("bad frame")
            except ValueError:
                log.failure("Decoding {thing}", thing=object())
        (line,) = self.lines(fail)
        self.assertIn("<object object", line["thing"])
        self.assertIn("ValueError: bad frame", line["traceback"])
        self.assertTrue(line["message"].startswith("Decoding <object object"))

    def test_a_field_named_like_a_key_does_not_replace_it(self):
        (line,) = self.lines(lambda log: log.info("{message} at {time}", message="m", time="t"))
        self.assertEqual(line["message"], "m at t")
        self.assertNotEqual(line["time"], "t")
