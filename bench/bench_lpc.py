"""LPC and MudMode throughput on real frames (intermud3.lpc, intermud3.mudmode).

* decode/encode of a mudlist frame built from the real mudlist entries in
  tests/data/dead-souls-router.jsonl, replicated under new names
  until it holds at least `muds` MUDs and `min_kb` KB (what a router sends
  on a first startup): MB/s, median of `runs`;
* decode/encode of a small tell packet: microseconds per packet, median of
  `runs` rounds of `packets` packets;
* MudModeProtocol reading a byte stream (every real frame `stream_copies`
  times, plus the big mudlist frame) fed 1 byte and 4 KiB at a time:
  MB/s including the decode of every frame;
* the same mudlist and tell beside json: our ops/s over json.loads /
  json.dumps ops/s on the same value (which codec ran: lpc.IMPLEMENTATION);
* a mudlist frame of `big_frame_kb` KB (2 MiB is the receive bound)
  arriving in 64 KiB reads at a MudModeProtocol on a Clock: the longest
  single reactor turn (a read, or a turn of the sliced decode), sliced and
  decoded in one go.
"""

import json
import os

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from intermud3 import lpc, mudmode

BENCH = "lpc"
# The captured frames the tests replay (tests/data/README.md).
VECTORS = os.path.join(common.REPO, "tests", "data", "dead-souls-router.jsonl")

FULL = {"runs": 15, "muds": 160, "min_kb": 100, "packets": 2000, "stream_copies": 20,
        "big_frame_kb": 2000, "max_seconds": 8}
QUICK = {"runs": 5, "muds": 160, "min_kb": 100, "packets": 500, "stream_copies": 3,
         "big_frame_kb": 2000, "max_seconds": 2}
# What a socket read hands over at most, for the big frame's arrival.
READ_BYTES = 64 * 1024


def real_frames(path=VECTORS):
    """Every frame of the vectors file as raw bytes (prefix and NUL included)."""
    with open(path) as lines:
        return [bytes.fromhex(json.loads(line)["hex"]) for line in lines if line.strip()]


def payload(frame_bytes):
    """The LPC text of a frame with its NUL: what lpc.decode is given."""
    return frame_bytes[4:]


def mudlist_packet(frames, muds, min_bytes):
    """A mudlist packet holding the real entries replicated under new names."""
    entries = {}
    header = None
    for raw in frames:
        value = lpc.decode(payload(raw))
        if value[0] == "mudlist" and isinstance(value[7], dict):
            header = header or value[:7]
            entries.update(value[7])
    if not entries:
        raise ValueError("no mudlist entries in the vectors")
    templates = sorted(entries.items())
    mudlist = {}
    size = 0
    while len(mudlist) < muds or size < min_bytes:
        name, info = templates[len(mudlist) % len(templates)]
        replica = f"{name}{len(mudlist):04d}"
        mudlist[replica] = info
        size += len(lpc.encode(replica)) + len(lpc.encode(info)) + 2
    return header + [mudlist]


def tell_packet():
    return ["tell", 5, "ProbeA", "alice", "ProbeB", "bob", "Alice", "hello bob, how is the weather there?"]


def _throughput(action, size, runs, max_seconds):
    durations = common.repeat(action, runs, max_seconds)
    return size / common.median(durations) / 1e6, len(durations)


def _per_item_us(action, count, runs, max_seconds):
    def batch():
        for _ in range(count):
            action()
    durations = common.repeat(batch, runs, max_seconds)
    return common.median(durations) / count * 1e6, len(durations)


class _Counter(mudmode.MudModeProtocol):
    packets = 0
    last = None

    def packetReceived(self, value):
        self.packets += 1
        # Kept, as the gateway keeps what it reads: freeing a 2 MiB mudlist
        # (about 5 ms) is not part of reading it.
        self.last = value


def feed(stream, chunk):
    """Feed `stream` to a MudModeProtocol `chunk` bytes at a time, turning
    its clock between reads as a reactor would (a big frame is decoded in
    slices, one per turn); returns how many packets it decoded."""
    clock = Clock()
    protocol = _Counter()
    protocol.clock = clock
    protocol.makeConnection(StringTransport())
    for start in range(0, len(stream), chunk):
        protocol.dataReceived(stream[start:start + chunk])
        if clock.calls:
            clock.advance(0.001)
    while clock.calls:
        clock.advance(0.001)
    return protocol.packets


def ops_per_second(action, runs, max_seconds):
    """Calls of `action` per second: the median of `runs` rounds, each of
    enough calls to last at least 10 ms."""
    count = 1
    while True:
        started = common.now()
        for _ in range(count):
            action()
        if common.now() - started >= 0.01:
            break
        count *= 2

    def batch():
        for _ in range(count):
            action()
    return count / common.median(common.repeat(batch, runs, max_seconds))


