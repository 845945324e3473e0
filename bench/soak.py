"""Soak: two real gateways on a real router, faults injected, every message counted.

    python -m bench.soak --seconds 600
    python bench/soak.py --seconds 30 --seed 7

What runs (all on 127.0.0.1, ports picked free, in one temporary directory):

* the in-repo router as a process (`twistd -n i3router`), killed (SIGKILL or
  SIGTERM) and restarted on the same port at random;
* two gateways, MudA and MudB (`twistd -n intermud3`), each killed with
  SIGKILL and restarted with its state directory kept;
* a full-disk episode when the machine allows it: MudA's state directory is
  a small tmpfs (needs root and `mount`), filled with a file, then freed. If
  mounting is refused the run says so and skips that episode;
* per gateway one TCP-lines client and one WebSocket client. Each sends tells
  and channel messages to the other MUD, every text carrying a unique token,
  and records what its MUD's clients receive. After a gateway restart a
  client re-attaches (`authenticate` with its old `session_id`, else a fresh
  one) and joins the channel again.

How each message is counted (the gateway's promises, API.md "Messages"):

* accepted: the call was answered "sent" or "queued". A call whose answer
  was lost with the connection is asked about with `message_status`
  (by `client_msg_id`) at the end: an id the gateway does not know was
  never accepted ("unanswered"); a known one counts as accepted.
* refused: answered with an error (-32004 store_unavailable, link_down,
  queue_full, ...). Refusal is not loss.
* delivered: a client of the other MUD got it (tell_received,
  channel_message). delivered twice: one client got the token twice.
* expired: a `message_expired` event or `message_status` "expired".
* A "queued" message's fate comes from `message_sent`/`message_expired`
  events, else from `message_status` after the settling period.

"Sent" means handed to the router at most once; I3 has no receipts. A
message the gateway wrote to the router can still die with the router
(killed holding it), with a receiving gateway that was down or being
killed (the router drops packets for a MUD that is down), or before the
other side listened again. Those are not the gateway's losses: a message
that became "sent" inside a fault window (from `--fault-margin` seconds
before a kill until that margin after everything was seen up again) and
never arrived is counted apart as "lost in a fault window".

The verdict (exit 1 when any is broken):

* no message delivered twice to one client, ever;
* every queued message is, after the settling period with everything up,
  sent or expired: none still queued, none unknown;
* no message reported expired was delivered;
* every message that became "sent" outside the fault windows was delivered.

Bounds: sending stops after `--seconds`; the settling period is bounded by
`--settle`; every wait for a process or a connection has a deadline. All
children are killed at exit (also on Ctrl-C and SIGTERM), the tmpfs is
unmounted and only the temporary directory this run made is removed.
"""

import argparse
import atexit
import errno
import itertools
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402
from autobahn.twisted.websocket import (  # noqa: E402
    WebSocketClientFactory, WebSocketClientProtocol)
from twisted.internet import defer, reactor, task  # noqa: E402
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol  # noqa: E402

from bench import common  # noqa: E402
from intermud3.testing.client import JSONLineClient, RPCFailure, answer  # noqa: E402

TWISTD = "from twisted.scripts.twistd import run; run()"
MUDS = ("MudA", "MudB")
CHANNEL = "dchat"            # a default channel of the test router
CALL_TIMEOUT = 10.0          # seconds any one API call may take
UP_TIMEOUT = 60.0            # seconds to wait for everything to be up again
TOKEN = re.compile(r"soaktok-[A-Za-z]+-[a-z]+-\d+")
TMPFS_BYTES = 16 * 1024 * 1024


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


def with_timeout(d, seconds):
    return d.addTimeout(seconds, reactor)


def epoch(iso):
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# -- child processes --------------------------------------------------------


