"""Timing and memory measurement: warm up, synchronise, repeat, report the median with the spread.

Peak memory is the growth of the process's resident-set high-water mark over warm-up and timed calls, reset
before them through /proc/self/clear_refs (Linux): it counts every allocation a step makes, whichever library
made it, but not memory an allocator already held from building the step (compilation, data).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STATUS = Path("/proc/self/status")


def _status_kib(field: str) -> int | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_memory() -> int | None:
    """Reset the RSS high-water mark; return the current RSS in KiB (None where Linux's knob is missing)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def peak_memory_mb(baseline_kib: int | None) -> float | None:
    """Growth of the RSS high-water mark over `baseline_kib`, in MiB."""
    peak = _status_kib("VmHWM")
    if baseline_kib is None or peak is None:
        return None
    return max(peak - baseline_kib, 0) / 1024


@dataclass(frozen=True)
class Timing:
    median_ms: float
    min_ms: float
    max_ms: float
    repeats: int
    peak_memory_mb: float | None


def time_calls(
    call: Callable[[], object], *, warmup: int = 2, min_repeats: int = 5, max_repeats: int = 30, budget_s: float = 2.0
) -> Timing:
    """Time `call` (which must block until its result is ready) after `warmup` calls.

    Repeats until `budget_s` is spent, at least `min_repeats` and at most `max_repeats` times.
    """
    baseline = reset_peak_memory()  # the first calls allocate the step's buffers: count them
    for _ in range(warmup):
        call()
    times = []
    started = time.perf_counter()
    while len(times) < max_repeats and (len(times) < min_repeats or time.perf_counter() - started < budget_s):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    ms = np.asarray(times) * 1e3
    return Timing(float(np.median(ms)), float(ms.min()), float(ms.max()), len(times), peak_memory_mb(baseline))
