"""Tests for intermud3.state: the SQLite store, one class per part:
FilesTests, SchemaOneTests and CrashTests (state/db.py, state/schema.py),
RouterTests (state/routers.py), ListTests (state/lists.py), OutboundTests
(state/queue.py), HistoryTests and HistoryTrimTests (state/history.py),
SerialisationTests (state/values.py)."""

import os
import signal
import sqlite3
import stat
import subprocess
import sys

from hypothesis import given, settings, strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from intermud3 import state
from intermud3.state import OutboundRow, StateError, StateStore

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class StoreTestCase(SynchronousTestCase):
    def setUp(self):
        self.directory = os.path.join(self.mktemp(), "state")
        self.clock = Clock()
        self.store = self.open()

    def tearDown(self):
        self.store.close()

    def open(self):
        return StateStore(self.directory, clock=self.clock)

    def reopen(self):
        self.store.close()
        self.store = self.open()
        return self.store


class FilesTests(StoreTestCase):
    def test_directory_and_file_are_private(self):
        path = os.path.join(self.directory, state.FILENAME)
        self.assertEqual(self.store.path, path)
        self.assertEqual(mode_of(self.directory), 0o700)
        self.assertEqual(mode_of(path), 0o600)
        # The WAL sidecars exist while the store is open after a write.
        self.store.save_password("*i4", "OurMud", 1)
        for suffix in ("-wal", "-shm"):
            self.assertTrue(os.path.exists(path + suffix), suffix)
            self.assertEqual(mode_of(path + suffix), 0o600, suffix)

    def test_sidecars_private_even_under_a_loose_umask(self):
        self.store.close()
        old = os.umask(0)
        try:
            self.store = self.open()
            self.store.save_password("*i4", "OurMud", 1)
        finally:
            os.umask(old)
        for suffix in ("", "-wal", "-shm"):
            self.assertEqual(mode_of(self.store.path + suffix), 0o600, suffix)

    def test_existing_file_with_loose_mode_is_tightened(self):
        self.store.close()
        os.chmod(self.store.path, 0o644)
        self.store = self.open()
        self.assertEqual(mode_of(self.store.path), 0o600)

    def test_durability_settings(self):
        conn = sqlite3.connect(self.store.path)
        try:
            self.assertEqual(conn.execute("PRAGMA journal_mode").fetchone()[0], "wal")
        finally:
            conn.close()
        # synchronous is per connection: check the store's own (1 = NORMAL;
        # with WAL that survives a kill of the process, see state.py).
        self.assertEqual(self.store.db.conn.execute("PRAGMA synchronous").fetchone()[0], 1)

    def test_schema_version_recorded(self):
        self.store.close()
        conn = sqlite3.connect(self.store.path)
        try:
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        finally:
            conn.close()
        self.assertEqual(row[0], state.SCHEMA_VERSION)
        self.assertEqual(state.SCHEMA_VERSION, len(state.MIGRATIONS))
        # Reopening an up-to-date file migrates nothing and keeps working.
        self.store = self.open()
        self.store.save_password("*i4", "OurMud", 5)
        self.assertEqual(self.store.router_record("*i4", "OurMud")["password"], 5)

    def test_newer_schema_refused(self):
        self.store.close()
        conn = sqlite3.connect(self.store.path)
        with conn:
            conn.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
        conn.close()
        error = self.assertRaises(StateError, self.open)
        self.assertIn(self.store.path, str(error))
        self.assertIn("99", str(error))
        self.assertIn("newer", str(error))
        self.store = self.open_fresh()

    def open_fresh(self):
        self.directory = os.path.join(self.mktemp(), "state")
        return self.open()

    def test_corrupt_file_is_a_clear_error(self):
        self.store.close()
        for name in os.listdir(self.directory):
            os.unlink(os.path.join(self.directory, name))
        with open(self.store.path, "wb") as f:
            f.write(b"this is not a database, just some bytes" * 200)
        error = self.assertRaises(StateError, self.open)
        self.assertIn(self.store.path, str(error))
        self.store = self.open_fresh()

    def test_unusable_directory_is_a_clear_error(self):
        self.store.close()
        blocker = os.path.join(self.mktemp())
        with open(blocker, "w") as f:
            f.write("a file where the directory should be")
        self.directory = os.path.join(blocker, "state")
        error = self.assertRaises(StateError, self.open)
        self.assertIn(self.directory, str(error))
        self.store = self.open_fresh()

    def test_closed_store_raises(self):
        self.store.close()
        self.assertRaises(StateError, self.store.queue_depth)
        self.assertRaises(StateError, self.store.save_password, "*i4", "OurMud", 1)
        self.store.close()  # twice is harmless

    def test_repr_holds_no_secret(self):
        self.store.save_password("*i4", "OurMud", 987654321)
        self.assertNotIn("987654321", repr(self.store))


