"""The one place the role check will decide who reads command lines."""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser

from dashboard.process_commands import for_viewer
from tests.dashboard.base import BaseTestCase

SAMPLE = {
    "host": {"top_processes": {"by_cpu": [{"pid": 1, "command": "app --token=***"}], "by_rss": []}},
    "gpus": [{"processes": [{"pid": 2, "command": "python train.py"}]}, {"processes": None}],
}


class ForViewerTestCase(BaseTestCase):
    def test_a_logged_in_user_sees_command_lines(self):
        self.assertIs(for_viewer(self.alice, SAMPLE), SAMPLE)

    def test_a_viewer_without_the_right_sees_none_and_the_sample_is_untouched(self):
        hidden = for_viewer(AnonymousUser(), SAMPLE)
        self.assertEqual(hidden["host"]["top_processes"]["by_cpu"][0], {"pid": 1, "command": None})
        self.assertEqual(hidden["gpus"][0]["processes"][0], {"pid": 2, "command": None})
        self.assertEqual(SAMPLE["gpus"][0]["processes"][0]["command"], "python train.py")
