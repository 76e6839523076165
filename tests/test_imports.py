"""The package boundaries: lstm_core imports neither backend, and neither backend imports the other."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

CHECK = """
import sys, importlib, pkgutil
import {package}
for module in pkgutil.walk_packages({package}.__path__, "{package}."):
    importlib.import_module(module.name)
import json
watched = ("torch", "jax", "flax", "optax", "lstm_torch", "lstm_jax")
print(json.dumps(sorted(name for name in watched if name in sys.modules)))
"""


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("lstm_core", {"torch", "jax", "flax", "optax", "lstm_torch", "lstm_jax"}),
        ("lstm_torch", {"jax", "flax", "optax", "lstm_jax"}),
        ("lstm_jax", {"torch", "lstm_torch"}),
    ],
)
def test_package_does_not_import(package, forbidden):
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(package=package)], capture_output=True, text=True, check=True
    )
    imported = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert not imported & forbidden, f"{package} imports {sorted(imported & forbidden)}"
