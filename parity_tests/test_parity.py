"""The two trainers agree step by step: loss, outputs, gradients, their statistics, lr, weights, reductions.

Every run starts both backends from the same weights, data and batch order (parity_tests.engine) and checks
every quantity against `compare.TOLERANCES` (each limit is explained there). The headline numbers of the
issue are asserted here as well, with the values measured on CPU when the suite was written.
"""

from __future__ import annotations

import numpy as np
import pytest

from lstm_core import loop
from lstm_core.config import Config, TrainingConfig
from lstm_core.machine import cpu_cores
from parity_tests import cases, compare


def assert_passed(report: compare.Report) -> None:
    assert report.passed, "\n" + report.table()


@pytest.mark.parametrize("device", cases.DEVICES)
def test_float64_long_run_with_active_clipping_and_plateau(device):
    config = cases.make_config(cases.LONG_FLOAT64, device=device)
    report, traces = cases.run_and_compare(config)
    reference = traces["torch"]
    # The run is what the issue asks for: >= 500 steps, clipping on a sizeable share, >= 2 reductions.
    assert reference.steps == 522
    assert np.mean(reference.stats["clip_factor"] < 1) > 0.2  # measured 0.29
    assert len(reference.lr_reductions) >= 2  # measured after epochs 4, 7, 9, 11, 13, 15, 17
    assert_passed(report)
    # assert_passed held the limits (loss 1e-10, gradients 1e-12 at the same weights, 1e-9 along the
    # run); this run's precision is pinned closer, so a loss of it shows long before those limits. Measured
    # with JAX's hand-written backward (the default), CPU / H100: loss 3.1e-14 / 2.6e-14, gradients from the
    # same weights 1.9e-13 / 4.4e-13, along the run 2.2e-12 / 1.5e-11 (that one before compare.CANCELLED).
    # Bounds: about 10x the larger.
    assert cases.quantity(report, "loss").max_diff <= 3e-13
    assert cases.quantity(report, "grads_same_weights").max_diff <= 5e-12
    assert cases.quantity(report, "grads").max_diff <= 2e-10
    assert traces["jax"].lr_reductions == reference.lr_reductions


@pytest.mark.parametrize(
    "case",
    [
        "digits-2layer-noclip-noplateau-autodiff",
        "csv5-1layer-clip-plateau-decay",
        pytest.param("sine-1layer-clip-plateau", marks=pytest.mark.slow),
        pytest.param("sine-2layer-noclip-plateau", marks=pytest.mark.slow),
        pytest.param("digits-1layer-clip-plateau", marks=pytest.mark.slow),
        pytest.param("csv5-2layer-clip-noplateau", marks=pytest.mark.slow),
    ],
)
@pytest.mark.parametrize("device", cases.DEVICES)
def test_float64_configurations(case, device, csv5):
    """1 and 2 layers, regression and classification, clipping and plateau on and off, input 5, hidden 17,
    weight decay, and JAX's autodiff backward path beside its hand-written default."""
    sections = cases.MATRIX[case]
    config = cases.make_config(sections, device=device, csv=csv5, dtype="float64", grad_flow_every=1)
    report, traces = cases.run_and_compare(config)
    assert_passed(report)
    reference = traces["torch"]
    # Each switch really is exercised, so a pass means something.
    if config.clipping.enabled:
        assert np.mean(reference.stats["clip_factor"] < 1) > 0.5
    else:
        assert np.all(reference.stats["clip_factor"] == 1)
    assert (len(reference.lr_reductions) > 0) == config.plateau.enabled
    assert len(reference.grad_flow_steps) == reference.steps  # ‖dL/dh_t‖ compared at every step


@pytest.mark.skipif(cpu_cores() < 2, reason="the split needs two CPU cores, one jax device each")
def test_float64_with_the_jax_batch_split_over_two_cpu_devices():
    """`--shards 2`: each device runs half the batch and the halves' gradients are averaged; torch runs the
    whole batch. 2 layers, clipping on most steps, plateau reductions: the same tolerances as one device."""
    sections = {**cases.MATRIX["sine-1layer-clip-plateau"], "model": {"hidden_size": 17, "num_layers": 2}}
    config = cases.make_config(sections, dtype="float64", grad_flow_every=1, shards=2)  # refused if it cannot split
    report, traces = cases.run_and_compare(config)
    assert_passed(report)
    reference = traces["torch"]
    assert np.mean(reference.stats["clip_factor"] < 1) > 0.5 and len(reference.lr_reductions) > 0


