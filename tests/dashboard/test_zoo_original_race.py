"""Two first optimizations of a zoo model finishing at once both find no registered original: only
one "zoo original" version may come of it, and both jobs' results hang off that one."""

from __future__ import annotations

import threading
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from dashboard import registry_actions
from dashboard.models import Job, ModelVersion
from dashboard.models.registry import ZOO_ORIGINAL
from dashboard.permissions import Role, grant

pytestmark = pytest.mark.django_db(transaction=True)
MODEL = "SmallResNet"  # untrained: its original is the seeded build, no training needed


@pytest.fixture
def jobs(tmp_path):
    user = get_user_model().objects.create_user("olga")
    grant(user, Role.OPERATOR)
    with override_settings(DATA_DIR=tmp_path), mock.patch.object(registry_actions, "_enqueue_validation"):
        yield [Job.objects.create(kind="optimize", model_name=MODEL, owner=user) for _ in range(2)]


def originals() -> list[ModelVersion]:
    return list(ModelVersion.objects.filter(model__name=MODEL, produced_by=ZOO_ORIGINAL))


def test_a_second_registration_after_a_forced_race_returns_the_first(jobs) -> None:
    first = registry_actions._zoo_original(jobs[0])
    # The second job looked before the first registered: it finds nothing and inserts too.
    with mock.patch.object(registry_actions, "_existing_zoo_original", side_effect=[None, first]):
        second = registry_actions._zoo_original(jobs[1])
    assert second.pk == first.pk and first.version == 1
    assert [v.pk for v in originals()] == [first.pk]
    assert ModelVersion.objects.filter(model__name=MODEL).count() == 1
    assert registry_actions.model_store().has(first.sha256), "the loser must not delete the winner's file"


def test_two_concurrent_first_registrations_make_one_original(jobs) -> None:
    # Both threads look (and find nothing) before either inserts: the barrier holds the first
    # look of each until both have made it.
    looked = threading.Barrier(2, timeout=120)
    real_lookup = registry_actions._existing_zoo_original
    first_look = threading.local()

    def lookup(name: str):
        found = real_lookup(name)
        if not getattr(first_look, "done", False):
            first_look.done = True
            looked.wait()
        return found

    results: dict[int, object] = {}

    def register(index: int) -> None:
        try:
            results[index] = registry_actions._zoo_original(jobs[index])
        except BaseException as exc:  # reported below, in the test's thread
            results[index] = exc
        finally:
            connection.close()

    with mock.patch.object(registry_actions, "_existing_zoo_original", side_effect=lookup):
        threads = [threading.Thread(target=register, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    assert results[0].pk == results[1].pk  # type: ignore[attr-defined]
    assert len(originals()) == 1 and originals()[0].version == 1


def test_the_database_refuses_a_second_original_of_one_model(jobs) -> None:
    first = registry_actions._zoo_original(jobs[0])
    duplicate = {f.name: getattr(first, f.name) for f in ModelVersion._meta.concrete_fields if f.name != "id"}
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.create(**{**duplicate, "version": 2})
