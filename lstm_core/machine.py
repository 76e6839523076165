"""What the host offers the trainers."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS tells it: Linux; else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