class RouterTests(StoreTestCase):
    def test_unknown_router_is_all_zero(self):
        self.assertEqual(self.store.router_record("*dalet", "OurMud"),
                         {"password": 0, "mudlist_id": 0, "chanlist_id": 0})

    def test_password_and_ids_persist(self):
        self.store.save_password("*i4", "OurMud", 123456789)
        self.store.save_list_ids("*i4", "OurMud", mudlist_id=41)
        self.store.save_list_ids("*i4", "OurMud", chanlist_id=7)
        self.store.save_list_ids("*dalet", "OurMud", mudlist_id=3, chanlist_id=4)
        self.reopen()
        self.assertEqual(self.store.router_record("*i4", "OurMud"),
                         {"password": 123456789, "mudlist_id": 41, "chanlist_id": 7})
        self.assertEqual(self.store.router_record("*dalet", "OurMud"),
                         {"password": 0, "mudlist_id": 3, "chanlist_id": 4})
        record = self.store.router_record("*i4", "OurMud")
        self.assertIsInstance(record["password"], int)

    def test_ids_do_not_touch_password(self):
        self.store.save_password("*i4", "OurMud", 55)
        self.store.save_list_ids("*i4", "OurMud", mudlist_id=9)
        self.store.save_password("*i4", "OurMud", 66)
        self.assertEqual(self.store.router_record("*i4", "OurMud"),
                         {"password": 66, "mudlist_id": 9, "chanlist_id": 0})

    def test_out_of_range_password_is_a_value_error(self):
        self.assertRaises(ValueError, self.store.save_password, "*i4", "OurMud", 2 ** 70)

    def test_records_are_per_mud_name(self):
        self.store.save_password("*i4", "OurMud", 111111111)
        self.store.save_list_ids("*i4", "OurMud", mudlist_id=41, chanlist_id=7)
        self.store.save_password("*i4", "NewName", 222222222)
        self.assertEqual(self.store.router_record("*i4", "OurMud"),
                         {"password": 111111111, "mudlist_id": 41, "chanlist_id": 7})
        self.assertEqual(self.store.router_record("*i4", "NewName"),
                         {"password": 222222222, "mudlist_id": 0, "chanlist_id": 0})
        # MUD names are case-sensitive on the network, and here.
        self.assertEqual(self.store.router_record("*i4", "ourmud")["password"], 0)


class SchemaOneTests(SynchronousTestCase):
    """A version 1 file kept one record per router, naming no MUD."""

    def setUp(self):
        self.directory = os.path.join(self.mktemp(), "state")
        os.makedirs(self.directory, mode=0o700)
        conn = sqlite3.connect(os.path.join(self.directory, state.FILENAME))
        with conn:
            conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value)")
            for sql in state.MIGRATIONS[0]:
                conn.execute(sql)
            conn.execute("INSERT INTO meta VALUES ('schema_version', 1)")
            conn.execute("INSERT INTO routers VALUES ('*i4', 123456789, 41, 7)")
            conn.execute("INSERT INTO routers VALUES ('*dalet', 987654321, 3, 0)")
        conn.close()
        self.store = StateStore(self.directory)

    def tearDown(self):
        self.store.close()

    def tables(self):
        return {row[0] for row in self.store.db.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}

    def test_records_go_to_the_first_mud_name_asked_for(self):
        self.assertIn("routers_v1", self.tables())
        self.assertEqual(self.store.router_record("*i4", "OurMud"),
                         {"password": 123456789, "mudlist_id": 41, "chanlist_id": 7})
        self.assertNotIn("routers_v1", self.tables())
        self.assertEqual(self.store.router_record("*dalet", "OurMud")["password"], 987654321)
        # Once only: another name starts from 0, and a reopen changes nothing.
        self.assertEqual(self.store.router_record("*i4", "Other")["password"], 0)
        self.store.close()
        self.store = StateStore(self.directory)
        self.assertEqual(self.store.router_record("*i4", "OurMud")["password"], 123456789)
        self.assertEqual(self.store.router_record("*i4", "Other")["password"], 0)

    def test_a_write_claims_them_too_without_losing_the_rest(self):
        self.store.save_list_ids("*i4", "OurMud", mudlist_id=50)
        self.assertEqual(self.store.router_record("*i4", "OurMud"),
                         {"password": 123456789, "mudlist_id": 50, "chanlist_id": 7})


