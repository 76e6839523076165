"""The plain-loop recorders: a few lines in a user's own PyTorch or optax loop write the files lstm-train
writes, and lstm-doctor reads them."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest

from lstm_core import diagnosis, doctor
from lstm_core.recorder import RunRecorder, clip_factors, data_stats
from lstm_core.records import EPOCH_FIELDS, STEP_FIELDS
from lstm_core.run_records import load_run


def toy_data(rng, n=64, T=6, F=2):
    """Windows (n, T, F) and a regression target (n, 1) that depends on the last step."""
    x = rng.standard_normal((n, T, F))
    return x, x[:, -1, :1] * 0.5 + 0.1


def read_csv(path):
    with path.open() as handle:
        return list(csv.reader(handle))


def check_lstm_train_layout(run_dir, param_names, steps, epochs):
    """The files a recorder wrote have lstm-train's columns, one row per step / epoch, and load for the doctor."""
    step_rows = read_csv(run_dir / "steps.csv")
    assert step_rows[0] == [*STEP_FIELDS, *(f"grad_norm:{name}" for name in param_names)]
    assert [int(row[0]) for row in step_rows[1:]] == list(range(1, steps + 1))
    assert read_csv(run_dir / "epochs.csv")[0] == list(EPOCH_FIELDS)
    assert len(read_csv(run_dir / "epochs.csv")) == epochs + 1
    records = load_run(run_dir)
    assert records.num_steps == steps
    return records


# ------------------------------------------------------------------------------------------------- shared half
def test_clip_factors_match_clip_grad_norm():
    norms = np.array([0.5, 1.0, 4.0, np.nan])
    factors = clip_factors(norms, 1.0)
    # exact: the same float64 division as torch's max_norm / (total_norm + 1e-6)
    assert factors[0] == 1.0 and factors[2] == 1 / (4.0 + 1e-6)
    assert factors[1] == 1 / (1 + 1e-6)  # torch divides by norm + 1e-6 even at the limit
    assert np.isnan(factors[3])
    np.testing.assert_array_equal(clip_factors(norms, None), np.ones(4))


