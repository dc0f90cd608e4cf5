"""Which Celery queue a job goes to, and which queues a node's workers consume.

Each node has one queue for its CPU and one per GPU, each consumed by a worker of concurrency 1:
timings of two jobs sharing a device are worthless, so a device runs one job at a time.
"any node" jobs go to the shared "jobs" queue, which every node's CPU worker also consumes."""

from __future__ import annotations

import re

ANY_NODE_QUEUE = "jobs"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]")


def _node_key(node: str) -> str:
    return _UNSAFE.sub("_", node)


def cpu_queue(node: str) -> str:
    return f"node.{_node_key(node)}.cpu"


def gpu_queue(node: str, index: int) -> str:
    return f"node.{_node_key(node)}.gpu{index}"


def queue_for(node: str | None, device: str) -> str:
    """The queue of a job for `device` ("cpu" or "cuda:N") on `node` (None: any node, CPU only)."""
    if not node:
        if device != "cpu":
            raise ValueError("a GPU job needs a node")
        return ANY_NODE_QUEUE
    if device == "cpu":
        return cpu_queue(node)
    return gpu_queue(node, int(device.partition(":")[2] or 0))


def worker_layout(node: str, gpu_count: int) -> list[tuple[str, str]]:
    """(worker name, comma-separated queues) of the job workers a node runs."""
    layout = [(f"cpu@{node}", f"{cpu_queue(node)},{ANY_NODE_QUEUE}")]
    layout += [(f"gpu{index}@{node}", gpu_queue(node, index)) for index in range(gpu_count)]
    return layout
