"""What the host offers the trainers."""

from __future__ import annotations

import os
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
MEMBERSHIP = Path("/proc/self/cgroup")  # this process's cgroup in each hierarchy
UNLIMITED = 2**62  # cgroup v1 writes "no limit" as a number near 2**63; v2 writes "max"


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it: Linux; else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def memory_bytes() -> int | None:
    """The memory this process may use in bytes: the host's physical memory where the OS tells it (Linux,
    macOS), or the limit of its container (cgroup) where that is smaller; None where neither is known."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = None
    known = [size for size in (physical, cgroup_memory_limit()) if size is not None]
    return min(known, default=None)


def cgroup_memory_limit(root: Path = CGROUPS, membership: Path = MEMBERSHIP) -> int | None:
    """The smallest memory limit on this process's cgroup and its ancestors (cgroup v2 `memory.max`, v1
    `memory.limit_in_bytes`), in bytes; None where there is none (no cgroups, not Linux, or no limit set)."""
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        fields = line.split(":", 2)  # hierarchy id : controllers : path
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":  # v2: one unified hierarchy
            folder, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            folder, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        group = folder / path.lstrip("/")
        for directory in (group, *group.parents):
            text = _read_stripped(directory / name)
            if text is not None and text.isdigit() and int(text) < UNLIMITED:
                limits.append(int(text))
            if directory == folder:
                break
    return min(limits, default=None)


def _read_stripped(path: Path) -> str | None:
    """The file's text without its newline; None where it cannot be read (a group without that controller file)."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def check_fits_memory(need_bytes: int, what: str, fix: str, error: type[Exception]) -> None:
    """Raise `error` when `need_bytes` (a lower bound of what `what` takes) exceeds the memory this process may
    use: sizes that no run here survives are refused at once, not after minutes of swapping or by the kernel's
    OOM killer."""
    total = memory_bytes()
    if total is not None and need_bytes > total:
        raise error(
            f"{what}: at least {need_bytes / 2**30:.3g} GiB of memory, and this process may use "
            f"{total / 2**30:.3g} GiB (the machine's memory, or its container's limit where smaller); {fix}"
        )
