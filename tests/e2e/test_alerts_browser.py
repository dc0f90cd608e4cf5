"""An alert firing and resolving, seen on the dashboard of the real stack: the browser channel's
toast (sent by the stack's maintenance worker through the channel layer) and the firing count in
the navigation. The alert is changed the way the evaluator changes it, by dispatch.alert_changed,
in a `perfmon manage shell` against the stack's own database and Redis."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.e2e.stack import logged_in_page

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.stack]

SETUP = """
from django.utils import timezone
from dashboard.models import Channel, Rule
channel = Channel.objects.create(kind="browser", name="e2e toasts")
# Disabled: the stack's evaluator leaves it alone (its deployment does not exist); this test moves
# its alert itself, as the evaluator would.
rule = Rule.objects.create(name="slow digits", target={"deployment": "digits-prod", "stat": "mean", "window": "last_5"},
                           threshold=50, severity="critical", enabled=False)
rule.channels.add(channel)
"""

MOVE = """
from django.db import transaction
from django.utils import timezone
from dashboard.alerting import dispatch
from dashboard.models import Alert, AlertEvent, Rule
rule = Rule.objects.get(name="slow digits")
with transaction.atomic():
    now = timezone.now()
    alert = Alert.objects.filter(rule=rule, is_open=True).first() or Alert(rule=rule, fingerprint="e2e", pending_since=now)
    before = alert.state
    alert.state, alert.value = "{state}", {value}
    if alert.state == "firing":
        alert.started_at = now
    else:
        alert.is_open, alert.resolved_at = False, now
    alert.save()
    event = AlertEvent.objects.create(alert=alert, from_state=before or "pending", to_state=alert.state, value={value})
    dispatch.alert_changed(alert, event)
print("alert", alert.pk)
"""


def shell(stack, code: str) -> str:
    done = stack.cli("manage", "shell", "-c", textwrap.dedent(code))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_firing_alert_toasts_on_the_dashboard_and_counts_in_the_navigation(stack, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    shell(stack, SETUP)
    with logged_in_page(stack, browser) as page:
        page.wait_for_selector("#connection-state[data-state=live]")
        # The stack is shared with other browser tests, whose alerts may be firing already.
        before = int(page.get_attribute("#alert-count", "data-count"))

        shell(stack, MOVE.format(state="firing", value=63.2))
        toast = page.wait_for_selector(".toast[data-state=firing]")
        assert "slow digits" in toast.text_content() and "firing" in toast.text_content()
        page.wait_for_selector(f"#alert-count.firing[data-count='{before + 1}']")
        page.screenshot(path=str(ARTIFACTS / "alert-toast-firing.png"))

        shell(stack, MOVE.format(state="resolved", value=41.0))
        resolved = page.wait_for_selector(".toast[data-state=resolved]")
        assert "41" in resolved.text_content()
        page.wait_for_selector(f"#alert-count[data-count='{before}']")
        page.screenshot(path=str(ARTIFACTS / "alert-toast-resolved.png"))

        # A page opened now shows the count from the server, and the deliveries on the channels page.
        page.goto(stack.url + "/channels/")
        assert page.get_attribute("#alert-count", "data-count") == str(before)
        rows = page.locator("#deliveries-table tbody tr", has_text="e2e toasts")
        assert rows.count() == 2
        assert rows.locator("td.delivery-sent").count() == 2
        page.screenshot(path=str(ARTIFACTS / "channels.png"), full_page=True)
        assert page.script_errors == []
