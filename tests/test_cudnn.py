"""The cuDNN path (`training.rnn = "cudnn"`) on CPU, with jax's own reference LSTM standing in for the kernel.

cuDNN itself runs only on a CUDA GPU (parity_tests run it there against torch with --gpu). Here
`jax.experimental.rnn.lstm` is replaced by `unpack_lstm_weights` + `lstm_ref`: jax's documented reading of
cuDNN's flat weight vector and its reference recurrence. What these tests check is ours: the packing of the
torch-layout parameters, the per-layer split around dropout, the probe of ‖dL/dh_t‖ through the scan path,
and the trainer's plumbing; both paths then compute the same function.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.experimental import rnn

from lstm_core import cli, weights
from lstm_core import data as datasets
from lstm_core.config import ConfigError, from_dict
from lstm_core.loop import prepare, until_nonfinite
from lstm_jax import cudnn
from lstm_jax import model as jax_model
from lstm_jax import train as jax_train
from tests import conftest
from tests.conftest import replace


def reference_lstm(x, h_0, c_0, flat, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional):
    """`rnn.lstm`'s signature and contract, computed by jax's pure-JAX reference from the same flat vector."""
    w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, input_size, hidden_size, num_layers, bidirectional)
    return rnn.lstm_ref(
        x, h_0, c_0, w_ih, w_hh, b_ih, b_hh, seq_lengths, input_size, hidden_size, num_layers, dropout, bidirectional
    )


TORCH_ORDER = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")  # cudnn.Layer's order


@pytest.fixture
def cpu_cudnn(monkeypatch):
    monkeypatch.setattr(cudnn.rnn, "lstm", reference_lstm)
    monkeypatch.setattr(cudnn, "require_gpu", lambda device: None)


@pytest.mark.parametrize("num_layers", [1, 3])
def test_pack_is_the_layout_jax_reads_back(num_layers):
    initial = weights.initial_weights(5, 7, num_layers, 1, np.random.default_rng(0))
    layers = [tuple(initial[f"lstm.{kind}_l{k}"].astype(np.float32) for kind in TORCH_ORDER) for k in range(num_layers)]
    flat = cudnn.pack(layers)
    assert flat.shape == (rnn.get_num_params_in_lstm(5, 7, num_layers, False),)
    unpacked = rnn.unpack_lstm_weights(flat, 5, 7, num_layers, False)
    for k, layer in enumerate(layers):
        for kind, read_back, ours in zip(TORCH_ORDER, (u[k] for u in unpacked), layer, strict=True):
            np.testing.assert_array_equal(read_back, ours, err_msg=f"{kind}_l{k}")


def test_cudnn_path_equals_the_scan_path_outputs_and_gradients(cpu_cudnn):
    """2 layers, input 5, hidden 7, float32, in training mode."""
    initial = weights.initial_weights(5, 7, 2, 1, np.random.default_rng(0))
    params = jax_model.from_torch_names(initial, jnp.float32)
    x = jax.random.normal(jax.random.key(1), (4, 9, 5))
    paths = {path: jax_model.LSTMModel(7, 2, 1, rnn=path) for path in ("scan", "cudnn")}

    def loss(params, path):
        out = paths[path].apply({"params": params}, x, train=True)
        return jnp.mean(out**2), out

    results = {path: jax.grad(loss, has_aux=True)(params, path) for path in paths}
    # float32, the same maths in another order (lstm_ref splits the gates into four matmuls): rounding ~1e-7
    # of values of order 1; the limits leave 10x.
    np.testing.assert_allclose(results["cudnn"][1], results["scan"][1], rtol=1e-5, atol=1e-6)
    expected = jax_model.to_torch_names(results["scan"][0])
    for name, grad in jax_model.to_torch_names(results["cudnn"][0]).items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_the_trainer_on_the_cudnn_path_follows_the_scan_path_and_probes_gradient_flow(cpu_cudnn, tiny_config):
    config = replace(tiny_config, model={"hidden_size": 8, "num_layers": 2}, training={"grad_flow_every": 3})
    runs = {}
    for path in ("scan", "cudnn"):
        trainer, prepared, generators, _ = conftest.make_trainer(
            replace(config, training={"rnn": path}), jax_train.Trainer
        )
        runs[path] = conftest.train_epochs(trainer, prepared, generators, 2)
    scan, fast = runs["scan"], runs["cudnn"]
    np.testing.assert_array_equal(fast["grad_flow_steps"], scan["grad_flow_steps"])
    assert len(scan["grad_flow_steps"]) == 4  # steps 15, 18, 21, 24 of epoch 2 (12 batches an epoch)
    # float32 along 24 Adam steps of two orderings of the same maths: measured ~1e-6; limits leave 10-100x.
    np.testing.assert_allclose(fast["loss"], scan["loss"], rtol=1e-5)
    np.testing.assert_allclose(fast["grad_flow"], scan["grad_flow"], rtol=1e-4)
    assert np.all(fast["grad_flow"] > 0)


def test_a_kernel_that_disagrees_with_the_scan_path_is_refused_before_training(monkeypatch, tiny_config):
    """A stand-in that reads the flat vector with gates g and o swapped: forward and gradients go wrong."""

    def swapped(x, h_0, c_0, flat, lengths, input_size, hidden_size, num_layers, dropout, bidirectional):
        flat = rnn.swap_lstm_gates(flat, input_size, hidden_size, num_layers, bidirectional)
        return reference_lstm(x, h_0, c_0, flat, lengths, input_size, hidden_size, num_layers, dropout, bidirectional)

    monkeypatch.setattr(cudnn.rnn, "lstm", swapped)
    monkeypatch.setattr(cudnn, "require_gpu", lambda device: None)
    with pytest.raises(ConfigError, match=r"disagrees with the scan path .* use --rnn scan"):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn"}), jax_train.Trainer)


def test_cudnn_is_refused_off_a_gpu_in_float64_with_remat_unroll_backward_and_dropout(tiny_config, capsys):
    with pytest.raises(ConfigError, match="--device gpu or --rnn scan"):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn"}), jax_train.Trainer)
    # --device gpu where jax sees no GPU was refused with batch_mesh's "use --device cpu", which cuDNN refuses
    with pytest.raises(
        ConfigError, match=r"runs on a CUDA GPU, and jax sees no gpu device here \(only cpu\); use --rnn scan$"
    ):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn", "device": "gpu"}), jax_train.Trainer)
    with pytest.raises(ConfigError, match="float32 only"):
        from_dict({"training": {"rnn": "cudnn", "dtype": "float64"}})
    with pytest.raises(ConfigError, match="remat"):
        from_dict({"training": {"rnn": "cudnn", "remat": True}})
    unroll = "unroll applies to the scan recurrence; cuDNN runs all time steps in its own kernel (drop --unroll)"
    with pytest.raises(ConfigError, match=re.escape(unroll)):  # it was taken and ignored (the probe's scan only)
        from_dict({"training": {"rnn": "cudnn", "unroll": 4}})
    backward = "backward applies to the scan recurrence; cuDNN's kernel computes the gradient (drop --backward)"
    with pytest.raises(ConfigError, match=re.escape(backward)):  # it only chose the probe's and the check's scan path
        from_dict({"training": {"rnn": "cudnn", "backward": "autodiff"}})
    with pytest.raises(ConfigError, match="no dropout between them"):
        from_dict({"training": {"rnn": "cudnn"}, "model": {"num_layers": 2, "dropout": 0.1}})
    with pytest.raises(ConfigError, match="rnn must be"):
        from_dict({"training": {"rnn": "cuda"}})
    assert cli.main(["--rnn", "cudnn", "--dtype", "float64", "--epochs", "1"]) == 2
    assert "float32 only" in capsys.readouterr().err


GPU_CHECKS = Path(__file__).resolve().parents[1] / "scripts" / "gpu-checks.sh"


def run_gpu_checks(out, **env):
    """scripts/gpu-checks.sh OUT with this Python and the given variables (PARTS, *_TIMEOUT)."""
    variables = {**os.environ, "PYTHON": sys.executable, **env}
    return subprocess.run(["bash", str(GPU_CHECKS), str(out)], env=variables, capture_output=True, text=True)


def test_gpu_checks_fails_without_a_gpu(tmp_path):
    """On CPU the parity part finds no CUDA GPU, says so, and the script fails rather than pass on nothing."""
    result = run_gpu_checks(tmp_path, PARTS="parity")
    assert result.returncode == 1
    assert "see no CUDA GPU; nothing run" in result.stderr


@pytest.mark.parametrize("part", ["diagnosis", "parity", "bench"])
def test_gpu_checks_names_a_part_stopped_at_its_limit(part, tmp_path):
    """A part cut off by its time limit used to end the script silently, its report missing (session 8's float32).
    The diagnosis only reports (exit 0 whatever it found), and its stderr goes into cudnn-diagnosis.txt."""
    result = run_gpu_checks(tmp_path, PARTS=part, **{f"{part.upper()}_TIMEOUT": "0.01"})
    assert result.returncode == (0 if part == "diagnosis" else 1)
    said = f"gpu-checks.sh: the {part} part ran past its limit of 0.01 s and was stopped\n"
    assert said in result.stdout + result.stderr
    if part == "diagnosis":
        assert (tmp_path / "cudnn-diagnosis.txt").read_text() == said


def test_a_kernel_that_returns_nan_is_refused_before_training(monkeypatch, tiny_config):
    """A NaN from the kernel alone used to pass the check (Python's max(0.0, nan) is 0.0), and the run then
    stopped on a non-finite loss at its first step instead of being refused."""

    def nan_outputs(*args, **kwargs):
        ys, h, c = reference_lstm(*args, **kwargs)
        return ys * jnp.nan, h, c

    monkeypatch.setattr(cudnn.rnn, "lstm", nan_outputs)
    monkeypatch.setattr(cudnn, "require_gpu", lambda device: None)
    message = "rnn 'cudnn' disagrees with the scan path on this machine (loss inf, gradient inf relative"
    with pytest.raises(ConfigError, match=re.escape(message)):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn"}), jax_train.Trainer)


def test_a_kernel_whose_gradient_alone_is_nan_is_refused_before_training(monkeypatch, tiny_config):
    """The same loss as the scan path and a NaN gradient: the relative gradient difference is NaN, which a
    running max(0.0, nan) would drop; it counts as infinitely far."""

    @jax.custom_vjp
    def nan_backward(ys):
        return ys

    nan_backward.defvjp(lambda ys: (ys, None), lambda _, g: (g * jnp.nan,))

    def kernel(*args, **kwargs):
        ys, h, c = reference_lstm(*args, **kwargs)
        return nan_backward(ys), h, c

    monkeypatch.setattr(cudnn.rnn, "lstm", kernel)
    monkeypatch.setattr(cudnn, "require_gpu", lambda device: None)
    message = "rnn 'cudnn' disagrees with the scan path on this machine (loss inf, gradient inf relative"
    with pytest.raises(ConfigError, match=re.escape(message)):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn"}), jax_train.Trainer)


def test_a_scan_path_that_is_nan_beside_a_finite_kernel_is_refused_before_training(cpu_cudnn, monkeypatch, tiny_config):
    """Non-finite on one path only is infinitely far whichever path it is: here the scan path the check compares
    with (the hand-written layer, the default backward) gives NaN and the stand-in kernel does not."""
    fused_layer = jax_model.fused_layer
    monkeypatch.setattr(
        jax_model, "fused_layer", lambda unroll, remat: lambda *args: fused_layer(unroll, remat)(*args) * jnp.nan
    )
    message = "rnn 'cudnn' disagrees with the scan path on this machine (loss inf, gradient inf relative"
    with pytest.raises(ConfigError, match=re.escape(message)):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn"}), jax_train.Trainer)


def test_a_kernel_wrong_on_the_first_checked_batch_only_is_refused(monkeypatch, tiny_config):
    """The check takes the largest difference over its batches, not the last batch's: a stand-in that doubles its
    outputs on the first training batch (told apart by its sum of inputs) and is right on the second."""
    prepared, _, _ = prepare(tiny_config)
    size = tiny_config.training.batch_size
    first, second = (float(prepared.train.x[k * size : (k + 1) * size].sum()) for k in range(2))
    assert abs(first - second) > 1.0  # float32 sums of the same batch differ by far less

    def kernel(x, *args, **kwargs):
        ys, h, c = reference_lstm(x, *args, **kwargs)
        on_first = jnp.abs(jnp.sum(x) - first) < jnp.abs(jnp.sum(x) - second)
        return jnp.where(on_first, 2 * ys, ys), h, c

    monkeypatch.setattr(cudnn.rnn, "lstm", kernel)
    monkeypatch.setattr(cudnn, "require_gpu", lambda device: None)
    with pytest.raises(ConfigError, match=r"disagrees with the scan path .* use --rnn scan"):
        conftest.make_trainer(replace(tiny_config, training={"rnn": "cudnn"}), jax_train.Trainer)


def test_data_that_is_non_finite_on_both_paths_passes_the_check_and_stops_the_run_alike(cpu_cudnn, tiny_config):
    """A NaN input in the first batch: both paths' loss is NaN, which is agreement, not a broken kernel; each
    run then stops at that step with the same records."""
    records = {}
    for path in ("scan", "cudnn"):
        config = replace(tiny_config, training={"rnn": path})
        prepared, initial, generators = prepare(config)
        prepared.train.x[0, 0, 0] = np.nan  # sample 0: in the check's first batch, and in some epoch-1 batch
        trainer = jax_train.Trainer(config, prepared, initial)
        stats = trainer.train_epoch(datasets.epoch_batches(len(prepared.train), 16, generators["batches"]), 1)
        records[path], stopped = until_nonfinite(stats, 1)
        assert stopped
    assert len(records["cudnn"]["loss"]) == len(records["scan"]["loss"])
    assert np.isnan(records["cudnn"]["loss"][-1]) and np.isnan(records["scan"]["loss"][-1])
    # the finite steps before it: float32 rounding of two orderings of the same maths (~1e-7), 10x left
    np.testing.assert_allclose(records["cudnn"]["loss"][:-1], records["scan"]["loss"][:-1], rtol=1e-6)
