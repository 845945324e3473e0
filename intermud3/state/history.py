"""Channel history in the state database, searchable through a trigram
full-text index (FTS5) when SQLite has one."""

from twisted.logger import Logger

from intermud3.state.values import dumps, loads

__all__ = ["HistoryTable", "SEARCH_FIELDS"]

_log = Logger()

# The entry fields a history `query` searches.
SEARCH_FIELDS = ("message", "message_others", "message_target", "from_user", "visname")
# Joins the searched fields so that a query cannot match across two of them
# (the LPC encoder strips control characters, so messages never hold it).
_SEARCH_SEPARATOR = "\x1f"
# Shorter queries than a trigram scan the channel's rows instead.
_MIN_INDEXED_QUERY = 3


def _search_text(entry) -> str:
    parts = [entry.get(f) for f in SEARCH_FIELDS]
    return _SEARCH_SEPARATOR.join(p.casefold() for p in parts if isinstance(p, str))


class HistoryTable:
    def __init__(self, db, now):
        self._db = db
        self._now = now
        self._history_counts = {}     # channel -> entries it holds (see _trim_history)
        # False without the index (an SQLite without FTS5): searches scan.
        self.search_index = db.has_table("history_search")

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
        with self._db.errors("recording channel history"), self._db.transaction() as conn:
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
            if self.search_index and len(folded) >= _MIN_INDEXED_QUERY:
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
        with self._db.errors("reading channel history"):
            rows = self._db.connection().execute(sql, args).fetchall()
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