class Children:
    """The router and gateway processes: started, killed, restarted, and
    all killed at exit whatever happens."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.commands = {}
        self.running = {}

    def add(self, name, args):
        self.commands[name] = args

    def start(self, name):
        env = {k: v for k, v in os.environ.items() if not k.startswith("I3_")}
        env["PYTHONPATH"] = str(REPO)
        log = open(self.workdir / f"{name}.log", "ab")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-c", TWISTD, "-n", "--pidfile=", *self.commands[name]],
            cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
        log.close()

    def kill(self, name, sig=9):
        child = self.running.pop(name, None)
        if child is None:
            return
        common.end_child(child, sig)

    def alive(self, name):
        child = self.running.get(name)
        return child is not None and child.poll() is None

    def kill_all(self):
        for name in list(self.running):
            self.kill(name)


# -- API clients ------------------------------------------------------------


class WSClient(WebSocketClientProtocol):
    """JSON-RPC over WebSocket, shaped like JSONLineClient: call, on_event, closed."""

    def __init__(self):
        super().__init__()
        self._ids = itertools.count(1)
        self._pending = {}
        self.on_event = None
        self.opened = defer.Deferred()
        self.closed = defer.Deferred()

    def onOpen(self):
        self.opened.callback(self)

    def onMessage(self, payload, isBinary):
        message = json.loads(payload)
        if "method" in message:
            self.on_event(message["method"], message.get("params") or {})
            return
        answer(self._pending, message)

    def call(self, method, params=None):
        request_id = next(self._ids)
        d = self._pending[request_id] = defer.Deferred()
        self.sendMessage(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method,
                                     "params": params or {}}).encode())
        return d

    def connectionLost(self, reason):
        super().connectionLost(reason)
        if not self.opened.called:
            self.opened.errback(ConnectionError("websocket handshake failed"))
        pending, self._pending = self._pending, {}
        for d in pending.values():
            d.errback(ConnectionError("connection lost"))
        if not self.closed.called:
            self.closed.callback(None)

    def disconnect(self):
        if self.transport is not None:
            self.transport.abortConnection()


@dataclass
class Message:
    token: str
    mud: str                 # the sending MUD
    kind: str                # "tell" or "channel"
    reply: str = "pending"   # sent | queued | refused | unanswered
    refusal: str = ""
    message_id: object = None
    sent_at: float = None    # when it was known written to the router link
    fate: str = None         # sent | expired | queued (still) | unknown, for queued ones
    status_asked: bool = False


@dataclass
class Ledger:
    """Everything the clients saw, keyed by token."""
    messages: dict = field(default_factory=dict)
    by_id: dict = field(default_factory=dict)         # (mud, message_id) -> token
    fates: dict = field(default_factory=dict)         # (mud, message_id) -> (fate, time)
    deliveries: dict = field(default_factory=dict)    # token -> {client name: count}

    def fate_event(self, mud, message_id, fate):
        self.fates.setdefault((mud, message_id), (fate, time.time()))
        self._apply(mud, message_id)

    def _apply(self, mud, message_id):
        token = self.by_id.get((mud, message_id))
        found = self.fates.get((mud, message_id))
        if token is None or found is None:
            return
        message = self.messages[token]
        if message.reply == "queued" and message.fate is None:
            message.fate, at = found
            if message.fate == "sent":
                message.sent_at = at

    def accepted(self, message, result):
        message.reply = result.get("status")
        message.message_id = result.get("message_id")
        self.by_id[(message.mud, message.message_id)] = message.token
        if message.reply == "sent":
            message.sent_at = time.time()
        self._apply(message.mud, message.message_id)


class Client:
    """One MUD-side client: keeps a connection (re-attaching after a gateway
    restart), sends messages at a steady rate, records what arrives."""

    def __init__(self, name, mud, transport, port, api_key, ledger, rng):
        self.name = name
        self.mud = mud
        self.transport = transport
        self.port = port
        self.api_key = api_key
        self.ledger = ledger
        self.rng = rng
        self.conn = None
        self.ready = False       # authenticated and joined to CHANNEL
        self.session_id = None
        self.seq = itertools.count(1)
        self.stopping = False
        self.connects = 0
        self.resumed = 0

    @defer.inlineCallbacks
    def _connect(self):
        if self.transport == "tcp":
            conn = JSONLineClient()
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=5)
            yield connectProtocol(endpoint, conn)
            yield with_timeout(conn.welcomed, CALL_TIMEOUT)
        else:
            factory = WebSocketClientFactory(f"ws://127.0.0.1:{self.port}/ws")
            factory.protocol = WSClient
            endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port, timeout=5)
            conn = yield endpoint.connect(factory)
            yield with_timeout(conn.opened, CALL_TIMEOUT)
        conn.on_event = self._event
        return conn

    def call(self, method, params):
        return with_timeout(self.conn.call(method, params), CALL_TIMEOUT)

    @defer.inlineCallbacks
    def keep_connected(self):
        """Until stopped: connect, authenticate, join; wait for the loss."""
        while not self.stopping:
            conn = None
            try:
                conn = yield self._connect()
                self.conn = conn
                result = yield self._authenticate()
                self.session_id = result["session_id"]
                self.resumed += bool(result.get("resumed"))
                yield self.call("channel_join", {"channel": CHANNEL})
                self.connects += 1
                self.ready = True
                yield conn.closed
            except Exception:
                if conn is not None:
                    conn.disconnect()
            self.ready = False
            self.conn = None
            if not self.stopping:
                yield sleep(0.2)

    @defer.inlineCallbacks
    def _authenticate(self):
        if self.session_id is not None:
            try:
                result = yield self.call("authenticate", {"api_key": self.api_key,
                                                          "session_id": self.session_id})
                return result
            except RPCFailure as failure:
                if failure.code != -32003:
                    raise
        result = yield self.call("authenticate", {"api_key": self.api_key})
        return result

    def send_one(self):
        """Send one tell or channel message to the other MUD (not waiting)."""
        if not self.ready:
            return
        token = f"soaktok-{self.mud}-{self.transport}-{next(self.seq)}"
        other = MUDS[1 - MUDS.index(self.mud)]
        if self.rng.random() < 0.5:
            message = Message(token, self.mud, "tell")
            method, params = "tell", {"target_mud": other, "target_user": "soak",
                                      "from_user": self.name, "message": f"tell {token}"}
        else:
            message = Message(token, self.mud, "channel")
            method, params = "channel_send", {"channel": CHANNEL, "from_user": self.name,
                                              "message": f"chan {token}"}
        params["client_msg_id"] = token
        self.ledger.messages[token] = message
        d = self.call(method, params)
        d.addCallbacks(lambda result: self.ledger.accepted(message, result),
                       lambda failure: self._failed(message, failure))

    def _failed(self, message, failure):
        if failure.check(RPCFailure):
            message.reply = "refused"
            data = failure.value.data or {}
            message.refusal = str(data.get("reason") or data.get("i3_error")
                                  or failure.value.code)
        else:
            message.reply = "unanswered"

    @defer.inlineCallbacks
    def send_loop(self, until, rate):
        while time.time() < until and not self.stopping:
            yield sleep(self.rng.expovariate(rate))
            try:
                self.send_one()
            except Exception:
                pass  # the connection went between the check and the write

    def _event(self, method, params):
        if method in ("tell_received", "channel_message"):
            for token in TOKEN.findall(str(params.get("message", ""))):
                counts = self.ledger.deliveries.setdefault(token, {})
                counts[self.name] = counts.get(self.name, 0) + 1
        elif method in ("message_sent", "message_expired"):
            self.ledger.fate_event(self.mud, params.get("message_id"),
                                   "sent" if method == "message_sent" else "expired")

    @defer.inlineCallbacks
    def ask_status(self, message):
        """Learn a message's fate from message_status (by client_msg_id)."""
        try:
            result = yield self.call("message_status", {"client_msg_id": message.token})
        except RPCFailure as failure:
            if failure.code == -32602:
                message.status_asked = True
                if message.reply == "queued":
                    message.fate = "unknown"
            return
        message.status_asked = True
        if message.reply == "unanswered":
            message.reply = "queued" if result["status"] != "sent" else "sent"
            message.message_id = result.get("message_id")
            message.refusal = "answer lost, known by message_status"
        if result["status"] == "sent" and message.sent_at is None:
            message.sent_at = epoch(result["at"]) if isinstance(result.get("at"), str) \
                else time.time()
        if message.reply == "queued":
            message.fate = result["status"]


