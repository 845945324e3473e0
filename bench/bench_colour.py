"""Colour translation (intermud3.colour) against the JSON serialisation of
the event that carries the text.

A 200-character channel message with eight Pinkfish codes (colours,
a background, bold, resets), as an LP MUD writes them:

* `json event`: `encode_json` of its `channel_message` notification, the
  work the hub does once per colour form;
* `out <form>`: `render(text, form)` for every colour_out form;
* `in <dialect>`: `to_pinkfish(text, dialect)` of the same message written
  in that dialect (rendered from the Pinkfish once, before timing);
* `out plain, no codes`: a 200-character message without any code (the
  fast case of most chat).

Each figure is the median, over `rounds` rounds, of the microseconds one
call took (a round is `calls` calls). The detail gives the median, over
the same rounds, of its share of the JSON figure, each round timing the
JSON serialisation just before the translation, so a machine busy with
other work slows both alike.
"""

if __package__ in (None, ""):
    import common  # run as a script: bench/ is on sys.path
else:
    from bench import common

from intermud3 import colour
from intermud3.events import encode_json

BENCH = "colour"
FULL = {"rounds": 15, "calls": 2000, "max_seconds": 20}
QUICK = {"rounds": 5, "calls": 500, "max_seconds": 5}

MESSAGE = ("%^BOLD%^%^RED%^Warning:%^RESET%^ the %^CYAN%^north gate%^RESET%^ is under attack by "
           "%^B_BLUE%^%^YELLOW%^three trolls%^RESET%^; all guards report to the barracks at once, "
           "and bring your shields. Healers wait by the well.")
PLAIN = "x" * 200


def event_params(text):
    return {"jsonrpc": "2.0", "method": "channel_message", "params": {
        "channel": "imud_gossip", "from_mud": "Frontiers", "from_user": "captain",
        "visname": "Captain Vos", "message": text, "history_id": 123456,
        "timestamp": "2026-12-03T09:30:00.000Z"}}


def timed(action, calls):
    """Seconds ``calls`` calls of ``action`` took."""
    started = common.now()
    for _ in range(calls):
        action()
    return common.now() - started


def json_event():
    return encode_json(event_params(MESSAGE))


def per_call(action, s):
    """(median microseconds of one call, median share of the JSON event's
    cost, rounds) for ``action``."""
    calls, costs, shares = s["calls"], [], []
    deadline = common.now() + s["max_seconds"]
    for _ in range(max(1, s["rounds"])):
        json_seconds = timed(json_event, calls)
        seconds = timed(action, calls)
        costs.append(seconds / calls * 1e6)
        shares.append(seconds / json_seconds)
        if common.now() > deadline:
            break
    return common.median(costs), common.median(shares), len(costs)


def run(quick=False, **sizes):
    s = {**(QUICK if quick else FULL), **sizes}
    # Each action of the table gets its own max_seconds share.
    s["max_seconds"] = s["max_seconds"] / 16
    detail = f"{len(MESSAGE)} chars, median of {{}} rounds of {s['calls']}"
    json_us, _, rounds = per_call(json_event, s)
    rows = [common.row(BENCH, "json event", json_us, "us", detail.format(rounds))]

    def add(name, action):
        value, share, rounds = per_call(action, s)
        rows.append(common.row(BENCH, name, value, "us",
                               f"{share:.0%} of json; " + detail.format(rounds)))

    for form in colour.OUT_FORMS:
        if form != "pinkfish":
            add(f"out {form}", lambda form=form: colour.render(MESSAGE, form))
    for dialect in colour.IN_DIALECTS:
        if dialect == "pinkfish":
            continue
        written = MESSAGE if dialect == "none" else _written(dialect)
        add(f"in {dialect}", lambda dialect=dialect, written=written: colour.to_pinkfish(written, dialect))
    add("out plain, no codes", lambda: colour.render(PLAIN, "plain"))
    return rows


def _written(dialect):
    """The message as a MUD of ``dialect`` writes it."""
    if dialect == "ansi":
        return colour.render(MESSAGE, "ansi")
    return colour.render(MESSAGE, dialect)


def main(argv=None):
    return common.main(run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
