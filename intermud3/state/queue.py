"""The outbound message queue of the state database.

A row is "queued" until it is written to the router ("sent") or its TTL
passes ("expired"); then it stays, with done_at, for message_status, until
purge_outcomes removes it.
"""

from collections import namedtuple

from twisted.logger import Logger

from intermud3.state.values import dumps, loads

__all__ = ["OutboundTable", "OutboundRow", "OUTCOMES", "OUTCOME_COLUMNS"]

_log = Logger()

# What becomes of a queued message.
OUTCOMES = ("sent", "expired")
OUTCOME_COLUMNS = ("id", "kind", "status", "created", "done_at", "client_msg_id")

OutboundRow = namedtuple(
    "OutboundRow", "id kind packet created expires owner client_msg_id")


class OutboundTable:
    def __init__(self, db):
        self._db = db

    def enqueue(self, kind, packet, *, created, expires, owner=None, client_msg_id=None,
                id=None, key_id=None):
        """Store a packet to send later; returns its id (ids only grow).
        ``id``, when given, must be above every id used before (the
        gateway numbers its messages in memory: ``next_ids``)."""
        text = dumps(packet)
        with self._db.errors("queueing a message"), self._db.transaction() as conn:
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
        with self._db.errors("reading the outbound queue"):
            rows = self._db.connection().execute(sql, args).fetchall()
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
        with self._db.errors("recording a message outcome"), self._db.transaction() as conn:
            conn.executemany(
                "UPDATE outbound SET status = ?, done_at = ? WHERE id = ? AND status = 'queued'",
                [(status, float(at), row_id) for row_id in ids])

    def unfinish(self, ids):
        """Put rows marked sent back in the queue (marked, then not written)."""
        with self._db.errors("re-queueing messages"), self._db.transaction() as conn:
            conn.executemany(
                "UPDATE outbound SET status = 'queued', done_at = NULL WHERE id = ?",
                [(row_id,) for row_id in ids])

    def outcome(self, id=None, client_msg_id=None, key_id=None):
        """The newest row with that id or client_msg_id (and that key, or
        none stored), as a dict of OUTCOME_COLUMNS, or None."""
        if (id is None) == (client_msg_id is None):
            raise ValueError("give exactly one of id and client_msg_id")
        column, value = ("id", id) if id is not None else ("client_msg_id", client_msg_id)
        with self._db.errors("reading a message outcome"):
            row = self._db.connection().execute(
                "SELECT %s FROM outbound WHERE %s = ? AND (key_id IS NULL OR key_id IS ?)"
                " ORDER BY id DESC LIMIT 1" % (", ".join(OUTCOME_COLUMNS), column),
                (value, key_id)).fetchone()
        return None if row is None else dict(zip(OUTCOME_COLUMNS, row))

    def purge_outcomes(self, before):
        """Forget sent and expired rows finished before ``before``; how many."""
        with self._db.errors("purging message outcomes"), self._db.transaction() as conn:
            return conn.execute(
                "DELETE FROM outbound WHERE status != 'queued' AND done_at < ?",
                (float(before),)).rowcount

    def delete(self, id):
        with self._db.errors("removing a queued message"), self._db.transaction() as conn:
            conn.execute("DELETE FROM outbound WHERE id = ?", (id,))

    def queue_depth(self):
        with self._db.errors("counting the outbound queue"):
            return self._db.connection().execute(
                "SELECT count(*) FROM outbound WHERE status = 'queued'").fetchone()[0]
