"""The gateway's durable state: one SQLite file in the state directory.

It holds the router passwords and list ids, the mudlist and chanlist, the
outbound message queue and the channel history, so that a restart (a kill
included) loses neither the router's trust nor a message we said we queued.

``StateStore`` is the one object the rest of the gateway sees; each of
its jobs lives in a module of its own:

* state/db.py: the file, its durability settings, migrations
  (state/schema.py) and transactions;
* state/routers.py: router passwords and list ids per MUD name;
* state/lists.py: the mudlist and chanlist;
* state/queue.py: the outbound queue and message outcomes;
* state/history.py: channel history and its full-text search;
* state/values.py: LPC values as stored JSON.

This class is synchronous. The running gateway calls it only from the
store's writer thread (storewriter.py), which batches calls into one
transaction (``begin``/``commit``; each call inside is a savepoint), and
keeps what it must read often in memory (store.py). Tests and tools use
it directly.
"""

import time

from intermud3.state.db import FILENAME, LOCK_TIMEOUT, WRITER_LOCK_TIMEOUT, Database, StateError
from intermud3.state.history import SEARCH_FIELDS, HistoryTable
from intermud3.state.lists import ListTables
from intermud3.state.queue import OUTCOME_COLUMNS, OUTCOMES, OutboundRow, OutboundTable
from intermud3.state.routers import RouterRecords
from intermud3.state.schema import MIGRATIONS, SCHEMA_VERSION
from intermud3.state.values import dumps, loads

__all__ = ["StateStore", "StateError", "OutboundRow", "dumps", "loads", "FILENAME",
           "MIGRATIONS", "SCHEMA_VERSION", "LOCK_TIMEOUT", "WRITER_LOCK_TIMEOUT",
           "OUTCOMES", "OUTCOME_COLUMNS", "SEARCH_FIELDS"]


class StateStore:
    """The SQLite store (docs/ARCHITECTURE.md, "intermud3/state.py"): the
    database and its tables, their calls offered as its own."""

    def __init__(self, directory, *, clock=None):
        self.db = Database(directory)
        self.directory = self.db.directory
        self.path = self.db.path
        self.routers = RouterRecords(self.db)
        self.lists = ListTables(self.db, self.routers)
        self.outbound = OutboundTable(self.db)
        self.history_table = HistoryTable(
            self.db, clock.seconds if clock is not None else time.time)
        # The calls the store writer and tools make by name (store.py).
        self.wait_for_locks = self.db.wait_for_locks
        self.begin = self.db.begin
        self.commit = self.db.commit
        self.close = self.db.close
        self.next_ids = self.db.next_ids
        for name in ("router_record", "router_records", "save_password", "save_list_ids"):
            setattr(self, name, getattr(self.routers, name))
        for name in ("load_mudlist", "apply_mudlist", "load_chanlist", "apply_chanlist"):
            setattr(self, name, getattr(self.lists, name))
        for name in ("enqueue", "pending", "finish", "unfinish", "outcome", "purge_outcomes",
                     "delete", "queue_depth"):
            setattr(self, name, getattr(self.outbound, name))
        self.add_history = self.history_table.add_history
        self.history = self.history_table.history

    def __repr__(self):
        return "<StateStore %s>" % self.path
