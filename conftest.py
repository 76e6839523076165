"""Shared by tests/ and parity_tests/: every test starts from jax's default precision, and `pytest` alone
(any path, no -m expression) runs the default suite, without the tests marked slow.

The JAX trainer turns jax_enable_x64 on for a float64 run (a process trains one config), and some tests turn it
on themselves; without this, every test after them would run with x64 on, and float32 would never be tested
under jax's defaults.
"""

from __future__ import annotations

import jax
import pytest


@pytest.fixture(autouse=True)
def default_x64_after_each_test():
    enabled = jax.config.jax_enable_x64
    yield
    jax.config.update("jax_enable_x64", enabled)


def pytest_collection_modifyitems(config, items):
    """Deselect the slow tests unless a -m expression chooses (scripts/test-slow.sh: -m "slow and not gpu") or
    --gpu does (parity_tests/conftest.py: every GPU variant, slow ones included)."""
    if config.option.markexpr or config.getoption("--gpu", default=False):
        return
    slow = [item for item in items if "slow" in item.keywords]
    config.hook.pytest_deselected(items=slow)
    items[:] = [item for item in items if "slow" not in item.keywords]
