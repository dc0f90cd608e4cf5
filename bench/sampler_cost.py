"""What the sampler daemon costs: CPU per tick, the process scan, and memory over many ticks.

Prints:
  - host tick: CPU ms per ``HostProbe.sample()`` (process table not rescanned), median of blocks
  - process scan: ms per full scan and us per process (done every 5 s, not every tick)
  - GPU tick: CPU and wall ms per ``Nvml.sample()`` when NVML opens here
  - serialisation: ms per ``NodeSample.to_json()`` + ``json.dumps`` (what publishing pays)
  - the daemon's share of one core at 1 Hz, with the scan amortised over its 5 s period
  - RSS before and after N ticks of the whole ``Sampler.tick()`` with a clock moving 1 s per
    tick (so the process table is rescanned every 5 ticks, as at 1 Hz): memory must stay flat.

Target (issue 3): host tick about 1 ms of CPU or less; whole daemon under 1% of one core at 1 Hz.

    .venv/bin/python bench/sampler_cost.py [--ticks 300] [--memory-ticks 3000]
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from workers.sampler.host import HostProbe  # noqa: E402
from workers.sampler.loop import Sampler  # noqa: E402
from workers.sampler.nvml import Nvml, NvmlUnavailable  # noqa: E402
from workers.sampler.top_processes import scan_processes  # noqa: E402


class StepClock:
    """Monotonic seconds that move only when told: lets N ticks stand for N seconds at 1 Hz."""

    def __init__(self) -> None:
        self.now_s = time.monotonic()

    def __call__(self) -> float:
        return self.now_s


def cpu_ms_per_call(fn: Callable[[], object], calls: int, blocks: int = 5) -> tuple[float, float]:
    """Median and max over ``blocks`` of CPU ms per call (``time.process_time``)."""
    per_block = max(1, calls // blocks)
    fn()  # warm-up: first calls open files and fill caches
    results = []
    for _ in range(blocks):
        start = time.process_time()
        for _ in range(per_block):
            fn()
        results.append((time.process_time() - start) / per_block * 1e3)
    return statistics.median(results), max(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=300)
    parser.add_argument("--memory-ticks", type=int, default=3000)
    args = parser.parse_args()

    print(
        f"machine: {psutil.cpu_count()} CPUs, {len(psutil.pids())} processes, python {sys.version.split()[0]}"
    )

    host = HostProbe(top_refresh_s=1e9)  # scan once, then repeat the table: the per-tick part only
    median, worst = cpu_ms_per_call(host.sample, args.ticks)
    print(
        f"host tick:        {median:.3f} ms CPU (median of 5 blocks; worst block {worst:.3f}) over {args.ticks} ticks"
    )

    scans = 10
    start = time.process_time()
    for _ in range(scans):
        n_processes = len(scan_processes())
    scan_ms = (time.process_time() - start) / scans * 1e3
    print(
        f"process scan:     {scan_ms:.2f} ms CPU for {n_processes} processes ({scan_ms * 1e3 / n_processes:.1f} us/process), every 5 s"
    )

    gpu_ms = 0.0
    try:
        nvml = Nvml.open()
    except NvmlUnavailable as e:
        print(f"GPU tick:         not measured (NVML: {e.reason})")
    else:
        with nvml:
            wall_start = time.perf_counter()
            gpu_ms, gpu_worst = cpu_ms_per_call(nvml.sample, args.ticks)
            wall_ms = (time.perf_counter() - wall_start) / (args.ticks + 1) * 1e3
            gpus = nvml.sample()
            print(
                f"GPU tick:         {gpu_ms:.3f} ms CPU (worst block {gpu_worst:.3f}), {wall_ms:.1f} ms wall, "
                f"{len(gpus)} devices ({nvml.device_count()} physical)"
            )

    sampler = Sampler("bench")
    sample = sampler.tick()
    ser_ms, _ = cpu_ms_per_call(lambda: json.dumps(sample.to_json()), args.ticks)
    print(
        f"serialise:        {ser_ms:.3f} ms CPU per sample ({len(json.dumps(sample.to_json()))} bytes of JSON)"
    )
    sampler.close()

    per_second_ms = median + gpu_ms + ser_ms + scan_ms / 5
    print(f"daemon at 1 Hz:   {per_second_ms:.2f} ms CPU per second = {per_second_ms / 10:.3f}% of one core")

    clock = StepClock()
    sampler = Sampler("bench", host_probe=HostProbe(clock=clock), clock=clock)
    me = psutil.Process()
    for _ in range(100):  # warm-up: caches, first scans, allocator arenas
        clock.now_s += 1.0
        json.dumps(sampler.tick().to_json())
    gc.collect()
    rss_before = me.memory_info().rss
    start = time.process_time()
    for _ in range(args.memory_ticks):
        clock.now_s += 1.0
        json.dumps(sampler.tick().to_json())
    cpu_s = time.process_time() - start
    gc.collect()
    rss_after = me.memory_info().rss
    sampler.close()
    print(
        f"memory:           RSS {rss_before / 2**20:.1f} MiB before, {rss_after / 2**20:.1f} MiB after "
        f"{args.memory_ticks} ticks ({(rss_after - rss_before) / 2**10:+.0f} KiB); "
        f"{cpu_s / args.memory_ticks * 1e3:.3f} ms CPU per full tick incl. scans every 5th tick"
    )


if __name__ == "__main__":
    main()
