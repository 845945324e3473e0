"""Tests for intermud3.lists: the mudlist and chanlist."""

import os

from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from intermud3.lists import MudChange, NetworkLists
from intermud3.state import StateStore
from tests.vectors import load_vectors

MUD = "OurMud"   # the MUD name the list ids are stored under

def vector_packets(kind, conn):
    """Decoded `kind` packets the router sent to `conn`, in capture order."""
    return [v.decoded for v in load_vectors()
            if v.conn == conn and v.dir == "from-router"
            and isinstance(v.decoded, list) and v.decoded and v.decoded[0] == kind]


def info(state=-1, driver="FluffOS v2019", services=None):
    return [state, "10.0.0.1", 4000, 4001, 4002, "Lib 1", "Lib", driver, "LP",
             "open", "admin@x", services if services is not None else {"tell": 1}, 0]


ENTRY_KEYS = {"name", "host", "port", "tcp_port", "udp_port", "driver", "mudlib",
              "base_mudlib", "mud_type", "status", "restart_in", "services",
              "open_status", "admin_email"}


class ListsTestCase(SynchronousTestCase):
    def setUp(self):
        self.directory = os.path.join(self.mktemp(), "state")
        self.store = StateStore(self.directory)
        self.lists = NetworkLists(self.store)
        self.seen = []
        self.lists.on_mud_change.append(self.seen.append)

    def tearDown(self):
        self.store.close()

    def reopen(self):
        self.store.close()
        self.store = StateStore(self.directory)
        return NetworkLists(self.store)


class VectorTests(ListsTestCase):
    def test_initial_sync_from_vectors_emits_nothing(self):
        packets = vector_packets("mudlist", "ProbeA")
        self.assertGreater(len(packets), 3)
        for packet in packets:
            self.assertEqual(self.lists.apply_mudlist("*test", MUD, packet[6], packet[7]), [])
        self.assertEqual(self.seen, [])
        self.assertEqual(set(self.lists.muds), {"DSTest", "ProbeA", "ProbeB"})
        # The last id is stored, whatever its order (ids are not monotonic).
        self.assertEqual(self.lists.mudlist_id, packets[-1][6])
        self.assertEqual(self.store.router_record("*test", MUD)["mudlist_id"], packets[-1][6])
        entry = self.lists.mud_entry("dstest")
        self.assertEqual(entry, {
            "name": "DSTest", "host": "127.0.0.1", "port": 6666, "tcp_port": 6672,
            "udp_port": 6674, "driver": "FluffOS v2.23-ds03", "mudlib": "Dead Souls 3.8.2",
            "base_mudlib": "Dead Souls 3.8.2", "mud_type": "LPMud", "status": "up",
            "restart_in": None, "services": packets[0][7]["DSTest"][11],
            "open_status": "mudlib development", "admin_email": "admin@here"})

    def test_chanlist_vectors_type_quirk(self):
        packets = vector_packets("chanlist-reply", "ProbeB")
        # The capture shows a just-created channel with type ({}).
        self.assertIn([], [v[1] for p in packets for v in p[7].values()])
        for packet in packets:
            self.lists.apply_chanlist("*test", MUD, packet[6], packet[7])
        self.assertEqual(self.lists.channels["free_speech"], ("Frontiers", 0))
        self.assertEqual(len(self.lists.channels), 7)
        self.assertTrue(all(t == 0 for _, t in self.lists.channels.values()))
        self.assertEqual(self.lists.chanlist_id, packets[-1][6])
        self.assertEqual(self.store.router_record("*test", MUD)["chanlist_id"], packets[-1][6])
        self.assertEqual(self.lists.channel_entries()[0],
                         {"name": "dchat", "owner": "Frontiers", "type": 0})

    def test_lists_persist(self):
        for packet in vector_packets("mudlist", "ProbeB"):
            self.lists.apply_mudlist("*test", MUD, packet[6], packet[7])
        for packet in vector_packets("chanlist-reply", "ProbeB"):
            self.lists.apply_chanlist("*test", MUD, packet[6], packet[7])
        again = self.reopen()
        self.assertEqual(again.muds, self.lists.muds)
        self.assertEqual(again.channels, self.lists.channels)
        self.assertEqual(again.exact_mud("PROBEA"), "ProbeA")
        record = self.store.router_record("*test", MUD)
        self.assertEqual((record["mudlist_id"], record["chanlist_id"]),
                         (self.lists.mudlist_id, self.lists.chanlist_id))
        # The ids belong to the MUD name they came to: another name starts at 0.
        self.assertEqual(self.store.router_record("*test", "Renamed"),
                         {"password": 0, "mudlist_id": 0, "chanlist_id": 0})


