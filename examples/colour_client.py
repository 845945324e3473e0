#!/usr/bin/env python3
"""Colour as a service, from a MUD's side (stdlib only; docs/COLOUR.md).

Authenticates asking for text in one colour form (`--out`, default `ansi`
for a terminal) and saying which codes this MUD writes (`--in`, default
`smaug`), then sends a coloured line on a channel in those codes and prints
every event as it arrives: colour shows in the terminal, and the MUD never
parses Pinkfish.

    I3_API_KEY=your-key python examples/colour_client.py --channel dead_test4 --say '&RHello&D from &Gus&D'
    python examples/colour_client.py --out html --in rom --say '{YGold{x'   # print the HTML spans

Options: --host (127.0.0.1), --port (8081), --key (default $I3_API_KEY,
else the demo key), --channel (dead_test4), --out, --in, --say TEXT.
"""

import argparse
import os
import sys

from tcp_client import GatewayClient, RPCError, print_event


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", default=os.environ.get("I3_API_KEY", "demo-key-123"))
    parser.add_argument("--channel", default="dead_test4")
    parser.add_argument("--out", default="ansi", help="colour_out: ansi, xterm256, html, plain, smaug, ...")
    parser.add_argument("--in", dest="colour_in", default="smaug", help="colour_in: smaug, rom, circle, ...")
    parser.add_argument("--say")
    args = parser.parse_args()

    client = GatewayClient(args.host, args.port, print_event)
    try:
        # Bad options are refused (-32602, data.allowed lists the choices)
        # before the session is made.
        result = client.call("authenticate", api_key=args.key,
                             colour_out=args.out, colour_in=args.colour_in)
        print(f"authenticated as {result['mud_name']}")
        print(client.call("set_options"))        # no parameter: read the options back
        print(client.call("channel_join", channel=args.channel))
        if args.say:
            # Written in this MUD's codes; it goes onto I3 as Pinkfish.
            print(client.call("channel_send", channel=args.channel, message=args.say,
                              from_user="example"))
        client.events()
    except RPCError as error:
        print(f"refused: {error}")
        return 1
    except (ConnectionError, OSError) as error:
        print(f"disconnected: {error}")
    except KeyboardInterrupt:
        pass
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
