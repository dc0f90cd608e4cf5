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
