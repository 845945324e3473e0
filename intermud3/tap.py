"""twistd plugin body of the gateway: command-line options and the service they build."""

import sys

from twisted.python import usage

from intermud3 import config


class Options(usage.Options):
    synopsis = "[--config PATH] [--check-config]"
    longdesc = "Run the Intermud-3 gateway: a router link and a JSON-RPC API for MUDs."
    optParameters = [
        ["config", "c", "etc/intermud3.yaml", "the YAML configuration file"],
    ]
    optFlags = [
        ["check-config", None, "check the configuration, print the result and exit (no sockets)"],
    ]


def makeService(options, environ=None):
    path = options["config"]
    if options["check-config"]:
        from intermud3 import cli  # the command-line tools; not needed to run

        raise SystemExit(cli.check_config(path, environ=environ))
    try:
        loaded = config.load(path, environ)
    except config.ConfigError as e:
        for error in e.errors:
            print(error, file=sys.stderr)
        print(f"{path}: not started, the configuration has errors", file=sys.stderr)
        raise SystemExit(1) from None
    # Imported here: twistd imports this module while choosing a plugin,
    # before the reactor is installed.
    from twisted.logger import globalLogPublisher

    from intermud3.service import GatewayService
    from intermud3.state import StateError, StateStore
    try:
        # Opened (and migrated) once before anything starts, so a state
        # file that cannot be used stops the start with one clear line.
        StateStore(loaded.state.directory).close()
    except StateError as e:
        print(f"{e}", file=sys.stderr)
        print(f"{path}: not started, the state database cannot be used", file=sys.stderr)
        raise SystemExit(1) from None
    return GatewayService(loaded, config_path=path, log_publisher=globalLogPublisher)
