"""scripts/gpu-check, the one-go GPU verification: on a node without CUDA it must say so and stop."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="this node has CUDA: scripts/gpu-check runs the real checks"
)
def test_without_a_gpu_it_writes_a_report_saying_so_and_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(ROOT / "scripts" / "gpu-check"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = json.loads((tmp_path / "gpu-report.json").read_text())
    assert report["checks"] == []
    assert "no GPU to check" in report["note"]
    assert "no GPU to check" in (tmp_path / "gpu-report.md").read_text()


def test_the_gpu_only_passes_it_runs_are_declared_and_plan_on_a_hopper_gpu() -> None:
    """The recipes gpu-check runs on a GPU are checked here, where there is none: each names a
    declared pass with valid parameters that a compute-capability-9.0 GPU is allowed to run."""
    import importlib.util
    import sys

    from workers.passes import PASSES, plan

    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    gpu_check = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = gpu_check  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(gpu_check)
    finally:
        del sys.modules["gpu_check"]
    names = set()
    for recipe in gpu_check.GPU_ONLY_PASSES:
        steps = plan(PASSES, recipe, device="cuda:0", has_labeled_data=True, capability=(9, 0))
        names |= {step.decl.name for step in steps}
    gpu_only = {name for name, decl in PASSES.items() if decl.devices == ("cuda",)}
    assert gpu_only <= names  # every GPU-only pass is exercised
