"""WebSocket connections: what a connect + authenticate costs the gateway,
and what an idle authenticated connection holds.

A real gateway runs as a child process (`twistd -n intermud3`, logging at
warn, the in-repo router in this process on 127.0.0.1); this process is the
client. `connections` WebSocket clients connect to /ws, `window` at a time,
each sending one `authenticate` and waiting for its answer; they then stay
open, idle.

* connect + authenticate rate (conn/s): connections over the wall time of
  opening them all. On one machine the client's own work is part of it.
* gateway CPU per connection (ms): user + system CPU of the gateway
  process (/proc/PID/stat) while they opened, over the count.
* RSS per idle connection (KiB): the gateway's VmRSS a moment after they
  all opened, less before, over the count.

The client is a few lines over a raw socket (the upgrade request and the
masked authenticate frame written once, reused), so it costs the machine
much less than the gateway does; its CPU per connection is printed too.
Every wait is bounded; a gateway that does not start is a failure.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

import yaml
from twisted.internet import defer, protocol

BENCH = "connect"
API_KEY = "bench-key-0123456789"
WAIT = 20.0          # seconds any one step may take before the run fails
TWISTD = "from twisted.scripts.twistd import run; run()"
RFC6455_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# settle: seconds between the last open and reading RSS.
FULL = {"connections": 1000, "window": 50, "max_seconds": 60, "settle": 2.0}
QUICK = {"connections": 300, "window": 50, "max_seconds": 20, "settle": 2.0}




def gateway_config(router_port, http_port, state_dir):
    big = {"per_minute": 10_000_000, "burst": 1_000_000}
    return {
        "mud": {"name": "BenchMUD", "port": 4000},
        "routers": [{"name": "*bench", "host": "127.0.0.1", "port": router_port}],
        "router": {"send_rate": 0},
        "api": {
            "host": "127.0.0.1", "port": http_port, "tcp": {"enabled": False},
            "auth": {"api_keys": [{"key": API_KEY, "mud_name": "BenchMUD", "permissions": ["*"],
                                   "rate_limit": big}]},
            "rate_limits": {"default": big},
            "max_connections": 50_000,
        },
        "state": {"directory": state_dir},
        "logging": {"level": "warn"},
    }


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def masked_text_frame(payload, mask=b"\x11\x22\x33\x44"):
    """One final, masked text frame (RFC 6455 5.2), as a client writes it."""
    assert len(payload) < 126
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + mask + body


KEY = base64.b64encode(b"bench-ws-key-016").decode("ascii")
ACCEPT = base64.b64encode(hashlib.sha1(KEY.encode("ascii") + RFC6455_GUID).digest())


def upgrade_request(port):
    return (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\n"
            f"Sec-WebSocket-Version: 13\r\n\r\n").encode("ascii")


AUTHENTICATE = masked_text_frame(json.dumps(
    {"jsonrpc": "2.0", "id": "a", "method": "authenticate", "params": {"api_key": API_KEY}},
    separators=(",", ":")).encode("utf-8"))


class IdleClient(protocol.Protocol):
    """Upgrade, authenticate, then stay connected saying nothing.
    `authenticated` fires once the answer arrived, or fails."""

    def __init__(self, request):
        self.request = request
        self.authenticated = defer.Deferred()
        self.buffer = b""
        self.upgraded = False

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        if self.authenticated.called:
            return
        self.buffer += data
        if not self.upgraded:
            head, sep, rest = self.buffer.partition(b"\r\n\r\n")
            if not sep:
                return
            if not head.startswith(b"HTTP/1.1 101") or ACCEPT not in head:
                self._fail(head.split(b"\r\n", 1)[0])
                return
            self.upgraded, self.buffer = True, rest
            self.transport.write(AUTHENTICATE)
        if b'"id":"a"' in self.buffer:
            if b'"result"' in self.buffer:
                self.authenticated.callback(self)
            else:
                self._fail(self.buffer[:200])
        self.buffer = self.buffer[-4096:]

    def _fail(self, what):
        self.authenticated.errback(RuntimeError(f"refused: {what!r}"))
        self.transport.loseConnection()

    def connectionLost(self, reason):
        if not self.authenticated.called:
            self.authenticated.errback(RuntimeError(f"closed before authenticating: {reason.value}"))


class GatewayProcess:
    """`twistd -n intermud3` in a temporary directory, read through /proc."""

    def __init__(self, router_port):
        self.dir = tempfile.mkdtemp(prefix="i3gw-connect-")
        self.http_port = free_port()
        state = os.path.join(self.dir, "state")
        os.makedirs(state)
        path = os.path.join(self.dir, "config.yaml")
        with open(path, "w") as f:
            yaml.safe_dump(gateway_config(router_port, self.http_port, state), f)
        self.log = open(os.path.join(self.dir, "gateway.log"), "wb")
        env = dict(os.environ, PYTHONPATH=common.REPO)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "intermud3", "--config", path],
            cwd=common.REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def _stat(self, name):
        with open(f"/proc/{self.proc.pid}/{name}") as f:
            return f.read()

    def rss_kib(self):
        for line in self._stat("status").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def cpu_seconds(self):
        fields = self._stat("stat").rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self):
        with open(os.path.join(self.dir, "gateway.log"), "rb") as f:
            return f.read()[-2000:].decode("utf-8", "replace")

    def stop(self):
        common.end_child(self.proc)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def sleep(reactor, seconds):
    d = defer.Deferred()
    reactor.callLater(seconds, d.callback, None)
    return d




def http_status(port, path):
    """The status of a GET, or None when nothing answers (blocking: run in a thread)."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