def test_data_stats_pool_every_axis_but_features():
    x = np.arange(24, dtype=float).reshape(2, 3, 4)  # (N, T, F)
    stats = data_stats(x, np.array([1.0, 3.0]), scaled=False, task="regression")
    flat = x.reshape(-1, 4)
    # exact: the same float64 reductions over the same pooled rows
    assert stats["inputs"]["mean"] == flat.mean(axis=0).tolist()
    assert stats["inputs"]["std"] == flat.std(axis=0).tolist()  # population std, as StandardScaler
    assert stats["targets"] == {"mean": [2.0], "std": [1.0], "min": [1.0], "max": [3.0]}
    assert stats["scaled"] is False and stats["task"] == "regression"
    assert data_stats(x, np.array([0, 1]), scaled=True, task="classification")["targets"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "classification"}, "needs num_classes >= 2"),
        ({"task": "ranking"}, "task must be"),
        ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
        ({"hidden_size": 0}, "hidden_size must be a positive int, got 0"),
        ({"max_norm": -1.0}, "max_norm must be > 0, or None"),
    ],
)
def test_run_recorder_rejects_bad_settings(tmp_path, kwargs, message):
    settings = {"backend": "torch", "lr": 0.01, "hidden_size": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        RunRecorder(tmp_path, ["w"], np.asarray, **settings)


def test_losses_and_gradient_norms_near_float64s_max_are_recorded_without_overflow(tmp_path):
    """Two steps of a loop blowing up: losses of 1.5e308 and 1e308 summed to inf in the epoch's mean (and the
    recorder said it stopped on a non-finite loss), per-tensor norms of 3·2**600 and 4·2**600 squared past
    float64's max into an inf global norm, each with a numpy RuntimeWarning (pytest makes it an error here)."""
    recorder = RunRecorder(tmp_path, ["w", "b"], np.asarray, backend="torch", lr=0.01, hidden_size=8, max_norm=1.0)
    recorder._add_step(1.5e308, np.array([3 * 2.0**600, 4 * 2.0**600]))
    recorder._add_step(1e308, np.array([3.0, 4.0]))
    assert recorder.end_epoch(1.0)["train_loss"] == 1.25e308  # halves, exact in float64, sum exactly
    records = load_run(tmp_path)
    np.testing.assert_array_equal(records.grad_norm, [5 * 2.0**600, 5.0])  # powers of two: exact
    np.testing.assert_array_equal(records.clip_factor, [1 / (5 * 2.0**600 + 1e-6), 1 / (5.0 + 1e-6)])
    assert recorder.close()["stopped_nonfinite"] is False


def test_end_epoch_needs_a_step(tmp_path):
    recorder = RunRecorder(tmp_path, ["w"], np.asarray, backend="torch", lr=0.01, hidden_size=8)
    with pytest.raises(ValueError, match="end_epoch\\(\\) before any step"):
        recorder.end_epoch(1.0)


def test_a_recorder_closed_before_any_epoch_says_it_did_not_stop_on_a_nonfinite_loss(tmp_path):
    """No epoch ended, so no loss is known (nan): that is not a loss that turned non-finite."""
    recorder = RunRecorder(tmp_path, ["w"], np.asarray, backend="torch", lr=0.01, hidden_size=8)
    summary = recorder.close()
    assert summary["stopped_nonfinite"] is False and summary["epochs_run"] == 0 and summary["steps"] == 0


# ------------------------------------------------------------------------------------------------------ torch
def torch_loop(run_dir, epochs=3, lr=0.01, max_norm=1.0, loss_at=None, probe=False):
    """A plain PyTorch loop as a user writes it, plus the recorder's lines. Returns the recorder and the
    global norms clip_grad_norm_ reported."""
    import torch
    from torch import nn

    from lstm_torch.recorder import Recorder

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(2, 8, batch_first=True)
            self.head = nn.Linear(8, 1)

        def forward(self, x):
            return self.head(self.lstm(x)[0][:, -1])

    torch.manual_seed(0)
    x, y = (torch.as_tensor(a, dtype=torch.float32) for a in toy_data(np.random.default_rng(0)))
    model = Net()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    recorder = Recorder(run_dir, model, optimizer, max_norm=max_norm, inputs=x.numpy(), targets=y.numpy())
    reported = []
    for _ in range(epochs):
        for index in torch.arange(64).reshape(4, 16):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x[index]), y[index])
            if loss_at is not None and len(reported) == loss_at:
                loss = loss * float("nan")
            loss.backward()
            flow = torch.rand(1, 6) if probe else None  # what a loop that measures ‖dL/dh_t‖ would pass
            recorder.step(loss, hidden_grad_norms=flow)
            reported.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm or math.inf)))
            optimizer.step()
        with torch.no_grad():
            recorder.end_epoch(nn.functional.mse_loss(model(x), y))
    recorder.close()
    return recorder, reported


def test_torch_recorder_writes_lstm_train_records(tmp_path):
    recorder, reported = torch_loop(tmp_path / "run", probe=True)
    names = ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "head.weight", "head.bias"]
    records = check_lstm_train_layout(tmp_path / "run", names, steps=12, epochs=3)
    # the global norm is recomputed from the per-tensor norms: float32 sums, so agree to ~1e-6 relative
    np.testing.assert_allclose(records.grad_norm, reported, rtol=1e-5)
    np.testing.assert_allclose(records.clip_factor, np.minimum(1, 1 / (np.asarray(reported) + 1e-6)), rtol=1e-5)
    assert np.all(records.lr == 0.01)
    assert records.grad_flow is not None and records.grad_flow.norms.shape == (12, 6)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == {"hidden_size": 8, "num_layers": 1}  # read from the model's nn.LSTM
    assert config["clipping"] == {"enabled": True, "max_norm": 1.0}
    assert config["data"]["window"] == 6
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["recorder"] == "lstm_torch.recorder" and summary["steps"] == 12
    assert summary["stopped_nonfinite"] is False
    assert summary["final_val_loss"] == recorder.val_loss  # JSON writes a float's repr: exact
    text, code = doctor.report(tmp_path / "run")
    # 12 steps are too short to judge (MIN_JUDGED_STEPS): the doctor reads the records and says so
    assert code == doctor.EXIT_CAUSE_FOUND and "Diagnosis of" in text and "12 steps" in text


