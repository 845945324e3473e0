"""The gateway's durable state: one SQLite file in the state directory.

It holds the router passwords and list ids, the mudlist and chanlist, the
outbound message queue and the channel history, so that a restart (a kill
included) loses neither the router's trust nor a message we said we queued.

Durability: the database runs in WAL mode with synchronous=NORMAL. Once a
write call returns, its COMMIT is in the WAL file, in the operating
system's hands: a kill -9 or crash of the gateway cannot lose it, and the
file stays consistent whatever happens. A power cut or OS crash may lose
the last commits before the next checkpoint; FULL would close that gap
with one fsync per write, which on a shared disk cost several
milliseconds per channel message (history is written for every one).

This class is synchronous. The running gateway calls it only from the
store's writer thread (storewriter.py), which batches calls into one
transaction (``begin``/``commit``; each call inside is a savepoint), and
keeps what it must read often in memory (store.py). Tests and tools use
it directly. The connection is opened on one thread and used on another
(the writer's), never on two at once.
"""

import json
import os
import sqlite3
import stat
import time
from collections import namedtuple
from contextlib import contextmanager

from twisted.logger import Logger

_log = Logger()

FILENAME = "intermud3.sqlite3"

# How long to wait for a lock held by another process before giving up:
# at start (on the main thread, so short), and once the writer thread owns
# the connection (nothing waits on it but the writes: a backup holding the
# file for a while delays them instead of failing them).
LOCK_TIMEOUT = 2.0
WRITER_LOCK_TIMEOUT = 60.0

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
        # (StateStore._claim_v1_routers).
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
# Shorter queries than a trigram scan the channel's rows instead.
_MIN_INDEXED_QUERY = 3


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

# The entry fields a history `query` searches.
SEARCH_FIELDS = ("message", "message_others", "message_target", "from_user", "visname")
# Joins the searched fields so that a query cannot match across two of them
# (the LPC encoder strips control characters, so messages never hold it).
_SEARCH_SEPARATOR = "\x1f"

# What becomes of a queued message.
OUTCOMES = ("sent", "expired")
OUTCOME_COLUMNS = ("id", "kind", "status", "created", "done_at", "client_msg_id")

OutboundRow = namedtuple(
    "OutboundRow", "id kind packet created expires owner client_msg_id")


class StateError(Exception):
    """The state database cannot be used; the message names the file."""


# -- values <-> JSON ---------------------------------------------------------
#
# LPC values are ints, floats, strings, arrays and mappings, and a decoded
# mapping may have int or array (tuple) keys, which JSON objects cannot
# hold. Such a mapping is stored as {_MAP_TAG: [[key, value], ...]} so that
# it reads back equal.

_MAP_TAG = "\x00lpc-mapping"