@pytest.mark.parametrize(
    "case",
    ["sine-2layer", pytest.param("digits-1layer", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("device", cases.DEVICES)
def test_float32_first_50_steps(case, device):
    config = cases.make_config(cases.FLOAT32_CASES[case], device=device, grad_flow_every=1)
    report, _ = cases.run_and_compare(config)
    assert_passed(report)
    loss = cases.quantity(report, "loss")
    assert loss.checked_steps == [1, 50]
    # assert_passed held the float32 limit (1e-4); on CPU the runs agree closer: measured 1.1e-6 (sine,
    # 2 layers) and 3.3e-7 (digits), so 1e-5 (9x). On a GPU cuDNN and XLA sum in other orders (the default
    # float32 run measured 9.7e-6 on an H100), which the limit covers.
    assert loss.max_diff <= (1e-5 if device == "cpu" else 1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["sine-2layer", "digits-1layer"])
def test_float32_first_50_steps_on_cudnn(case):
    """JAX's cuDNN path (jax.experimental.rnn) against torch's nn.LSTM, which runs cuDNN on a GPU, TF32 off."""
    config = cases.make_config(cases.FLOAT32_CASES[case], device="gpu", grad_flow_every=1, rnn="cudnn")
    report, _ = cases.run_and_compare(config)
    assert_passed(report)
    # The float32 limit, as for the scan path.
    assert cases.quantity(report, "loss").max_diff <= 1e-4


@pytest.mark.slow
def test_float32_drift_band_over_400_steps():
    """How far two float32 runs drift, step by step, on the 2-layer sine model (no tolerance window).

    Measured on CPU (torch 2.13, jax 0.10.2), largest relative difference up to step 10 / 50 / 240 / 400:
    loss 1.8e-7 / 1.1e-6 / 1.3e-5 / 1.3e-5 (an earlier build: 3.0e-5 by step 240); gradients along the run
    2.0e-6 / 7.6e-5 / 6.3e-4 / 6.3e-4 (JAX's autodiff path: 2.0e-6 / 1.7e-4 / 4.1e-4). Before the accurate
    float32 Adam bias correction in lstm_jax/optim.py the loss reached 1e-4 by step 34. The bands allow ~5-10x.
    """
    sections = {**cases.FLOAT32_CASES["sine-2layer"], "training": {"epochs": 20, "batch_size": 16}}
    config = cases.make_config(sections, grad_flow_every=10)
    diffs = {}
    compare.compare(
        cases.engine.run(config), "float32", on_diffs=lambda name, steps, d: diffs.__setitem__(name, (steps, d))
    )
    steps, loss = diffs["loss"]
    assert steps[-1] == 400
    for last_step, band in ((10, 1e-6), (50, 1e-5), (240, 2e-4), (400, 2e-4)):
        assert loss[steps <= last_step].max() <= band, (last_step, loss[steps <= last_step].max())
    steps, grads = diffs["grads"]
    for last_step, band in ((10, 1e-5), (50, 1e-3), (240, 5e-3)):
        assert grads[steps <= last_step].max() <= band, (last_step, grads[steps <= last_step].max())


@pytest.mark.parametrize(
    "device, rnn",
    [
        pytest.param("cpu", "scan", id="cpu"),
        pytest.param("gpu", "scan", id="gpu", marks=pytest.mark.gpu),
        pytest.param("gpu", "cudnn", id="gpu-cudnn", marks=pytest.mark.gpu),
    ],
)
def test_float32_full_default_training_ends_within_1_percent(device, rnn, tmp_path):
    """A full default run (sine, 20 epochs, 860 steps) through lstm-train's own loop, once per backend."""
    training = TrainingConfig(grad_flow_every=0, device=device, rnn=rnn)
    summaries = {
        backend: loop.train(Config(backend=backend, training=training), tmp_path / backend)
        for backend in ("torch", "jax")
    }
    assert summaries["torch"]["steps"] == summaries["jax"]["steps"] == 860
    final = {backend: summary["final_val_loss"] for backend, summary in summaries.items()}
    # The issue's limit: 1 %. Measured: equal to the last bit (0.030400999 both); along the way the epochs'
    # validation losses differ by <= 7e-7 relative and the step losses by <= 3.8e-6.
    assert final["jax"] == pytest.approx(final["torch"], rel=1e-2, abs=0)
    if device == "cpu":  # ...and on CPU as close as the epochs' validation losses: 1e-5 (14x their 7e-7)
        assert final["jax"] == pytest.approx(final["torch"], rel=1e-5, abs=0)
