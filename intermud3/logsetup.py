"""Log output from config["logging"]: a level filter per component, text or JSON lines.

A component is the logger namespace after "intermud3." (`link` covers
`intermud3.link` and anything below it). The observer can be reconfigured
on reload without replacing it in the log publisher.
"""

import sys

from twisted.logger import (
    FilteringLogObserver,
    LimitedHistoryLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    jsonFileLogObserver,
    textFileLogObserver,
)

PACKAGE = "intermud3"


def _level(name):
    return LogLevel.levelWithName(name)


class GatewayLogObserver:
    """An ILogObserver: filters by level, then writes JSON lines (`format:
    json`) or text to `out`; for text, `inner` (for example twistd's own
    observers) gets the events that pass instead, when given."""

    def __init__(self, logging_config, out=None, inner=None):
        self._out = out if out is not None else sys.stdout
        self._inner = inner
        self._predicate = LogLevelFilterPredicate()
        self._observer = None
        self._format = None
        self.reconfigure(logging_config)

    def reconfigure(self, logging_config):
        predicate = self._predicate
        predicate.defaultLogLevel = _level(logging_config["level"])
        predicate.clearLogLevels()
        for component, level in logging_config["components"].items():
            predicate.setLogLevelForNamespace(f"{PACKAGE}.{component}", _level(level))
        if logging_config["format"] != self._format:
            self._format = logging_config["format"]
            self._observer = FilteringLogObserver(self._writer(self._format), [predicate])

    def _writer(self, fmt):
        if fmt == "json":
            return jsonFileLogObserver(self._out, recordSeparator="")
        if self._inner is not None:
            return self._inner
        return textFileLogObserver(self._out)

    def __call__(self, event):
        self._observer(event)


class InstalledFilter:
    """Our filter put in front of a publisher's existing observers.

    twistd begins logging before the gateway starts; its observers (stdout,
    or the --logfile) are taken off the publisher and fed through one
    GatewayLogObserver, so the `logging` section filters everything.
    What passes is written, as text or JSON lines, to the file twistd
    writes to.
    """

    def __init__(self, logging_config, publisher, out=None):
        self._publisher = publisher
        # LogPublisher has no public way to list its observers.
        self._wrapped = list(getattr(publisher, "_observers", []))
        for observer in self._wrapped:
            publisher.removeObserver(observer)
        out = out or self._output_file()
        # Both formats are written by us to the file twistd writes to, so
        # `format` means the same under twistd and twist (whose own
        # observer writes JSON whenever stdout is not a terminal). Only
        # when no such file exists do twistd's own observers get the text.
        self.observer = GatewayLogObserver(
            logging_config, out=out or sys.__stdout__,
            inner=None if out else self._fan_out)
        publisher.addObserver(self.observer)

    def _output_file(self):
        """Where twistd writes: its file observer's file (stdout or
        --logfile, which rotates on SIGUSR1), or None.

        Never sys.stdout itself: twistd redirects it into the log system,
        so a line written there would be logged again, forever.
        """
        for observer in self._wrapped:
            # `twist` wraps its file observer in a FilteringLogObserver.
            while isinstance(observer, FilteringLogObserver):
                observer = observer._observer
            out = getattr(observer, "_outFile", None)  # FileLogObserver's file
            if out is not None:
                return out
        return None

    def _fan_out(self, event):
        for observer in self._wrapped:
            observer(event)

    def reconfigure(self, logging_config):
        self.observer.reconfigure(logging_config)

    def uninstall(self):
        self._publisher.removeObserver(self.observer)
        for observer in self._wrapped:
            self._publisher.addObserver(observer)
        self._wrapped = []


def logging_begun(publisher):
    """False while `publisher` still feeds the log beginner's start-up buffer
    (a LimitedHistoryLogObserver, inside a LogPublisher of its own): `twist`
    starts services before it begins logging, and wrapping that buffer would
    make the beginner replay it into itself."""
    def buffers(observer):
        if isinstance(observer, LimitedHistoryLogObserver):
            return True
        return isinstance(observer, LogPublisher) and any(
            buffers(inner) for inner in getattr(observer, "_observers", []))
    return not buffers(publisher)

