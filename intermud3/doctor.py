"""`intermud3 doctor -c FILE`: is the gateway of this configuration well?

Checks, in the order a problem would show: the configuration, the state
store (integrity, permissions), each enabled API port, `/health/ready`, and
the router link's state with its last errors (from `/health`). Prints one
line per check and a verdict with the next step. Plain blocking sockets:
this runs beside the gateway, not inside its reactor.
"""

import json
import os
import socket
import sqlite3
import ssl
import stat
import urllib.error
import urllib.request

from intermud3 import config as configuration
from intermud3.state import FILENAME as STATE_FILE

TIMEOUT = 3.0   # seconds for each network probe


class Report:
    """Check lines and the first problem found (with its next step)."""

    def __init__(self, out):
        self.out = out
        self.problem = None

    def ok(self, what, detail):
        print(f"ok    {what}: {detail}", file=self.out)

    def bad(self, what, detail, next_step):
        print(f"FAIL  {what}: {detail}", file=self.out)
        if self.problem is None:
            self.problem = (f"{what}: {detail}", next_step)

    def note(self, what, detail):
        print(f"      {what}: {detail}", file=self.out)


def probe_host(host):
    """The address to reach a listener bound to `host` from this machine."""
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def base_url(config):
    api = config.api
    scheme = "https" if api.tls.cert else "http"
    return f"{scheme}://{probe_host(api.host)}:{api.port}"


def http_json(url, timeout=TIMEOUT):
    """(status, decoded JSON body) of a GET; a local gateway's own
    certificate is not verified (it is often self-signed)."""
    context = ssl._create_unverified_context() if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def http_text(url, timeout=TIMEOUT):
    context = ssl._create_unverified_context() if url.startswith("https") else None
    with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
        return response.read().decode("utf-8", "replace")


def check_state(config, report):
    directory = config.state.directory
    path = os.path.join(directory, STATE_FILE)
    if not os.path.exists(path):
        report.note("state", f"{path} does not exist yet (created at the first start)")
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        report.bad("state permissions", f"{path} is mode {mode:o}: others can read the router password",
                   f"chmod 600 {path}")
    else:
        report.ok("state permissions", f"{path} mode {mode:o}")
    try:
        # Read-only: safe while the gateway is running (WAL).
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=TIMEOUT)
        try:
            result = db.execute("PRAGMA quick_check").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as error:
        report.bad("state integrity", f"cannot read {path}: {error}",
                   "check the file's owner and the disk; OPERATIONS.md, State directory")
        return
    if result == "ok":
        report.ok("state integrity", "quick_check ok")
    else:
        report.bad("state integrity", f"quick_check says: {result}",
                   "stop the gateway, move the state directory aside and restart (OPERATIONS.md, State directory)")


def check_ports(config, report):
    """True when every enabled API port answers."""
    api = config.api
    host = probe_host(api.host)
    answering = True
    ports = []
    if api.websocket.enabled:
        ports.append(("api.port", api.port))
    if api.tcp.enabled:
        ports.append(("api.tcp.port", api.tcp.port))
    for key, port in ports:
        try:
            with socket.create_connection((host, port), timeout=TIMEOUT):
                pass
        except OSError as error:
            answering = False
            report.bad(key, f"{host}:{port} does not answer ({error.strerror or error})",
                       "start the gateway (OPERATIONS.md, Run), or check api.host and the ports")
        else:
            report.ok(key, f"{host}:{port} answers")
    return answering


def check_health(config, report):
    if not config.api.websocket.enabled:
        report.note("health", "api.websocket.enabled is false: no HTTP endpoint to ask")
        return
    url = base_url(config)
    try:
        code, ready = http_json(url + "/health/ready")
        _, health = http_json(url + "/health")
    except (OSError, ValueError) as error:
        report.bad("health", f"{url}/health did not answer in JSON ({error})",
                   "is another program on api.port? `ss -ltnp` shows who listens")
        return
    router = health.get("router", {})
    for failure in router.get("last_errors", []):
        report.note("router error", f"{failure['at']} {failure['router']}: {failure['reason']}")
    if code == 200:
        report.ok("router link", f"ready on {router.get('name')} ({router.get('address')}) "
                                 f"since {router.get('connected_since')}")
        return
    report.bad("router link", f"{router.get('state')} ({ready.get('reason')})",
               "read the router errors above; TROUBLESHOOTING.md, The router link does not come up")


def run(path, out, environ=None):
    """Print the checks and the verdict; 0 when all is well, 1 otherwise."""
    report = Report(out)
    try:
        config = configuration.load(path, environ)
    except configuration.ConfigError as error:
        for line in error.errors:
            report.bad("config", line, f"fix {path} (intermud3 check-config {path})")
        return _verdict(report)
    report.ok("config", f"{path} is valid; MUD {config.mud.name}")
    check_state(config, report)
    if check_ports(config, report):
        check_health(config, report)
    return _verdict(report)


def _verdict(report):
    if report.problem is None:
        print("verdict: OK, the gateway is up and linked to its router", file=report.out)
        return 0
    problem, next_step = report.problem
    print(f"verdict: PROBLEM: {problem}. Next: {next_step}", file=report.out)
    return 1
