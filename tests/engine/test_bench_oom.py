"""Out of memory at one batch size ends that point and the sweep carries on.

The allocation failure is real: a child process caps its own address space with RLIMIT_AS, then
benchmarks a batch whose input alone needs 16 GB, between two batches that fit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from workers.bench import BenchSpec, run_benchmark
from workers.zoo import InputSpec

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, resource, sys
    import torch
    from torch import nn
    from workers.bench import BenchSpec, run_benchmark
    from workers.zoo import InputSpec

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    torch.set_num_threads(1)
    # 4 MB per sample: batch 2 needs 8 MB, batch 4096 needs 16 GB for its input alone.
    wide = InputSpec(shape=(None, 1_000_000), dtype="float32", low=0.0, high=1.0)
    spec = BenchSpec(batch_sizes=(2, 4096, 1), iterations=5, warmup_iterations=1, threads=1, time_budget_s=0.3)
    # Everything torch needs is mapped by now; leave 512 MB of headroom for the batches that fit.
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + 512 * 2**20, hard))
    result = run_benchmark(nn.ReLU(), wide, spec)
    json.dump(result.to_json(), sys.stdout)
    """
)


def test_an_absurd_batch_runs_out_of_memory_and_the_sweep_carries_on() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = json.loads(done.stdout)["runs"]

    assert [r["batch_size"] for r in runs] == [2, 4096, 1]
    failed = runs[1]
    assert failed["error"] == "out of memory at batch 4096"
    assert "allocate" in failed["error_detail"]  # the allocator's own words, e.g. "can't allocate memory"
    assert failed["iterations"] == 0 and "latency_ms" not in failed
    for ok in (runs[0], runs[2]):
        assert ok["error"] is None
        # Measured (the 0.3 s budget may end before the 5 asked for on a busy machine).
        assert ok["iterations"] >= 1 and ok["latency_ms"]["p50"] > 0
    # The batch after the failure ran in the memory the failed one gave back.
    assert runs[2]["peak_memory_bytes"] < 256 * 2**20


class Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("shape mismatch in layer 3")


def test_other_errors_are_not_mistaken_for_out_of_memory() -> None:
    spec = BenchSpec(batch_sizes=(1, 2), iterations=5, threads=1, time_budget_s=0.2)
    result = run_benchmark(Broken(), InputSpec(shape=(None, 4), dtype="float32", low=0.0, high=1.0), spec)
    errors = [run.error for run in result.runs]
    assert errors == [
        "ValueError at batch 1: shape mismatch in layer 3",
        "ValueError at batch 2: shape mismatch in layer 3",
    ]
    assert result.ok_points == 0


class Balloon(nn.Module):
    """Allocates ``bytes_per_sample`` on the input's device for each sample of the batch."""

    def __init__(self, bytes_per_sample: int) -> None:
        super().__init__()
        self.bytes_per_sample = bytes_per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones(x.shape[0] * self.bytes_per_sample, dtype=torch.uint8, device=x.device)


@pytest.mark.gpu
def test_a_gpu_out_of_memory_frees_the_gpu_for_the_next_batch() -> None:
    free_bytes, _ = torch.cuda.mem_get_info(0)
    # One sample takes a tenth of the free GPU memory: batch 64 cannot fit, batch 2 can.
    spec = BenchSpec(batch_sizes=(64, 2), iterations=5, device="cuda:0", time_budget_s=0.5)
    small = InputSpec(shape=(None, 4), dtype="float32", low=0.0, high=1.0)
    runs = run_benchmark(Balloon(free_bytes // 10), small, spec).to_json()["runs"]
    assert runs[0]["error"] == "out of memory at batch 64"
    assert runs[1]["error"] is None and runs[1]["iterations"] >= 5
    assert runs[1]["peak_memory_bytes"] >= 2 * (free_bytes // 10)
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated(0) < free_bytes // 10  # nothing of the failed batch is left
