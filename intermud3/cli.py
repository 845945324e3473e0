"""The `intermud3` command: operator tools beside the running gateway.

    intermud3 --version
    intermud3 check-config PATH         the file's errors, or "PATH: OK"
    intermud3 doctor -c PATH            is the gateway of this config well?
    intermud3 collect -c PATH DIR       a support bundle without secrets
    intermud3 migrate-config OLD.yaml   the older gateway's config, converted
    intermud3 session URL [--key KEY]   JSON-RPC by hand over ws:// or tcp://

Exit codes: 0 all is well, 1 a problem was found, 2 the command line is wrong.
"""

import argparse
import sys

import intermud3
from intermud3 import config


def check_config(path, out=None, environ=None):
    """Print every error of the file at `path` (or "PATH: OK"); return 0 or 1."""
    out = out if out is not None else sys.stdout
    try:
        loaded = config.load(path, environ)
    except config.ConfigError as e:
        for error in e.errors:
            print(error, file=out)
        print(f"{path}: {len(e.errors)} error{'' if len(e.errors) == 1 else 's'}", file=out)
        return 1
    for warning in config.warnings(loaded):
        print(f"warning: {warning}", file=out)
    print(f"{path}: OK", file=out)
    return 0


def migrate_config(path, out=None, err=None, output=None):
    """Print (or write to `output`) the converted file; list what was not
    carried over on `err`. 0 when converted, 1 when the file is unreadable."""
    import yaml

    from intermud3 import migrate

    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    try:
        with open(path, encoding="utf-8") as source:
            text, dropped = migrate.migrate_text(source.read())
    except (OSError, ValueError, yaml.YAMLError) as error:
        print(f"{path}: cannot convert ({error})", file=err)
        return 1
    if output:
        with open(output, "w", encoding="utf-8") as target:
            target.write(text)
    else:
        out.write(text)
    for line in dropped:
        print(line, file=err)
    print(f"{path}: converted; {len(dropped)} key(s) not carried over (listed above and in the file's header). "
          f"Check the result with: intermud3 check-config {output or 'NEW.yaml'}", file=err)
    return 0


def _parser():
    parser = argparse.ArgumentParser(prog="intermud3", description="Intermud-3 gateway tools")
    parser.add_argument("--version", action="version", version=f"intermud3 {intermud3.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check-config", help="check a configuration file without starting")
    check.add_argument("path", metavar="PATH")
    doctor = commands.add_parser("doctor", help="check a running gateway: config, state, ports, router link")
    doctor.add_argument("-c", "--config", required=True, metavar="PATH")
    collect = commands.add_parser("collect", help="write a support bundle without secrets to DIR")
    collect.add_argument("-c", "--config", required=True, metavar="PATH")
    collect.add_argument("--log", metavar="LOGFILE", help="the gateway's log file (twistd --logfile), if any")
    collect.add_argument("directory", metavar="DIR")
    migrate = commands.add_parser("migrate-config", help="convert the older gateway's config.yaml")
    migrate.add_argument("path", metavar="OLD.yaml")
    migrate.add_argument("-o", "--output", metavar="NEW.yaml", help="write here instead of standard output")
    session = commands.add_parser("session", help="send JSON-RPC lines from stdin, print what comes back")
    session.add_argument("url", metavar="URL", help="ws://HOST:PORT/ws, wss://..., or tcp://HOST:PORT")
    session.add_argument("--key", help="authenticate with this API key first")
    session.add_argument("--wait", type=float, default=1.0, metavar="SECONDS",
                         help="after the input ends, wait this long for replies (default 1)")
    return parser


def main(argv=None, out=None, environ=None):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:      # argparse exits 2 on a usage error, 0 on --help/--version
        return e.code if isinstance(e.code, int) else 2
    out = out if out is not None else sys.stdout
    if args.command == "check-config":
        return check_config(args.path, out=out, environ=environ)
    if args.command == "doctor":
        from intermud3 import doctor
        return doctor.run(args.config, out, environ)
    if args.command == "collect":
        from intermud3 import collect
        return collect.run(args.config, args.directory, out, log_file=args.log, environ=environ)
    if args.command == "migrate-config":
        return migrate_config(args.path, out=out, output=args.output)
    if args.command == "session":
        from twisted.internet import reactor

        from intermud3 import session
        result = []
        try:
            done = session.run(reactor, args.url, args.key, args.wait, out)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        done.addCallback(result.append).addBoth(lambda _: reactor.stop())
        reactor.run()
        return result[0] if result else 1
    parser.print_usage(sys.stderr)
    return 2