class ListTests(StoreTestCase):
    INFO = [-1, "127.0.0.1", 4000, 0, 0, "Lib", "Base", "FluffOS", "LP", "open",
            "a@b", {"tell": 1, "channel": 1}, 0]

    def test_mudlist_delta_and_persistence(self):
        self.store.apply_mudlist({"Alpha": self.INFO, "Beta": self.INFO[:5]})
        self.store.apply_mudlist({"Beta": None, "Gamma": [0, "x"]})
        self.reopen()
        self.assertEqual(self.store.load_mudlist(),
                         {"Alpha": self.INFO, "Gamma": [0, "x"]})

    def test_deleting_unknown_is_harmless(self):
        self.store.apply_mudlist({"Nobody": None})
        self.assertEqual(self.store.load_mudlist(), {})

    def test_mudlist_delta_is_one_transaction(self):
        # An unstorable value aborts the whole delta, not half of it.
        self.assertRaises(ValueError, self.store.apply_mudlist,
                          {"Alpha": self.INFO, "Broken": [object()]})
        self.assertEqual(self.store.load_mudlist(), {})

    def test_odd_mapping_keys_survive(self):
        info = list(self.INFO)
        info[12] = {1: "one", (1, "a"): [2], "\x00lpc-mapping": 3}
        self.store.apply_mudlist({"Odd": info})
        self.reopen()
        self.assertEqual(self.store.load_mudlist()["Odd"], info)

    def test_chanlist_delta_and_persistence(self):
        self.store.apply_chanlist({"dead_test4": ("Frontiers", 0), "imud_code": ("Frontiers", 1)})
        self.store.apply_chanlist({"imud_code": None, "dchat": ("Frontiers", 2)})
        self.reopen()
        self.assertEqual(self.store.load_chanlist(),
                         {"dead_test4": ("Frontiers", 0), "dchat": ("Frontiers", 2)})


class OutboundTests(StoreTestCase):
    def enqueue(self, n, **kw):
        packet = ["tell", 5, "Gate", "bob", "Other", "alice", "Bob", "hello %d" % n]
        return self.store.enqueue("tell", packet, created=100.0 + n, expires=400.0 + n, **kw)

    def test_fifo_delete_depth(self):
        ids = [self.enqueue(n) for n in range(5)]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(self.store.queue_depth(), 5)
        self.store.delete(ids[0])
        self.store.delete(ids[3])
        self.store.delete(12345)  # unknown: nothing happens
        rows = self.store.pending()
        self.assertEqual([r.id for r in rows], [ids[1], ids[2], ids[4]])
        self.assertEqual(rows[0].packet[-1], "hello 1")
        self.assertEqual(self.store.queue_depth(), 3)
        self.assertEqual([r.id for r in self.store.pending(limit=2)], [ids[1], ids[2]])

    def test_row_fields_and_persistence(self):
        first = self.enqueue(0, owner="sess-1", client_msg_id="c-1")
        self.reopen()
        [row] = self.store.pending()
        self.assertIsInstance(row, OutboundRow)
        self.assertEqual(row, OutboundRow(
            first, "tell",
            ["tell", 5, "Gate", "bob", "Other", "alice", "Bob", "hello 0"],
            100.0, 400.0, "sess-1", "c-1"))

    def test_ids_never_reused(self):
        first = self.enqueue(0)
        self.store.delete(first)
        self.reopen()
        self.assertGreater(self.enqueue(1), first)

    def test_packet_round_trip(self):
        packet = ["channel-t", 5, "Gate", "bob", 0, 0, "chan", "Other", "alice",
                  "others $N", "target $N", "Bob", "Alice", {"k": [1, 2.5, "é"]}, -7]
        self.store.enqueue("channel_target", packet, created=1, expires=2)
        self.reopen()
        self.assertEqual(self.store.pending()[0].packet, packet)

    def test_unstorable_packet_is_a_value_error(self):
        self.assertRaises(ValueError, self.store.enqueue, "tell", [object()],
                          created=1, expires=2)
        self.assertEqual(self.store.queue_depth(), 0)


def message(text, user="bob", **more):
    entry = {"type": "message", "from_mud": "Other", "from_user": user,
             "visname": user.capitalize(), "message": text, "timestamp": 1.0}
    entry.update(more)
    return entry


