"""Latency benchmark of one model: a batch-size sweep, then optional concurrency and multi-GPU tests.

Follows torch.utils.benchmark's Timer (warm up, synchronise CUDA before reading results, keep raw
times, report IQR; a run is flagged unstable when the median's 95% CI is wider than +/-5%) and MLPerf LoadGen's run rules (a minimum count and duration, then
stop once the median is known to +/-2% at 95% confidence, or when the time budget ends).
"""

from __future__ import annotations

import contextlib
import copy
import traceback
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from workers.bench.env import capture_env
from workers.bench.load import measure_concurrency, measure_replicas
from workers.bench.memory import PeakMemory, free_memory, is_out_of_memory
from workers.bench.progress import Cancelled, Progress
from workers.bench.result import BenchResult, ConcurrencyRun, MultiDeviceRun, RunTimes
from workers.bench.runtimes import (
    CompileCall,
    Prepared,
    compile_call,
    compile_scope,
    compiled_graphs,
    prepare_runtime,
)
from workers.bench.spec import MAX_BATCH_SIZE, BenchSpec
from workers.bench.timing import BlockTimer, time_block_cpu, time_block_cuda, time_point
from workers.zoo import InputSpec

DTYPES: dict[str, torch.dtype] = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# The longest error text kept from an allocator message; they can carry whole stack dumps.
_ERROR_DETAIL_CHARS = 500
# The longest traceback kept for a point that raised; the innermost frames (the end) are kept.
_TRACEBACK_CHARS = 4000
# The longest one-line error message of a point that raised.
_ERROR_CHARS = 300

__all__ = [
    "MAX_BATCH_SIZE",
    "BenchResult",
    "BenchSpec",
    "Cancelled",
    "ConcurrencyRun",
    "MultiDeviceRun",
    "RunTimes",
    "run_benchmark",
]


