"""The per-node sampling loop: host and GPU readings at a fixed rate, handed to a publisher."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from workers.sampler.host import HostProbe
from workers.sampler.nvml import Nvml, NvmlUnavailable
from workers.sampler.process_info import ProcessDetails
from workers.sampler.sample import GpuSample, NodeSample

log = logging.getLogger(__name__)


class Sampler:
    """Samples one node. GPU trouble never stops host sampling: it shows in ``gpu_status``
    and, per GPU, in the sample's ``warnings`` (persistence mode off, a GPU lost).

    When NVML cannot be opened the reason becomes ``gpu_status`` ("no GPU: no driver"), and
    opening is retried at most every ``nvml_retry_s`` seconds, because a driver can be
    installed or reloaded while the node keeps running. ``clock`` (monotonic seconds) times
    those retries and the ``run`` schedule, and exists so tests can move time.
    """

    def __init__(
        self,
        node_name: str,
        *,
        nvml_retry_s: float = 60.0,
        nvml_opener: Callable[[], Nvml] = Nvml.open,
        host_probe: HostProbe | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node_name = node_name
        self._nvml_retry_s = nvml_retry_s
        self._nvml_opener = nvml_opener
        self._host = host_probe if host_probe is not None else HostProbe()
        self._gpu_processes = ProcessDetails()
        self._clock = clock
        self._nvml: Nvml | None = None
        self._gpu_status = "not checked yet"
        self._next_nvml_attempt = clock()
        self._try_open_nvml()

    @property
    def nvml(self) -> Nvml | None:
        """The open NVML session, or ``None`` while the node has no usable GPU."""
        return self._nvml

    @property
    def processes_watched(self) -> bool:
        """Whether the host's top-processes table is being looked at; while not, the (dear)
        process scan runs rarely. Set by whoever knows (the sampler daemon, from Redis)."""
        return getattr(self._host, "watched", True)

    @processes_watched.setter
    def processes_watched(self, value: bool) -> None:
        if hasattr(self._host, "watched"):
            self._host.watched = value

    @property
    def gpu_status(self) -> str:
        """One of "ok", "no GPU" or "no GPU: <reason>"."""
        return self._gpu_status

    def _set_status(self, status: str) -> None:
        # Logged on change only: a GPU-less node would otherwise log every retry.
        if status != self._gpu_status:
            log.info("node %s GPU status: %s", self.node_name, status)
        self._gpu_status = status

    def _try_open_nvml(self) -> None:
        self._next_nvml_attempt = self._clock() + self._nvml_retry_s
        try:
            nvml = self._nvml_opener()
        except NvmlUnavailable as e:
            self._set_status(f"no GPU: {e.reason}")
            return
        if nvml.device_count() == 0:
            nvml.close()
            self._set_status("no GPU")
            return
        self._nvml = nvml
        self._set_status("ok")

    def tick(self) -> NodeSample:
        """One reading of the node now. NVML problems show in ``gpu_status``, never as exceptions."""
        if self._nvml is None and self._clock() >= self._next_nvml_attempt:
            self._try_open_nvml()
        gpus: tuple[GpuSample, ...] = ()
        warnings: tuple[str, ...] = ()
        if self._nvml is not None:
            try:
                gpus = self._nvml.sample()
                warnings = self._nvml.warnings
            except Exception as e:  # Nvml.sample() is built not to raise; this is the last line of defence.
                log.exception("GPU sampling failed; reopening NVML later")
                self._nvml.close()
                self._nvml = None
                self._set_status(f"no GPU: NVML error: {e}")
        # Host facts (user, command, CPU %, RSS) of the PIDs holding GPU memory.
        gpus = self._gpu_processes.enrich(gpus)
        return NodeSample(
            node=self.node_name,
            ts=time.time(),
            host=self._host.sample(),
            gpus=gpus,
            gpu_status=self._gpu_status,
            warnings=warnings,
        )

    def run(
        self, publish: Callable[[NodeSample], None], stop: threading.Event, interval_s: float = 1.0
    ) -> None:
        """Call ``publish(self.tick())`` every ``interval_s`` seconds (0.1..10) until ``stop`` is set.

        Deadlines advance by exactly one interval from the previous deadline, so the rate does not
        drift with the time a tick takes. After a stall longer than an interval the missed ticks
        are dropped rather than fired in a burst. Errors in a tick or in ``publish`` are logged
        and the loop goes on: a flaky broker must not stop monitoring.
        """
        if not 0.1 <= interval_s <= 10:
            raise ValueError(f"interval_s must be between 0.1 and 10 seconds, not {interval_s}")
        # The schedule reads the same clock as the NVML retries, so tests can run it without sleeping.
        deadline = self._clock()
        while not stop.is_set():
            try:
                publish(self.tick())
            except Exception:
                log.exception("publishing a sample of node %s failed; carrying on", self.node_name)
            deadline += interval_s
            late_s = self._clock() - deadline
            if late_s > interval_s:
                deadline += math.floor(late_s / interval_s) * interval_s
            stop.wait(max(0.0, deadline - self._clock()))

    def close(self) -> None:
        """Release NVML."""
        if self._nvml is not None:
            self._nvml.close()
            self._nvml = None
