"""Shared by tests/ and parity_tests/: every test starts from jax's default precision.

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
