"""torch.compile (inductor), with CUDA graphs through mode "reduce-overhead" on a GPU. Compilation
happens on the first calls; its time is reported apart from the steady-state latency the harness
measures afterwards."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import torch

from workers.passes.candidate import Candidate
from workers.passes.context import PassContext, PassOutcome


def torch_compile(candidate: Candidate, params: Mapping[str, Any], ctx: PassContext) -> PassOutcome:
    mode = params["mode"]
    module = candidate.module.to(ctx.device).eval()
    compiled = torch.compile(module, mode=mode, dynamic=False)
    ctx.step(f"torch.compile ({mode}): compiling")
    started = time.perf_counter()
    with torch.inference_mode():
        # The batch sizes the job will time each compile once (dynamic=False); the first is warmed here.
        compiled(ctx.example_batch(ctx.extra.get("first_batch_size", 1)))
        if ctx.device.startswith("cuda"):
            torch.cuda.synchronize()
    compile_s = time.perf_counter() - started
    notes = [
        f"first compile took {compile_s:.1f} s (not counted in the latencies); each new batch size compiles once"
    ]
    graphs = mode == "reduce-overhead" and ctx.device.startswith("cuda")
    if graphs:
        notes.append("CUDA graphs replay the whole forward pass as one launch")
    backend = f"torch.compile inductor ({mode}{', CUDA graphs' if graphs else ''})"
    return PassOutcome(
        candidate.after("torch_compile", module=compiled, backend=backend),
        notes=tuple(notes),
        details={"compile_s": compile_s, "mode": mode},
    )
