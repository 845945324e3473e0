"""The durable outbound queue and the state database (intermud3.outbound,
intermud3.storewriter, intermud3.state).

* drain: N tells queued while the router link is down (pacing off), then
  the link comes up; the reactor time the outbox spends per message
  (marking, writing, the message_sent event), the longest single reactor
  callback of it, and the wall time until the queue is empty. The store
  runs on its writer thread, as in the gateway.
* history search: a channel of N entries; `query` through the full-text
  index and by the plain scan it replaces.
"""

import random
import shutil
import sys
import tempfile
import types

if __package__ in (None, ""):
    import common
else:
    from bench import common

from intermud3 import packets  # noqa: E402
from intermud3.config import load_text, with_overrides  # noqa: E402
from intermud3.outbound import DRAIN_BATCH, Outbox  # noqa: E402
from intermud3.state import StateStore  # noqa: E402

BENCH = "store"


class OneSession:
    """The session manager's surface for one session that counts events."""

    def __init__(self):
        self.session = types.SimpleNamespace(id="bench", key_id="bench", channels=set(),
                                             has_permission=lambda permission: True)
        self.delivered = 0

    def get(self, session_id):
        return self.session if session_id == "bench" else None

    def is_live(self, session):
        return session is self.session

    def sessions(self):
        return [self.session]

    def deliver(self, session, event, data):
        self.delivered += 1


class NullLink:
    """A ready link whose writes go nowhere (the drain's own cost only)."""

    def __init__(self):
        self.ready = False
        self.connection = object()
        self.on_writable = []
        self.written = 0

    def try_send(self, out):
        return False

    def reserve(self, ptype):
        return self.ready

    def write_reserved(self, out):
        self.written += 1

    def come_up(self):
        self.ready = True
        for observer in list(self.on_writable):
            observer()


def _timed(function, spans):
    def timed(*args, **kwargs):
        started = common.now()
        try:
            return function(*args, **kwargs)
        finally:
            spans.append(common.now() - started)
    return timed


def measure_drain(reactor, count, max_seconds):
    """Deferred[rows]: queue ``count`` tells with the link down, then drain
    them, on ``reactor`` (running) with the store on its writer thread."""
    from twisted.internet import defer, task

    from intermud3.events import EventHub
    from intermud3.store import open_store

    directory = tempfile.mkdtemp(prefix="i3-bench-store-")
    config = with_overrides(load_text("mud: {name: BenchMud}", environ={}),
                            {"router.queue.max_messages": count + 1})
    results = {}

    @defer.inlineCallbacks
    def measure():
        store = open_store(directory, clock=reactor, mud_name="BenchMud")
        sessions = OneSession()
        link = NullLink()
        outbox = Outbox(link=link, store=store, clock=reactor, config=lambda: config, sessions=sessions,
                        hub=EventHub(sessions, clock=reactor))
        spans = []
        for name in ("drain", "_write_batch", "_durable"):
            setattr(outbox, name, _timed(getattr(outbox, name), spans))
        submit_spans = []
        started = common.now()
        pending = []
        for n in range(count):
            packet = packets.make("tell", "BenchMud", "alice", "Other", "bob", "Alice",
                                  f"queued message {n}")
            out = outbox.encode(packet, "message")
            begun = common.now()
            pending.append(outbox.submit("tell", out, sessions.session))
            submit_spans.append(common.now() - begun)
        yield defer.gatherResults(pending)
        results["queue wall"] = common.now() - started
        results["queue reactor"] = sum(submit_spans) + sum(spans)
        del spans[:]
        started = common.now()
        link.come_up()
        deadline = started + max_seconds
        while outbox.depth and common.now() < deadline:
            yield task.deferLater(reactor, 0.001, lambda: None)
        results["drain wall"] = common.now() - started
        results["drain reactor"] = sum(spans)
        results["drain longest"] = max(spans) if spans else 0.0
        results["written"] = link.written
        outbox.stop()
        yield store.close()

    def rows(_):
        detail = f"{count:,} tells, pacing off, writer thread"
        written = results["written"]
        return [
            common.row(BENCH, "queue: reactor time per message",
                       1e6 * results["queue reactor"] / count, "µs", detail),
            common.row(BENCH, "queue: wall time until all durable", results["queue wall"], "s",
                       detail),
            common.row(BENCH, "drain: reactor time per message",
                       1e6 * results["drain reactor"] / max(1, written), "µs",
                       f"{written:,} of {count:,} written; mark, write, message_sent"),
            common.row(BENCH, "drain: longest reactor callback",
                       1e3 * results["drain longest"], "ms",
                       f"one batch of at most {DRAIN_BATCH} messages"),
            common.row(BENCH, "drain: wall time until empty", results["drain wall"], "s", detail),
        ]

    def clean(result):
        shutil.rmtree(directory, ignore_errors=True)
        return result
    return measure().addCallback(rows).addBoth(clean)


def history_search(rows, queries):
    directory = tempfile.mkdtemp(prefix="i3-bench-history-")
    try:
        store = StateStore(directory)
        words = ["dragon", "castle", "sword", "potion", "wizard", "goblin", "tavern", "quest"]
        rng = random.Random(7)
        store.begin()
        for n in range(rows):
            message = " ".join(rng.choice(words) for _ in range(8))
            if n % 1000 == 0:
                message += " needle-%d" % (n // 1000)
            store.add_history("dchat", {"type": "message", "from_user": "alice",
                                        "visname": "Alice", "message": message}, rows + 1)
        store.commit()
        needle = "needle-%d" % (rows // 2000)
        rows_out = []
        for label, indexed in (("full-text index", True), ("plain scan", False)):
            store.history_table.search_index = indexed and store.history_table.search_index
            found = []
            durations = common.repeat(
                lambda: found.append(len(store.history("dchat", 50, query=needle))),
                queries, 20)
            rows_out.append(common.row(
                BENCH, f"history search ({label})", 1e3 * common.median(durations), "ms",
                f"{rows:,} entries, a rare word, median of {len(durations)}; {found[-1]} found"))
        store.close()
        return rows_out
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run(quick=False, drain_count=None, history_rows=None):
    from twisted.internet import task

    drain_count = drain_count or (1_000 if quick else 10_000)
    history_rows = history_rows or (5_000 if quick else 100_000)
    drained = []

    def main(reactor):
        return measure_drain(reactor, drain_count, max_seconds=60).addCallback(drained.extend)
    try:
        task.react(main, [])
    except SystemExit as exit:
        if exit.code:
            raise
    return drained + history_search(history_rows, 5 if quick else 20)


if __name__ == "__main__":
    sys.exit(common.main(run))