def cast_input(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Floating inputs take the benchmark's precision; integer inputs (token ids) stay as they are."""
    return x.to(dtype) if x.is_floating_point() else x


def _device_scope(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    # CUDA events and the default stream belong to the current device, so make the target current.
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _point_error(exc: Exception, where: str) -> tuple[str, str]:
    """(one-line message, detail) for a point that raised: the allocator's words for an
    out-of-memory, else the exception's type and message with its traceback as the detail."""
    if is_out_of_memory(exc):
        return f"out of memory at {where}", str(exc)[:_ERROR_DETAIL_CHARS]
    message = f"{type(exc).__name__} at {where}: {exc}"
    if len(message) > _ERROR_CHARS:
        message = message[: _ERROR_CHARS - 1] + "…"
    detail = "".join(traceback.format_exception(exc))
    return message, detail[-_TRACEBACK_CHARS:]


class _Run:
    """The state shared by the phases of one ``run_benchmark`` call."""

    def __init__(
        self, prepared: Prepared, input_spec: InputSpec, spec: BenchSpec, progress: Progress
    ) -> None:
        assert spec.device is not None  # resolved by BenchSpec
        self.prepared = prepared
        self.model = prepared.module
        self.input_spec = input_spec
        self.spec = spec
        self.device = torch.device(spec.device)
        # ONNX Runtime takes host arrays and returns them: host inputs, host clock.
        self.input_device = torch.device("cpu") if prepared.host_io else self.device
        self.dtype = DTYPES[spec.precision]
        self.progress = progress
        on_cuda = self.device.type == "cuda" and not prepared.host_io
        self.timer: BlockTimer = time_block_cuda if on_cuda else time_block_cpu
        # torch.compile: the batch sizes already compiled (the concurrency test reuses batch 1's).
        self.compiled: set[int] = set()
        # The same inputs on every run and every node, without disturbing the caller's RNG.
        self.generator = torch.Generator().manual_seed(0)

    def _input(self, batch_size: int, device: torch.device, generator: torch.Generator) -> torch.Tensor:
        return cast_input(self.input_spec.make(batch_size, device=device, generator=generator), self.dtype)

    def _tick_for(self, prefix: str) -> Callable[[str], None]:
        last = [""]

        def tick(phase: str) -> None:
            text = f"{prefix}: {phase}"
            self.progress.step(text, force=text != last[0])  # a new phase is always reported
            last[0] = text

        return tick

    def _compile(self, batch_size: int, x: torch.Tensor) -> CompileCall | None:
        """torch.compile's first call at this batch size, outside warm-up and timing; None when
        nothing compiles (another runtime, or this batch size is compiled already)."""
        if not self.prepared.compiles or batch_size in self.compiled:
            return None
        self.progress.step(f"batch {batch_size}: compiling ({self.spec.compile_mode})", force=True)
        call = compile_call(self.model, x, self.spec.compile_mode)
        self.compiled.add(batch_size)
        return call

    def batch_point(self, batch_size: int) -> RunTimes:
        free_memory(self.device)  # a previous point's cache must not count as this one's peak
        memory = PeakMemory(self.device)
        memory.start()
        self.progress.start_phase(f"batch {batch_size}: warm-up")
        failure = None
        compiled = late_graphs = None
        try:
            x = self._input(batch_size, self.input_device, self.generator)
            compiled = self._compile(batch_size, x)
            graphs_before = compiled_graphs() if self.prepared.compiles else None
            timed = time_point(self.model, x, self.spec, self.timer, self._tick_for(f"batch {batch_size}"))
            if graphs_before is not None:
                # Should stay 0: a recompile during warm-up or timing (a guard that failed) would
                # count compile time as latency, so it is recorded rather than hidden.
                late_graphs = (compiled_graphs() or 0) - graphs_before
        except Cancelled:
            raise
        except Exception as exc:  # any failure ends this point only; the sweep goes on
            failure = _point_error(exc, f"batch {batch_size}")
        # Freed here, outside the except block: the traceback holds the failed pass's tensors.
        x = None  # noqa: F841
        if failure is not None:
            free_memory(self.device)
            return RunTimes(batch_size, error=failure[0], error_detail=failure[1])
        return RunTimes(
            batch_size,
            compile_s=compiled.compile_s if compiled else None,
            compiled_graphs=compiled.graphs if compiled else None,
            graphs_compiled_while_timing=late_graphs,
            times_ms=timed.times_ms,
            stop_reason=timed.stop_reason,
            warmup_iterations=timed.warmup_iterations,
            warmup_settled=timed.warmup_settled,
            timed_s=timed.timed_s,
            off_cpu_fraction=timed.off_cpu_fraction,
            memory=memory.stop(),
        )

    def concurrency_point(self, clients: int) -> ConcurrencyRun:
        self.progress.start_phase(f"concurrency {clients}")

        def make_input(i: int) -> torch.Tensor:
            return self._input(1, self.input_device, torch.Generator().manual_seed(1 + i))

        failure = None
        try:
            # Compiled once here, not by the first client thread while the others wait on it.
            self._compile(1, make_input(0))
            times_ms, wall_s = measure_concurrency(
                self.model,
                make_input,
                self.device,
                clients,
                self.spec.load_duration_s,
                self.spec.threads or 1,
                lambda: self.progress.step(),
            )
        except Cancelled:
            raise
        except Exception as exc:
            failure = _point_error(exc, f"concurrency {clients}")
        if failure is not None:
            free_memory(self.device)
            return ConcurrencyRun(clients, error=failure[0], error_detail=failure[1])
        return ConcurrencyRun(clients, times_ms=tuple(times_ms), wall_s=wall_s)

    def replicas(self) -> list[tuple[torch.device, nn.Module]]:
        out = []
        for name in self.spec.devices:
            d = torch.device(name)
            out.append((d, self.model if d == self.device else copy.deepcopy(self.model).to(d)))
        return out

    def multi_device_point(
        self, batch_size: int, replicas: list[tuple[torch.device, nn.Module]]
    ) -> MultiDeviceRun:
        names = tuple(self.spec.devices)
        self.progress.start_phase(f"devices x{len(names)}, batch {batch_size}")
        failure = None
        try:
            # Each replica gets its own input stream, drawn from its own seed.
            work = [
                (d, m, self._input(batch_size, d, torch.Generator().manual_seed(i)))
                for i, (d, m) in enumerate(replicas)
            ]
            duration_s, threads = self.spec.load_duration_s, self.spec.threads or 1
            # The baseline is measured the same way as the joint run, so their ratio is fair.
            single, single_wall_s = measure_replicas(
                work[:1], duration_s, threads, lambda: self.progress.step()
            )
            per_device, wall_s = measure_replicas(work, duration_s, threads, lambda: self.progress.step())
        except Cancelled:
            raise
        except Exception as exc:
            failure = _point_error(exc, f"batch {batch_size} on {len(names)} devices")
        work = []  # the inputs go before memory is given back
        if failure is not None:
            for d, _ in replicas:
                free_memory(d)
            return MultiDeviceRun(batch_size, names, error=failure[0], error_detail=failure[1])
        return MultiDeviceRun(
            batch_size,
            names,
            single_times_ms=tuple(single[0]),
            single_wall_s=single_wall_s,
            per_device_ms=tuple(tuple(t) for t in per_device),
            wall_s=wall_s,
        )


def _phase_weights_s(spec: BenchSpec) -> list[float]:
    """The longest each phase may take, in the order they run; progress is time over these."""
    weights = [spec.time_budget_s] * len(spec.batch_sizes)
    weights += [spec.load_duration_s] * len(spec.concurrency)
    if spec.devices:
        weights += [2 * spec.load_duration_s] * len(spec.batch_sizes)
    return weights


def run_benchmark(
    model: nn.Module,
    input_spec: InputSpec,
    spec: BenchSpec,
    *,
    on_progress: Callable[[float, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BenchResult:
    """Time ``model`` forward passes for each batch size in ``spec``, then the concurrency and
    multi-GPU tests it asks for. Latencies are ms per forward pass.

    The model is moved to ``spec.device`` and cast to ``spec.precision`` in place, put in eval
    mode and wrapped for ``spec.runtime`` (workers.bench.runtimes): with torch.compile each batch
    size is compiled by one call before its warm-up, timed apart as that point's ``compile_s``; with
    ONNX Runtime the model is exported and its outputs checked against torch's before the sweep
    (a failed export or check raises ``ValueError``). ``env["runtime"]`` says what ran. torch's CPU thread count is set to ``spec.threads`` for the run and restored afterwards.
    Raises ``ValueError`` if this node cannot run the spec (no CUDA, too few GPUs, no bf16).
    Any exception at one point (out of memory or not) becomes that point's ``error`` (with the
    traceback in ``error_detail``) and the run goes on; the result is then ``partial``.
    ``on_progress`` receives (fraction done 0..1, step text) from the calling thread; ``should_stop``
    is polled at the same moments and ``Cancelled`` is raised when it returns true, carrying the
    points finished so far as ``Cancelled.result`` (``cancelled=True``).
    """
    spec.check_supported()
    progress = Progress(_phase_weights_s(spec), on_progress, should_stop)
    assert spec.threads is not None and spec.device is not None  # resolved by BenchSpec
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(spec.threads)
    try:
        env = capture_env(spec.device, spec.threads, spec.precision, spec.devices)
        if spec.runtime == "onnxruntime":
            progress.step("exporting to ONNX and checking its outputs against torch's", force=True)
        prepared = prepare_runtime(model, input_spec, spec, DTYPES[spec.precision])
        # What actually ran, which for an ONNX file is ONNX Runtime whatever the spec said.
        env.update(prepared.env)
        run = _Run(prepared, input_spec, spec, progress)
        # Filled point by point, so that a cancellation can hand back what was measured.
        runs: list[RunTimes] = []
        concurrency_runs: list[ConcurrencyRun] = []
        multi_device_runs: list[MultiDeviceRun] = []

        def result(cancelled: bool = False) -> BenchResult:
            return BenchResult(
                spec=spec,
                env=env,
                runs=tuple(runs),
                concurrency_runs=tuple(concurrency_runs),
                multi_device_runs=tuple(multi_device_runs),
                cancelled=cancelled,
            )

        try:
            with torch.inference_mode(), _device_scope(run.device), compile_scope(spec):
                for b in spec.batch_sizes:
                    runs.append(run.batch_point(b))
                for c in spec.concurrency:
                    concurrency_runs.append(run.concurrency_point(c))
                if spec.devices and any(r.error is None for r in runs):
                    replicas = run.replicas()
                    for r in [r for r in runs if r.error is None]:
                        multi_device_runs.append(run.multi_device_point(r.batch_size, replicas))
        except Cancelled as exc:
            exc.result = result(cancelled=True)
            raise
        progress.finish()
    finally:
        torch.set_num_threads(previous_threads)
    return result()
