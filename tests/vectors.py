"""Real MudMode frames captured from a Dead Souls router, for tests.

The frames are part of the repository: ``tests/data/dead-souls-router.jsonl``
(``tests/data/README.md`` says where they come from and what each field
holds). A missing file is a broken checkout, so it fails loudly rather than
skipping the tests that replay it.
"""

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

VECTORS_PATH = Path(__file__).resolve().parent / "data" / "dead-souls-router.jsonl"


@dataclass(frozen=True)
class Vector:
    line: int       # 1-based line in the file, for failure messages
    conn: str       # which test client's connection
    dir: str        # "to-router" or "from-router"
    note: str
    frame: bytes    # the whole frame: length prefix, LPC text, NUL
    decoded: object  # one independent reading (JSON: mappings as dicts)

    @property
    def text(self):
        """The LPC text: the frame without its length prefix and trailing NUL."""
        body = self.frame[4:]
        return body[:-1] if body.endswith(b"\x00") else body


@lru_cache(maxsize=1)
def load_records():
    """The file's JSON objects, one per non-blank line, with line numbers."""
    records = []
    with VECTORS_PATH.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                records.append((number, json.loads(line)))
    return tuple(records)


def load_vectors():
    """Every vector in the file, in file order."""
    return [Vector(line=number, conn=record["conn"], dir=record["dir"],
                   note=record.get("note", ""), frame=bytes.fromhex(record["hex"]),
                   decoded=record["decoded"])
            for number, record in load_records()]
