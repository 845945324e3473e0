"""Run the benchmarks and print one table.

    python bench/run.py              # every benchmark
    python bench/run.py --quick      # a fast pass (smaller sizes)
    python bench/run.py lpc rpc      # only those named
    python bench/run.py --json       # the rows as JSON

Each benchmark runs in a child process of its own, so one cannot disturb
another (memory figures, the Twisted reactor) and a hung one is stopped
after TIMEOUT seconds and reported as failed.
"""

import json
import os
import subprocess
import sys

if __package__ in (None, ""):
    import common
else:
    from bench import common

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHMARKS = ("lpc", "rpc", "gateway", "store", "colour", "startup", "connect")
# Each benchmark bounds itself to about a minute; this is the backstop.
TIMEOUT = 120


def run_one(name, quick):
    command = [sys.executable, os.path.join(HERE, f"bench_{name}.py"), "--json"]
    if quick:
        command.append("--quick")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=common.REPO)
    except subprocess.TimeoutExpired:
        return [common.row(name, "(all)", None, "", f"failed: no result within {TIMEOUT} s")]
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return [common.row(name, "(all)", None, "", f"failed (exit {done.returncode}): {last}")]
    try:
        # The rows are the last line; anything a library printed comes before.
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [common.row(name, "(all)", None, "", "failed: no JSON rows on stdout")]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    flags = {a for a in argv if a.startswith("--")}
    names = [a for a in argv if not a.startswith("--")] or list(BENCHMARKS)
    bad = [n for n in names if n not in BENCHMARKS] + sorted(flags - {"--quick", "--json"})
    if bad:
        print(f"unknown: {' '.join(bad)}; benchmarks: {' '.join(BENCHMARKS)}; flags: --quick --json",
              file=sys.stderr)
        return 2
    rows = []
    for name in names:
        if "--json" not in flags:
            print(f"running {name} ...", file=sys.stderr, flush=True)
        rows += run_one(name, "--quick" in flags)
    if "--json" in flags:
        print(json.dumps(rows))
    else:
        print(common.table(rows))
    return 1 if any(r["detail"].startswith("failed") for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
