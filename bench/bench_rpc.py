"""The JSON-RPC dispatcher in process (intermud3.api.rpc.Dispatcher).

A real SessionManager and the real housekeeping `ping` handler, an
authenticated fake connection (the "API connections" surface of
docs/ARCHITECTURE.md) and no sockets: what one request costs from the
bytes of a line to the bytes of the reply, metrics included.

* `ping`: `requests` single requests, one after the other;
* a batch of `batch` pings: `batches` batches.

Each prints requests/s over the whole loop and the median and p99 of the
microseconds one request (or one batch) took.
"""

import json
import time

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

from prometheus_client import CollectorRegistry
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from intermud3.api.methods import MethodTable, housekeeping
from intermud3.api.rpc import Dispatcher
from intermud3.api.sessions import SessionManager
from intermud3.config import load_text
from intermud3.metrics import Metrics

BENCH = "rpc"
API_KEY = "bench-key-0123456789"

FULL = {"requests": 20000, "batch": 50, "batches": 1000, "max_seconds": 15}
QUICK = {"requests": 3000, "batch": 50, "batches": 150, "max_seconds": 4}


class BenchConnection:
    """An API connection that keeps only the last message sent to it."""

    transport_name = "tcp"
    peer = "127.0.0.1:1"

    def __init__(self):
        self.session = None
        self.last = None

    def send_message(self, data):
        self.last = data

    def close(self, reason):
        pass


def config():
    return load_text(f"""
mud: {{name: BenchMud}}
api:
  auth: {{api_keys: [{{key: {API_KEY}, permissions: ["*"]}}]}}
  rate_limits: {{by_method: {{}}}}
""", environ={})


def build(max_batch):
    """(dispatcher, authenticated connection) over real sessions."""
    clock = Clock()
    clock.advance(time.time())
    metrics = Metrics(CollectorRegistry())
    sessions = SessionManager(config(), clock, metrics=metrics)
    # authenticate and ping read only the sessions; nothing else is needed.
    handlers = housekeeping.handlers(sessions=sessions, link=None, lists=None, outbox=None,
                                     auth_guard=None, started_at=0, reload=None)
    table = MethodTable()
    for name, handler in handlers.items():
        if name in ("authenticate", "ping"):
            table.add(name, handler)
    dispatcher = Dispatcher(table, sessions, max_batch=max_batch, metrics=metrics, clock=clock)
    connection = BenchConnection()
    reply = call(dispatcher, connection, request("authenticate", {"api_key": API_KEY}, "auth"))
    if "result" not in json.loads(reply):
        raise RuntimeError(f"authentication failed: {reply!r}")
    return dispatcher, connection


def request(method, params=None, request_id=1):
    message = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        message["params"] = params
    return json.dumps(message).encode()


def call(dispatcher, connection, data):
    """The reply bytes, as the connections get them: every handler here is
    synchronous, so the dispatcher answers without a Deferred."""
    reply = dispatcher.dispatch(connection, data)
    if isinstance(reply, Deferred):
        raise RuntimeError("the dispatcher did not answer synchronously")
    return reply


def measure(dispatcher, connection, data, count, max_seconds):
    """Per-call durations (s) and the wall time of the whole loop."""
    durations = []
    started = common.now()
    deadline = started + max_seconds
    for _ in range(count):
        begun = common.now()
        reply = call(dispatcher, connection, data)
        durations.append(common.now() - begun)
        if reply is None or b'"error"' in reply:
            raise RuntimeError(f"unexpected reply {reply!r}")
        if common.now() > deadline:
            break
    return durations, common.now() - started


def _rows(name, durations, elapsed, per_call, unit):
    count = len(durations)
    return [
        common.row(BENCH, f"{name} rate", count * per_call / elapsed, "req/s",
                   f"{count * per_call} requests in {count} {unit}es" if per_call > 1 else f"{count} requests"),
        common.row(BENCH, f"{name} median", common.median(durations) * 1e6, "us", f"per {unit}"),
        common.row(BENCH, f"{name} p99", common.percentile(durations, 0.99) * 1e6, "us", f"per {unit}"),
    ]


def run(quick=False, **sizes):
    s = {**(QUICK if quick else FULL), **sizes}
    dispatcher, connection = build(max_batch=max(50, s["batch"]))
    rows = []
    durations, elapsed = measure(dispatcher, connection, request("ping"), s["requests"], s["max_seconds"])
    rows += _rows("ping", durations, elapsed, 1, "request")
    batch = ("[" + ",".join(request("ping", request_id=i).decode() for i in range(s["batch"])) + "]").encode()
    durations, elapsed = measure(dispatcher, connection, batch, s["batches"], s["max_seconds"])
    rows += _rows(f"batch of {s['batch']} pings", durations, elapsed, s["batch"], "batch")
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
