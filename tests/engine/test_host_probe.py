from __future__ import annotations

import threading
import time

import psutil

from workers.sampler.host import HostProbe, cpu_model


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_memory_matches_psutil() -> None:
    sample = HostProbe().sample()
    assert sample.memory_total_bytes == psutil.virtual_memory().total
    assert 0 < sample.memory_used_bytes <= sample.memory_total_bytes
    assert 0.0 < sample.memory_percent <= 100.0
    assert 0 <= sample.swap_used_bytes <= sample.swap_total_bytes
    assert sample.load_avg_1m >= 0


def test_first_sample_measures_busy_cpu_even_from_another_thread() -> None:
    # A probe made in one thread and sampled in another (as the sampler does) must
    # report the load since construction, not psutil's meaningless first 0.0.
    probe = HostProbe()
    _spin(0.4)
    samples = []
    t = threading.Thread(target=lambda: samples.append(probe.sample()))
    t.start()
    t.join()
    sample = samples[0]
    cpu_count = psutil.cpu_count() or 1
    assert len(sample.per_cpu_percent) == cpu_count
    assert all(0.0 <= p <= 100.0 for p in sample.per_cpu_percent)
    # One spinning core out of cpu_count is 100/cpu_count percent of the machine.
    assert sample.cpu_percent >= 50.0 / cpu_count
    assert max(sample.per_cpu_percent) >= 50.0


def test_to_json_gives_plain_lists() -> None:
    data = HostProbe().sample().to_json()
    assert isinstance(data["per_cpu_percent"], list)
    assert isinstance(data["memory_total_bytes"], int)


def test_cpu_model_is_named() -> None:
    assert cpu_model().strip()
