from __future__ import annotations

import pytest

from tests.e2e.stack import start_stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """One running `perfmon up` shared by the end-to-end tests that only use it."""
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()