def test_torch_recorder_reads_the_scheduled_lr_and_no_clipping(tmp_path):
    import torch
    from torch import nn

    from lstm_torch.recorder import Recorder

    model = nn.Sequential(nn.Linear(2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    recorder = Recorder(tmp_path, model, optimizer, hidden_size=4)
    for lr in (0.1, 0.05):
        optimizer.param_groups[0]["lr"] = lr
        loss = model(torch.ones(3, 2)).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        recorder.step(loss)
    recorder.end_epoch(1.0)
    records = load_run(tmp_path)
    np.testing.assert_array_equal(records.lr, [0.1, 0.05])
    np.testing.assert_array_equal(records.clip_factor, [1.0, 1.0])  # max_norm=None: the loop does not clip
    assert records.config["clipping"]["enabled"] is False


def test_torch_recorder_needs_a_hidden_size_without_an_lstm(tmp_path):
    import torch
    from torch import nn

    from lstm_torch.recorder import Recorder

    model = nn.Linear(2, 1)
    with pytest.raises(ValueError, match="pass hidden_size="):
        Recorder(tmp_path, model, torch.optim.Adam(model.parameters()))


def test_torch_recorder_marks_a_nonfinite_loss(tmp_path):
    _, _ = torch_loop(tmp_path / "run", epochs=1, loss_at=2)
    records = load_run(tmp_path / "run")
    assert np.isnan(records.loss[2])
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["stopped_nonfinite"] is True


# -------------------------------------------------------------------------------------------------------- jax
def test_jax_recorder_writes_lstm_train_records(tmp_path):
    import jax
    import jax.numpy as jnp
    import optax

    from lstm_jax.recorder import Recorder, grad_norms

    x, y = toy_data(np.random.default_rng(0))
    params = {"head": {"w": jnp.zeros((2, 1)), "b": jnp.zeros((1,))}}  # a linear model on the last step

    def loss_fn(params, x, y):
        return jnp.mean((x[:, -1] @ params["head"]["w"] + params["head"]["b"] - y) ** 2)

    tx = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.05))
    opt_state = tx.init(params)

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, grads

    recorder = Recorder(tmp_path, params, lr=0.05, hidden_size=1, max_norm=0.5, inputs=x, targets=y)
    expected = []
    for epoch in range(3):
        for index in np.arange(64).reshape(4, 16):
            loss_norms = None
            params, opt_state, loss, grads = train_step(params, opt_state, x[index], y[index])
            if epoch == 2:  # a jitted step may hand over grad_norms(grads) instead of the tree
                loss_norms = grad_norms(grads)
                recorder.step(loss, norms=loss_norms, lr=0.05)
            else:
                recorder.step(loss, grads)
            expected.append(float(optax.tree.norm(grads)))
        recorder.end_epoch(loss_fn(params, x, y))
    recorder.close()
    records = check_lstm_train_layout(tmp_path, ["head.b", "head.w"], steps=12, epochs=3)
    np.testing.assert_allclose(records.grad_norm, expected, rtol=1e-5)  # float32 norms, recombined
    np.testing.assert_allclose(records.clip_factor, np.minimum(1, 0.5 / (np.asarray(expected) + 1e-6)), rtol=1e-5)
    assert records.config["optimizer"]["lr"] == 0.05
    assert json.loads((tmp_path / "summary.json").read_text())["recorder"] == "lstm_jax.recorder"
    assert records.epochs["val_loss"][-1] < records.epochs["val_loss"][0]  # the toy loop does learn


