"""services/listen_state.py: what the router may not know of the listen set."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3.services.listen_state import ListenState


class ListenStateTests(SynchronousTestCase):

    def setUp(self):
        self.state = ListenState()
        self.state.handshake({"dchat", "ichat"})

    def test_after_a_handshake_nothing_is_known_until_it_settles(self):
        self.assertFalse(self.state.may_speak("dchat"))
        self.assertTrue(self.state.may_speak("notours"))
        self.state.settled()
        self.assertTrue(self.state.may_speak("dchat"))

    def test_startup_chanlist_confirms_without_a_second_listen(self):
        self.assertEqual(self.state.chanlist({"dchat": ["H", 0], "x": ["H", 0]}, {"dchat", "ichat"}),
                         (["dchat"], []))
        self.assertTrue(self.state.may_speak("dchat"))
        self.assertFalse(self.state.may_speak("ichat"))

    def test_refused_waits_for_the_chanlist_not_the_timer(self):
        self.state.refused("dchat")
        self.state.settled()
        self.assertFalse(self.state.may_speak("dchat"))
        self.assertEqual(self.state.chanlist({"dchat": ["H", []]}, {"dchat"}), (["dchat"], ["dchat"]))
        self.assertTrue(self.state.may_speak("dchat"))

    def test_a_channel_counts_once_per_connection_unless_deleted(self):
        self.state.settled()
        wanted = {"dchat"}
        self.assertEqual(self.state.chanlist({"dchat": ["H", 0]}, wanted), (["dchat"], ["dchat"]))
        self.assertEqual(self.state.chanlist({"dchat": ["H", 0]}, wanted), ([], []))
        self.assertEqual(self.state.chanlist({"dchat": 0}, wanted), ([], []))
        self.assertEqual(self.state.chanlist({"dchat": ["H", 0]}, wanted), (["dchat"], ["dchat"]))
        self.state.handshake(wanted)
        self.state.settled()
        self.assertEqual(self.state.chanlist({"dchat": ["H", 0]}, wanted), (["dchat"], ["dchat"]))

    def test_junk_names_are_ignored(self):
        self.assertEqual(self.state.chanlist({3: ["H", 0], ("a",): 1}, {"dchat"}), ([], []))
