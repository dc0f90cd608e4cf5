"""BenchSpec from job params: defaults, normalisation, and refusals with a reason a user can act on."""

from __future__ import annotations

import pytest

from workers.bench import BenchSpec


def test_params_from_json_become_a_spec() -> None:
    spec = BenchSpec.from_params(
        {
            "batch_sizes": [1, 8, 32],
            "iterations": 200,
            "device": "cpu",
            "precision": "bf16",
            "threads": 2,
            "time_budget_s": 5,
            "concurrency": [1, 2, 4, 8],
        }
    )
    assert spec.batch_sizes == (1, 8, 32)
    assert spec.concurrency == (1, 2, 4, 8)
    assert spec.precision == "bf16"
    assert spec.time_budget_s == 5.0 and isinstance(spec.time_budget_s, float)
    assert spec.min_duration_s == 1.0
    assert hash(spec)  # frozen and hashable once lists became tuples


def test_a_spec_survives_a_round_trip_through_json() -> None:
    spec = BenchSpec(batch_sizes=(4, 2), iterations=30, concurrency=(2, 1), time_budget_s=0.5)
    assert BenchSpec.from_params(spec.to_json()) == spec


def test_defaults_follow_the_budget_and_the_devices() -> None:
    assert BenchSpec(batch_sizes=(1,), iterations=5, time_budget_s=0.3).min_duration_s == 0.3
    assert BenchSpec(batch_sizes=(1,), iterations=5).device == "cpu"
    assert BenchSpec(batch_sizes=(1,), iterations=5, devices=("cuda:1", "cuda:0")).device == "cuda:1"


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"batch_sizes": [1], "iterations": 5, "warmup": 3}, "unknown benchmark parameter(s): warmup"),
        ({"iterations": 5}, "batch_sizes is required"),
        ({"batch_sizes": [1]}, "iterations is required"),
        ({"batch_sizes": [1], "iterations": 5, "threads": True}, "threads must be an integer >= 1"),
        (
            {"batch_sizes": [1], "iterations": 5, "time_budget_s": "10"},
            "time_budget_s must be a number of seconds",
        ),
        (
            {"batch_sizes": [1], "iterations": 5, "time_budget_s": 7200},
            "time_budget_s must be a number of seconds",
        ),
        ({"batch_sizes": [1], "iterations": 5, "concurrency": 4}, "concurrency must be a list"),
        ({"batch_sizes": [1], "iterations": 5, "devices": "cuda:0"}, "devices must be a list"),
        ({"batch_sizes": [1], "iterations": 5, "devices": ["cuda:0", "cuda:0"]}, "must not repeat a GPU"),
        (
            {"batch_sizes": [1], "iterations": 5, "devices": ["cuda"]},
            'must be "cuda:N" with an explicit index',
        ),
        ({"batch_sizes": [1], "iterations": 5, "device": "gpu"}, 'device must be "cpu", "cuda" or "cuda:N"'),
    ],
)
def test_bad_params_are_refused_with_the_reason(params: dict, reason: str) -> None:
    with pytest.raises(ValueError) as caught:
        BenchSpec.from_params(params)
    assert reason in str(caught.value)


def test_a_cpu_spec_needs_nothing_from_the_node() -> None:
    BenchSpec(batch_sizes=(1,), iterations=5).check_supported(cuda_device_count=0)


def test_a_gpu_index_beyond_the_node_is_refused() -> None:
    with pytest.raises(ValueError, match="cuda:2 requested but this node has 2 CUDA device"):
        BenchSpec(batch_sizes=(1,), iterations=5, device="cuda:2").check_supported(cuda_device_count=2)
