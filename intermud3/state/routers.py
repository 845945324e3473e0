"""The router records of the state database: one per (router name, MUD
name), holding the password the router gave that MUD name and the last
mudlist and chanlist ids received under it."""

from twisted.logger import Logger

from intermud3.state.values import sql_int

__all__ = ["RouterRecords"]

_log = Logger()


class RouterRecords:
    def __init__(self, db):
        self._db = db
        # Version 1 records wait in routers_v1 for the first MUD name asked for.
        self._v1_routers = db.has_table("routers_v1")

    def router_record(self, router, mud):
        """{"password", "mudlist_id", "chanlist_id"}, each 0 when unknown."""
        self._claim_v1(mud)
        with self._db.errors("reading the router record"):
            row = self._db.connection().execute(
                "SELECT password, mudlist_id, chanlist_id FROM routers"
                " WHERE router = ? AND mud = ?", (router, mud)).fetchone()
        row = row or (0, 0, 0)
        return {"password": row[0] if row[0] is not None else 0,
                "mudlist_id": row[1] if row[1] is not None else 0,
                "chanlist_id": row[2] if row[2] is not None else 0}

    def router_records(self, mud):
        """{(router, mud name): record} for every stored record, after
        giving version 1 records to ``mud`` (the MUD name in use)."""
        self._claim_v1(mud)
        with self._db.errors("reading the router records"):
            rows = self._db.connection().execute(
                "SELECT router, mud, password, mudlist_id, chanlist_id FROM routers").fetchall()
        return {(router, name): {"password": password if password is not None else 0,
                                 "mudlist_id": mudlist_id if mudlist_id is not None else 0,
                                 "chanlist_id": chanlist_id if chanlist_id is not None else 0}
                for router, name, password, mudlist_id, chanlist_id in rows}

    def save_password(self, router, mud, password):
        self._save_router(router, mud, "saving the router password",
                          password=sql_int(password, "router password"))

    def save_list_ids(self, router, mud, mudlist_id=None, chanlist_id=None):
        ids = {"mudlist_id": sql_int(mudlist_id, "mudlist id"),
               "chanlist_id": sql_int(chanlist_id, "chanlist id")}
        self._save_router(router, mud, "saving the list ids",
                          **{column: value for column, value in ids.items() if value is not None})

    def _save_router(self, router, mud, doing, **columns):
        # Column names come from the two callers above, never from input.
        self._claim_v1(mud)
        with self._db.errors(doing), self._db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO routers (router, mud, password, mudlist_id,"
                         " chanlist_id) VALUES (?, ?, 0, 0, 0)", (router, mud))
            for column, value in columns.items():
                conn.execute("UPDATE routers SET %s = ? WHERE router = ? AND mud = ?" % column,
                             (value, router, mud))

    def _claim_v1(self, mud):
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
        with self._db.errors("carrying over the version 1 router records"), \
                self._db.transaction() as conn:
            count = conn.execute(
                "INSERT OR IGNORE INTO routers (router, mud, password, mudlist_id, chanlist_id)"
                " SELECT name, ?, password, mudlist_id, chanlist_id FROM routers_v1",
                (mud,)).rowcount
            conn.execute("DROP TABLE routers_v1")
        self._v1_routers = False
        if count:
            _log.info("State database {path}: {count} router records from schema version 1"
                      " now belong to MUD {mud}", path=self._db.path, count=count, mud=mud)