def _to_json(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and _MAP_TAG not in value:
            return {k: _to_json(v) for k, v in value.items()}
        return {_MAP_TAG: [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    raise ValueError("cannot store a value of type %s" % type(value).__name__)


def _key(value):
    # A key read back as a JSON array was a tuple key.
    if isinstance(value, list):
        return tuple(_key(v) for v in value)
    return value


def _from_json(value):
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and _MAP_TAG in value:
            return {_key(k): _from_json(v) for k, v in value[_MAP_TAG]}
        return {k: _from_json(v) for k, v in value.items()}
    return value


def dumps(value) -> str:
    """Serialise an LPC value for storage; ValueError for anything else."""
    return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))


def loads(text: str):
    """Read back what `dumps` wrote."""
    return _from_json(json.loads(text))


def _search_text(entry) -> str:
    parts = [entry.get(f) for f in SEARCH_FIELDS]
    return _SEARCH_SEPARATOR.join(p.casefold() for p in parts if isinstance(p, str))


def _size(path):
    """The file's size, or None when there is none."""
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _sql_int(value, what):
    # SQLite integers are 64-bit; say so instead of an OverflowError later.
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        # The value itself stays out of the message: it may be a password.
        raise ValueError("%s out of the 64-bit range" % what)
    return value


# -- the store -----------------------------------------------------------------

class StateStore:
    """The SQLite store (docs/ARCHITECTURE.md, "intermud3/state.py")."""

    def __init__(self, directory, *, clock=None):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, FILENAME)
        self._now = clock.seconds if clock is not None else time.time
        self._conn = None
        self._history_counts = {}     # channel -> entries it holds (see _trim_history)
        self._prepare_files()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=LOCK_TIMEOUT, isolation_level=None,
                check_same_thread=False)
            self._configure()
            self._migrate()
        except sqlite3.Error as e:
            self._abandon()
            raise StateError("%s: cannot open the state database: %s" % (self.path, e)) from e
        except StateError:
            self._abandon()
            raise
        self._tighten_sidecars()
        _log.info("State database {path} open (schema version {version})",
                  path=self.path, version=SCHEMA_VERSION)

    # -- opening ---------------------------------------------------------

    def _prepare_files(self):
        try:
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory, mode=0o700, exist_ok=True)
                os.chmod(self.directory, 0o700)
            elif stat.S_IMODE(os.stat(self.directory).st_mode) & 0o077:
                _log.warn("State directory {directory} is readable by other users",
                          directory=self.directory)
            # An empty file (a truncation, a restore gone wrong) loses what
            # the gateway owed the network: say so loudly, once, at start.
            if _size(self.path) == 0 and not _size(self.path + "-wal"):
                _log.error(
                    "State database {path} is empty: its router passwords, lists and queued"
                    " messages are gone and it starts afresh. A router that knew this MUD may"
                    " refuse its name until the router's admin resets the password.",
                    path=self.path)
            # Create the file 0600 ourselves so SQLite never makes it with
            # the umask's mode; SQLite gives its -wal/-shm files the same mode.
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.path, flags, 0o600)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
        except OSError as e:
            raise StateError("%s: cannot create or open the state database: %s"
                             % (self.path, e.strerror or e)) from e

    def _configure(self):
        mode = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            # Some file systems cannot share memory; the rollback journal is
            # just as safe against a crash of the process, only slower.
            _log.warn("State database {path}: WAL unavailable, journal mode {mode}",
                      path=self.path, mode=mode)
        self._conn.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self):
        with self._transaction():
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = row[0] if row is not None else 0
            if not isinstance(version, int) or version < 0:
                raise StateError("%s: invalid schema version %r" % (self.path, version))
            if version > SCHEMA_VERSION:
                raise StateError(
                    "%s: schema version %d is newer than this gateway supports (%d); "
                    "run a newer gateway or move the file away"
                    % (self.path, version, SCHEMA_VERSION))
            for steps in MIGRATIONS[version:]:
                for step in steps:
                    if callable(step):
                        step(self._conn)
                    else:
                        self._conn.execute(step)
            if version != SCHEMA_VERSION:
                self._conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,))
                _log.info("State database {path} migrated from version {old} to {new}",
                          path=self.path, old=version, new=SCHEMA_VERSION)
            self._v1_routers = self._has_table("routers_v1")
            self._search_index = self._has_table("history_search")

    def _has_table(self, name):
        return self._conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
        ).fetchone() is not None

    def _tighten_sidecars(self):
        for suffix in ("-wal", "-shm", "-journal"):
            try:
                os.chmod(self.path + suffix, 0o600)
            except FileNotFoundError:
                pass
            except OSError as e:
                _log.warn("Cannot restrict {file}: {error}", file=self.path + suffix, error=e)

    def _abandon(self):
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None

    # -- plumbing --------------------------------------------------------

    def wait_for_locks(self, seconds):
        """How long a call waits for another process's lock before failing."""
        with self._errors("setting the lock timeout"):
            self._connection().execute("PRAGMA busy_timeout = %d" % int(seconds * 1000))

    def begin(self):
        """Open a transaction that the calls up to ``commit`` share (the
        writer thread's batch); each call's own work is a savepoint in it."""
        with self._errors("starting a transaction"):
            self._connection().execute("BEGIN IMMEDIATE")

    def commit(self):
        conn = self._connection()
        try:
            with self._errors("committing"):
                conn.execute("COMMIT")
        except StateError:
            if conn.in_transaction:
                conn.rollback()
            raise

    @contextmanager
    def _transaction(self):
        conn = self._connection()
        if conn.in_transaction:
            # Inside a batch: a failure undoes this call's work alone.
            conn.execute("SAVEPOINT call")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK TO call")
                conn.execute("RELEASE call")
                raise
            conn.execute("RELEASE call")
            return
        # IMMEDIATE takes the write lock at once, so a transaction never
        # fails half way for want of it.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise

    def _connection(self):
        if self._conn is None:
            raise StateError("%s: the state database is closed" % self.path)
        return self._conn

    @contextmanager
    def _errors(self, doing):
        # Any SQLite failure after opening (disk full, corruption found
        # late, I/O error) becomes a StateError naming the file.
        try:
            yield
        except sqlite3.Error as e:
            raise StateError("%s: %s failed: %s" % (self.path, doing, e)) from e

    def close(self):
        if self._conn is not None:
            with self._errors("close"):
                self._conn.close()
            self._conn = None

    def __repr__(self):
        return "<StateStore %s>" % self.path

    # -- routers ---------------------------------------------------------
    #
    # One record per (router name, MUD name): the password the router gave
    # that MUD name and the last list ids received under it.

    def router_record(self, router, mud):
        """{"password", "mudlist_id", "chanlist_id"}, each 0 when unknown."""
        self._claim_v1_routers(mud)
        with self._errors("reading the router record"):
            row = self._connection().execute(
                "SELECT password, mudlist_id, chanlist_id FROM routers"
                " WHERE router = ? AND mud = ?", (router, mud)).fetchone()
        row = row or (0, 0, 0)
        return {"password": row[0] if row[0] is not None else 0,
                "mudlist_id": row[1] if row[1] is not None else 0,
                "chanlist_id": row[2] if row[2] is not None else 0}

    def router_records(self, mud):
        """{(router, mud name): record} for every stored record, after
        giving version 1 records to ``mud`` (the MUD name in use)."""
        self._claim_v1_routers(mud)
        with self._errors("reading the router records"):
            rows = self._connection().execute(
                "SELECT router, mud, password, mudlist_id, chanlist_id FROM routers").fetchall()
        return {(router, name): {"password": password if password is not None else 0,
                                 "mudlist_id": mudlist_id if mudlist_id is not None else 0,
                                 "chanlist_id": chanlist_id if chanlist_id is not None else 0}
                for router, name, password, mudlist_id, chanlist_id in rows}

    def save_password(self, router, mud, password):
        self._save_router(router, mud, "saving the router password",
                          password=_sql_int(password, "router password"))

    def save_list_ids(self, router, mud, mudlist_id=None, chanlist_id=None):
        ids = {"mudlist_id": _sql_int(mudlist_id, "mudlist id"),
               "chanlist_id": _sql_int(chanlist_id, "chanlist id")}
        self._save_router(router, mud, "saving the list ids",
                          **{column: value for column, value in ids.items() if value is not None})

    def _save_router(self, router, mud, doing, **columns):
        # Column names come from the two callers above, never from input.
        self._claim_v1_routers(mud)
        with self._errors(doing), self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO routers (router, mud, password, mudlist_id,"
                         " chanlist_id) VALUES (?, ?, 0, 0, 0)", (router, mud))
            for column, value in columns.items():
                conn.execute("UPDATE routers SET %s = ? WHERE router = ? AND mud = ?" % column,
                             (value, router, mud))

    def _claim_v1_routers(self, mud):
        """Give the records of a version 1 file to ``mud``, once.

        Version 1 kept one record per router for whatever MUD name was in
        use, and the file does not say which. It is almost always the name
        the gateway starts with after the upgrade, and dropping the password
        could cost the MUD its name on the network (a router refuses a
        wrong password, and may refuse 0 for a known name from a new
        address), so the records are carried over under the first MUD name
        asked for. Had the name changed in the same upgrade, the old
        password goes out once under the new name: what version 1 did.
        """
        if not self._v1_routers:
            return
        with self._errors("carrying over the version 1 router records"), \
                self._transaction() as conn:
            count = conn.execute(
                "INSERT OR IGNORE INTO routers (router, mud, password, mudlist_id, chanlist_id)"
                " SELECT name, ?, password, mudlist_id, chanlist_id FROM routers_v1",
                (mud,)).rowcount
            conn.execute("DROP TABLE routers_v1")
        self._v1_routers = False
        if count:
            _log.info("State database {path}: {count} router records from schema version 1"
                      " now belong to MUD {mud}", path=self.path, count=count, mud=mud)

    # -- mudlist and chanlist ---------------------------------------------

    def load_mudlist(self):
        """{name: info list} as last stored."""
        with self._errors("loading the mudlist"):
            rows = self._connection().execute("SELECT name, info FROM mudlist").fetchall()
        muds = {}
        for name, info in rows:
            try:
                muds[name] = loads(info)
            except ValueError:
                _log.warn("State database: unreadable mudlist entry {name} skipped", name=name)
        return muds

    def apply_mudlist(self, delta, *, router=None, mud=None, list_id=None):
        """Merge {name: info or None}; None deletes. With ``list_id``, the
        mudlist id of (``router``, ``mud``) is saved in the same
        transaction: never an id without its delta. One transaction."""
        rows = [(name, None if info is None else dumps(info)) for name, info in delta.items()]
        with self._errors("saving the mudlist"), self._transaction() as conn:
            if list_id is not None:
                self.save_list_ids(router, mud, mudlist_id=list_id)
            for name, info in rows:
                if info is None:
                    conn.execute("DELETE FROM mudlist WHERE name = ?", (name,))
                else:
                    conn.execute("INSERT OR REPLACE INTO mudlist (name, info) VALUES (?, ?)",
                                 (name, info))

    def load_chanlist(self):
        """{name: (host_mud, type)} as last stored."""
        with self._errors("loading the chanlist"):
            rows = self._connection().execute(
                "SELECT name, host, type FROM chanlist").fetchall()
        return {name: (host, ctype) for name, host, ctype in rows}

    def apply_chanlist(self, delta, *, router=None, mud=None, list_id=None):
        """Merge {name: (host_mud, type) or None}; None deletes. With
        ``list_id``, as apply_mudlist. One transaction."""
        with self._errors("saving the chanlist"), self._transaction() as conn:
            if list_id is not None:
                self.save_list_ids(router, mud, chanlist_id=list_id)
            for name, value in delta.items():
                if value is None:
                    conn.execute("DELETE FROM chanlist WHERE name = ?", (name,))
                else:
                    host, ctype = value
                    conn.execute("INSERT OR REPLACE INTO chanlist (name, host, type)"
                                 " VALUES (?, ?, ?)", (name, host, ctype))

    # -- outbound queue ----------------------------------------------------
    #
    # A row is "queued" until it is written to the router ("sent") or its
    # TTL passes ("expired"); then it stays, with done_at, for
    # message_status, until purge_outcomes removes it.

    def enqueue(self, kind, packet, *, created, expires, owner=None, client_msg_id=None,
                id=None, key_id=None):
        """Store a packet to send later; returns its id (ids only grow).
        ``id``, when given, must be above every id used before (the
        gateway numbers its messages in memory: ``next_ids``)."""
        text = dumps(packet)
        with self._errors("queueing a message"), self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO outbound (id, kind, packet, created, expires, owner, client_msg_id,"
                " key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (id, kind, text, float(created), float(expires), owner, client_msg_id, key_id))
            return cursor.lastrowid

    def pending(self, limit=None):
        """Queued packets, oldest first (at most `limit` when given)."""
        sql = ("SELECT id, kind, packet, created, expires, owner, client_msg_id"
               " FROM outbound WHERE status = 'queued' ORDER BY id")
        args = ()
        if limit is not None:
            sql += " LIMIT ?"
            args = (max(0, int(limit)),)
        with self._errors("reading the outbound queue"):
            rows = self._connection().execute(sql, args).fetchall()
        out = []
        for row in rows:
            try:
                packet = loads(row[2])
            except ValueError:
                _log.warn("State database: unreadable queued message {id} skipped", id=row[0])
                continue
            out.append(OutboundRow(row[0], row[1], packet, *row[3:]))
        return out

    def finish(self, ids, status, at):
        """Mark queued rows ``status`` ("sent" or "expired") at time ``at``."""
        if status not in OUTCOMES:
            raise ValueError("unknown outcome %r" % (status,))
        with self._errors("recording a message outcome"), self._transaction() as conn:
            conn.executemany(
                "UPDATE outbound SET status = ?, done_at = ? WHERE id = ? AND status = 'queued'",
                [(status, float(at), row_id) for row_id in ids])

    def unfinish(self, ids):
        """Put rows marked sent back in the queue (marked, then not written)."""
        with self._errors("re-queueing messages"), self._transaction() as conn:
            conn.executemany(
                "UPDATE outbound SET status = 'queued', done_at = NULL WHERE id = ?",
                [(row_id,) for row_id in ids])

    def outcome(self, id=None, client_msg_id=None, key_id=None):
        """The newest row with that id or client_msg_id (and that key, or
        none stored), as a dict of OUTCOME_COLUMNS, or None."""
        if (id is None) == (client_msg_id is None):
            raise ValueError("give exactly one of id and client_msg_id")
        column, value = ("id", id) if id is not None else ("client_msg_id", client_msg_id)
        with self._errors("reading a message outcome"):
            row = self._connection().execute(
                "SELECT %s FROM outbound WHERE %s = ? AND (key_id IS NULL OR key_id IS ?)"
                " ORDER BY id DESC LIMIT 1" % (", ".join(OUTCOME_COLUMNS), column),
                (value, key_id)).fetchone()
        return None if row is None else dict(zip(OUTCOME_COLUMNS, row))

    def purge_outcomes(self, before):
        """Forget sent and expired rows finished before ``before``; how many."""
        with self._errors("purging message outcomes"), self._transaction() as conn:
            return conn.execute(
                "DELETE FROM outbound WHERE status != 'queued' AND done_at < ?",
                (float(before),)).rowcount

    def delete(self, id):
        with self._errors("removing a queued message"), self._transaction() as conn:
            conn.execute("DELETE FROM outbound WHERE id = ?", (id,))

    def queue_depth(self):
        with self._errors("counting the outbound queue"):
            return self._connection().execute(
                "SELECT count(*) FROM outbound WHERE status = 'queued'").fetchone()[0]

    def next_ids(self):
        """{"outbound": id, "history": id}: the first unused id of each
        (AUTOINCREMENT never reuses one, so neither may the gateway)."""
        with self._errors("reading the id counters"):
            rows = dict(self._connection().execute(
                "SELECT name, seq FROM sqlite_sequence"
                " WHERE name IN ('outbound', 'history')").fetchall())
        return {name: int(rows.get(name) or 0) + 1 for name in ("outbound", "history")}

    # -- channel history ---------------------------------------------------

    def add_history(self, channel, entry, keep, *, id=None, at=None):
        """Record `entry` on `channel` (at time `at`, now by default), keep
        that channel's newest `keep` entries, and return the new entry's
        id (`id` when given: above every id used before, see next_ids)."""
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError("history keep must be a positive integer, not %r" % (keep,))
        if not isinstance(entry, dict):
            raise ValueError("a history entry is a dict")
        text = dumps(entry)
        search = _search_text(entry)
        with self._errors("recording channel history"), self._transaction() as conn:
            new_id = conn.execute(
                "INSERT INTO history (id, channel, ts, entry, search) VALUES (?, ?, ?, ?, ?)",
                (id, channel, float(self._now() if at is None else at), text, search)).lastrowid
            self._trim_history(conn, channel, keep)
            return new_id

    def _trim_history(self, conn, channel, keep):
        # Finding the oldest entry to keep walks `keep` index entries, so
        # with a large `keep` it is done once per keep // 100 inserts: a
        # channel holds at most 1 % more than `keep` between two trims.
        count = self._history_counts.get(channel)
        if count is None:
            count = conn.execute(
                "SELECT count(*) FROM history WHERE channel = ?", (channel,)).fetchone()[0]
        else:
            count += 1
        self._history_counts[channel] = count
        if count <= keep + keep // 100:
            return
        row = conn.execute(
            "SELECT id FROM history WHERE channel = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            (channel, keep - 1)).fetchone()
        if row is not None:
            conn.execute("DELETE FROM history WHERE channel = ? AND id < ?", (channel, row[0]))
        self._history_counts[channel] = keep

    def history(self, channel, limit=50, before=None, after=None, query=None):
        """Entries of `channel`, oldest first, each with "id" and "channel".

        With `before`: the newest `limit` entries whose id is below it; with
        `after` (and no `before`): the oldest `limit` entries above it;
        with neither: the newest `limit`. `query` keeps entries whose
        message text or speaker holds it, case-insensitively.
        """
        if limit is None or limit <= 0:
            return []
        where = ["channel = ?"]
        args = [channel]
        if before is not None:
            where.append("id < ?")
            args.append(int(before))
        if after is not None:
            where.append("id > ?")
            args.append(int(after))
        if query:
            folded = str(query).casefold()
            if self._search_index and len(folded) >= _MIN_INDEXED_QUERY:
                # A phrase of trigrams: the index finds every row holding
                # the text; instr then drops the rare false match (trigrams
                # in another order).
                where.append("id IN (SELECT rowid FROM history_search"
                             " WHERE history_search MATCH ?)")
                args.append('"%s"' % folded.replace('"', '""'))
            where.append("instr(search, ?) > 0")
            args.append(folded)
        newest = before is not None or after is None
        sql = ("SELECT id, entry FROM history WHERE %s ORDER BY id %s LIMIT ?"
               % (" AND ".join(where), "DESC" if newest else "ASC"))
        args.append(int(limit))
        with self._errors("reading channel history"):
            rows = self._connection().execute(sql, args).fetchall()
        if newest:
            rows.reverse()
        out = []
        for history_id, text in rows:
            try:
                entry = loads(text)
            except ValueError:
                _log.warn("State database: unreadable history entry {id} skipped", id=history_id)
                continue
            if not isinstance(entry, dict):
                continue
            entry["id"] = history_id
            entry["channel"] = channel
            out.append(entry)
        return out
