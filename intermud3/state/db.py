"""The state database file: opening it safely, its schema version, and
transactions.

Durability: the database runs in WAL mode with synchronous=NORMAL. Once a
write call returns, its COMMIT is in the WAL file, in the operating
system's hands: a kill -9 or crash of the gateway cannot lose it, and the
file stays consistent whatever happens. A power cut or OS crash may lose
the last commits before the next checkpoint; FULL would close that gap
with one fsync per write, which on a shared disk cost several
milliseconds per channel message (history is written for every one).

The connection is opened on one thread and used on another (the store
writer's), never on two at once.
"""

import os
import sqlite3
import stat
from contextlib import contextmanager

from twisted.logger import Logger

from intermud3.state.schema import MIGRATIONS, SCHEMA_VERSION

__all__ = ["Database", "StateError", "FILENAME", "LOCK_TIMEOUT", "WRITER_LOCK_TIMEOUT"]

_log = Logger()

FILENAME = "intermud3.sqlite3"

# How long to wait for a lock held by another process before giving up:
# at start (on the main thread, so short), and once the writer thread owns
# the connection (nothing waits on it but the writes: a backup holding the
# file for a while delays them instead of failing them).
LOCK_TIMEOUT = 2.0
WRITER_LOCK_TIMEOUT = 60.0


class StateError(Exception):
    """The state database cannot be used; the message names the file."""


def _size(path):
    """The file's size, or None when there is none."""
    try:
        return os.path.getsize(path)
    except OSError:
        return None


class Database:
    """One SQLite file in ``directory``, migrated to SCHEMA_VERSION.

    ``transaction()`` and ``errors(doing)`` are what the tables build
    their calls from; ``begin``/``commit`` group calls into one
    transaction (the writer thread's batch).
    """

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        self.path = os.path.join(self.directory, FILENAME)
        self.conn = None
        self._prepare_files()
        try:
            self.conn = sqlite3.connect(
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
        mode = self.conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode.lower() != "wal":
            # Some file systems cannot share memory; the rollback journal is
            # just as safe against a crash of the process, only slower.
            _log.warn("State database {path}: WAL unavailable, journal mode {mode}",
                      path=self.path, mode=mode)
        self.conn.execute("PRAGMA synchronous=NORMAL")

    def _migrate(self):
        with self.transaction():
            self.conn.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value)")
            row = self.conn.execute(
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
                        step(self.conn)
                    else:
                        self.conn.execute(step)
            if version != SCHEMA_VERSION:
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (SCHEMA_VERSION,))
                _log.info("State database {path} migrated from version {old} to {new}",
                          path=self.path, old=version, new=SCHEMA_VERSION)

    def has_table(self, name):
        return self.conn.execute(
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
        if self.conn is not None:
            try:
                self.conn.close()
            except sqlite3.Error:
                pass
            self.conn = None

    # -- plumbing --------------------------------------------------------

    def wait_for_locks(self, seconds):
        """How long a call waits for another process's lock before failing."""
        with self.errors("setting the lock timeout"):
            self.connection().execute("PRAGMA busy_timeout = %d" % int(seconds * 1000))

    def begin(self):
        """Open a transaction that the calls up to ``commit`` share (the
        writer thread's batch); each call's own work is a savepoint in it."""
        with self.errors("starting a transaction"):
            self.connection().execute("BEGIN IMMEDIATE")

    def commit(self):
        conn = self.connection()
        try:
            with self.errors("committing"):
                conn.execute("COMMIT")
        except StateError:
            if conn.in_transaction:
                conn.rollback()
            raise

    @contextmanager
    def transaction(self):
        """The connection, inside a transaction of its own, or a savepoint
        of the batch already open."""
        conn = self.connection()
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

    def connection(self):
        """The open connection; StateError once closed."""
        if self.conn is None:
            raise StateError("%s: the state database is closed" % self.path)
        return self.conn

    @contextmanager
    def errors(self, doing):
        # Any SQLite failure after opening (disk full, corruption found
        # late, I/O error) becomes a StateError naming the file.
        try:
            yield
        except sqlite3.Error as e:
            raise StateError("%s: %s failed: %s" % (self.path, doing, e)) from e

    def next_ids(self):
        """{"outbound": id, "history": id}: the first unused id of each
        (AUTOINCREMENT never reuses one, so neither may the gateway)."""
        with self.errors("reading the id counters"):
            rows = dict(self.connection().execute(
                "SELECT name, seq FROM sqlite_sequence"
                " WHERE name IN ('outbound', 'history')").fetchall())
        return {name: int(rows.get(name) or 0) + 1 for name in ("outbound", "history")}

    def close(self):
        if self.conn is not None:
            with self.errors("close"):
                self.conn.close()
            self.conn = None

    def __repr__(self):
        return "<Database %s>" % self.path
