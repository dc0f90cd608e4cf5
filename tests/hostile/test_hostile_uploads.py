"""POST /api/models against the hostile corpus (tests/hostile/uploads.py), through the real API.

Every case must answer 400 with {"error": "<reason>: ..."}, run nothing (the marker a payload would
create stays absent), store nothing (no row, no file in the model store), and the zip bombs must not
grow the web process's memory by more than PEAK_GROWTH_LIMIT_BYTES (the bug cost 8.5 GB).
"""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dashboard.models import ApiToken, ModelVersion, RegisteredModel
from dashboard.permissions import Role, grant
from tests.hostile.tally import TALLY
from tests.hostile.uploads import UPLOADS, Upload, write_bombs

# Generous on purpose: the checks read a few MiB of a bomb at most; the bug inflated 4 GiB.
PEAK_GROWTH_LIMIT_BYTES = 300 << 20


@pytest.fixture(scope="session")
def bombs(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("bombs")
    write_bombs(directory)
    return directory


@pytest.fixture
def data_dir(tmp_path, settings) -> Path:
    settings.DATA_DIR = tmp_path / "data"
    settings.DATA_DIR.mkdir()
    return settings.DATA_DIR


@pytest.fixture
def bearer(django_user_model) -> dict:
    user = django_user_model.objects.create_user("mallory")  # no password: hashing one costs seconds
    grant(user, Role.OPERATOR)  # hostile input from someone allowed to submit: no 403 hides the check
    _token, secret = ApiToken.issue(user, Role.OPERATOR)
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


def peak_growth(call: Callable[[], object]) -> tuple[object, int, int]:
    """call()'s result, the peak of Python allocations during it (tracemalloc) and the peak growth
    of the process's resident memory (psutil, sampled every 5 ms by a thread), both in bytes."""
    process = psutil.Process()
    baseline = process.memory_info().rss
    highest = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            highest[0] = max(highest[0], process.memory_info().rss)
            done.wait(0.005)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    tracemalloc.start()
    try:
        result = call()
    finally:
        traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        done.set()
        sampler.join()
    return result, traced_peak, max(highest[0], process.memory_info().rss) - baseline


@pytest.mark.django_db
@pytest.mark.parametrize("case", UPLOADS, ids=[case.id for case in UPLOADS])
def test_hostile_upload_is_refused_and_leaves_nothing(
    request, case: Upload, client, bearer, data_dir
) -> None:
    marker = data_dir / "pwned"
    # Only bomb cases wait for the session's large archives to be built (~15 s on a busy machine).
    bombs = request.getfixturevalue("bombs") if case.bomb else data_dir
    data = case.make(marker, bombs)
    body = {"file": SimpleUploadedFile(case.filename, data), "name": "hostile", **case.fields}

    def post():
        return client.post("/api/models", body, **bearer)

    try:
        if case.bomb:
            response, traced_bytes, rss_bytes = peak_growth(post)
            TALLY.peak_growth_bytes[case.id] = max(traced_bytes, rss_bytes)
        else:
            response = post()
    except BaseException:
        TALLY.record(case.id, None)
        raise
    TALLY.record(case.id, response.status_code)

    assert response.status_code == 400, response.content[:500]
    error = response.json()["error"]
    assert error.startswith(f"{case.reason}: "), error
    assert not marker.exists(), "the payload ran"
    assert RegisteredModel.objects.count() == 0 and ModelVersion.objects.count() == 0
    assert [p for p in (data_dir / "models").rglob("*") if p.is_file()] == []
    if case.bomb:
        assert traced_bytes < PEAK_GROWTH_LIMIT_BYTES, f"Python allocations peaked at {traced_bytes} bytes"
        assert rss_bytes < PEAK_GROWTH_LIMIT_BYTES, f"resident memory grew by {rss_bytes} bytes"


def test_the_corpus_is_what_the_issue_lists() -> None:
    # Guards against cases silently dropped from the corpus: the issue's routes are all here.
    ids = {case.id for case in UPLOADS}
    assert ".pt2 archive_format deflating to 4 GiB" in ids
    assert ".pt2 sample inputs: data.pkl deflating to 1 GiB" in ids
    assert len(UPLOADS) == len(ids) >= 60
