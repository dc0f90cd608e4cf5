from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config, items):
    # Engine tests never need the database; everything else in tests/dashboard does.
    for item in items:
        if "gpu" in item.keywords:
            import torch

            if not torch.cuda.is_available():
                item.add_marker(
                    pytest.mark.skip(reason="needs CUDA; torch.cuda.is_available() is false here")
                )


@pytest.fixture
def redis_url() -> str:
    return os.environ["REDIS_URL"]