class HistoryTests(StoreTestCase):
    def fill(self, channel, n, keep=1000):
        return [self.store.add_history(channel, message("m%d" % i), keep) for i in range(n)]

    def texts(self, entries):
        return [e["message"] for e in entries]

    def test_entry_comes_back_with_id_and_channel(self):
        history_id = self.store.add_history("gossip", message("hi"), 10)
        [entry] = self.store.history("gossip")
        self.assertEqual(entry, dict(message("hi"), id=history_id, channel="gossip"))
        self.assertIsInstance(entry["id"], int)

    def test_trimmed_per_channel(self):
        self.fill("gossip", 8, keep=3)
        self.fill("chat", 4, keep=10)
        self.assertEqual(self.texts(self.store.history("gossip")), ["m5", "m6", "m7"])
        self.assertEqual(self.texts(self.store.history("chat")), ["m0", "m1", "m2", "m3"])
        # A smaller bound later trims on the next write.
        self.store.add_history("chat", message("m4"), 2)
        self.assertEqual(self.texts(self.store.history("chat")), ["m3", "m4"])

    def test_keep_must_be_positive(self):
        self.assertRaises(ValueError, self.store.add_history, "gossip", message("x"), 0)
        self.assertEqual(self.store.history("gossip"), [])

    def test_paging(self):
        ids = self.fill("gossip", 10)
        self.fill("other", 3)
        # No cursor: the newest `limit`, oldest first.
        self.assertEqual(self.texts(self.store.history("gossip", limit=3)), ["m7", "m8", "m9"])
        # before: the newest `limit` older than the cursor.
        self.assertEqual(self.texts(self.store.history("gossip", limit=3, before=ids[5])),
                         ["m2", "m3", "m4"])
        self.assertEqual(self.texts(self.store.history("gossip", limit=3, before=ids[1])), ["m0"])
        # after: the oldest `limit` newer than the cursor.
        self.assertEqual(self.texts(self.store.history("gossip", limit=3, after=ids[5])),
                         ["m6", "m7", "m8"])
        self.assertEqual(self.texts(self.store.history("gossip", limit=3, after=ids[9])), [])
        # Both: a window, newest end.
        self.assertEqual(self.texts(self.store.history("gossip", limit=2, after=ids[1], before=ids[6])),
                         ["m4", "m5"])
        self.assertEqual(self.store.history("gossip", limit=0), [])
        self.assertEqual(self.store.history("nobody"), [])

    def test_walk_back_covers_everything_once(self):
        ids = self.fill("gossip", 23)
        seen = []
        before = None
        while True:
            page = self.store.history("gossip", limit=5, before=before)
            if not page:
                break
            seen[:0] = [e["id"] for e in page]
            before = page[0]["id"]
        self.assertEqual(seen, ids)

    def test_query_case_insensitive_non_ascii(self):
        self.store.add_history("gossip", message("un café au lait"), 100)
        self.store.add_history("gossip", message("tea"), 100)
        self.store.add_history("gossip", message("ÉCOLE"), 100)
        self.assertEqual(self.texts(self.store.history("gossip", query="CAFÉ")), ["un café au lait"])
        self.assertEqual(self.texts(self.store.history("gossip", query="école")), ["ÉCOLE"])
        self.assertEqual(self.texts(self.store.history("gossip", query="TEA")), ["tea"])
        self.assertEqual(self.store.history("gossip", query="coffee"), [])

    def test_query_fields_and_literal_wildcards(self):
        self.store.add_history("gossip", message("plain", user="zed"), 100)
        self.store.add_history("gossip", dict(message(0, user="amy"), type="targeted",
                                              message_others="$N pokes Bob",
                                              message_target="$N pokes you"), 100)
        self.store.add_history("gossip", message("100% sure_thing"), 100)
        self.assertEqual(len(self.store.history("gossip", query="POKES")), 1)
        self.assertEqual(len(self.store.history("gossip", query="Zed")), 1)  # from_user/visname
        self.assertEqual(self.texts(self.store.history("gossip", query="0% s")), ["100% sure_thing"])
        self.assertEqual(self.store.history("gossip", query="e_t%"), [])
        self.assertEqual(self.store.history("gossip", query="_"), self.store.history("gossip", query="sure_"))

    def test_query_with_paging(self):
        for i in range(10):
            self.store.add_history("gossip", message("%s %d" % ("hit" if i % 2 else "miss", i)), 100)
        page = self.store.history("gossip", query="HIT", limit=2)
        self.assertEqual(self.texts(page), ["hit 7", "hit 9"])
        older = self.store.history("gossip", query="hit", limit=2, before=page[0]["id"])
        self.assertEqual(self.texts(older), ["hit 3", "hit 5"])

    def test_history_persists(self):
        ids = self.fill("gossip", 3)
        self.reopen()
        self.assertEqual([e["id"] for e in self.store.history("gossip")], ids)
        self.assertGreater(self.store.add_history("gossip", message("new"), 10), ids[-1])


