"""Actions send tasks by name; every name they send must be a task the workers register."""

from __future__ import annotations

import ast
from pathlib import Path

from dashboard import tasknames
from perfmon.celery import app

ROOT = Path(__file__).resolve().parents[2]


def _sent_names() -> set[str]:
    """Every first argument of send_task(...) in dashboard/ and perfmon/, resolved through tasknames."""
    names = set()
    for path in [*ROOT.joinpath("dashboard").rglob("*.py"), *ROOT.joinpath("perfmon").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "send_task":
                first = node.args[0]
                if isinstance(first, ast.Constant):
                    names.add(first.value)
                elif isinstance(first, ast.Name):
                    names.add(getattr(tasknames, first.id))
                else:
                    raise AssertionError(f"{path}:{node.lineno}: send_task with a computed name")
    return names


def test_every_task_name_sent_is_registered() -> None:
    app.loader.import_default_modules()
    sent = _sent_names()
    assert {tasknames.RUN_JOB, tasknames.VALIDATE_MODEL_VERSION} <= sent
    assert sent <= set(app.tasks), sorted(sent - set(app.tasks))


def test_the_django_side_never_imports_the_celery_tasks() -> None:
    for path in ROOT.joinpath("dashboard").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("workers.tasks"):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}")
            if isinstance(node, ast.Import) and any(a.name.startswith("workers.tasks") for a in node.names):
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno} imports workers.tasks")
