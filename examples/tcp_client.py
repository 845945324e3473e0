#!/usr/bin/env python3
"""A minimal MUD-side client of the gateway's TCP JSON-RPC API (stdlib only).

Connects, authenticates, joins a channel and prints every event. When the
connection drops it reconnects and resumes its session, so the events that
arrived meanwhile are replayed (see docs/USAGE.md, "Sessions").

    I3_API_KEY=your-key python examples/tcp_client.py --channel dead_test4

Options: --host (127.0.0.1), --port (8081), --key (default $I3_API_KEY, else
the demo key), --channel (repeatable), --say TEXT (send TEXT on the first
channel once joined), --once (exit instead of reconnecting).
"""

import argparse
import itertools
import json
import os
import socket
import sys
import time


class RPCError(Exception):
    def __init__(self, error):
        super().__init__(f"{error.get('code')}: {error.get('message')} {error.get('data', '')}")
        self.code = error.get("code")
        self.data = error.get("data")


class GatewayClient:
    """One TCP connection: line in, line out, events printed as they come."""

    def __init__(self, host, port, on_event):
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.settimeout(None)
        self.lines = self.sock.makefile("rb")
        self.ids = itertools.count(1)
        self.on_event = on_event
        self.welcome = self._read()          # the first line is always `welcome`

    def _read(self):
        line = self.lines.readline()
        if not line:
            raise ConnectionError("the gateway closed the connection")
        return json.loads(line)

    def call(self, method, **params):
        """Send one request and wait for its reply; events met on the way
        are handed to on_event. Requests here go one at a time, so the next
        reply without a `method` is ours."""
        request_id = next(self.ids)
        request = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        self.sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        while True:
            message = self._read()
            if "method" in message:          # a notification: an event
                self.on_event(message["method"], message.get("params", {}))
                continue
            if message.get("id") != request_id:
                continue                      # not ours (cannot happen with one call at a time)
            if "error" in message:
                raise RPCError(message["error"])
            return message["result"]

    def events(self):
        """Read events until the connection closes."""
        while True:
            message = self._read()
            if "method" in message:
                self.on_event(message["method"], message.get("params", {}))

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def print_event(name, params):
    if name in ("channel_message", "channel_emote"):
        text = params["message"].replace("$N", params["visname"])
        print(f"[{params['channel']}] {params['visname']}@{params['from_mud']}: {text}")
    elif name in ("tell_received", "emoteto_received"):
        print(f"{params['visname']}@{params['from_mud']} tells {params['to_user']}: {params['message']}")
    else:
        print(f"{name}: {json.dumps(params, ensure_ascii=False)}")
    sys.stdout.flush()


def session(args, session_id):
    """One connection's life. Returns the session id to resume next time."""
    client = GatewayClient(args.host, args.port, print_event)
    try:
        print(f"connected: {client.welcome['params']}")
        auth = {"api_key": args.key}
        if session_id:
            auth["session_id"] = session_id
        try:
            result = client.call("authenticate", **auth)
        except RPCError as error:
            if error.code != -32003 or not session_id:
                raise
            print("session expired; starting a new one")
            result = client.call("authenticate", api_key=args.key)
        print(f"authenticated as {result['mud_name']}: resumed={result['resumed']} "
              f"replayed={result['replayed']} dropped={result['dropped']}")
        if not result["resumed"]:             # a resumed session is still joined
            for channel in args.channel:
                print(client.call("channel_join", channel=channel))
            if args.say and args.channel:
                print(client.call("channel_send", channel=args.channel[0],
                                  message=args.say, from_user="example"))
        session_id = result["session_id"]
        client.events()
    except (ConnectionError, OSError) as error:
        print(f"disconnected: {error}")
    finally:
        client.close()
    return session_id


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", default=os.environ.get("I3_API_KEY", "demo-key-123"))
    parser.add_argument("--channel", action="append", default=[])
    parser.add_argument("--say")
    parser.add_argument("--once", action="store_true")
    args = parser.parse_args()
    session_id = None
    try:
        while True:
            try:
                session_id = session(args, session_id)
            except (ConnectionError, OSError) as error:
                print(f"cannot connect: {error}")
            except RPCError as error:
                print(f"refused: {error}")
                return 1
            if args.once:
                return 0
            time.sleep(5)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
