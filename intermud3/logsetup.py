"""Log output from config.logging: a level filter per component, text or JSON lines.

JSON lines are flat objects (time, level, component, message, then the
event's fields), for jq and log shippers.

A component is the logger namespace after "intermud3." (`link` covers
`intermud3.link` and anything below it). The observer can be reconfigured
on reload without replacing it in the log publisher.
"""

import json
import sys
from datetime import datetime, timezone

from twisted.logger import (
    FilteringLogObserver,
    LimitedHistoryLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    formatEvent,
    textFileLogObserver,
)

PACKAGE = "intermud3"

# The keys every JSON line starts with; an event field of the same name
# (or one of the old twisted.python.log keys) is not copied over them.
_JSON_KEYS = ("time", "level", "component", "message")
_LEGACY_KEYS = {"format", "system", "isError", "why", "failure", "message"}


def _level(name):
    return LogLevel.levelWithName(name)


def component_of(namespace):
    """The `logging.components` name of a logger namespace: `link` for
    intermud3.link; other libraries' namespaces whole (`twisted.web`)."""
    if namespace == PACKAGE:
        return PACKAGE
    if namespace.startswith(PACKAGE + "."):
        return namespace[len(PACKAGE) + 1:]
    return namespace


def json_line(event):
    """One flat JSON object for a log event: time, level, component and the
    rendered message first, then the event's own fields (values JSON cannot
    hold are written as text), then the traceback of a logged failure."""
    level = event.get("log_level")
    record = {
        "time": datetime.fromtimestamp(event.get("log_time", 0), timezone.utc)
                        .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": level.name if level is not None else "info",
        "component": component_of(str(event.get("log_namespace", "-"))),
        "message": formatEvent(event),
    }
    for key, value in event.items():
        if key.startswith("log_") or key in _JSON_KEYS or key in _LEGACY_KEYS:
            continue
        record[key] = value if _is_plain(value) else str(value)
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = failure.getTraceback()
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def _is_plain(value):
    if value is None or isinstance(value, (str, int, float, bool)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_is_plain(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


def json_lines_observer(out):
    """An ILogObserver writing one json_line per event to `out`."""
    def observe(event):
        out.write(json_line(event) + "\n")
        flush = getattr(out, "flush", None)
        if flush is not None:
            flush()
    return observe


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
        predicate.defaultLogLevel = _level(logging_config.level)
        predicate.clearLogLevels()
        for component, level in logging_config.components.items():
            predicate.setLogLevelForNamespace(f"{PACKAGE}.{component}", _level(level))
        if logging_config.format != self._format:
            self._format = logging_config.format
            self._observer = FilteringLogObserver(self._writer(self._format), [predicate])

    def _writer(self, fmt):
        if fmt == "json":
            return json_lines_observer(self._out)
        if self._inner is not None:
            return self._inner
        return textFileLogObserver(self._out)

    def __call__(self, event):
        self._observer(event)


# Whether a debug event could pass the installed filter. A debug call
# costs about 10 µs in twisted.logger even when the filter drops it, so the
# per-packet and per-request traces ask this first. True while no filter
# is installed (tests, tools: every event reaches their observers).
_debug_wanted = True


def debug_wanted():
    return _debug_wanted


def _set_debug_wanted(logging_config):
    global _debug_wanted
    levels = [logging_config.level, *logging_config.components.values()]
    _debug_wanted = any(_level(level) == LogLevel.debug for level in levels)


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
        _set_debug_wanted(logging_config)

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
        _set_debug_wanted(logging_config)

    def uninstall(self):
        global _debug_wanted
        _debug_wanted = True
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
