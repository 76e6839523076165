"""The GPU diagnosis of the cuDNN path, run on CPU with jax's reference LSTM standing in for the kernel."""

from __future__ import annotations

import pytest

from parity_tests import cudnn_diagnosis
from tests.test_cudnn import reference_lstm


@pytest.mark.slow
def test_every_setting_agrees_when_the_kernel_is_jax_reference(monkeypatch):
    monkeypatch.setattr(cudnn_diagnosis.rnn, "lstm", reference_lstm)
    found = cudnn_diagnosis.diagnose("sine-2layer", "cpu")
    assert set(found) == {
        "loop body cudnn",
        "loop body cudnn + scan",
        "loop body scan + cudnn",
        "loop body cudnn + autodiff",
        "padded weights, body cudnn + scan",
        "fused epoch, cudnn alone in the body",
    }
    assert set(found["loop body cudnn + scan"]) == {"cudnn loss", "cudnn grad", "scan loss", "scan grad"}
    # float32, the same maths in another order (a loop body fuses differently from a program of its own):
    # measured <= 1e-7; a wrong gradient or loss would be O(1e-2) or more.
    for label, diffs in found.items():
        for name, diff in diffs.items():
            assert diff < 1e-6, f"{label}: {name} {diff:.2e}"