class ChangeTests(ListsTestCase):
    def test_first_sight_emits_nothing_even_when_down(self):
        self.assertEqual(self.lists.apply_mudlist("*i4", MUD, 1, {"A": info(-1), "B": info(0)}), [])
        self.assertEqual(self.seen, [])

    def test_up_to_down_and_back(self):
        self.lists.apply_mudlist("*i4", MUD, 1, {"A": info(-1)})
        changes = self.lists.apply_mudlist("*i4", MUD, 2, {"A": info(300)})
        self.assertEqual(len(changes), 1)
        change = changes[0]
        self.assertIsInstance(change, MudChange)
        self.assertEqual((change.name, change.was_up, change.is_up), ("A", True, False))
        self.assertEqual(change.info["status"], "down")
        self.assertEqual(change.info["restart_in"], 300)
        self.assertEqual(set(change.info), ENTRY_KEYS)
        # Still down (another n): nothing.
        self.assertEqual(self.lists.apply_mudlist("*i4", MUD, 3, {"A": info(0)}), [])
        back = self.lists.apply_mudlist("*i4", MUD, 4, {"A": info(-1)})
        self.assertEqual([(c.name, c.was_up, c.is_up) for c in back], [("A", False, True)])
        self.assertEqual(back[0].info["status"], "up")
        self.assertEqual(self.seen, changes + back)

    def test_update_without_state_change_emits_nothing(self):
        self.lists.apply_mudlist("*i4", MUD, 1, {"A": info(-1)})
        self.assertEqual(self.lists.apply_mudlist("*i4", MUD, 2, {"A": info(-1, driver="DGD")}), [])
        self.assertEqual(self.lists.mud_entry("A")["driver"], "DGD")

    def test_delete_of_up_mud_is_offline(self):
        self.lists.apply_mudlist("*i4", MUD, 1, {"Up": info(-1), "Down": info(0)})
        changes = self.lists.apply_mudlist("*i4", MUD, 2, {"Up": 0, "Down": 0, "Never": 0})
        self.assertEqual([(c.name, c.was_up, c.is_up) for c in changes], [("Up", True, False)])
        self.assertEqual(changes[0].info["name"], "Up")
        self.assertEqual(changes[0].info["host"], "10.0.0.1")
        self.assertEqual(changes[0].info["status"], "down")
        self.assertEqual(self.lists.muds, {})
        self.assertIsNone(self.lists.exact_mud("up"))
        self.assertEqual(self.reopen().muds, {})

    def test_callback_failure_does_not_stop_others(self):
        def broken(change):
            raise RuntimeError("boom")
        self.lists.on_mud_change.insert(0, broken)
        self.lists.apply_mudlist("*i4", MUD, 1, {"A": info(-1)})
        changes = self.lists.apply_mudlist("*i4", MUD, 2, {"A": info(0)})
        self.assertEqual(self.seen, changes)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class LookupTests(ListsTestCase):
    def setUp(self):
        ListsTestCase.setUp(self)
        self.lists.apply_mudlist("*i4", MUD, 1, {
            "Dead Souls": info(-1, driver="FluffOS v2.23", services={"tell": 1, "who": 1}),
            "Frontiers": info(-1, driver="FluffOS v2019", services={"channel": 1, "tell": 0}),
            "ÉlanMUD": info(120, driver="DGD 1.6", services=0),
        })

    def test_exact_mud_case_insensitive(self):
        self.assertEqual(self.lists.exact_mud("dead souls"), "Dead Souls")
        self.assertEqual(self.lists.exact_mud("FRONTIERS"), "Frontiers")
        self.assertEqual(self.lists.exact_mud("élanmud"), "ÉlanMUD")
        self.assertIsNone(self.lists.exact_mud("Nowhere"))
        self.assertIsNone(self.lists.exact_mud(0))

    def test_exact_mud_with_names_differing_in_case(self):
        self.lists.apply_mudlist("*i4", MUD, 2, {"frontiers": info(-1)})
        self.assertEqual(self.lists.exact_mud("Frontiers"), "Frontiers")
        self.assertEqual(self.lists.exact_mud("frontiers"), "frontiers")
        self.lists.apply_mudlist("*i4", MUD, 3, {"frontiers": 0})
        self.assertEqual(self.lists.exact_mud("FRONTIERS"), "Frontiers")
        self.lists.apply_mudlist("*i4", MUD, 4, {"Frontiers": 0})
        self.assertIsNone(self.lists.exact_mud("frontiers"))

    def test_names_held_are_bounded(self):
        store = StateStore(os.path.join(self.mktemp(), "state"))
        self.addCleanup(store.close)
        lists = NetworkLists(store, max_muds=2, max_channels=1)
        lists.apply_mudlist("*i4", MUD, 1, {"A": [-1], "B": [-1], "C": [-1]})
        self.assertEqual(sorted(lists.muds), ["A", "B"])
        # Held names still change and go; then there is room again.
        lists.apply_mudlist("*i4", MUD, 2, {"A": [0], "B": 0, "C": [-1]})
        self.assertEqual(sorted(lists.muds), ["A", "C"])
        self.assertEqual(lists.mud_entry("A")["status"], "down")
        lists.apply_chanlist("*i4", MUD, 1, {"x": ["A", 0], "y": ["A", 0]})
        lists.apply_chanlist("*i4", MUD, 2, {"x": ["B", 1]})
        self.assertEqual(lists.channels, {"x": ("B", 1)})

    def test_list_ids_lpc_cannot_write_count_as_zero(self):
        # They go back to the router in startup-req-3.
        self.lists.apply_mudlist("*i4", MUD, 2 ** 40, {})
        self.lists.apply_chanlist("*i4", MUD, -(2 ** 31) - 1, {})
        self.assertEqual((self.lists.mudlist_id, self.lists.chanlist_id), (0, 0))

    def test_entry_fields_have_their_api_types_whatever_the_router_sent(self):
        self.lists.apply_mudlist("*i4", MUD, 9, {"Junk": [
            -1, ["1.2.3.4"], float("inf"), "4001", 2 ** 40, 0, {"x": 1}, 7, 0, [0], 0,
            {"tell": 1, ("who",): 1, "finger": "yes", "emoteto": 0}, 0]})
        entry = self.lists.mud_entry("junk")
        self.assertEqual(entry, {
            "name": "Junk", "host": "", "port": 0, "tcp_port": 0, "udp_port": 2 ** 40,
            "driver": "", "mudlib": "", "base_mudlib": "", "mud_type": "",
            "status": "up", "restart_in": None, "services": {"tell": 1, "emoteto": 0},
            "open_status": "", "admin_email": ""})

    def test_mud_entry_shape(self):
        entry = self.lists.mud_entry("élanmud")
        self.assertEqual(set(entry), ENTRY_KEYS)
        self.assertEqual(entry["name"], "ÉlanMUD")
        self.assertEqual(entry["status"], "down")
        self.assertEqual(entry["restart_in"], 120)
        self.assertEqual(entry["services"], {})  # not a mapping
        self.assertEqual(self.lists.mud_entry("dead souls")["restart_in"], None)
        self.assertIsNone(self.lists.mud_entry("Nowhere"))

    def names(self, **filters):
        return [e["name"] for e in self.lists.filtered(**filters)]

    def test_filtered(self):
        # Sorted by case-folded name (code point order).
        self.assertEqual(self.names(), ["Dead Souls", "Frontiers", "ÉlanMUD"])
        self.assertEqual(self.names(status="up"), ["Dead Souls", "Frontiers"])
        self.assertEqual(self.names(status="down"), ["ÉlanMUD"])
        self.assertEqual(self.names(driver="fluffos"), ["Dead Souls", "Frontiers"])
        self.assertEqual(self.names(driver="dgd"), ["ÉlanMUD"])
        self.assertEqual(self.names(has_service="tell"), ["Dead Souls"])  # 0 is not offered
        self.assertEqual(self.names(has_service="channel"), ["Frontiers"])
        self.assertEqual(self.names(name="SOUL"), ["Dead Souls"])
        self.assertEqual(self.names(name="élan"), ["ÉlanMUD"])
        self.assertEqual(self.names(status="up", driver="2019", name="front"), ["Frontiers"])


