from __future__ import annotations

from tests.hostile.tally import TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if TALLY.cases:
        terminalreporter.write_line(TALLY.line())
        for case_id in TALLY.accepted:
            terminalreporter.write_line(f"  accepted: {case_id}")
        for case_id in TALLY.server_errors:
            terminalreporter.write_line(f"  5xx: {case_id}")