def longest_turn(data, sliced=True):
    """Feed one frame to a MudModeProtocol on a Clock, READ_BYTES per read,
    then turn the clock until its packet is delivered. Returns (longest
    turn in seconds, turns, seconds in all). A turn is one read or one
    clock advance, the work a reactor iteration would do."""
    clock = Clock()
    protocol = _Counter()
    protocol.clock = clock
    if not sliced:
        protocol.sliced_decode_bytes = len(data)
    protocol.makeConnection(StringTransport())
    turns = []

    def turn(action):
        started = common.now()
        action()
        turns.append(common.now() - started)

    for start in range(0, len(data), READ_BYTES):
        turn(lambda: protocol.dataReceived(data[start:start + READ_BYTES]))
    while not protocol.packets:
        if not clock.getDelayedCalls():
            raise AssertionError("the big frame was never delivered")
        turn(lambda: clock.advance(0.001))
    return max(turns), len(turns), sum(turns)


def run(quick=False, **sizes):
    s = {**(QUICK if quick else FULL), **sizes}
    runs, limit = s["runs"], s["max_seconds"]
    rows = []
    if not os.path.isfile(VECTORS):
        return [common.skipped(BENCH, "all", f"I3 vectors not found at {VECTORS}")]
    frames = real_frames()

    mudlist = mudlist_packet(frames, s["muds"], s["min_kb"] * 1000)
    text = lpc.encode(mudlist) + b"\x00"
    described = f"{len(mudlist[7])} MUDs, {len(text) / 1000:.0f} KB"
    mb_s, n = _throughput(lambda: lpc.decode(text), len(text), runs, limit)
    rows.append(common.row(BENCH, "decode mudlist", mb_s, "MB/s", f"{described}, median of {n}"))
    mb_s, n = _throughput(lambda: lpc.encode(mudlist), len(text), runs, limit)
    rows.append(common.row(BENCH, "encode mudlist", mb_s, "MB/s", f"{described}, median of {n}"))

    tell = tell_packet()
    tell_text = lpc.encode(tell) + b"\x00"
    count = s["packets"]
    us, n = _per_item_us(lambda: lpc.decode(tell_text), count, runs, limit)
    rows.append(common.row(BENCH, "decode tell", us, "us/packet",
                           f"{len(tell_text)} B, {count} packets, median of {n}"))
    us, n = _per_item_us(lambda: lpc.encode(tell), count, runs, limit)
    rows.append(common.row(BENCH, "encode tell", us, "us/packet",
                           f"{len(tell_text)} B, {count} packets, median of {n}"))

    stream = b"".join(frames) * s["stream_copies"] + mudmode.frame(mudlist)
    expected = len(frames) * s["stream_copies"] + 1
    for chunk, label in ((1, "1 B"), (4096, "4 KiB")):
        decoded = feed(stream, chunk)
        if decoded != expected:
            raise AssertionError(f"framing decoded {decoded} packets, expected {expected}")
        # 1-byte feeding is slow; fewer runs keep it inside the time box.
        chunk_runs = max(1, runs // 5) if chunk == 1 else runs
        mb_s, n = _throughput(lambda: feed(stream, chunk), len(stream), chunk_runs, limit)
        rows.append(common.row(BENCH, f"mudmode feed {label} chunks", mb_s, "MB/s",
                               f"{len(stream) / 1000:.0f} KB, {expected} frames, decode included, "
                               f"median of {n}"))

    codec = f"{lpc.IMPLEMENTATION} codec"
    for name, value in (("mudlist", mudlist), ("tell", tell)):
        text, json_text = lpc.encode(value), json.dumps(value)
        for measure, ours, theirs, json_name in (
                ("decode", lambda: lpc.decode(text), lambda: json.loads(json_text), "json.loads"),
                ("encode", lambda: lpc.encode(value), lambda: json.dumps(value), "json.dumps")):
            ours_ops = ops_per_second(ours, runs, limit / 4)
            json_ops = ops_per_second(theirs, runs, limit / 4)
            rows.append(common.row(BENCH, f"{measure} {name} vs json", ours_ops / json_ops, "x",
                                   f"{ours_ops:,.0f} ops/s vs {json_name} {json_ops:,.0f} ops/s "
                                   f"on the same value, {len(text):,} B, {codec}"))

    big = mudlist_packet(frames, 0, s["big_frame_kb"] * 1000)
    big_frame = mudmode.frame(big)
    if len(big_frame) - 4 > mudmode.DEFAULT_MAX_FRAME_BYTES:
        raise ValueError(f"the big frame of {len(big_frame)} bytes is over the receive bound")
    described = f"{len(big_frame) / 1024 / 1024:.2f} MiB mudlist ({len(big[7])} MUDs) in 64 KiB reads"
    for sliced, label in ((True, "sliced"), (False, "in one go")):
        longest, turns, total = longest_turn(big_frame, sliced)
        rows.append(common.row(BENCH, f"big frame longest turn, {label}", longest * 1000, "ms",
                               f"{described}: {turns} turns, {total * 1000:.0f} ms in all, {codec}"))
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
