"""Run the test router alone: ``python -m intermud3.testing --port 8787 --name '*test'``."""

import sys

from twisted.internet import reactor
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.python import usage

from intermud3.testing.router_tap import Options, build


def main(argv=None):
    options = Options()
    try:
        options.parseOptions(sys.argv[1:] if argv is None else argv)
    except usage.UsageError as exc:
        print(f"{options}\nerror: {exc}", file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)])
    router_service = build(options, reactor)
    router_service.startService()
    reactor.addSystemEventTrigger("before", "shutdown", router_service.stopService)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
