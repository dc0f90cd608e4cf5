"""The sampler's JSON text of samples parses to what json.dumps gives, with reused parts kept current."""

from __future__ import annotations

import json

import pytest

from dashboard.sample_json import SampleJson
from workers.sampler import nvml as nvml_module
from workers.sampler.fake_nvml import SimulatedPynvml
from workers.sampler.loop import Sampler
from workers.sampler.sample import for_browsers


def test_a_sample_and_its_browser_form_parse_back_to_themselves(monkeypatch):
    monkeypatch.setattr(nvml_module, "pynvml", SimulatedPynvml(2))
    sampler = Sampler("json-node")
    encoder = SampleJson()
    for _ in range(3):
        sample = sampler.tick().to_json()
        assert sample["gpus"] and sample["host"]["top_processes"]
        payload = {"type": "sample", **for_browsers(sample)}
        assert json.loads(encoder.dumps(payload)) == payload
        assert json.loads(encoder.dumps(sample)) == sample
    sampler.close()


def test_a_changed_process_table_or_gpu_list_is_encoded_again():
    encoder = SampleJson()
    top = {"by_cpu": [{"pid": 1, "command": "a"}], "by_rss": []}
    first = {"node": "n", "host": {"cpu_percent": 1.0, "top_processes": top}, "gpus": [{"index": 0}]}
    assert json.loads(encoder.dumps(first)) == first
    # Same table by value in a new object: reused; a new GPU list object: encoded again.
    second = {
        "node": "n",
        "host": {"cpu_percent": 2.0, "top_processes": json.loads(json.dumps(top))},
        "gpus": [{"index": 1}],
    }
    assert json.loads(encoder.dumps(second)) == second
    third = {"node": "n", "host": {"top_processes": {"by_cpu": [], "by_rss": []}}, "gpus": []}
    assert json.loads(encoder.dumps(third)) == third


@pytest.mark.parametrize(
    "sample",
    [{}, {"a": 1}, {"host": None, "gpus": []}, {"host": {"top_processes": {}}, "gpus": None}, {"host": {}}],
)
def test_odd_shapes_come_out_whole(sample):
    assert json.loads(SampleJson().dumps(sample)) == sample
