"""LPC and MudMode throughput on real frames (intermud3.lpc, intermud3.mudmode).

* decode/encode of a mudlist frame built from the real mudlist entries in
  ../shared/i3-vectors/dead-souls-router.jsonl, replicated under new names
  until it holds at least `muds` MUDs and `min_kb` KB (what a router sends
  on a first startup): MB/s, median of `runs`;
* decode/encode of a small tell packet: microseconds per packet, median of
  `runs` rounds of `packets` packets;
* MudModeProtocol reading a byte stream (every real frame `stream_copies`
  times, plus the big mudlist frame) fed 1 byte and 4 KiB at a time:
  MB/s including the decode of every frame.
"""

import json
import os

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

from twisted.internet.testing import StringTransport

from intermud3 import lpc, mudmode

BENCH = "lpc"
# Outside the repository, as for the tests; I3_VECTORS_DIR points elsewhere.
VECTORS = os.path.join(
    os.environ.get("I3_VECTORS_DIR") or os.path.join(common.REPO, "..", "shared", "i3-vectors"),
    "dead-souls-router.jsonl")

FULL = {"runs": 15, "muds": 160, "min_kb": 100, "packets": 2000, "stream_copies": 20, "max_seconds": 8}
QUICK = {"runs": 5, "muds": 160, "min_kb": 100, "packets": 500, "stream_copies": 3, "max_seconds": 2}


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

    def packetReceived(self, value):
        self.packets += 1


def feed(stream, chunk):
    """Feed `stream` to a MudModeProtocol `chunk` bytes at a time; returns
    how many packets it decoded."""
    protocol = _Counter()
    protocol.makeConnection(StringTransport())
    for start in range(0, len(stream), chunk):
        protocol.dataReceived(stream[start:start + chunk])
    return protocol.packets


def run(quick=False, **sizes):
    s = {**(QUICK if quick else FULL), **sizes}
    runs, limit = s["runs"], s["max_seconds"]
    rows = []
    if not os.path.isfile(VECTORS):
        return [common.skipped(BENCH, "all", f"I3 vectors not found at {VECTORS} (set I3_VECTORS_DIR)")]
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
    return rows


if __name__ == "__main__":
    raise SystemExit(common.main(run))