class MalformedTests(ListsTestCase):
    def test_one_warning_line_per_packet_however_many_bad_entries(self):
        logged = []
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        delta = {f"Bad{n}": "not an entry" for n in range(5000)}
        delta.update({f"Short{n}": [-1, "host"] for n in range(10)})
        self.lists.apply_mudlist("*i4", MUD, 1, delta)
        warnings = [formatEvent(e) for e in logged if e.get("log_level") == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("malformed entries ignored: 5000 (e.g. Bad0, Bad1, Bad2)", warnings[0])
        self.assertIn("entries without 13 fields: 10", warnings[0])

    def test_malformed_mud_entries_tolerated(self):
        changes = self.lists.apply_mudlist("*i4", MUD, 1, {
            "Short": [-1, "host"],
            "Empty": [],
            "Typed": ["up", 5, "port", None, 0, 1, 2, 3, 4, 5, 6, [1], {"x": 1}],
            "Long": info(-1) + ["extra", "fields"],
            "Text": "not an entry",
            7: info(-1),
        })
        self.assertEqual(changes, [])
        self.assertNotIn("Text", self.lists.muds)
        self.assertNotIn(7, self.lists.muds)
        short = self.lists.mud_entry("short")
        self.assertEqual(short["status"], "up")
        self.assertEqual(short["host"], "host")
        self.assertEqual(short["port"], 0)
        self.assertEqual(short["services"], {})
        self.assertEqual(self.lists.mud_entry("empty")["status"], "down")
        typed = self.lists.mud_entry("Typed")
        self.assertEqual(typed["status"], "down")
        self.assertIsNone(typed["restart_in"])
        self.assertEqual(self.lists.mud_entry("Long")["status"], "up")
        self.assertEqual(len(self.lists.filtered(driver="x", has_service="x")), 0)
        self.assertEqual(len(self.lists.filtered()), 4)
        # Going down from a short entry still reports the change.
        changes = self.lists.apply_mudlist("*i4", MUD, 2, {"Short": [0]})
        self.assertEqual([(c.name, c.is_up) for c in changes], [("Short", False)])
        self.assertEqual(set(self.reopen().muds), {"Short", "Empty", "Typed", "Long"})

    def test_malformed_packets_tolerated(self):
        self.lists.apply_mudlist("*i4", MUD, "id?", "not a mapping")
        self.lists.apply_chanlist("*i4", MUD, None, [1, 2])
        self.assertEqual(self.lists.mudlist_id, 0)
        self.assertEqual(self.lists.chanlist_id, 0)

    def test_malformed_channel_entries_tolerated(self):
        self.lists.apply_chanlist("*i4", MUD, 3, {
            "short": ["Host"], "empty": [], "typed": [["odd"], "1"], "two": ("Host", 2),
            "text": "junk", 5: ("Host", 1)})
        self.assertEqual(self.lists.channels, {
            "short": ("Host", 0), "empty": (0, 0), "typed": (0, 0), "two": ("Host", 2)})
        self.lists.apply_chanlist("*i4", MUD, 4, {"two": 0, "missing": 0})
        self.assertNotIn("two", self.lists.channels)
        self.assertEqual(self.reopen().channels, self.lists.channels)


class StoreFailureTests(SynchronousTestCase):
    def test_memory_stays_right_and_id_not_saved(self):
        store = StateStore(self.mktemp())
        self.addCleanup(store.close)
        # Every list row write fails, as on a full disk.
        for table in ("mudlist", "chanlist"):
            store.db.conn.execute(f"CREATE TEMP TRIGGER full_{table} BEFORE INSERT ON {table}"
                                " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END")
        lists = NetworkLists(store)
        lists.apply_mudlist("*i4", MUD, 9, {"A": info(-1)})
        lists.apply_chanlist("*i4", MUD, 4, {"c": ("A", 1)})
        self.assertEqual(lists.exact_mud("a"), "A")
        self.assertEqual(lists.channels, {"c": ("A", 1)})
        # The id would claim a delta the disk does not hold.
        self.assertEqual(store.router_record("*i4", MUD),
                         {"password": 0, "mudlist_id": 0, "chanlist_id": 0})
