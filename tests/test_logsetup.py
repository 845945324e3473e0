"""The logging section filters observers that were there before the gateway."""

import io
import json

from twisted.logger import LogBeginner, LogLevel, LogPublisher, Logger
from twisted.trial.unittest import SynchronousTestCase

from intermud3.logsetup import InstalledFilter, logging_begun


def logging_config(level="info", fmt="text", components=None):
    return {"level": level, "format": fmt, "components": components or {}}


class InstalledFilterTests(SynchronousTestCase):
    def setUp(self):
        self.publisher = LogPublisher()
        self.seen = []
        self.publisher.addObserver(self.seen.append)

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
        self.assertEqual(line["log_namespace"], "intermud3.link")


class FakeFileObserver:
    """Stands in for twistd's FileLogObserver: it has the file it writes to."""

    def __init__(self):
        self._outFile = io.StringIO()
        self.events = []

    def __call__(self, event):
        self.events.append(event)


class JSONUnderTwistdTests(SynchronousTestCase):
    def test_json_lines_go_to_the_file_twistd_writes_to(self):
        publisher = LogPublisher()
        twistd_observer = FakeFileObserver()
        publisher.addObserver(twistd_observer)
        InstalledFilter(logging_config("info", "json"), publisher)
        Logger(namespace="intermud3.link", observer=publisher).info("hello")
        self.assertEqual(twistd_observer.events, [])
        line = json.loads(twistd_observer._outFile.getvalue().strip())
        self.assertEqual(line["log_format"], "hello")


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
