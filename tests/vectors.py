"""Real MudMode frames captured from a Dead Souls router, for tests.

The file lives outside the repository, in ``../shared/i3-vectors/`` from the
repository root; ``I3_VECTORS_DIR`` points elsewhere. Tests that need it are
skipped, with the path in the reason, only when the file is absent.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

VECTORS_FILE = "dead-souls-router.jsonl"


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


def vectors_path():
    directory = os.environ.get("I3_VECTORS_DIR")
    if directory:
        return Path(directory) / VECTORS_FILE
    return Path(__file__).resolve().parents[2] / "shared" / "i3-vectors" / VECTORS_FILE


def load_vectors():
    """Every vector in the file, or skip the calling test if it is absent."""
    path = vectors_path()
    if not path.is_file():
        pytest.skip(f"I3 test vectors not found at {path} (set I3_VECTORS_DIR)")
    vectors = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            vectors.append(Vector(
                line=number, conn=record["conn"], dir=record["dir"],
                note=record.get("note", ""), frame=bytes.fromhex(record["hex"]),
                decoded=record["decoded"]))
    return vectors
