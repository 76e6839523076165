"""What the host offers the trainers."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it: Linux; else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def memory_bytes() -> int | None:
    """The host's physical memory in bytes, where the OS tells it (Linux, macOS); None elsewhere."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits_memory(need_bytes: int, what: str, fix: str, error: type[Exception]) -> None:
    """Raise `error` when `need_bytes` (a lower bound of what `what` takes) exceeds the host's memory: sizes that
    no run here survives are refused at once, not after minutes of swapping or by the kernel's OOM killer."""
    total = memory_bytes()
    if total is not None and need_bytes > total:
        raise error(
            f"{what}: at least {need_bytes / 2**30:.3g} GiB of memory, and this machine has {total / 2**30:.3g} GiB; "
            f"{fix}"
        )
