"""The seed article's inference cache (an MD5-keyed dict) done properly: bounded (LRU), keyed by a
hash of the input's bytes, shape and dtype, and measured on a replayed request trace, because a cache
only helps a workload that repeats inputs, and how much depends on how often it does."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

from workers.zoo import InputSpec


class CachedModule(nn.Module):
    """``inner`` behind an LRU of at most ``capacity`` outputs; a hit returns a stored copy."""

    def __init__(self, inner: nn.Module, capacity: int) -> None:
        super().__init__()
        self.inner = inner
        self.capacity = capacity
        self.entries: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    @staticmethod
    def key(x: torch.Tensor) -> bytes:
        digest = hashlib.blake2b(x.detach().cpu().contiguous().numpy().tobytes(), digest_size=16)
        digest.update(f"{tuple(x.shape)}{x.dtype}".encode())
        return digest.digest()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = self.key(x)
        hit = self.entries.get(key)
        if hit is not None:
            self.entries.move_to_end(key)
            self.hits += 1
            return hit.clone()
        self.misses += 1
        out = self.inner(x)
        self.entries[key] = out.detach().clone()
        if len(self.entries) > self.capacity:
            self.entries.popitem(last=False)
        return out

    @property
    def bytes_held(self) -> int:
        return sum(t.numel() * t.element_size() + 16 for t in self.entries.values())


@dataclass(frozen=True)
class TraceReport:
    requests: int
    repeat_fraction: float
    hit_rate: float
    bytes_held: int
    hit_ms_p50: float | None
    miss_ms_p50: float | None
    uncached_total_ms: float
    cached_total_ms: float

    def to_json(self) -> dict:
        return self.__dict__ | {
            "speedup": self.uncached_total_ms / self.cached_total_ms if self.cached_total_ms else None
        }


def make_trace(
    input_spec: InputSpec, requests: int, repeat_fraction: float, distinct_pool: int, seed: int = 0
):
    """A request trace: each request repeats one of ``distinct_pool`` earlier inputs with probability
    ``repeat_fraction``, else is a new input (batch size 1)."""
    generator = torch.Generator().manual_seed(seed)
    pool: list[torch.Tensor] = []
    trace = []
    for _ in range(requests):
        if pool and float(torch.rand((), generator=generator)) < repeat_fraction:
            trace.append(pool[int(torch.randint(len(pool), (), generator=generator))])
        else:
            x = input_spec.make(1, generator=generator)
            trace.append(x)
            pool.append(x)
            if len(pool) > distinct_pool:
                pool.pop(0)
    return trace


def _median(values: list[float]) -> float | None:
    values = sorted(values)
    return values[len(values) // 2] if values else None


@torch.inference_mode()
def replay(model: nn.Module, trace: list[torch.Tensor], capacity: int) -> TraceReport:
    """The trace through the model without and with the cache, same order, same inputs."""
    started = time.perf_counter()
    for x in trace:
        model(x)
    uncached_ms = (time.perf_counter() - started) * 1e3
    cached = CachedModule(model, capacity)
    hit_ms, miss_ms = [], []
    started = time.perf_counter()
    for x in trace:
        hits = cached.hits
        t0 = time.perf_counter()
        cached(x)
        (hit_ms if cached.hits > hits else miss_ms).append((time.perf_counter() - t0) * 1e3)
    cached_ms = (time.perf_counter() - started) * 1e3
    repeats = len(trace) - len({CachedModule.key(x) for x in trace})
    return TraceReport(
        requests=len(trace),
        repeat_fraction=repeats / len(trace) if trace else 0.0,
        hit_rate=cached.hits / len(trace) if trace else 0.0,
        bytes_held=cached.bytes_held,
        hit_ms_p50=_median(hit_ms),
        miss_ms_p50=_median(miss_ms),
        uncached_total_ms=uncached_ms,
        cached_total_ms=cached_ms,
    )


def inference_cache(candidate, params, ctx):
    """Report-only pass: the cache is measured on a replayed trace, not by the harness, whose fixed
    input would hit every time and report a speed-up no real workload sees."""
    from workers.passes.context import PassOutcome

    ctx.step("inference cache: replaying a request trace")
    trace = make_trace(
        ctx.input_spec, params["requests"], params["repeat_fraction"], params["distinct_pool"], ctx.seed
    )
    report = replay(
        candidate.module.to(ctx.device).eval(), [x.to(ctx.device) for x in trace], params["capacity"]
    )
    speedup = report.uncached_total_ms / report.cached_total_ms if report.cached_total_ms else float("nan")
    return PassOutcome(
        candidate.after("inference_cache"),
        notes=(
            "a cache only helps requests that repeat an earlier input exactly; it does nothing for new inputs",
            f"trace of {report.requests} requests, {report.repeat_fraction:.0%} repeats: hit rate {report.hit_rate:.0%}, "
            f"whole trace {speedup:.2f}x faster, {report.bytes_held / 1024:.0f} KiB held",
        ),
        details={"trace": report.to_json()},
    )