def test_jax_recorder_takes_grads_or_norms_not_both(tmp_path):
    import jax.numpy as jnp

    from lstm_jax.recorder import Recorder, parameter_names

    params = {"lstm": {"weight_hh_l0": jnp.ones((4, 1))}, "head": [jnp.ones(1), jnp.ones(2)]}
    assert parameter_names(params) == ["head.0", "head.1", "lstm.weight_hh_l0"]
    recorder = Recorder(tmp_path, params, lr=0.01, hidden_size=1)
    with pytest.raises(ValueError, match="exactly one of them"):
        recorder.step(1.0)
    with pytest.raises(ValueError, match="exactly one of them"):
        recorder.step(1.0, params, norms=jnp.ones(3))


# ------------------------------------------------------------------------------------------- bad input at step()
def step_recorder(backend, run_dir):
    """A backend's Recorder on a one-tensor linear model, and `step(loss, hidden_grad_norms)` feeding it one
    step of that model's gradient: the lines a user's loop has, minus the loop."""
    if backend == "torch":
        import torch
        from torch import nn

        from lstm_torch.recorder import Recorder

        model = nn.Linear(2, 1, bias=False)
        recorder = Recorder(run_dir, model, torch.optim.SGD(model.parameters(), lr=0.1), hidden_size=4)

        def step(loss_shape=(), hidden_grad_norms=None):
            model.zero_grad()
            model(torch.ones(3, 2)).pow(2).mean().backward()
            recorder.step(torch.full(loss_shape, 0.5), hidden_grad_norms=hidden_grad_norms)

    else:
        import jax.numpy as jnp

        from lstm_jax.recorder import Recorder

        params = {"w": jnp.ones((2, 1))}
        recorder = Recorder(run_dir, params, lr=0.1, hidden_size=4)

        def step(loss_shape=(), hidden_grad_norms=None):
            recorder.step(jnp.full(loss_shape, 0.5), params, hidden_grad_norms=hidden_grad_norms)

    return recorder, step


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_step_refuses_a_hidden_grad_norms_shape_at_once(tmp_path, backend):
    recorder, step = step_recorder(backend, tmp_path)
    with pytest.raises(ValueError, match=r"^hidden_grad_norms must be \(num_layers, T\) = \(1, T\), got \(10,\)$"):
        step(hidden_grad_norms=np.ones(10))  # the layer axis left out
    step(hidden_grad_norms=np.ones((1, 10)))  # step 1 fixes T = 10
    for shape in [(1, 9), (10,), (2, 1, 10)]:
        with pytest.raises(ValueError, match=rf"= \(1, 10\) as at step 1, got {re.escape(str(shape))}$"):
            step(hidden_grad_norms=np.ones(shape))
    with pytest.raises(ValueError, match=r"num_layers is 1: pass num_layers=2 to the Recorder if the model has 2"):
        step(hidden_grad_norms=np.ones((2, 10)))
    step(hidden_grad_norms=np.full((1, 10), 2.0))
    recorder.end_epoch(1.0)  # the refused steps left nothing behind: two steps, both probed, one width
    records = load_run(tmp_path)
    assert records.num_steps == 2 and records.grad_flow.norms.shape == (2, 10)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_step_refuses_a_per_sample_loss(tmp_path, backend):
    recorder, step = step_recorder(backend, tmp_path)
    with pytest.raises(
        ValueError, match=r"^loss must be a scalar \(the batch mean: take \.mean\(\)\), got shape \(4,\)$"
    ):
        step(loss_shape=(4,))
    step()
    assert recorder.end_epoch(1.0)["train_loss"] == 0.5


