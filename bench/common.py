"""Small helpers shared by the benchmarks: timing, statistics, output.

A benchmark module exposes ``run(quick=False, **sizes) -> list[row]`` and a
``main()`` so it can run alone. A row is a dict:

    {"bench": "lpc", "name": "decode mudlist", "value": 41.2, "unit": "MB/s",
     "detail": "108 KB frame, median of 15"}

or, when the benchmark cannot run yet, ``value`` None and ``detail``
"skipped: <reason>". Figures are printed, never asserted.
"""

import json
import math
import os
import sys
import time

# The benchmarks run from a checkout: make `intermud3` importable when a
# file here is run as a script (python bench/bench_lpc.py).
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

now = time.perf_counter


def row(bench, name, value, unit, detail=""):
    return {"bench": bench, "name": name, "value": value, "unit": unit, "detail": detail}


def skipped(bench, name, reason):
    return row(bench, name, None, "", f"skipped: {reason}")


def median(values):
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def percentile(values, fraction):
    """The nearest-rank percentile (fraction 0.99 is p99)."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    # round() first so 0.99 * 100 counts as 99, not 99.00000000000001.
    rank = max(1, math.ceil(round(fraction * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


def repeat(action, runs, max_seconds):
    """Time `action()` up to `runs` times, stopping early after
    `max_seconds` (at least one run). Returns the durations in seconds."""
    durations = []
    deadline = now() + max_seconds
    for _ in range(max(1, runs)):
        started = now()
        action()
        durations.append(now() - started)
        if now() > deadline:
            break
    return durations


def rss_bytes():
    """Resident set size of this process now (Linux /proc), or None."""
    try:
        with open("/proc/self/statm") as statm:
            resident_pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def format_value(value):
    if value is None:
        return "-"
    if isinstance(value, int) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(rows):
    """The rows as an aligned text table."""
    header = ("bench", "measure", "value", "unit", "detail")
    lines = [header] + [(r["bench"], r["name"], format_value(r["value"]), r["unit"], r["detail"])
                        for r in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    out = []
    for index, line in enumerate(lines):
        cells = [line[0].ljust(widths[0]), line[1].ljust(widths[1]),
                 line[2].rjust(widths[2]), line[3].ljust(widths[3]), line[4]]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths) + "  ------")
    return "\n".join(out)


def main(run, argv=None):
    """Command line of one benchmark: [--quick] [--json]."""
    argv = sys.argv[1:] if argv is None else argv
    unknown = [a for a in argv if a not in ("--quick", "--json")]
    if unknown:
        print(f"usage: {sys.argv[0]} [--quick] [--json]", file=sys.stderr)
        return 2
    rows = run(quick="--quick" in argv)
    if "--json" in argv:
        print(json.dumps(rows))
    else:
        print(table(rows))
    return 0


# -- Twisted benchmarks (imported lazily: the codec ones run without it) --

class Timeout(Exception):
    """A step of a benchmark did not finish within its bound."""


def with_timeout(reactor, d, seconds, what):
    """`d`, failed with Timeout when it has not fired within `seconds`."""
    def expire():
        if not d.called:
            d.errback(Timeout(f"{what}: nothing within {seconds} s"))
    call = reactor.callLater(seconds, expire)
    return d.addBoth(lambda result: (call.active() and call.cancel(), result)[1])


def run_reactor_once(measure, quick, sizes):
    """Run the reactor around `measure(reactor, quick, **sizes)` (a
    Deferred of rows) and return the rows: once per process."""
    from twisted.internet import reactor
    outcome = {}

    def start():
        d = measure(reactor, quick, **sizes)
        d.addCallbacks(lambda rows: outcome.update(rows=rows),
                       lambda failure: outcome.update(failure=failure))
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    if "failure" in outcome:
        outcome["failure"].raiseException()
    return outcome["rows"]


def end_child(child, sig=None):
    """Signal a child process (`subprocess.Popen`; SIGTERM by default) and
    wait for it, killing it if it has not gone within 10 s."""
    import signal
    import subprocess
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGTERM if sig is None else sig)
    try:
        child.wait(timeout=10)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait(timeout=10)
