"""Turning raw NVML answers into plain values: sentinels to None, bytes to str, masks to names.

Pure functions with no NVML calls, so the rules are easy to see and test.
"""

from __future__ import annotations

import math
from typing import Any

# NVML_VALUE_NOT_AVAILABLE for unsigned int and unsigned long long fields, and the signed
# 2^63 values some drivers return in 64-bit fields: none is ever a real reading.
_SENTINELS = frozenset({0xFFFFFFFF, 0x7FFFFFFFFFFFFFFF, 0x8000000000000000, 0xFFFFFFFFFFFFFFFF})

# Bit -> name, as ``nvidia-smi --query-gpu=clocks_event_reasons.<name>`` spells them
# (nvmlClocksEventReason*, formerly nvmlClocksThrottleReason*; values copied from pynvml).
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x001, "gpu_idle"),
    (0x002, "applications_clocks_setting"),
    (0x004, "sw_power_cap"),
    (0x008, "hw_slowdown"),
    (0x010, "sync_boost"),
    (0x020, "sw_thermal_slowdown"),
    (0x040, "hw_thermal_slowdown"),
    (0x080, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)
_KNOWN_THROTTLE_BITS = sum(bit for bit, _ in THROTTLE_REASONS)


def number(value: Any) -> Any:
    """``value``, or None when it is missing, negative, NaN or an NVML "not available" sentinel."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return None if value < 0 or value in _SENTINELS else value
    if isinstance(value, float):
        return None if math.isnan(value) or value < 0 else value
    return None


def text(value: object) -> str | None:
    """pynvml returns bytes or str depending on its version; always give str."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def scaled(value: Any, factor: float) -> float | None:
    """``number(value) * factor`` (mW -> W, KB/s -> bytes/s), None when there is no number."""
    n = number(value)
    return None if n is None else n * factor


def throttle_reasons(mask: Any) -> tuple[str, ...] | None:
    """Names of the bits set in a clocks-event mask; bits this code does not know read as
    "unknown_0x<bit>" rather than vanishing. None when there is no mask."""
    mask = number(mask)
    if mask is None:
        return None
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    unknown = mask & ~_KNOWN_THROTTLE_BITS
    bit = 1
    while unknown:
        if unknown & bit:
            names.append(f"unknown_{bit:#x}")
            unknown &= ~bit
        bit <<= 1
    return tuple(names)


def enabled(state: Any) -> bool | None:
    """An NVML enable state (0/1), or the "current" half of a [current, pending] pair, as a bool."""
    if isinstance(state, (list, tuple)):
        state = state[0] if state else None
    state = number(state)
    return None if state is None else bool(state)
