"""names.fold: the one rule by which MUD, channel and user names compare."""

from twisted.trial.unittest import SynchronousTestCase

from intermud3.names import fold


class FoldTests(SynchronousTestCase):
    def test_case_differences_fold_together(self):
        self.assertEqual(fold("ALICE"), fold("alice"))
        self.assertEqual(fold("Dead Souls"), "dead souls")

    def test_casefold_not_lower(self):
        # lower() leaves the German sharp s alone; casefold() matches it with "ss".
        self.assertEqual(fold("Straße"), fold("STRASSE"))

    def test_nobody_is_none(self):
        for value in (0, "", None, 5, ["x"]):
            self.assertIsNone(fold(value))
