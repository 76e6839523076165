"""compare's measure of gradient tensors: relative per tensor, a cancelled tensor against 1 % of the global norm."""

from __future__ import annotations

import numpy as np
import pytest

from parity_tests import compare
from parity_tests.engine import Trace


def trace(backend: str, w: np.ndarray, b: np.ndarray) -> Trace:
    """Two steps of gradients for a weight w (S, 3) and a bias b (S, 1); the statistics they imply."""
    norms = np.stack([np.linalg.norm(w, axis=1), np.linalg.norm(b, axis=1)], axis=1)  # (S, P)
    stats = {"loss": np.ones(len(w)), "grad_norm": np.linalg.norm(norms, axis=1), "grad_norms": norms}
    grads = {"w": w, "b": b}
    steps = len(w)
    no_flow, outputs = (np.arange(0), np.zeros((0, 1, 1))), np.zeros((steps, 1, 1))
    return Trace(backend, ["w", "b"], stats, *no_flow, outputs, grads, grads, np.zeros(1), np.array([steps]), [])


def grads_difference(jax_w, jax_b, torch_w, torch_b) -> float:
    traces = {"jax": trace("jax", jax_w, jax_b), "torch": trace("torch", torch_w, torch_b)}
    limits = {name: compare.Tolerance(1.0, "") for name in ("grads", "grad_norms")}
    report = compare.compare(traces, "float32", tolerances=limits)
    grads, norms = (report.quantities[i].max_diff for i in range(2))
    assert grads == norms  # one element of b, and w's difference below: the same figure both ways
    return grads


W = np.array([[0.3, -0.4, 1.2], [0.5, 0.1, -0.7]])  # global norms 1.3 and ~0.87


def test_a_cancelled_bias_is_measured_against_one_percent_of_the_global_norm():
    # step 2's bias gradient has cancelled to 1e-5 (~1e-5 of the global norm); float32 rounding of its terms
    # leaves 2e-7 absolute: 2 % of its own norm, but 2e-7 / (0.01 * 0.87) = 2.3e-5 of the floor.
    torch_b = np.array([[0.2], [1e-5]])
    jax_b = torch_b + np.array([[0.0], [2e-7]])
    global_norm = np.linalg.norm([*W[1], 1e-5])
    # float64 arithmetic on these inputs: equal to ~1e-9 relative (2e-7 survives 1e-5 + 2e-7 - 1e-5 so far)
    assert grads_difference(W, jax_b, W, torch_b) == pytest.approx(2e-7 / (compare.CANCELLED * global_norm), rel=1e-6)


def test_a_tensor_of_ordinary_size_is_measured_against_its_own_norm():
    torch_b = np.array([[0.2], [0.1]])
    jax_b = torch_b * np.array([[1.0], [1.01]])  # 1 % off, where the bias is 11 % of the global norm
    assert grads_difference(W, jax_b, W, torch_b) == pytest.approx(0.01, rel=1e-9)  # 0.001 / 0.1, float64


def test_runs_that_diverge_alike_agree_and_runs_that_diverge_apart_do_not():
    """Per row: the same inf or NaN in both is agreement; a non-finite value on one side only is not."""
    b = np.array([[np.inf, 1.0], [np.nan, 1.0], [np.inf, 1.0], [2.0, 1.0], [np.inf, 1.0], [3.0, 4.0]])
    a = np.array([[np.inf, 1.0], [np.nan, 1.0], [-np.inf, 1.0], [np.nan, 1.0], [5.0, 1.0], [3.0, 4.5]])
    got = compare.relative(a, b, (1,))
    np.testing.assert_array_equal(got[:5], [0.0, 0.0, np.inf, np.inf, np.inf])
    assert got[5] == 0.5 / 5.0  # finite rows as before: ‖a - b‖ / ‖b‖


def test_a_nan_difference_is_out_of_tolerance_at_its_step():
    """A difference that is NaN (no number to compare) fails, however wide the limit: `nan <= limit` is False, and
    so is `nan > limit`, so the check must ask whether the difference is within the limit, not beyond it."""
    result = compare.check(
        "loss", np.array([1, 2, 3, 4]), np.array([0.0, 1e-13, np.nan, 0.0]), compare.Tolerance(1.0, "")
    )
    assert not result.passed and result.first_failing_step == 3
    assert np.isnan(result.max_diff)
    within = compare.check("loss", np.array([1, 2]), np.array([0.0, 1.0]), compare.Tolerance(1.0, ""))
    assert within.passed and within.max_diff == 1.0  # the limit itself is within tolerance


def test_the_report_says_which_jax_recurrence_it_compared():
    """parity.json and the verdict name the JAX side's training.rnn: a cuDNN-path report read like a scan-path one."""
    b = np.array([[0.2], [0.1]])
    traces = {"jax": trace("jax", W, b), "torch": trace("torch", W, b)}
    limits = {name: compare.Tolerance(1.0, "") for name in ("grads", "grad_norms")}  # what these traces hold
    report = compare.compare(traces, "float32", device="gpu", tolerances=limits, jax_rnn="cudnn")
    assert report.to_json()["jax_rnn"] == "cudnn"
    assert "PASSED: 2 steps, float32 on gpu (JAX recurrence: cudnn)" in report.table()
    default = compare.compare(traces, "float32", tolerances=limits)  # training.rnn's default
    assert (default.to_json()["jax_rnn"], default.jax_rnn) == ("scan", "scan")