LPC_KEYS = st.one_of(st.integers(-2**31, 2**31), st.text(max_size=8))
LPC_VALUES = st.recursive(
    st.one_of(st.integers(-2**63, 2**63 - 1), st.floats(allow_nan=False), st.text(max_size=20)),
    lambda inner: st.one_of(st.lists(inner, max_size=5),
                            st.dictionaries(LPC_KEYS, inner, max_size=5)),
    max_leaves=20)


class SerialisationTests(SynchronousTestCase):
    @settings(deadline=None, max_examples=200)
    @given(LPC_VALUES)
    def test_round_trip(self, value):
        self.assertEqual(state.loads(state.dumps(value)), value)

    def test_tuple_keys_come_back_as_tuples(self):
        value = {(1, ("a", 2)): "x"}
        self.assertEqual(state.loads(state.dumps(value)), value)


# The writer in the crash tests: it prints each id once the call returned,
# so the parent knows exactly which writes were acknowledged.
CRASH_WRITER = r"""
import sys
from intermud3.state import StateStore
store = StateStore(sys.argv[1])
mode = sys.argv[2]
i = 0
while True:
    i += 1
    qid = store.enqueue("tell", ["tell", 5, "G", "u", "M", "v", "U", "n%d" % i],
                        created=i, expires=i + 300)
    hid = store.add_history("gossip", {"message": "n%d" % i}, 1000000)
    print(qid, hid, flush=True)
    if mode == "exit" and i == 25:
        import os
        os._exit(0)
"""


class CrashTests(SynchronousTestCase):
    def run_writer(self, directory, mode):
        env = dict(os.environ)
        env["PYTHONPATH"] = PROJECT_ROOT + os.pathsep + env.get("PYTHONPATH", "")
        return subprocess.Popen([sys.executable, "-c", CRASH_WRITER, directory, mode],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, text=True)

    def acknowledged(self, lines):
        return [tuple(int(x) for x in line.split()) for line in lines if line.strip()]

    def check(self, directory, acks):
        store = StateStore(directory)
        try:
            queued = {row.id: row.packet[-1] for row in store.pending()}
            history = {e["id"]: e["message"] for e in store.history("gossip", limit=10 ** 6)}
        finally:
            store.close()
        for n, (qid, hid) in enumerate(acks, start=1):
            self.assertEqual(queued.get(qid), "n%d" % n)
            self.assertEqual(history.get(hid), "n%d" % n)

    def test_kill_9_while_writing_loses_no_acknowledged_write(self):
        directory = os.path.join(self.mktemp(), "state")
        proc = self.run_writer(directory, "loop")
        lines = []
        try:
            while len(lines) < 200:
                line = proc.stdout.readline()
                if not line:
                    self.fail("writer stopped: %s" % proc.stderr.read())
                lines.append(line)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            # Through the buffer readline used: communicate() reads the pipe
            # beneath it and would miss lines already buffered there.
            rest = proc.stdout.read()
            proc.stderr.read()
            proc.wait()
        self.assertEqual(proc.returncode, -signal.SIGKILL)
        lines.extend(rest.splitlines())
        acks = self.acknowledged(lines)
        self.assertGreaterEqual(len(acks), 200)
        self.check(directory, acks)

    def test_exit_without_close_loses_nothing(self):
        directory = os.path.join(self.mktemp(), "state")
        proc = self.run_writer(directory, "exit")
        out, err = proc.communicate(timeout=60)
        self.assertEqual(proc.returncode, 0, err)
        acks = self.acknowledged(out.splitlines())
        self.assertEqual(len(acks), 25)
        self.check(directory, acks)


class HistoryTrimTests(SynchronousTestCase):
    def test_a_large_keep_is_trimmed_in_steps_of_one_percent(self):
        store = StateStore(self.mktemp())
        self.addCleanup(store.close)

        def count():
            return store.db.conn.execute("SELECT count(*) FROM history").fetchone()[0]
        for n in range(1000):
            store.add_history("dchat", {"message": str(n)}, 500)
            self.assertLessEqual(count(), 505)
        self.assertGreaterEqual(count(), 500)
        newest = store.history("dchat", 500)
        self.assertEqual(newest[-1]["message"], "999")
        self.assertEqual(newest[0]["message"], "500")
