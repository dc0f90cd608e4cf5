"""Load tests run by several threads at once: concurrent clients, and one replica per GPU.

Both start their threads together at a barrier, measure for a fixed duration, and let the caller's
thread poll progress and cancellation while it waits (``tick``), so callbacks never run elsewhere.
PyTorch releases the GIL inside its kernels, so threads overlap as real serving threads do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from workers.bench.timing import time_block_cpu, time_block_cuda

# Untimed requests each client sends before the measured window, so lazy initialisation
# (thread pools, CUDA handles per thread) is not charged to the first timed request.
CLIENT_WARMUP_REQUESTS = 3
_JOIN_POLL_S = 0.05


@dataclass(frozen=True)
class ThreadTimes:
    """What one thread measured: per-request (or per-iteration) latencies in ms, and when it finished."""

    name: str
    times_ms: tuple[float, ...]
    finished_ns: int


class _Stop(Exception):
    """Raised inside a thread that was told to stop (cancellation, or another thread failed)."""


# A thread's work: given the stop flag, the window [start_ns, deadline_ns] (filled when the barrier
# opens) and the barrier to wait at once warmed up, measure and return its times.
Body = Callable[[threading.Event, list[int], threading.Barrier], ThreadTimes]
NO_DEADLINE_NS = 2**63 - 1


def _device_context(device: torch.device, stream: Any) -> contextlib.AbstractContextManager[Any]:
    if device.type != "cuda":
        return contextlib.nullcontext()
    stack = contextlib.ExitStack()
    stack.enter_context(torch.cuda.device(device))
    stack.enter_context(torch.cuda.stream(stream))
    return stack


def _wait_for_inputs(device: torch.device) -> None:
    # Inputs were copied to the GPU on the caller's stream; this thread runs on its own stream,
    # which does not order itself after that copy.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _run_threads(
    bodies: list[tuple[str, Body]],
    duration_s: float,
    threads: int,
    tick: Callable[[], None],
) -> tuple[list[ThreadTimes], int]:
    """Run each body in its own thread; they meet at a barrier, then measure until start + duration_s.

    Returns (per-thread times, start in perf_counter_ns). An exception in a thread is re-raised
    here; an exception from ``tick`` (cancellation) stops every thread first.
    """
    stop = threading.Event()
    window: list[int] = []  # [start_ns, deadline_ns], written by the barrier action before release

    def open_window() -> None:
        now = time.perf_counter_ns()
        window.extend([now, now + int(duration_s * 1e9)])

    barrier = threading.Barrier(len(bodies), action=open_window)
    results: dict[str, ThreadTimes] = {}
    errors: list[BaseException] = []

    def run(name: str, body: Body) -> None:
        # set_num_threads is global in recent torch, but a thread's OpenMP pool is sized on its
        # first parallel region: set it here so every client runs with the spec's thread count.
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                results[name] = body(stop, window, barrier)
        except (threading.BrokenBarrierError, _Stop):
            pass  # stopped from outside; the caller raises the reason
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)
            stop.set()
            barrier.abort()

    workers = [
        threading.Thread(target=run, args=item, daemon=True, name=f"bench-{item[0]}") for item in bodies
    ]
    for w in workers:
        w.start()
    try:
        while any(w.is_alive() for w in workers):
            tick()
            for w in workers:
                w.join(_JOIN_POLL_S / len(workers))
    finally:
        stop.set()
        barrier.abort()
        for w in workers:
            w.join()
    if errors:
        raise errors[0]
    return [results[name] for name, _ in bodies], window[0]


def _client_body(model: nn.Module, x: torch.Tensor, device: torch.device, name: str) -> Body:
    def body(stop: threading.Event, window: list[int], barrier: threading.Barrier) -> ThreadTimes:
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        clock = time.perf_counter_ns
        times_ns: list[int] = []
        _wait_for_inputs(device)
        with _device_context(device, stream):
            for _ in range(CLIENT_WARMUP_REQUESTS):
                model(x)
            if stream is not None:
                stream.synchronize()
            barrier.wait()
            deadline_ns = window[1]
            end_ns = clock()
            while end_ns < deadline_ns and not stop.is_set():
                t0 = clock()
                model(x)
                # A client sees its answer only once the GPU is done with its own stream.
                if stream is not None:
                    stream.synchronize()
                end_ns = clock()
                times_ns.append(end_ns - t0)
        if stop.is_set():
            raise _Stop
        return ThreadTimes(name, tuple(t / 1e6 for t in times_ns), end_ns)

    return body


def measure_concurrency(
    model: nn.Module,
    make_input: Callable[[int], torch.Tensor],
    device: torch.device,
    clients: int,
    duration_s: float,
    threads: int,
    tick: Callable[[], None],
) -> tuple[list[float], float]:
    """``clients`` threads each send single requests back to back to one shared ``model`` for ``duration_s``.

    ``make_input(i)`` gives client i its request. Returns (every request's latency in ms as the
    client saw it, the measured wall time in s from the common start to the last answer).
    """
    bodies = [
        (f"client-{i}", _client_body(model, make_input(i), device, f"client-{i}")) for i in range(clients)
    ]
    per_thread, start_ns = _run_threads(bodies, duration_s, threads, tick)
    latencies = [t for r in per_thread for t in r.times_ms]
    wall_s = (max(r.finished_ns for r in per_thread) - start_ns) / 1e9
    return latencies, wall_s


def _replica_body(model: nn.Module, x: torch.Tensor, device: torch.device, name: str) -> Body:
    def body(stop: threading.Event, window: list[int], barrier: threading.Barrier) -> ThreadTimes:
        timer = time_block_cuda if device.type == "cuda" else time_block_cpu
        stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        times: list[float] = []
        _wait_for_inputs(device)
        with _device_context(device, stream):
            timer(model, x, CLIENT_WARMUP_REQUESTS, NO_DEADLINE_NS)
            barrier.wait()
            deadline_ns = window[1]
            while time.perf_counter_ns() < deadline_ns and not stop.is_set():
                # Blocks of a few iterations: the block timer synchronises only at its end.
                times.extend(timer(model, x, 64, deadline_ns))
        if stop.is_set():
            raise _Stop
        return ThreadTimes(name, tuple(times), time.perf_counter_ns())

    return body


def measure_replicas(
    replicas: list[tuple[torch.device, nn.Module, torch.Tensor]],
    duration_s: float,
    threads: int,
    tick: Callable[[], None],
) -> tuple[list[list[float]], float]:
    """One thread per (device, model, input) replica, each running its own stream of iterations for ``duration_s``.

    Returns (each replica's per-iteration latencies in ms, the wall time in s from the common start
    to the last replica's final synchronize). Works for any device; the spec admits only GPUs.
    """
    bodies = [
        (f"{device}#{i}", _replica_body(model, x, device, f"{device}#{i}"))
        for i, (device, model, x) in enumerate(replicas)
    ]
    per_thread, start_ns = _run_threads(bodies, duration_s, threads, tick)
    wall_s = (max(r.finished_ns for r in per_thread) - start_ns) / 1e9
    return [list(r.times_ms) for r in per_thread], wall_s