# -- the run ----------------------------------------------------------------


class Soak:
    def __init__(self, options):
        self.options = options
        self.rng = random.Random(options.seed)
        self.dir = Path(tempfile.mkdtemp(prefix="i3-soak-"))
        self.children = Children(self.dir)
        self.ledger = Ledger()
        self.windows = []               # (start, end, kind) of each fault
        self.episodes = {"router_restarts": 0, "gateway_kills": 0, "disk_full": 0}
        self.tmpfs = None
        self.disk_note = ""
        self.cleaned = False

    # setup and teardown

    def setup(self):
        self.router_port = free_port()
        self.children.add("router", ["i3router", "--port", str(self.router_port),
                                     "--name", "*soak"])
        self.ports = {}
        for mud in MUDS:
            web, tcp = free_port(), free_port()
            self.ports[mud] = (web, tcp)
            state = self.dir / f"state-{mud}"
            state.mkdir()
            if mud == "MudA":
                self._mount_tmpfs(state)
            path = self.dir / f"{mud}.yaml"
            path.write_text(yaml.safe_dump(self._config(mud, web, tcp, state)))
            self.children.add(mud, ["intermud3", "--config", str(path)])
        self.children.start("router")
        for mud in MUDS:
            self.children.start(mud)
        self.clients = []
        for mud in MUDS:
            web, tcp = self.ports[mud]
            for transport, port in (("tcp", tcp), ("ws", web)):
                self.clients.append(Client(f"{mud}-{transport}", mud, transport, port,
                                           self._key(mud), self.ledger, self.rng))

    def _key(self, mud):
        return f"soak-key-{mud}-0123456789"

    def _config(self, mud, web, tcp, state):
        unlimited = {"per_minute": 1000000, "burst": 100000}
        return {
            "mud": {"name": mud},
            "routers": [{"name": "*soak", "host": "127.0.0.1", "port": self.router_port}],
            "router": {"send_rate": 0, "backoff": {"initial": 0.1, "max": 1},
                       "queue": {"enabled": True, "max_messages": 1000,
                                 "ttl": self.options.queue_ttl}},
            "api": {"host": "127.0.0.1", "port": web, "tcp": {"port": tcp},
                    "auth": {"api_keys": [{"key": self._key(mud), "permissions": ["*"]}]},
                    "rate_limits": {"default": unlimited,
                                    "by_method": {m: unlimited for m in
                                                  ("tell", "channel_send", "message_status")}}},
            "state": {"directory": str(state)},
            "logging": {"level": "info"},
        }

    def _mount_tmpfs(self, directory):
        if os.geteuid() != 0:
            self.disk_note = "skipped: not root, cannot mount a tmpfs"
            return
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs",
                               str(directory)], capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            self.disk_note = f"skipped: mount refused ({done.stderr.strip() or done.returncode})"
            return
        self.tmpfs = directory

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        self.children.kill_all()
        if self.tmpfs is not None:
            if subprocess.run(["umount", str(self.tmpfs)], capture_output=True,
                              timeout=30).returncode != 0:
                subprocess.run(["umount", "-l", str(self.tmpfs)], capture_output=True,
                               timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)

    # readiness

    @defer.inlineCallbacks
    def all_up(self, timeout=UP_TIMEOUT):
        """Fire True once every client is attached and both gateways are on
        the router (status "connected"); False after `timeout`."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if all(c.ready for c in self.clients):
                try:
                    states = []
                    for mud in MUDS:
                        client = next(c for c in self.clients if c.mud == mud)
                        states.append((yield client.call("status", {}))["connected"])
                    if all(states):
                        return True
                except Exception:
                    pass
            yield sleep(0.2)
        return False

    # faults

    @defer.inlineCallbacks
    def router_episode(self, long_outage):
        start = time.time() - self.options.fault_margin
        self.children.kill("router", self.rng.choice((9, 15)))
        yield sleep(self.options.queue_ttl + 3 if long_outage else self.rng.uniform(0.5, 3))
        self.children.start("router")
        self.episodes["router_restarts"] += 1
        yield self._close_window(start, "router_restart")

    @defer.inlineCallbacks
    def gateway_episode(self):
        mud = self.rng.choice(MUDS)
        start = time.time() - self.options.fault_margin
        self.children.kill(mud, 9)
        yield sleep(self.rng.uniform(0.3, 2))
        self.children.start(mud)
        self.episodes["gateway_kills"] += 1
        yield self._close_window(start, f"{mud}_kill")

    @defer.inlineCallbacks
    def _close_window(self, start, kind):
        up = yield self.all_up()
        self.windows.append((start, time.time() + self.options.fault_margin, kind))
        if not up:
            down = [c.name for c in self.clients if not c.ready]
            print(f"warning: {time.strftime('%H:%M:%S')}: not everything up {UP_TIMEOUT:.0f} s"
                  f" after a {kind} (clients not attached: {down or 'none'}; a gateway"
                  " not on the router otherwise)", flush=True)

    @defer.inlineCallbacks
    def disk_episode(self):
        """MudA's state directory full while the router is down, so that
        what MudA would queue cannot be stored (refused, not lost); then the
        router back, then the space freed."""
        start = time.time() - self.options.fault_margin
        filler = self.tmpfs / "soak-filler"
        chunk = b"\0" * (1024 * 1024)
        try:
            with open(filler, "wb") as out:
                for _ in range(TMPFS_BYTES // len(chunk) + 2):
                    try:
                        out.write(chunk)
                        out.flush()
                    except OSError as error:
                        if error.errno != errno.ENOSPC:
                            raise
                        break
            self.children.kill("router", 9)
            yield sleep(self.rng.uniform(1, 3))
            self.children.start("router")
            yield sleep(self.rng.uniform(1, 2))
        finally:
            filler.unlink()
        self.episodes["disk_full"] += 1
        yield self._close_window(start, "disk_full")

    @defer.inlineCallbacks
    def chaos(self, until):
        """Faults one after another until `until`: first a router restart and
        a gateway kill, then any kind at random."""
        order = ["router", "gateway"] + (["disk"] if self.tmpfs is not None else [])
        kinds = ["router", "gateway"] + (["disk"] if self.tmpfs is not None else [])
        for number in itertools.count():
            yield sleep(self.rng.uniform(1.5, 4))
            if time.time() >= until:
                return
            kind = order[number] if number < len(order) else self.rng.choice(kinds)
            if kind == "router":
                left = until - time.time()
                long_outage = left > self.options.queue_ttl + 20 and self.rng.random() < 0.25
                yield self.router_episode(long_outage)
            elif kind == "gateway":
                yield self.gateway_episode()
            else:
                yield self.disk_episode()

    # the whole run

    @defer.inlineCallbacks
    def run(self):
        options = self.options
        self.setup()
        for client in self.clients:
            client.keep_connected()
        if not (yield self.all_up()):
            raise RuntimeError("the router and gateways did not come up; logs in " + str(self.dir))
        started = time.time()
        until = started + options.seconds
        senders = [c.send_loop(until, options.rate) for c in self.clients]
        yield self.chaos(until)
        yield defer.DeferredList(senders)
        # Settling: everything up, queues drained, fates asked.
        for name in ("router", *MUDS):
            if not self.children.alive(name):
                self.children.start(name)
        yield self.all_up()
        settle_until = time.time() + options.settle
        yield sleep(min(2.0, options.settle))
        while time.time() < settle_until:
            yield self.ask_fates()
            if not any(m.reply in ("queued", "pending", "unanswered") and m.fate in (None, "queued")
                       for m in self.ledger.messages.values()):
                break
            yield sleep(1.0)
        yield self.ask_fates(final=True)
        yield sleep(1.0)  # the last deliveries
        for client in self.clients:
            client.stopping = True
            if client.conn is not None:
                client.conn.disconnect()
        return self.report(time.time() - started)

    @defer.inlineCallbacks
    def ask_fates(self, final=False):
        for message in list(self.ledger.messages.values()):
            wanted = (message.reply == "unanswered" and not message.status_asked) or (
                message.reply == "queued" and message.fate in (None, "queued"))
            if final and message.reply == "pending":
                message.reply = "unanswered"
                wanted = True
            if not wanted:
                continue
            client = next((c for c in self.clients if c.mud == message.mud and c.ready), None)
            if client is None:
                continue
            try:
                yield client.ask_status(message)
            except Exception:
                pass

    # counting

    def window_at(self, at):
        """The kind of the fault window holding time `at`, else None."""
        return next((kind for start, end, kind in self.windows if start <= at <= end), None)

    def report(self, elapsed):
        counts = dict.fromkeys((
            "attempted", "accepted", "accepted_sent", "accepted_queued", "refused",
            "unanswered", "delivered", "expired", "lost_in_fault_window", "delivered_twice",
            "expired_but_delivered", "queued_unresolved", "lost"), 0)
        refusals = {}
        fault_losses = {}
        problems = []
        for token, message in sorted(self.ledger.messages.items()):
            counts["attempted"] += 1
            received = {name: n for name, n in self.ledger.deliveries.get(token, {}).items()
                        if not name.startswith(message.mud + "-")}
            delivered = bool(received)
            if any(n > 1 for n in received.values()):
                counts["delivered_twice"] += 1
                problems.append(f"{token} delivered twice: {received}")
            if message.reply == "refused":
                counts["refused"] += 1
                refusals[message.refusal] = refusals.get(message.refusal, 0) + 1
                continue
            if message.reply not in ("sent", "queued"):
                counts["unanswered"] += 1
                continue
            counts["accepted"] += 1
            counts["accepted_" + message.reply] += 1
            if message.reply == "queued" and message.fate == "expired":
                counts["expired"] += 1
                if delivered:
                    counts["expired_but_delivered"] += 1
                    problems.append(f"{token} reported expired but delivered")
                continue
            if message.reply == "queued" and message.fate != "sent":
                counts["queued_unresolved"] += 1
                problems.append(f"{token} queued, then {message.fate or 'no answer'}")
                continue
            if delivered:
                counts["delivered"] += 1
            elif message.sent_at is not None and self.window_at(message.sent_at):
                counts["lost_in_fault_window"] += 1
                kind = self.window_at(message.sent_at)
                fault_losses[kind] = fault_losses.get(kind, 0) + 1
            else:
                counts["lost"] += 1
                problems.append(f"{token} ({message.kind}) sent at {message.sent_at} "
                                f"outside every fault window, never delivered")
        print(f"soak: {elapsed:.0f} s, seed {self.options.seed}, {len(self.clients)} clients "
              "(tcp and ws on MudA and MudB)")
        print("episodes: " + ", ".join(f"{k} {v}" for k, v in self.episodes.items())
              + (f" (disk_full {self.disk_note})" if self.disk_note else ""))
        print("client re-attachments: " + ", ".join(
            f"{c.name} {c.connects - 1} ({c.resumed} resumed)" for c in self.clients))
        for key, value in counts.items():
            print(f"{key}: {value}")
        print("refused by reason: " + json.dumps(refusals, sort_keys=True))
        print("lost in a fault window, by fault: " + json.dumps(fault_losses, sort_keys=True))
        for line in problems[:20]:
            print("PROBLEM: " + line)
        ok = not (counts["lost"] or counts["delivered_twice"] or counts["expired_but_delivered"]
                  or counts["queued_unresolved"])
        print("verdict: " + ("PASS" if ok else "FAIL"))
        return 0 if ok else 1


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="how long to send (default 60)")
    parser.add_argument("--rate", type=float, default=4.0,
                        help="messages per second per client (default 4; 4 clients)")
    parser.add_argument("--settle", type=float, default=20,
                        help="at most this long, everything up, for queues to drain (default 20)")
    parser.add_argument("--queue-ttl", type=float, default=20,
                        help="the gateways' router.queue.ttl (default 20)")
    parser.add_argument("--fault-margin", type=float, default=3,
                        help="seconds a fault window extends either side (default 3)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: random)")
    options = parser.parse_args(argv)
    if options.seed is None:
        options.seed = random.randrange(1_000_000)
    for name in ("seconds", "rate", "settle", "queue_ttl"):
        if getattr(options, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be more than 0")
    if options.fault_margin < 0:
        parser.error("--fault-margin must be 0 or more")
    return options


def main(argv=None):
    options = parse(sys.argv[1:] if argv is None else argv)
    soak = Soak(options)
    atexit.register(soak.cleanup)
    outcome = {}

    def finish(result):
        outcome["code"] = result
        reactor.stop()

    def failed(failure):
        print(f"soak failed: {failure.getErrorMessage()}", flush=True)
        outcome["code"] = 2
        reactor.stop()

    def start():
        soak.run().addCallbacks(finish, failed)

    reactor.callWhenRunning(start)
    try:
        reactor.run()   # Ctrl-C and SIGTERM stop the reactor; cleanup follows
    finally:
        soak.cleanup()
    if "code" not in outcome:
        print("soak: stopped before the end; children killed, temporary directory removed")
    sys.stdout.flush()
    return outcome.get("code", 3)


if __name__ == "__main__":
    sys.exit(main())