def test_jax_step_refuses_gradients_of_another_tree(tmp_path):
    import jax.numpy as jnp

    recorder, _ = step_recorder("jax", tmp_path)
    with pytest.raises(
        ValueError, match=r"one norm per parameter tensor the Recorder was built with: \(1,\), got \(2,\)"
    ):
        recorder.step(0.5, {"w": jnp.ones(2), "b": jnp.ones(1)})


def test_torch_step_takes_a_python_float_loss(tmp_path):
    recorder, step = step_recorder("torch", tmp_path)
    step()  # a tensor loss, then a float one: both land in the same epoch
    recorder.step(0.25)
    recorder.end_epoch(1.0)
    np.testing.assert_array_equal(load_run(tmp_path).loss, [0.5, 0.25])


def test_unscaled_data_baseline_is_the_targets_variance(tmp_path):
    """The module docstrings' example: raw arrays, no scaled= argument. The doctor's baseline is then the raw
    targets' variance, not the 1.0 of standardised targets."""
    x, y = toy_data(np.random.default_rng(0))
    y = 20.0 * y + 5.0  # raw units, variance far from 1
    recorder = RunRecorder(tmp_path, ["w"], np.asarray, backend="torch", lr=0.01, hidden_size=8, inputs=x, targets=y)
    recorder._add_step(1.0, np.ones(1))
    recorder.end_epoch(1.0)
    stats = json.loads((tmp_path / "data_stats.json").read_text())
    assert stats["scaled"] is False
    baseline = diagnosis.diagnose(load_run(tmp_path)).context["baseline"]
    assert baseline == pytest.approx(y.var(), rel=1e-12)  # float64 stats of the same array


@pytest.mark.parametrize(
    ("name", "value", "written"),
    [("num_classes", np.int64(3), 3), ("hidden_size", np.int64(16), 16), ("num_layers", np.int32(2), 2)],
)
def test_run_recorder_takes_numpy_integers(tmp_path, name, value, written):
    settings = {"backend": "torch", "lr": 0.01, "hidden_size": 8, "task": "classification", "num_classes": 4}
    recorder = RunRecorder(tmp_path, ["w"], np.asarray, **{**settings, name: value})
    recorder._add_step(1.0, np.ones(1))
    recorder.end_epoch(1.0)
    recorder.close()
    config, summary = (json.loads((tmp_path / f).read_text()) for f in ("config.json", "summary.json"))
    recorded = {**config["model"], "num_classes": summary["num_classes"]}[name]
    assert recorded == written and type(recorded) is int  # a JSON int, as the doctor's isinstance(.., int) needs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"task": "classification", "num_classes": True}, "needs num_classes >= 2 .*, got True"),
        ({"hidden_size": True}, "hidden_size must be a positive int, got True"),
        ({"num_layers": np.int64(0)}, r"num_layers must be a positive int, got np.int64\(0\)"),
        ({"hidden_size": 8.0}, "hidden_size must be a positive int, got 8.0"),
        (
            {"lr": lambda step: 0.01},
            r"lr must be the initial learning rate, a number; with a schedule pass schedule\(0\)",
        ),
    ],
)
def test_run_recorder_refuses_bools_and_non_integers(tmp_path, kwargs, message):
    settings = {"backend": "torch", "lr": 0.01, "hidden_size": 8, **kwargs}
    with pytest.raises(ValueError, match=message):
        RunRecorder(tmp_path, ["w"], np.asarray, **settings)


def test_torch_recorder_refuses_a_zero_hidden_size_it_could_read(tmp_path):
    """hidden_size=0 is an error, not a request to read the model's nn.LSTM."""
    import torch
    from torch import nn

    from lstm_torch.recorder import Recorder

    model = nn.LSTM(2, 8)
    with pytest.raises(ValueError, match="hidden_size must be a positive int, got 0"):
        Recorder(tmp_path, model, torch.optim.SGD(model.parameters(), lr=0.1), hidden_size=0)
