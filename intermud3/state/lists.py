"""The mudlist and chanlist as last received, in the state database."""

from twisted.logger import Logger

from intermud3.state.values import dumps, loads

__all__ = ["ListTables"]

_log = Logger()


class ListTables:
    """The mudlist and chanlist tables; a delta and the list id it brings
    (saved in the router record, ``routers``) are stored together."""

    def __init__(self, db, routers):
        self._db = db
        self._routers = routers

    def load_mudlist(self):
        """{name: info list} as last stored."""
        with self._db.errors("loading the mudlist"):
            rows = self._db.connection().execute("SELECT name, info FROM mudlist").fetchall()
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
        with self._db.errors("saving the mudlist"), self._db.transaction() as conn:
            if list_id is not None:
                self._routers.save_list_ids(router, mud, mudlist_id=list_id)
            for name, info in rows:
                if info is None:
                    conn.execute("DELETE FROM mudlist WHERE name = ?", (name,))
                else:
                    conn.execute("INSERT OR REPLACE INTO mudlist (name, info) VALUES (?, ?)",
                                 (name, info))

    def load_chanlist(self):
        """{name: (host_mud, type)} as last stored."""
        with self._db.errors("loading the chanlist"):
            rows = self._db.connection().execute(
                "SELECT name, host, type FROM chanlist").fetchall()
        return {name: (host, ctype) for name, host, ctype in rows}

    def apply_chanlist(self, delta, *, router=None, mud=None, list_id=None):
        """Merge {name: (host_mud, type) or None}; None deletes. With
        ``list_id``, as apply_mudlist. One transaction."""
        with self._db.errors("saving the chanlist"), self._db.transaction() as conn:
            if list_id is not None:
                self._routers.save_list_ids(router, mud, chanlist_id=list_id)
            for name, value in delta.items():
                if value is None:
                    conn.execute("DELETE FROM chanlist WHERE name = ?", (name,))
                else:
                    host, ctype = value
                    conn.execute("INSERT OR REPLACE INTO chanlist (name, host, type)"
                                 " VALUES (?, ?, ?)", (name, host, ctype))
