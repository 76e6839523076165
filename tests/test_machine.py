"""What the host offers: the container's memory limit beside the physical memory."""

from __future__ import annotations

import pytest

from lstm_core import machine

GIB = 2**30


def cgroups(tmp_path, membership: str, limits: dict[str, str]):
    """A fake /proc/self/cgroup and /sys/fs/cgroup tree: limits maps a file under the root to its text."""
    root = tmp_path / "cgroup"
    for name, text in limits.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    (tmp_path / "membership").write_text(membership)
    return root, tmp_path / "membership"


@pytest.mark.parametrize(
    ("membership", "limits", "expected"),
    [
        # v2: the group's own limit, or its parent's where that is smaller; "max" is no limit
        ("0::/job/step\n", {"job/step/memory.max": str(4 * GIB), "job/memory.max": "max"}, 4 * GIB),
        ("0::/job/step\n", {"job/step/memory.max": "max", "job/memory.max": str(3 * GIB)}, 3 * GIB),
        ("0::/job/step\n", {"job/step/memory.max": "max", "memory.max": "max"}, None),
        # v1: the memory controller's line; its "no limit" is a number near 2**63
        (
            "4:memory:/job\n3:cpu,cpuacct:/job\n",
            {"memory/job/memory.limit_in_bytes": str(2 * GIB), "cpu/job/memory.limit_in_bytes": "1"},
            2 * GIB,
        ),
        ("4:memory:/job\n", {"memory/job/memory.limit_in_bytes": "9223372036854771712"}, None),
        # a container that sees its group's path but has the group mounted as the root: the root's file
        ("0::/outside/the/view\n", {"memory.max": str(5 * GIB)}, 5 * GIB),
        # hybrid: both hierarchies, the smaller limit
        ("4:memory:/a\n0::/b\n", {"memory/a/memory.limit_in_bytes": str(6 * GIB), "b/memory.max": str(GIB)}, GIB),
        ("", {}, None),  # no cgroups
        ("a line of another format\n0::/\n", {"memory.max": str(GIB)}, GIB),  # read past, not a crash
    ],
)
def test_the_cgroup_memory_limit_is_the_smallest_on_the_path(tmp_path, membership, limits, expected):
    root, membership_file = cgroups(tmp_path, membership, limits)
    assert machine.cgroup_memory_limit(root, membership_file) == expected


def test_no_cgroup_file_means_no_limit(tmp_path):
    assert machine.cgroup_memory_limit(tmp_path, tmp_path / "missing") is None


def test_memory_is_the_smaller_of_the_host_and_the_container(monkeypatch):
    monkeypatch.setattr(machine, "cgroup_memory_limit", lambda: GIB)
    assert machine.memory_bytes() == GIB  # every CI host has more than 1 GiB
    monkeypatch.setattr(machine, "cgroup_memory_limit", lambda: 2**50)
    assert GIB < machine.memory_bytes() < 2**50  # the host's physical memory
