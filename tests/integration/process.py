"""Real gateway processes (`twistd`, `twist`) for the integration tests.

`spawn` runs `python -c CODE ARGS...` with the repository first on
PYTHONPATH and none of the caller's I3_* variables, in a directory the test
owns. The child is killed at cleanup if still alive, and after `DEADLINE`
seconds in any case, so a hang fails the test instead of stalling CI.
`ProcessCase` adds a router on loopback and a config file pointing at it:
the shipped etc/intermud3.yaml (public routers) is never run as it is.
"""

import contextlib
import json
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

import yaml
from twisted.internet import defer, protocol, reactor, task
from twisted.trial import unittest
from twisted.web.client import Agent, readBody

from intermud3.testing.router import I3Router

REPO = Path(__file__).resolve().parents[2]
TWISTD = "from twisted.scripts.twistd import run; run()"
TWIST = "from twisted.application.twist._twist import Twist; Twist.main()"
DEADLINE = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Child(protocol.ProcessProtocol):
    """A child process. `output`: stdout and stderr as they came; `stdout`
    alone; `ended` fires with the exit code (None when a signal ended it,
    which `signal` then names)."""

    def __init__(self):
        self.output = []
        self.stdout = []
        self.signal = None
        self.ended = defer.Deferred()
        self._output_waiters = []   # (text, stdout_only, Deferred)

    def outReceived(self, data):
        self.output.append(data)
        self.stdout.append(data)
        self._wake()

    def errReceived(self, data):
        self.output.append(data)
        self._wake()

    def wait_output(self, text, timeout=10.0, stdout_only=False):
        """Fires once `text` (str) has appeared in the output (stdout alone
        with stdout_only); fails after `timeout` seconds or if the process
        ends first."""
        d = defer.Deferred()
        self._output_waiters.append((text, stdout_only, d))
        self._wake()

        def expire():
            if not d.called:
                d.errback(AssertionError(f"{text!r} not in the output within {timeout}s"))

        call = reactor.callLater(timeout, expire)
        d.addBoth(lambda r: (call.active() and call.cancel(), r)[1])
        return d

    def _wake(self):
        for waiter in list(self._output_waiters):
            text, stdout_only, d = waiter
            seen = b"".join(self.stdout).decode("utf-8", "replace") if stdout_only else self.text()
            if d.called or text in seen:
                self._output_waiters.remove(waiter)
                if not d.called:
                    d.callback(None)

    def processEnded(self, reason):
        self.signal = reason.value.signal
        self.ended.callback(reason.value.exitCode)
        waiters, self._output_waiters = self._output_waiters, []
        for text, _, d in waiters:
            if not d.called:
                d.errback(AssertionError(f"the process ended before {text!r} was in its output"))

    def text(self):
        return b"".join(self.output).decode("utf-8", "replace")


def spawn(testcase, code, *args, cwd=None, env=None, deadline=DEADLINE):
    """Start `python -c code *args`; returns its `Child` (`.transport` to signal it).
    It is killed after `deadline` seconds."""
    child = Child()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("I3_")}
    environ.update(PYTHONPATH=str(REPO), **(env or {}))
    reactor.spawnProcess(child, sys.executable, [sys.executable, "-c", code, *args],
                         env=environ, path=None if cwd is None else str(cwd))

    def kill_if_alive():
        if not child.ended.called:
            child.transport.signalProcess("KILL")
            return child.ended
        return None

    testcase.addCleanup(kill_if_alive)
    killer = reactor.callLater(deadline, kill_if_alive)
    child.ended.addBoth(lambda result: (killer.active() and killer.cancel(), result)[1])
    return child


def twistd_gateway(testcase, config_path, *twistd_options, cwd=None, deadline=DEADLINE):
    """`twistd -n --pidfile= [twistd_options] intermud3 --config PATH`."""
    return spawn(testcase, TWISTD, "-n", "--pidfile=", *twistd_options,
                 "intermud3", "--config", str(config_path), cwd=cwd, deadline=deadline)


@contextlib.contextmanager
def output_on_failure(child, tail=4000):
    """Print the end of the child's output if the block fails."""
    try:
        yield child
    except BaseException:
        print(child.text()[-tail:])
        raise


def pause(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def get_json(port, path):
    """(status code, decoded body) of an HTTP GET on 127.0.0.1."""
    response = yield Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}{path}".encode())
    body = yield readBody(response)
    return response.code, json.loads(body)


@defer.inlineCallbacks
def wait_ready(port, timeout=DEADLINE, interval=0.05):
    """Poll /health/ready until it answers 200; returns the last answer
    ((None, {"status": None}) if the port never answered)."""
    answer = (None, {"status": None})
    deadline = reactor.seconds() + timeout
    while reactor.seconds() < deadline:
        try:
            answer = yield get_json(port, "/health/ready")
        except Exception:
            answer = (None, {"status": None})
        if answer[0] == 200:
            break
        yield pause(interval)
    return answer


class ProcessCase(unittest.TestCase):
    """A private directory, a router on loopback, free API ports and a config
    file (`self.config`, written to `self.config_path`) pointing at them."""

    timeout = 40
    mud = "ContractMUD"

    def setUp(self):
        self.router = I3Router("*proc")
        self.router.listen(reactor, 0, "127.0.0.1")
        self.addCleanup(self.router.shutdown)
        self.dir = Path(tempfile.mkdtemp(prefix="i3gw-process-"))
        self.addCleanup(shutil.rmtree, self.dir, ignore_errors=True)
        self.web_port = free_port()
        self.tcp_port = free_port()
        self.api_key = "process-test-key"
        self.config = {
            "mud": {"name": self.mud},
            "routers": [{"name": "*proc", "host": "127.0.0.1", "port": self.router.port}],
            "router": {"send_rate": 0, "backoff": {"initial": 0.1, "max": 1}},
            "api": {
                "host": "127.0.0.1", "port": self.web_port,
                "tcp": {"port": self.tcp_port},
                "auth": {"api_keys": [{"key": self.api_key, "permissions": ["*"]}]},
            },
            "state": {"directory": str(self.dir / "state")},
            "logging": {"level": "info"},
        }
        self.config_path = self.dir / "gateway.yaml"
        self.write_config()

    def write_config(self, config=None, path=None):
        (path or self.config_path).write_text(yaml.safe_dump(config or self.config))

    def spawn(self, code, *args, env=None):
        return spawn(self, code, *args, cwd=self.dir, env=env)

    # Seconds a gateway process may live before it is killed.
    gateway_deadline = DEADLINE

    def gateway(self, *twistd_options):
        return twistd_gateway(self, self.config_path, *twistd_options, cwd=self.dir,
                              deadline=self.gateway_deadline)

    def connected(self):
        return self.router.wait_for(lambda r: self.mud in r.connections, timeout=DEADLINE)

    def received(self, ptype):
        return [p for m, p in self.router.received if m == self.mud and p[0] == ptype]

    @defer.inlineCallbacks
    def run_to_end(self, child):
        code = yield child.ended
        return code, child.text()
