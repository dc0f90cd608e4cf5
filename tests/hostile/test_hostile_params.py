"""POST /api/jobs and GET /jobs/compare/ against hostile parameters: each a 400 with a reason, never a 500.

The job cases run against a world where "valid-onnx" has a ready version 1, so that model@version
parsing really reaches the database (a 500 there was int() of "²" and SQLite's INTEGER overflow).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from dashboard.models import ApiToken, Job, ModelVersion, RegisteredModel
from dashboard.permissions import Role, grant
from tests.hostile.tally import TALLY


def job(**fields) -> str:
    return json.dumps({"kind": "benchmark", "model": "SimpleModel", **fields})


def params(text: str) -> str:
    """A submission whose params are the raw JSON text (NaN, Infinity and long numbers kept as sent)."""
    return '{"kind": "benchmark", "model": "SimpleModel", "params": ' + text + "}"


DEEP = "[" * 100_000 + "]" * 100_000
JOB_BODIES: list[tuple[str, str | bytes]] = [
    ("version as a superscript digit", job(model="valid-onnx@²")),
    ("version as an Arabic-Indic digit", job(model="valid-onnx@٣")),
    ("version of 5,000 digits", job(model="valid-onnx@" + "9" * 5000)),
    ("version past SQLite's INTEGER", job(model="valid-onnx@99999999999999999999")),
    ("negative version", job(model="valid-onnx@-1")),
    ("empty name before @", job(model="@1")),
    ("lone surrogate as model", '{"kind": "benchmark", "model": "\\ud800"}'),
    ("lone surrogate in a registered name", '{"kind": "benchmark", "model": "valid-onnx\\udfff@1"}'),
    ("lone surrogate as node", '{"kind": "benchmark", "model": "SimpleModel", "node": "\\ud800"}'),
    ("lone surrogate as kind", '{"kind": "\\ud800", "model": "SimpleModel"}'),
    ("lone surrogate as a params key", params('{"\\ud800": 1}')),
    ("model of 100,000 characters", job(model="m" * 100_000)),
    ("node of 100,000 characters", job(node="n" * 100_000)),
    ("NaN time budget", params('{"time_budget_s": NaN}')),
    ("Infinity time budget", params('{"time_budget_s": Infinity}')),
    ("-Infinity time budget", params('{"time_budget_s": -Infinity}')),
    ("1e400 iterations", params('{"iterations": 1e400}')),
    ("10**30 iterations", params('{"iterations": 1' + "0" * 30 + "}")),
    ("5,000-digit iterations", params('{"iterations": ' + "9" * 5000 + "}")),
    ("batch size 10**20", params('{"batch_sizes": [100000000000000000000]}')),
    ("negative threads", params('{"threads": -1}')),
    ("params nested 100k deep", params('{"batch_sizes": ' + DEEP + "}")),
    ("body nested 100k deep", DEEP),
    ("unknown params key", params('{"rm -rf": 1}')),
    ("iterations as a string", params('{"iterations": "200"}')),
    ("iterations as a boolean", params('{"iterations": true}')),
    ("iterations as a float", params('{"iterations": 2.5}')),
    ("batch sizes as a string", params('{"batch_sizes": "32"}')),
    ("device with a shell command", params('{"device": "cuda:0; rm -rf /"}')),
    ("params as a list", params("[1, 2]")),
    ("params as a string", params('"fast"')),
    ("model as a number", '{"kind": "benchmark", "model": 5}'),
    ("model as null", '{"kind": "benchmark", "model": null}'),
    ("kind as a list", '{"kind": ["benchmark"], "model": "SimpleModel"}'),
    ("node as a number", job(node=5)),
    ("body as a list", "[1, 2]"),
    ("body empty", ""),
    ("body not JSON", "kind=benchmark&model=SimpleModel"),
    ("body invalid UTF-8", b'{"kind": "benchmark", "model": "\xff\xfe"}'),
    ("unknown node", job(node="nowhere")),
]

COMPARE_IDS = [
    "1,²",
    "1,99999999999999999999",
    "²",
    "1,٣",
    "1,-2",
    "1,0x10",
    "1,1e3",
    "9" * 5000,
    "1,\ud800",
    ",".join(str(i) for i in range(1, 20)),
    "1",
]


@pytest.fixture
def bearer(django_user_model) -> dict:
    user = django_user_model.objects.create_user("mallory")  # no password: hashing one costs seconds
    grant(user, Role.OPERATOR)  # hostile input from someone allowed to submit: no 403 hides the check
    model = RegisteredModel.objects.create(name="valid-onnx", owner=user)
    ModelVersion.objects.create(
        model=model, version=1, format="onnx", input_spec={}, sha256="0" * 64, size_bytes=1, status="ready"
    )
    _token, secret = ApiToken.issue(user, Role.OPERATOR)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


@pytest.mark.django_db
@pytest.mark.parametrize("body", [b for _, b in JOB_BODIES], ids=[i for i, _ in JOB_BODIES])
def test_a_hostile_job_submission_is_a_400_with_a_reason(request, client, bearer, body) -> None:
    case_id = f"POST /api/jobs: {request.node.callspec.id}"
    try:
        response = client.post("/api/jobs", body, content_type="application/json", **bearer)
    except BaseException:
        TALLY.record(case_id, None)
        raise
    TALLY.record(case_id, response.status_code)
    assert response.status_code == 400, response.content[:300]
    error = response.json()["error"]
    assert isinstance(error, str) and error
    assert Job.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("ids", COMPARE_IDS, ids=[i[:30] for i in COMPARE_IDS])
def test_hostile_compare_ids_are_a_400_naming_the_problem(client, django_user_model, ids) -> None:
    mallory = django_user_model.objects.create_user("mallory")
    grant(mallory, Role.OPERATOR)
    client.force_login(mallory)
    case_id = f"GET /jobs/compare/?ids={ids[:30]}"
    try:
        # As a browser sends it: UTF-8, percent-encoded (a lone surrogate as its raw bytes).
        response = client.get("/jobs/compare/?ids=" + quote(ids.encode("utf-8", "surrogatepass")))
    except BaseException:
        TALLY.record(case_id, None)
        raise
    TALLY.record(case_id, response.status_code)
    assert response.status_code == 400
    assert response.context["error"]


def test_the_issue_s_parameter_cases_are_in_the_corpus() -> None:
    bodies = [b for _, b in JOB_BODIES]
    assert job(model="valid-onnx@²") in bodies and "1,²" in COMPARE_IDS
    assert "1,99999999999999999999" in COMPARE_IDS
