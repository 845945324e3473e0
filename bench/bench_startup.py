"""The gateway as a process: start to ready, and its resident memory.

The in-repo router runs as a child process (`twistd -n i3router`) on a
free 127.0.0.1 port; then, `runs` times, a gateway (`twistd -n intermud3`,
from this checkout, with a fresh state directory) is started against it:

* `start to ready`: from spawning the gateway to its first 200 on
  `/health/ready` (the router's startup-reply arrived), polled every 20 ms.
* `RSS when ready`: VmRSS of the gateway process (/proc/PID/status) at
  that moment, and `RSS after a TCP client` once one TCP client has
  authenticated and read the mudlist.
* `first WebSocket upgrade`: from sending the first upgrade request on /ws
  to reading `101`. `RSS after a WebSocket client`: VmRSS once that client is open.

Medians over the runs. Figures are printed, nothing is asserted; the
process is measured whole, so the interpreter and every imported module
count (see the README for what they cost).
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

BENCH = "startup"
API_KEY = "bench-key-0123456789"
WAIT = 30.0          # seconds a process may take to come up
TWISTD = "from twisted.scripts.twistd import run; run()"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def spawn(args, workdir, name):
    env = {k: v for k, v in os.environ.items() if not k.startswith("I3_")}
    env["PYTHONPATH"] = common.REPO
    with open(os.path.join(workdir, f"{name}.log"), "ab") as log:
        return subprocess.Popen([sys.executable, "-c", TWISTD, "-n", "--pidfile=", *args],
                                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)


def stop(child):
    common.end_child(child)


def wait_for_port(port, child):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"process exited with {child.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on {port} after {WAIT} s")


def wait_ready(port, child):
    deadline = time.monotonic() + WAIT
    url = f"http://127.0.0.1:{port}/health/ready"
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise RuntimeError(f"gateway exited with {child.returncode} during start")
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"gateway not ready after {WAIT} s")


def tcp_client_reads_mudlist(port):
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        lines = s.makefile("rb")
        for request_id, method, params in ((1, "authenticate", {"api_key": API_KEY}),
                                           (2, "mudlist", {})):
            s.sendall(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                  "params": params}).encode() + b"\n")
            while True:
                message = json.loads(lines.readline())
                if message.get("id") == request_id:
                    break
            if "result" not in message:
                raise RuntimeError(f"{method} failed: {message}")


def websocket_upgrade(port):
    """Open a WebSocket (raw handshake); returns (seconds to 101, socket)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    started = common.now()
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
              b"Sec-WebSocket-Version: 13\r\nX-API-Key: " + API_KEY.encode() + b"\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise RuntimeError(f"WebSocket upgrade refused: {head[:200]!r}")
        head += chunk
    elapsed = common.now() - started
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"WebSocket upgrade refused: {head[:200]!r}")
    return elapsed, s


def gateway_config(router_port, web, tcp, state):
    return {
        "mud": {"name": "BenchMud"},
        "routers": [{"name": "*bench", "host": "127.0.0.1", "port": router_port}],
        "api": {"host": "127.0.0.1", "port": web, "tcp": {"port": tcp},
                "auth": {"api_keys": [{"key": API_KEY, "permissions": ["*"]}]}},
        "state": {"directory": state},
        "logging": {"level": "warn"},
    }


def one_start(workdir, router_port, index):
    web, tcp = free_port(), free_port()
    state = os.path.join(workdir, f"state-{index}")
    os.mkdir(state, 0o700)
    path = os.path.join(workdir, f"gateway-{index}.yaml")
    with open(path, "w") as f:
        json.dump(gateway_config(router_port, web, tcp, state), f)  # JSON is YAML
    started = common.now()
    gateway = spawn(["intermud3", "--config", path], workdir, f"gateway-{index}")
    try:
        wait_ready(web, gateway)
        figures = {"ready": common.now() - started, "rss_ready": rss_mib(gateway.pid)}
        tcp_client_reads_mudlist(tcp)
        figures["rss_tcp"] = rss_mib(gateway.pid)
        figures["upgrade"], websocket = websocket_upgrade(web)
        with websocket:
            time.sleep(0.1)  # the session is authenticated just after the 101
            figures["rss_ws"] = rss_mib(gateway.pid)
        return figures
    finally:
        stop(gateway)


def run(quick=False, runs=None):
    if not os.path.exists("/proc/self/status"):
        return [common.skipped(BENCH, "start to ready", "needs Linux /proc")]
    runs = runs or (1 if quick else 3)
    workdir = tempfile.mkdtemp(prefix="i3-bench-startup-")
    router_port = free_port()
    router = spawn(["i3router", "--port", str(router_port), "--name", "*bench"], workdir, "router")
    try:
        wait_for_port(router_port, router)
        measured = [one_start(workdir, router_port, index) for index in range(runs)]
    finally:
        stop(router)
        shutil.rmtree(workdir, ignore_errors=True)

    def median(key):
        return common.median([m[key] for m in measured])

    detail = f"median of {len(measured)}"
    return [
        common.row(BENCH, "start to ready", median("ready"), "s", detail),
        common.row(BENCH, "RSS when ready", median("rss_ready"), "MiB", detail),
        common.row(BENCH, "RSS after a TCP client", median("rss_tcp"), "MiB",
                   f"authenticated, mudlist read; {detail}"),
        common.row(BENCH, "first WebSocket upgrade", median("upgrade") * 1000, "ms",
                   f"{detail}"),
        common.row(BENCH, "RSS after a WebSocket client", median("rss_ws"), "MiB", detail),
    ]


if __name__ == "__main__":
    sys.exit(common.main(run))
