"""The parity suite's options: `--gpu` selects the GPU variants (marker `gpu`) and pins matmul precision.

Without --gpu the GPU variants are skipped (and the slow tests deselected unless `-m` is given, as everywhere:
the root conftest.py). With --gpu only the GPU variants run (slow ones included), and
they are skipped where torch or jax sees no CUDA GPU. torch runs single-threaded here: these models are
tiny, and on a small shared machine torch's default threads spin against each other (measured on 2 busy
cores: 1.8 s per step with 2 threads, 15 ms with 1).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from parity_tests import engine
from parity_tests.cases import write_five_feature_csv
from parity_tests.engine import gpu_available


def pytest_addoption(parser):
    parser.addoption(
        "--gpu",
        action="store_true",
        help="run the parity suite's GPU variants (marker gpu) on a CUDA GPU, with matmul precision pinned",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--gpu"):
        selected = [item for item in items if "gpu" in item.keywords]
        config.hook.pytest_deselected(items=[item for item in items if "gpu" not in item.keywords])
        items[:] = selected
        if not gpu_available():
            skip = pytest.mark.skip(reason="--gpu given, but torch and jax see no CUDA GPU")
            for item in selected:
                item.add_marker(skip)
        return
    here = Path(__file__).parent
    ours = [item for item in items if here in item.path.parents]
    skip = pytest.mark.skip(reason="GPU variant: run with --gpu on a machine with a CUDA GPU")
    for item in ours:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def parity_environment(request):
    torch.set_num_threads(1)
    if request.config.getoption("--gpu") and gpu_available():
        engine.pin_gpu_precision()


@pytest.fixture(scope="session")
def csv5(tmp_path_factory):
    """A CSV with five feature columns: the suite's input size 5."""
    return write_five_feature_csv(tmp_path_factory.mktemp("data") / "five_features.csv")
