"""The state database's schema: the steps that build it, version by version.

``MIGRATIONS[n]`` takes a file from schema version n to n + 1; the
version a file is at is kept in its ``meta`` table (state/db.py).
"""

import sqlite3

from twisted.logger import Logger

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_log = Logger()

# Migrations: MIGRATIONS[n] takes the schema from version n to n + 1.
# Append new steps; never edit a released one.
MIGRATIONS = [
    [
        # Password and list ids have no declared type: kept exactly as given.
        """CREATE TABLE routers (
               name TEXT PRIMARY KEY,
               password,
               mudlist_id,
               chanlist_id)""",
        "CREATE TABLE mudlist (name TEXT PRIMARY KEY, info TEXT NOT NULL)",
        "CREATE TABLE chanlist (name TEXT PRIMARY KEY, host, type)",
        # AUTOINCREMENT: ids are message ids and paging cursors, never reused.
        """CREATE TABLE outbound (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               kind TEXT NOT NULL,
               packet TEXT NOT NULL,
               created REAL NOT NULL,
               expires REAL NOT NULL,
               owner TEXT,
               client_msg_id TEXT)""",
        # `search` is the case-folded message text, folded in Python because
        # SQLite's lower() only knows ASCII.
        """CREATE TABLE history (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               channel TEXT NOT NULL,
               ts REAL NOT NULL,
               entry TEXT NOT NULL,
               search TEXT NOT NULL DEFAULT '')""",
        "CREATE INDEX history_channel_id ON history (channel, id)",
    ],
    [
        # A router issues its password to a MUD name: the record is keyed by
        # (router, MUD name), so a renamed MUD starts from 0 and the old
        # name's password is kept for its return. Version 1 rows name no
        # MUD; they wait in routers_v1 until the first call that names one
        # (RouterRecords.claim_v1, state/routers.py).
        "ALTER TABLE routers RENAME TO routers_v1",
        """CREATE TABLE routers (
               router TEXT NOT NULL,
               mud TEXT NOT NULL,
               password,
               mudlist_id,
               chanlist_id,
               PRIMARY KEY (router, mud))""",
    ],
    [
        # A queued message's row outlives its sending: marked "sent" or
        # "expired" with the time, it answers message_status (even after a
        # restart) until it is older than router.queue.ttl plus a margin.
        "ALTER TABLE outbound ADD COLUMN status TEXT NOT NULL DEFAULT 'queued'",
        "ALTER TABLE outbound ADD COLUMN done_at REAL",
        # The API key's id: message_status answers a key about its own.
        "ALTER TABLE outbound ADD COLUMN key_id TEXT",
        "CREATE INDEX outbound_client_msg_id ON outbound (client_msg_id)",
        "CREATE INDEX outbound_done ON outbound (status, done_at)",
        lambda conn: _create_search_index(conn),
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)

# The full-text index of history's `search` column: trigrams, so that any
# substring of three characters or more is found through the index.
_SEARCH_INDEX = [
    "CREATE VIRTUAL TABLE history_search USING fts5("
    "search, content='history', content_rowid='id', tokenize='trigram')",
    "CREATE TRIGGER history_search_add AFTER INSERT ON history BEGIN"
    " INSERT INTO history_search (rowid, search) VALUES (new.id, new.search); END",
    "CREATE TRIGGER history_search_remove AFTER DELETE ON history BEGIN"
    " INSERT INTO history_search (history_search, rowid, search)"
    " VALUES ('delete', old.id, old.search); END",
    "INSERT INTO history_search (history_search) VALUES ('rebuild')",
]


def _create_search_index(conn):
    # An SQLite built without FTS5 (or trigrams, before 3.34) keeps the
    # scan: searches stay correct, only slower on a long history.
    try:
        conn.execute("SAVEPOINT search_index")
        for sql in _SEARCH_INDEX:
            conn.execute(sql)
        conn.execute("RELEASE search_index")
    except sqlite3.OperationalError as e:
        conn.execute("ROLLBACK TO search_index")
        conn.execute("RELEASE search_index")
        _log.warn("State database: no full-text index for history searches ({error})", error=e)
