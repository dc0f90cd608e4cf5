"""Does perfmon's harness agree with torch.utils.benchmark on this CPU?

For SimpleModel and PerformanceTestModel at batch 1 and 32 with 1 thread, measure the harness's p50
and ``torch.utils.benchmark.Timer(...).blocked_autorange(min_run_time=...)``'s median in the same
run, alternating the two (A B A B ...) so drift in the machine's load hits both alike, and print
the median over rounds of harness / Timer for each case; it must stay within 0.95..1.05. Then print the harness's own
overhead per iteration: its p50 for an empty ``nn.Identity`` against Timer's median for the same.

Usage: .venv/bin/python bench/harness_fidelity.py [--rounds 3] [--min-run-time 1.0] [--realtime]

On a busy machine the batch-1 ratios drop below 1: per-iteration percentiles skip the stalls
(preemption, interrupts, a neighbour thrashing the shared cache) that a blocked mean over 10 ms+
blocks averages in. ``off-CPU`` per run and the load average show how busy it was; ``--realtime``
(root) runs the measuring thread under SCHED_FIFO so other processes cannot preempt it, which is
the quiet CPU both tools assume.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.benchmark import Timer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workers import zoo  # noqa: E402
from workers.bench import BenchSpec, run_benchmark  # noqa: E402
from workers.zoo import InputSpec  # noqa: E402

THREADS = 1
CASES = [("SimpleModel", 1), ("SimpleModel", 32), ("PerformanceTestModel", 1), ("PerformanceTestModel", 32)]
LOW, HIGH = 0.95, 1.05


def harness_run(model: nn.Module, input_spec: InputSpec, batch_size: int, min_run_time_s: float) -> dict:
    """One harness run as its result JSON, timed for at least ``min_run_time_s`` like Timer's."""
    spec = BenchSpec(
        batch_sizes=(batch_size,),
        iterations=100,
        threads=THREADS,
        min_duration_s=min_run_time_s,
        time_budget_s=max(10.0, 4 * min_run_time_s),
        max_iterations=200_000,
    )
    return run_benchmark(model, input_spec, spec).to_json()["runs"][0]


def timer_median_ms(model: nn.Module, x: torch.Tensor, min_run_time_s: float) -> float:
    timer = Timer(stmt="model(x)", globals={"model": model, "x": x}, num_threads=THREADS)
    # The harness runs under inference_mode; the mode is thread-local and Timer runs in this thread.
    with torch.inference_mode():
        timer.timeit(number=100)  # Timer's own warm-up is a single call; match the harness's warm-up
        return timer.blocked_autorange(min_run_time=min_run_time_s).median * 1e3


def clock_pair_ns() -> float:
    """The median cost of two back-to-back perf_counter_ns reads, the floor of per-iteration timing."""
    samples = []
    for _ in range(200_000):
        t0 = time.perf_counter_ns()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples)


def compare(
    model: nn.Module, input_spec: InputSpec, batch_size: int, rounds: int, min_run_time_s: float
) -> tuple[float, float, list[float], list[dict]]:
    """(median harness p50 ms, median Timer median ms, per-round ratios, harness runs).

    Each round is a harness run then a Timer run, seconds apart, so each ratio compares the two
    under the same load; the median over rounds discards a round that a burst of load hit.
    """
    model = model.eval()
    x = input_spec.make(batch_size, generator=torch.Generator().manual_seed(0))
    harness, timer, ratios, runs = [], [], [], []
    for _ in range(rounds):
        run = harness_run(model, input_spec, batch_size, min_run_time_s)
        runs.append(run)
        harness.append(run["latency_ms"]["p50"])
        timer.append(timer_median_ms(model, x, min_run_time_s))
        ratios.append(harness[-1] / timer[-1])
    return statistics.median(harness), statistics.median(timer), ratios, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="harness/Timer pairs per case (median taken)")
    parser.add_argument("--min-run-time", type=float, default=0.5, help="seconds per measurement")
    parser.add_argument("--realtime", action="store_true", help="measure under SCHED_FIFO (needs root)")
    args = parser.parse_args()
    if args.realtime:
        # Only this thread: with threads=1 it is the one that runs every forward pass.
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    scheduling = "SCHED_FIFO" if os.sched_getscheduler(0) == os.SCHED_FIFO else "normal"
    load_1m, load_5m, _ = os.getloadavg()
    print(
        f"load average {load_1m:.2f} (1 min), {load_5m:.2f} (5 min) on {os.cpu_count()} CPUs; scheduling {scheduling}"
    )
    print(
        f"torch {torch.__version__}, threads={THREADS}, rounds={args.rounds}, min_run_time={args.min_run_time}s"
    )
    print(
        f"{'model':<22}{'batch':>6}{'harness p50 ms':>16}{'Timer median ms':>17}{'ratio':>8}  rounds; harness runs"
    )
    all_ok = True
    for name, batch_size in CASES:
        entry = zoo.get(name)
        h, t, ratios, runs = compare(
            entry.build(), entry.input_spec, batch_size, args.rounds, args.min_run_time
        )
        ratio = statistics.median(ratios)
        ok = LOW <= ratio <= HIGH
        all_ok &= ok
        # off-CPU: the share of timed wall time the thread was preempted; blocked timing averages
        # those stalls in while per-iteration percentiles skip them, so a busy machine drags the ratio down.
        off_cpu = max(r["off_cpu_fraction"] for r in runs)
        unstable = sum(r["unstable"] for r in runs)
        stops = ",".join(sorted({r["stop_reason"] for r in runs}))
        detail = f"{min(ratios):.3f}..{max(ratios):.3f}; {stops}, unstable {unstable}/{len(runs)}, off-CPU <= {off_cpu:.0%}"
        print(
            f"{name:<22}{batch_size:>6}{h:>16.4f}{t:>17.4f}{ratio:>8.3f}  {detail}{'' if ok else '  OUT OF RANGE'}"
        )

    identity_spec = InputSpec(shape=(None, 1024), dtype="float32", low=0.0, high=1.0)
    h, t, _, _ = compare(nn.Identity(), identity_spec, 1, args.rounds, args.min_run_time)
    print(f"empty model (nn.Identity): harness p50 {h * 1e6:.0f} ns, Timer median {t * 1e6:.0f} ns")
    print(
        f"harness overhead per iteration: {(h - t) * 1e6:.0f} ns (two clock reads: {clock_pair_ns():.0f} ns)"
    )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print("all ratios within 0.95..1.05" if all_ok else "SOME RATIOS OUT OF 0.95..1.05")
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
