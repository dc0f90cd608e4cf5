"""schemathesis against the running app: every operation of the OpenAPI document, every check,
with an operator's token. A 5xx, a response the document does not describe, or a schema-valid
request refused as invalid fails the test; the summary (cases run, failures) is printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from dashboard.models import ApiToken, Node, Role
from dashboard.permissions import grant

pytestmark = pytest.mark.django_db(transaction=True)

# Small enough for about a minute on two busy cores; raise with SCHEMATHESIS_MAX_EXAMPLES.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
CONFIG = Path(__file__).with_name("schemathesis.toml")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


# Every operation's examples take about 160 s on a quiet 2-core machine now that the alerting and
# deployment APIs are in the document: more than the suite's 300 s default leaves for a busy one.
@pytest.mark.timeout(900)
def test_the_api_does_what_its_document_says(live_server, tmp_path):
    user = get_user_model().objects.create_user("schema", password="pw-schema-123")
    grant(user, Role.OPERATOR)
    _token, raw = ApiToken.issue(user, Role.OPERATOR)
    Node.objects.create(name="gpu-node-1", gpu_status="no GPU", info={"cpu_count": 2})
    ARTIFACTS.mkdir(exist_ok=True)
    with override_settings(DATA_DIR=tmp_path):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(CONFIG),
                "run",
                f"{live_server.url}/api/openapi.json",
                "--header",
                f"Authorization: Bearer {raw}",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--workers",
                "1",
                "--seed",
                "1",
                "--request-timeout",
                "60",
                "--no-color",
                "--report",
                "junit",
                "--report-junit-path",
                str(ARTIFACTS / "schemathesis.xml"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # its cache (.schemathesis/) stays out of the checkout
        )
    output = result.stdout + result.stderr
    (ARTIFACTS / "schemathesis.txt").write_text(output)
    summary = [
        line for line in output.splitlines() if re.search(r"\b(passed|failed|generated|cases?)\b", line, re.I)
    ]
    print("\n".join(summary[-8:]))
    assert result.returncode == 0, output[-8000:]
