"""The `intermud3` command: `intermud3 check-config PATH`.

Exit codes: 0 the file is valid, 1 it is not, 2 the command line is wrong.
"""

import argparse
import sys

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


def _parser():
    parser = argparse.ArgumentParser(prog="intermud3", description="Intermud-3 gateway tools")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check-config", help="check a configuration file without starting")
    check.add_argument("path", metavar="PATH")
    return parser


def main(argv=None, out=None, environ=None):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:      # argparse exits 2 on a usage error, 0 on --help
        return e.code if isinstance(e.code, int) else 2
    if args.command is None:
        parser.print_usage(sys.stderr)
        return 2
    return check_config(args.path, out=out, environ=environ)