@defer.inlineCallbacks
def wait_ready(reactor, gateway):
    """Until /health/ready answers 200 (the router link is up)."""
    from twisted.internet.threads import deferToThread
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if gateway.proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {gateway.proc.returncode}:\n{gateway.log_tail()}")
        status = yield deferToThread(http_status, gateway.http_port, "/health/ready")
        if status == 200:
            return
        yield sleep(reactor, 0.1)
    raise common.Timeout(f"gateway not ready within {WAIT} s:\n{gateway.log_tail()}")


@defer.inlineCallbacks
def open_all(reactor, port, count, window, max_seconds):
    """Open up to `count` authenticated connections, `window` at a time."""
    request = upgrade_request(port)
    creator = protocol.ClientCreator(reactor, IdleClient, request)
    semaphore = defer.DeferredSemaphore(window)
    clients = []
    deadline = time.monotonic() + max_seconds

    @defer.inlineCallbacks
    def one():
        if time.monotonic() > deadline:
            return
        client = yield creator.connectTCP("127.0.0.1", port)
        yield common.with_timeout(reactor, client.authenticated, WAIT, "authenticate")
        clients.append(client)

    yield defer.gatherResults([semaphore.run(one) for _ in range(count)], consumeErrors=True)
    return clients


@defer.inlineCallbacks
def measure(reactor, quick=False, **sizes):
    from intermud3.testing.router import I3Router
    s = {**(QUICK if quick else FULL), **sizes}
    router = I3Router("*bench")
    router.listen(reactor, 0, "127.0.0.1")
    gateway = GatewayProcess(router.port)
    clients = []
    try:
        yield wait_ready(reactor, gateway)
        yield sleep(reactor, 1.0)
        rss_before, cpu_before = gateway.rss_kib(), gateway.cpu_seconds()
        own_before, started = time.process_time(), time.monotonic()
        clients = yield open_all(reactor, gateway.http_port, s["connections"], s["window"],
                                 s["max_seconds"])
        elapsed, own = time.monotonic() - started, time.process_time() - own_before
        cpu = gateway.cpu_seconds() - cpu_before
        yield sleep(reactor, s["settle"])
        rss_after = gateway.rss_kib()
        # Every client leaves at once: each session is detached (kept for
        # its resume) while the others still are open or detached.
        cpu_before_leaving = gateway.cpu_seconds()
        for client in clients:
            client.transport.loseConnection()
        yield sleep(reactor, s["settle"])
        leaving = gateway.cpu_seconds() - cpu_before_leaving
    finally:
        for client in clients:
            client.transport.abortConnection()
        gateway.stop()
        yield router.shutdown()
    n = len(clients)
    detail = f"{n} WebSocket connections, {s['window']} at a time, each authenticated"
    return [
        common.row(BENCH, "connect + authenticate rate", n / elapsed, "conn/s", detail),
        common.row(BENCH, "gateway CPU per connection", cpu * 1e3 / n, "ms", detail),
        common.row(BENCH, "client CPU per connection", own * 1e3 / n, "ms",
                   "this process: client and in-repo router"),
        common.row(BENCH, "gateway RSS per idle connection", (rss_after - rss_before) / n, "KiB",
                   f"{detail}; VmRSS {s['settle']:g} s after, less before"),
        common.row(BENCH, "gateway RSS with them open", rss_after / 1024, "MiB", "whole process"),
        common.row(BENCH, "gateway CPU per disconnect", leaving * 1e3 / n, "ms",
                   "all of them closed at once; sessions kept detached"),
    ]


def run(quick=False, **sizes):
    """Run the reactor once around `measure` (so: once per process)."""
    return common.run_reactor_once(measure, quick, sizes)


if __name__ == "__main__":
    raise SystemExit(common.main(run))
