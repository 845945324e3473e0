"""Log output from config["logging"]: a level filter per component, text or JSON lines.

A component is the logger namespace after "intermud3." (`link` covers
`intermud3.link` and anything below it). The observer can be reconfigured
on reload without replacing it in the log publisher.
"""

import sys

from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    jsonFileLogObserver,
    textFileLogObserver,
)

PACKAGE = "intermud3"


def _level(name):
    return LogLevel.levelWithName(name)


class GatewayLogObserver:
    """An ILogObserver: filters by level, then writes text or JSON lines.

    `inner`, when given (for example twistd's own file observer), receives
    the events that pass instead of a stream observer of our own.
    """

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
        if self._observer is None or logging_config["format"] != self._format:
            self._format = logging_config["format"]
            self._observer = FilteringLogObserver(self._writer(self._format), [predicate])

    def _writer(self, fmt):
        if self._inner is not None:
            return self._inner
        if fmt == "json":
            return jsonFileLogObserver(self._out, recordSeparator="")
        return textFileLogObserver(self._out)

    def __call__(self, event):
        self._observer(event)


def make_observer(logging_config, out=None, inner=None):
    """The observer for `logging_config` (config["logging"]), writing to stdout by default."""
    return GatewayLogObserver(logging_config, out=out, inner=inner)
