"""lstm_core.diagnosis on synthetic run directories written with the real RecordsWriter: one per cause,
healthy runs, precedence, and odd but readable records. No training. Its run-directory helpers (`write_run`)
serve the doctor's other tests too."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from lstm_core import diagnosis as dg
from lstm_core.config import DATASET_SETTINGS, Config, DataConfig
from lstm_core.diagnosis_report import format_report, to_json
from lstm_core.records import RecordsWriter
from lstm_core.run_records import load_run

PARAMS = ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0", "head.weight", "head.bias")
STEPS_PER_EPOCH = 25


def healthy_loss(n: int, rng, floor=0.02, start=1.0, tau=80.0) -> np.ndarray:
    steps = np.arange(1, n + 1)
    return (floor + (start - floor) * np.exp(-steps / tau)) * rng.lognormal(0.0, 0.1, n)


def healthy_grads(n: int, rng) -> np.ndarray:
    return (0.3 + 1.5 * np.exp(-np.arange(n) / 150)) * rng.lognormal(0.0, 0.2, n)


def flow_profile(T: int, ratio: float) -> np.ndarray:
    """‖dL/dh_t‖ rising geometrically from ratio·0.1 at t0 to 0.1 at t{T-1}."""
    return 0.1 * ratio ** (1 - np.arange(T) / (T - 1))


def write_run(
    path: Path,
    loss,
    grad_norm,
    *,
    lr=0.01,
    clip=True,
    max_norm=1.0,
    val=None,
    flow_ratio=1e-2,
    T=20,
    scaled=True,
    task="regression",
    inputs=None,
    targets=None,
    hidden=32,
    num_layers=1,
    num_classes=None,
    dataset="sine",
    weight_decay=0.0,
) -> Path:
    loss, grad_norm = np.asarray(loss, float), np.asarray(grad_norm, float)
    n = len(loss)
    lr = np.broadcast_to(np.asarray(lr, float), (n,)).copy()
    clip_factor = np.minimum(1.0, max_norm / (grad_norm + 1e-6)) if clip else np.ones(n)
    clip_factor = np.where(np.isfinite(clip_factor), clip_factor, np.nan)
    steps = np.arange(1, n + 1)
    epoch = (steps - 1) // STEPS_PER_EPOCH + 1
    writer = RecordsWriter(path, PARAMS)
    columns = {
        "step": steps,
        "epoch": epoch,
        "loss": loss,
        "grad_norm": grad_norm,
        "clip_factor": clip_factor,
        "lr": lr,
    }
    columns.update({f"grad_norm:{p}": grad_norm / math.sqrt(len(PARAMS)) for p in PARAMS})
    writer.write_steps(columns)
    num_epochs = int(epoch.max())
    train = np.array([np.mean(loss[epoch == e]) for e in range(1, num_epochs + 1)])
    val = train * 1.15 if val is None else np.asarray(val, float)
    for e in range(num_epochs):
        writer.write_epoch(
            epoch=e + 1, train_loss=float(train[e]), val_loss=float(val[e]), lr=float(lr[e * 25]), seconds=0.5
        )
        if not math.isfinite(train[e]) or not math.isfinite(val[e]):
            break
    if flow_ratio is not None:
        probe = steps[9::10]
        norms = np.tile(flow_profile(T, flow_ratio), (len(probe), num_layers, 1))
        norms[~np.isfinite(loss[probe - 1])] = np.nan
        writer.write_grad_flow(probe, norms)
    config = Config().to_dict()
    config["backend"] = "torch"
    config["model"].update(hidden_size=hidden, num_layers=num_layers)
    config["optimizer"].update(lr=float(lr[0]), weight_decay=weight_decay)
    config["clipping"].update(enabled=clip, max_norm=max_norm if clip else 0.0)
    config["training"].update(epochs=num_epochs)
    # as lstm-train writes it: the digits do not read the window, which stays at its default (validate refuses
    # any other), while their sequences are 8 rows long
    window = T if "window" in DATASET_SETTINGS[dataset] else DataConfig().window
    config["data"].update(dataset=dataset, window=window, scale=scaled)
    writer.write_json("config.json", config)
    if inputs is None:
        inputs = {"mean": [0.01], "std": [0.7], "min": [-1.2], "max": [1.2]}
    if targets is None and task == "regression":
        targets = {"mean": [0.01], "std": [0.7], "min": [-1.2], "max": [1.2]}
    writer.write_json("data_stats.json", {"scaled": scaled, "task": task, "inputs": inputs, "targets": targets})
    writer.write_json(
        "summary.json",
        {
            "backend": "torch",
            "steps": n,
            "epochs_run": num_epochs,
            "final_train_loss": float(train[-1]),
            "final_val_loss": float(val[-1]),
            "test_loss": float(val[-1]),
            "task": task,
            "stopped_nonfinite": bool(not np.all(np.isfinite(loss))),
            "num_classes": num_classes,
        },
    )
    return path


def run(path: Path) -> dg.Diagnosis:
    return dg.diagnose(load_run(path))


def rewrite_json(path: Path, name: str, edit) -> None:
    """Apply `edit` to the JSON record `name` of the run directory `path`, in place."""
    record = json.loads((path / name).read_text())
    edit(record)
    (path / name).write_text(json.dumps(record))


# ----------------------------------------------------------------------------------------------- healthy runs
def test_healthy_regression_run_has_no_cause(tmp_path, rng):
    n = 500
    d = run(write_run(tmp_path / "ok", healthy_loss(n, rng), healthy_grads(n, rng)))
    assert d.causes == ()
    assert d.healthy
    assert {f.status for f in d.findings} == {"ok"}, format_report(d)
    assert "Healthy: no cause found." in format_report(d)
    # 1e-12: float64 rounding of the profile's ends and of the lrs' sum (CSV keeps every value exactly)
    assert d.finding("vanishing_gradients").numbers["ratio_first_to_last"] == pytest.approx(1e-2, rel=1e-12)
    assert d.finding("lr_too_low").numbers["travel"] == pytest.approx(500 * 0.01 * math.sqrt(32), rel=1e-12)


def test_healthy_classification_run_has_no_cause(tmp_path, rng):
    n = 500
    loss = healthy_loss(n, rng, floor=0.1, start=math.log(10))
    d = run(
        write_run(
            tmp_path / "ok", loss, healthy_grads(n, rng), task="classification", num_classes=10, dataset="digits", T=8
        )
    )
    assert d.causes == () and d.healthy
    assert {f.status for f in d.findings} == {"ok"}, format_report(d)
    assert d.context["baseline"] == math.log(10)  # ln(num_classes), the same expression
    assert d.context["task"] == "classification"


def test_healthy_run_without_grad_flow(tmp_path, rng):
    n = 300
    d = run(write_run(tmp_path / "ok", healthy_loss(n, rng), healthy_grads(n, rng), flow_ratio=None))
    assert d.healthy
    assert "grad_flow.csv was not recorded" in d.finding("vanishing_gradients").evidence


# --------------------------------------------------------------------------------------------- one per cause
def test_exploding_gradients(tmp_path, rng):
    n = 250
    loss = healthy_loss(n, rng)
    grads = rng.lognormal(0.0, 0.2, n)
    grads[211] = 3.1e4  # step 212
    loss[212], loss[213] = 40.0, 1e6
    loss[214:] = np.inf  # step 215: the rest of epoch 9 is non-finite, and the trainer stops
    grads[214:] = np.nan
    d = run(write_run(tmp_path / "boom", loss, grads, clip=False))
    assert d.causes == ("exploding_gradients",), format_report(d)
    f = d.finding("exploding_gradients")
    median_before = np.median(grads[161:211])
    assert f.numbers["spike_step"] == 212
    assert f.numbers["spike_ratio"] == pytest.approx(3.1e4 / median_before, rel=1e-12)  # the same median, rounding
    assert f.numbers["first_nonfinite_loss_step"] == 215
    assert "reached 3.1e4 at step 212" in f.evidence
    assert f"{3.1e4 / median_before:.3g}".replace("e+04", "e4") in f.evidence
    assert "loss became inf at step 215" in f.evidence
    assert f.remedy.startswith("--clip-norm 1.0")
    assert "--lr 0.001" in f.remedy
    assert d.finding("lr_too_high").status == "ok"


def test_clipped_spike_is_only_suspect(tmp_path, rng):
    n = 300
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    grads[150] = grads[100:150].mean() * 500
    d = run(write_run(tmp_path / "clipped", loss, grads, clip=True))
    assert d.causes == ()
    f = d.finding("exploding_gradients")
    assert f.status == "suspect"
    assert "contained it" in f.evidence
    assert f.numbers["spike_step"] == 151


def test_unclipped_spike_that_hurts_the_loss_is_found(tmp_path, rng):
    n = 400
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    grads[200] = np.median(grads[150:200]) * 400  # step 201
    loss[201:] *= 5.0  # the update at step 201 knocked the loss up 5x and it stays there
    d = run(write_run(tmp_path / "knock", loss, grads, clip=False))
    assert d.causes == ("exploding_gradients",), format_report(d)
    f = d.finding("exploding_gradients")
    assert f.numbers["spike_step"] == 201
    # 1e-12: the rule divides the same float64 values (CSV keeps them exactly); only rounding differs
    assert f.numbers["spike_ratio"] == pytest.approx(400, rel=1e-12)
    assert f.numbers["loss_jump"] == pytest.approx(np.median(loss[201:221]) / np.median(loss[180:200]), rel=1e-12)
    assert "400× the median of the steps before it" in f.evidence
    assert f"next 20 steps was {f.numbers['loss_jump']:.2g}× that of the 20 before, with clipping off" in f.evidence
    assert d.finding("lr_too_high").status == "suspect"  # the rebound is there, but the spike explains it


def test_unclipped_spike_without_damage_is_only_suspect(tmp_path, rng):
    n = 300
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    grads[150] = np.median(grads[100:150]) * 150
    d = run(write_run(tmp_path / "blip", loss, grads, clip=False))
    assert d.causes == ()
    f = d.finding("exploding_gradients")
    assert f.status == "suspect" and "clipping is off, but the loss did not visibly suffer" in f.evidence
    assert f.remedy.startswith("--clip-norm 1.0")


def test_lr_too_high_stuck_above_baseline(tmp_path, rng):
    n = 500
    loss = 2.0 * rng.lognormal(0.0, 0.1, n)  # worse than predicting the mean, and not improving
    d = run(write_run(tmp_path / "stuck", loss, 2.0 * rng.lognormal(0.0, 0.3, n), lr=0.3))
    assert d.causes == ("lr_too_high",), format_report(d)
    f = d.finding("lr_too_high")
    assert (
        f"stays at {f.numbers['final_loss']:.3g}, {f.numbers['final_loss']:.2g}× the trivial baseline 1.0" in f.evidence
    )
    assert f.remedy == "--lr 0.03"


def test_lr_too_high_oscillating(tmp_path, rng):
    n = 500
    phase = (np.arange(n) // 50) % 2  # alternates every 50 steps: chunks of the curve go up and down
    loss = np.where(phase == 0, 0.8, 3.0) * rng.lognormal(0.0, 0.1, n)
    grads = 2.0 * rng.lognormal(0.0, 0.3, n)
    d = run(write_run(tmp_path / "hot", loss, grads, lr=0.5, val=None))
    assert d.causes == ("lr_too_high",), format_report(d)
    f = d.finding("lr_too_high")
    curve = [np.median(c) for c in np.array_split(loss, 10)]  # 0.8, 3, 0.8, 3, ...
    # 1e-12: the same medians and ratios in float64, computed in another order
    assert f.numbers["rebound"] == pytest.approx(max(curve[i] / min(curve[:i]) for i in range(1, 10)), rel=1e-12)
    assert f.numbers["rebound"] > 3.0
    assert f"climbed back to {f.numbers['rebound_loss']:.3g} by curve point" in f.evidence
    assert f"{f.numbers['rebound']:.2g}× its earlier low {f.numbers['earlier_low']:.3g}" in f.evidence
    assert f.remedy == "--lr 0.05"
    under = d.finding("underfitting")
    assert under.status == "suspect" and under.consequence_of == ("lr_too_high",)
    assert d.finding("exploding_gradients").status == "ok"


def test_lr_too_high_divergence_without_spike(tmp_path, rng):
    n = 75
    loss = np.geomspace(1.0, 50.0, n) * rng.lognormal(0.0, 0.05, n)
    grads = np.linspace(1.0, 5.0, n) * rng.lognormal(0.0, 0.05, n)
    loss[60:], grads[60:] = np.nan, np.nan  # step 61 onwards
    d = run(write_run(tmp_path / "diverge", loss, grads, lr=1.0))
    assert d.causes == ("lr_too_high",), format_report(d)
    f = d.finding("lr_too_high")
    assert f.numbers["first_nonfinite_loss_step"] == 61
    assert "the loss became nan at step 61 with no gradient spike" in f.evidence
    assert "at lr 1" in f.evidence
    assert f.remedy == "--lr 0.1"
    assert d.finding("exploding_gradients").status == "ok"
    assert d.finding("exploding_gradients").numbers["spike_ratio"] < dg.SPIKE_SUSPECT


def test_lr_cut_below_the_runs_min_lr_cuts_min_lr_too(tmp_path, rng):
    """A run at lr 1.0 with --min-lr 0.5 that diverged: --lr 0.1 alone is refused by lstm-train (min_lr (0.5)
    must not exceed lr (0.1)), so the remedy cuts the floor tenfold too."""
    n = 75
    loss = np.geomspace(1.0, 50.0, n) * rng.lognormal(0.0, 0.05, n)
    loss[60:] = np.nan
    path = write_run(tmp_path / "floor", loss, np.linspace(1.0, 5.0, n), lr=1.0)
    rewrite_json(path, "config.json", lambda r: r["plateau"].update(min_lr=0.5))
    d = run(path)
    assert d.causes == ("lr_too_high",), format_report(d)
    assert d.finding("lr_too_high").remedy == "--lr 0.1 and --min-lr 0.05"


def test_lr_too_low(tmp_path, rng):
    n = 500
    loss = np.linspace(1.05, 1.0, n) * rng.lognormal(0.0, 0.05, n)
    d = run(write_run(tmp_path / "cold", loss, healthy_grads(n, rng), lr=1e-5))
    assert d.causes == ("lr_too_low",), format_report(d)
    f = d.finding("lr_too_low")
    # 1e-12: a float64 sum of 500 equal lrs of 1e-5 is off 5e-3 by rounding only (~1e-15 relative)
    assert f.numbers["sum_lr"] == pytest.approx(5e-3, rel=1e-12)
    assert f.numbers["travel"] == pytest.approx(5e-3 * math.sqrt(32), rel=1e-12)
    assert "learning rates sum to 0.005" in f.evidence
    assert "0.028×" in f.evidence
    # suggested lr gives travel 10: 10 / (500 * sqrt(32)) = 0.0035
    assert f.remedy == "--lr 0.0035"
    assert d.finding("underfitting").status == "suspect"


def test_lr_too_low_of_the_zoo_run_keeps_its_verdict_and_remedy(tmp_path, rng):
    """The zoo's lr_too_low scenario: 210 steps at lr 1e-5, above MIN_JUDGED_STEPS; its remedy trains."""
    n = 210
    loss = 0.84 * rng.lognormal(0.0, 0.05, n)
    d = run(write_run(tmp_path / "zoo-cold", loss, healthy_grads(n, rng), lr=1e-5))
    assert d.causes == ("lr_too_low",), format_report(d)
    # travel 10 / (210 * sqrt(32)) = 0.0084, the lr the zoo's remedy trains at: 840x, not capped at 10x
    assert d.finding("lr_too_low").remedy == "--lr 0.0084"


# write_run puts 25 steps in an epoch: 99 steps take 4 epochs, 24.75 an epoch, so 100 steps take 5
@pytest.mark.parametrize(("steps", "lr", "epochs"), [(1, 0.01, 100), (10, 0.01, 10), (99, 1e-4, 5)])
def test_run_too_short_to_judge_is_no_lr_too_low(tmp_path, rng, steps, lr, epochs):
    """A short run at lstm-train's default lr: its travel is small only because it is short. Training at the
    lr that would make it 10 (1.8 for a 1-step run) diverges; the remedy is to train longer. Below
    MIN_JUDGED_STEPS even a low lr (1e-4, travel 0.056 over 99 steps) is only suspect."""
    assert steps < dg.MIN_JUDGED_STEPS
    loss = 0.75 * rng.lognormal(0.0, 0.05, steps)
    d = run(write_run(tmp_path / "short", loss, healthy_grads(steps, rng), lr=lr))
    assert d.causes == (), format_report(d)
    for cause, what in (("lr_too_low", "the learning rate"), ("underfitting", "the model's capacity")):
        f = d.finding(cause)
        assert f.status == "suspect" and f.numbers["too_short"] is True
        plural = "s" if steps > 1 else ""
        assert f.evidence.startswith(f"only {steps} optimizer step{plural}, fewer than 100: too short to judge {what}")
        assert f.remedy == f"--epochs {epochs} (≥ 100 optimizer steps), then run the doctor again"
        assert "--lr" not in f.remedy
    assert not d.healthy  # a high loss the doctor cannot judge yet is not a clean bill of health
    assert d.notes == (
        f"only {steps} optimizer step{'s' if steps > 1 else ''}, fewer than 100: too short to judge why the loss "
        f"is still {d.finding('underfitting').numbers['loss_to_baseline']:.2g}× the baseline; train longer: "
        f"--epochs {epochs} (≥ 100 optimizer steps), then run the doctor again",
    )


def test_short_run_that_learned_is_healthy(tmp_path, rng):
    n = 50
    d = run(write_run(tmp_path / "quick", healthy_loss(n, rng, tau=10.0), healthy_grads(n, rng), lr=0.01))
    assert d.healthy, format_report(d)


def test_lr_too_high_and_too_low_are_never_both_found_rebound_wins(tmp_path, rng):
    """A rebound (the loss fell, then climbed back 2.5x) shows the weights moved too far, whatever the
    travel bound says: lr_too_high is the verdict, lr_too_low only a contradicted suspect."""
    n = 500
    loss = np.where(np.arange(n) < 250, 0.6, 1.5) * rng.lognormal(0.0, 0.05, n)
    d = run(write_run(tmp_path / "both", loss, healthy_grads(n, rng), lr=1e-5))
    assert d.causes == ("lr_too_high",), format_report(d)
    f = d.finding("lr_too_low")
    assert f.status == "suspect" and f.consequence_of == ("lr_too_high",)
    assert f.evidence.endswith(" (contradicts lr_too_high; fix that first)")
    assert d.finding("lr_too_high").numbers["overshoot"] is True


def test_lr_too_high_and_too_low_are_never_both_found_travel_wins(tmp_path, rng):
    """A plain loop whose records claim scaled targets wrongly: the loss stays at 5x the assumed baseline of
    1.0. That level is all lr_too_high sees; at travel 0.028 the weights could not have overshot anything."""
    n = 500
    loss = 5.0 * rng.lognormal(0.0, 0.05, n)
    d = run(write_run(tmp_path / "both", loss, healthy_grads(n, rng), lr=1e-5))
    assert d.causes == ("lr_too_low",), format_report(d)
    f = d.finding("lr_too_high")
    assert f.status == "suspect" and f.consequence_of == ("lr_too_low",)
    assert f.evidence.endswith(" (contradicts lr_too_low; fix that first)")
    assert f.numbers["overshoot"] is False
    assert d.finding("underfitting").consequence_of == ("lr_too_low",)


def test_vanishing_gradients(tmp_path, rng):
    n = 500
    loss = 0.97 * rng.lognormal(0.0, 0.05, n)
    d = run(
        write_run(
            tmp_path / "vanish", loss, healthy_grads(n, rng), flow_ratio=1e-8, T=50, dataset="adding", num_layers=2
        )
    )
    assert d.causes == ("vanishing_gradients",), format_report(d)
    f = d.finding("vanishing_gradients")
    assert f.numbers["ratio_first_to_last"] == pytest.approx(1e-8, rel=1e-12)  # the profile's ends: rounding only
    assert f.numbers["T"] == 50
    assert "at t0 is 1e-8 of its value at t49" in f.evidence
    # the profile 1e-8 ** (1 - t / 49) stays >= 1e-6 (VANISH_RATIO) from t13 on: the last 37 steps
    assert f.numbers["steps_above_1e-6"] == 37
    assert f.remedy == "--window 37 and --num-layers 1"
    assert d.finding("underfitting").consequence_of == ("vanishing_gradients",)


def test_vanishing_remedy_of_one_layer_fewer_drops_the_dropout_of_two(tmp_path, rng):
    """Two layers with --dropout 0.2: --num-layers 1 alone is refused by lstm-train (dropout acts between
    layers and needs num_layers >= 2)."""
    n = 500
    path = write_run(
        tmp_path / "vanish",
        0.97 * rng.lognormal(0.0, 0.05, n),
        healthy_grads(n, rng),
        flow_ratio=1e-8,
        T=50,
        dataset="adding",
        num_layers=2,
    )
    rewrite_json(path, "config.json", lambda r: r["model"].update(dropout=0.2))
    f = run(path).finding("vanishing_gradients")
    assert f.status == "found"
    assert f.remedy == "--window 37 and --num-layers 1 --dropout 0 (one layer has no dropout between layers)"


def digits_run(path: Path, loss_to_baseline: float, rng, **kwargs) -> Path:
    """A digits run of 500 steps whose loss stays at `loss_to_baseline` × ln(10), as lstm-train writes its records:
    config.json says window 20, the default the digits do not read; their sequences are the 8 rows that
    grad_flow.csv records."""
    loss = loss_to_baseline * math.log(10) * rng.lognormal(0.0, 0.05, 500)
    return write_run(
        path, loss, healthy_grads(500, rng), T=8, dataset="digits", task="classification", num_classes=10, **kwargs
    )


def test_vanishing_remedy_of_a_digits_run_cuts_no_window(tmp_path, rng):
    """lstm-train refuses --window with the digits; the remedy was --window 8 (min(8, config.json's 20 - 1)),
    then --window 7. With the sequence fixed, a gradient that fades within 8 steps is the saturated gates'."""
    path = digits_run(tmp_path / "digits", 0.97, rng, flow_ratio=1e-4, num_layers=2)
    assert load_run(path).config["data"]["window"] == 20
    f = run(path).finding("vanishing_gradients")
    assert f.status == "suspect" and f.numbers["T"] == 8 and f.numbers["steps_above_1e-6"] == 8
    assert f.remedy == (
        "--lr 0.001 and --num-layers 1; dataset 'digits' fixes the sequence at 8 steps, no window to cut: a "
        "gradient that fades within so few steps points to saturated gates"
    )


def test_exploding_remedy_of_a_digits_run_cuts_no_window(tmp_path, rng):
    """‖dL/dh_0‖ 1e9 × ‖dL/dh_7‖ with clipping off: the remedy for growth through time cut the window to the last
    2 steps (--window 2 and --clip-norm 1.0), which lstm-train refuses with the digits; the clipping remains."""
    f = run(digits_run(tmp_path / "digits", 0.95, rng, flow_ratio=1e9, clip=False)).finding("exploding_gradients")
    assert f.status == "found" and f.numbers["flow_growth_reach"] == 1
    assert f.remedy == (
        "--clip-norm 1.0 (clipping is off); if it persists also --lr 0.001; dataset 'digits' fixes the sequence at "
        "8 steps, no window to cut"
    )


def test_tiny_grad_flow_ratio_with_falling_loss_is_ok(tmp_path, rng):
    n = 300
    d = run(write_run(tmp_path / "short-memory", healthy_loss(n, rng), healthy_grads(n, rng), flow_ratio=1e-9))
    f = d.finding("vanishing_gradients")
    assert f.status == "ok" and "does not need the early steps" in f.evidence
    assert d.healthy


def test_unscaled_data_alone(tmp_path, rng):
    n = 300
    inputs = {"mean": [1500.0], "std": [300.0], "min": [900.0], "max": [2100.0]}
    targets = {"mean": [0.2], "std": [0.8], "min": [-1.0], "max": [1.5]}
    loss = healthy_loss(n, rng, start=0.7, floor=0.05)
    d = run(write_run(tmp_path / "raw", loss, healthy_grads(n, rng), scaled=False, inputs=inputs, targets=targets))
    assert d.causes == ("unscaled_data",), format_report(d)
    f = d.finding("unscaled_data")
    assert "input feature 0 has mean 1.5e3, std 300" in f.evidence
    assert f.remedy == "drop --no-scale"
    assert f.numbers["largest_magnitude"] == 1500.0
    assert d.context["baseline"] == pytest.approx(0.64, rel=1e-12)  # 0.8² in float64 is 0.64 only to rounding


def test_unscaled_data_is_root_of_exploding_gradients(tmp_path, rng):
    n = 500
    inputs = {"mean": [1500.0], "std": [300.0], "min": [900.0], "max": [2100.0]}
    targets = {"mean": [5000.0], "std": [2000.0], "min": [0.0], "max": [1e4]}
    loss = np.linspace(2.9e7, 2.2e7, n) * rng.lognormal(0.0, 0.05, n)
    grads = 1e4 * rng.lognormal(0.0, 0.2, n)  # clip factor ~1e-4 on every step
    d = run(write_run(tmp_path / "raw", loss, grads, scaled=False, inputs=inputs, targets=targets))
    assert d.causes == ("unscaled_data",), format_report(d)  # the consequence is not a cause of its own
    exploding = d.finding("exploding_gradients")
    assert exploding.status == "suspect" and exploding.consequence_of == ("unscaled_data",)
    assert "less than 0.01 on 100% of steps" in exploding.evidence
    assert "may be a consequence of unscaled_data" in exploding.evidence
    assert "target has mean 5e3, std 2e3" in d.finding("unscaled_data").evidence
    assert d.context["baseline"] == 4e6  # 2000², exact in float64
    assert d.finding("lr_too_high").status == "ok"  # the loss is falling, not overshooting
    assert d.finding("underfitting").status == "suspect"


def test_underfitting(tmp_path, rng):
    n = 500
    loss = healthy_loss(n, rng, floor=0.7, tau=60)
    d = run(write_run(tmp_path / "small", loss, healthy_grads(n, rng), hidden=4))
    assert d.causes == ("underfitting",), format_report(d)
    f = d.finding("underfitting")
    # 5 %: the final loss is the median of the last 50 steps' losses, 0.7 times lognormal noise of sigma 0.1,
    # whose median wanders by ~0.1 · 1.25 / √50 = 1.8 %; 5 % is ~3 of those
    assert f.numbers["loss_to_baseline"] == pytest.approx(0.7, rel=0.05)
    assert f.numbers["still_falling"] is False
    assert "the baseline 1.0, predicting the mean of the scaled targets" in f.evidence
    assert f.remedy == "--hidden-size 32 or --num-layers 2"  # doubled, but at least to the default 32


def test_overfitting(tmp_path, rng):
    n = 500
    loss = healthy_loss(n, rng, floor=0.01)
    val = np.concatenate([np.linspace(1.0, 0.2, 8), np.linspace(0.22, 0.4, 12)])
    d = run(write_run(tmp_path / "memorise", loss, healthy_grads(n, rng), val=val))
    assert d.causes == ("overfitting",), format_report(d)
    f = d.finding("overfitting")
    smooth = np.convolve(val, np.ones(3) / 3, mode="valid")
    assert f.numbers["best_epoch"] == 8
    # 1e-12: the rule smooths the same float64 values the same way (CSV keeps them exactly)
    assert f.numbers["min_val_loss"] == pytest.approx(smooth.min(), rel=1e-12)
    assert f.numbers["val_rise"] == pytest.approx(smooth[-1] / smooth.min(), rel=1e-12)
    assert (
        f"val loss was lowest (0.2) at epoch 8; averaged over 3 epochs it ends at {smooth[-1]:.3g}, "
        f"{smooth[-1] / smooth.min():.2g}× its best average {smooth.min():.3g}" in f.evidence
    )
    # one layer: dropout would do nothing, so weight decay or a smaller model
    assert f.remedy == "--epochs 8 and --weight-decay 0.0001 or --hidden-size 16"


def test_overfitting_remedy_uses_dropout_with_two_layers(tmp_path, rng):
    n = 500
    val = np.concatenate([np.linspace(1.0, 0.2, 8), np.linspace(0.22, 0.4, 12)])
    d = run(
        write_run(tmp_path / "memorise", healthy_loss(n, rng, floor=0.01), healthy_grads(n, rng), val=val, num_layers=2)
    )
    assert d.finding("overfitting").remedy == "--epochs 8 and --dropout 0.2"


def test_overfitting_remedy_of_a_cudnn_run_is_no_dropout(tmp_path, rng):
    """The JAX trainer's --rnn cudnn runs all layers in one cuDNN call, without dropout between them:
    lstm-train refuses --dropout with it, so weight decay or a smaller model it is, as for one layer."""
    n = 500
    val = np.concatenate([np.linspace(1.0, 0.2, 8), np.linspace(0.22, 0.4, 12)])
    path = write_run(tmp_path / "cudnn", healthy_loss(n, rng, floor=0.01), healthy_grads(n, rng), val=val, num_layers=2)

    def on_cudnn(config):
        config["backend"], config["training"]["rnn"] = "jax", "cudnn"

    rewrite_json(path, "config.json", on_cudnn)
    assert run(path).finding("overfitting").remedy == "--epochs 8 and --weight-decay 0.0001 or --hidden-size 16"


def test_nonfinite_loss_at_first_step_is_a_note(tmp_path, rng):
    n = 25
    loss = np.full(n, np.nan)
    d = run(write_run(tmp_path / "nan-data", loss, np.full(n, np.nan)))
    assert d.causes == ()
    assert not d.healthy
    assert "before any parameter update" in d.notes[0]
    assert "check the data for nan/inf" in format_report(d)


# ------------------------------------------------------------------ rules calibrated on real runs (see the zoo)
def test_unclipped_spike_before_a_stalled_run_is_found(tmp_path, rng):
    """Adam's second moment absorbs an unclipped spike and shrinks later updates: the loss stays high."""
    n = 300
    loss = 0.95 * rng.lognormal(0.0, 0.05, n)  # never learned anything
    grads = healthy_grads(n, rng)
    grads[95] = np.median(grads[45:95]) * 3e3  # step 96
    d = run(write_run(tmp_path / "stall", loss, grads, clip=False))
    assert d.causes == ("exploding_gradients",), format_report(d)
    f = d.finding("exploding_gradients")
    assert f.numbers["stalled"] is True and f.numbers["spike_step"] == 96
    assert "with clipping off, and the loss ended at" in f.evidence and "Adam's second-moment" in f.evidence
    assert f.remedy.startswith("--clip-norm 1.0")
    assert d.finding("underfitting").status == "suspect"  # explained by the explosion


@pytest.mark.parametrize(
    ("first", "last", "growth", "shown"),
    [
        ("1e300", "1e-10", math.inf, "more than 1e308×"),  # the ratio overflows: growth to judge, not a warning
        # finite, but numpy's median of an even count (30 probes) sums the two middle ratios, to inf
        ("1.5e300", "1e-8", 1.5e300 / 1e-8, "1.5e308×"),
    ],
)
def test_gradient_growth_near_float64s_max_is_judged_without_a_warning(tmp_path, rng, first, last, growth, shown):
    """grad_flow.csv's 30 probes with ‖dL/dh_0‖ = `first` and ‖dL/dh_{T-1}‖ = `last`: the doctor judges their
    ratio, with no RuntimeWarning on its stderr (pytest turns one into an error here)."""
    n = 300
    path = write_run(tmp_path / "growth", 0.95 * rng.lognormal(0.0, 0.05, n), healthy_grads(n, rng), clip=False, T=10)
    with (path / "grad_flow.csv").open() as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        row[2], row[-1] = first, last
    with (path / "grad_flow.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    f = run(path).finding("exploding_gradients")
    assert len(rows) - 1 == 30 and f.status == "found" and f.numbers["flow_growth"] == growth
    assert f"at t0 it is {shown} its value at the last step" in f.evidence


def write_huge_run(path: Path, loss, grad_norm, **kwargs) -> Path:
    """write_run for losses near float64's max (1.8e308), whose epoch means overflow to inf in the helper as
    in lstm-train's own epoch mean: that is the records as written, not the doctor's overflow under test."""
    with np.errstate(over="ignore"):
        return write_run(path, loss, grad_norm, **kwargs)


def test_losses_near_float64s_max_are_diagnosed_without_a_warning(tmp_path, rng):
    """A run that blew up to losses of 1.7e308 and grad norms of 1e300 without reaching inf. numpy's median
    of two such losses summed them to inf (RuntimeWarning: overflow; pytest makes it an error here), and their
    ratios to the losses before overflowed (another warning) into evidence reading "inf×"."""
    n = 300
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    loss[150:], grads[150:] = 1.7e308, 1e300
    d = run(write_huge_run(tmp_path / "huge", loss, grads, clip=False))
    assert d.causes == ("exploding_gradients",), format_report(d)
    f = d.finding("exploding_gradients")
    assert f.numbers["spike_step"] == 151 and f.numbers["loss_jump"] == math.inf  # 1.7e308 / ~0.1: beyond float64
    assert "the median loss of the next 20 steps was more than 1e308× that of the 20 before" in f.evidence
    high = d.finding("lr_too_high")
    assert high.numbers["final_loss"] == high.numbers["rebound_loss"] == 1.7e308  # medians of 1.7e308s
    assert "inf" not in format_report(d)


def test_grad_norms_near_float64s_max_have_their_own_median(tmp_path, rng):
    """Every grad norm 1.7e308: the median over the run and each spike reference are 1.7e308, not inf."""
    n = 300
    d = run(write_huge_run(tmp_path / "huge", healthy_loss(n, rng), np.full(n, 1.7e308)))
    f = d.finding("exploding_gradients")
    assert f.numbers["median_grad_norm"] == f.numbers["spike_reference"] == 1.7e308
    assert f.numbers["spike_ratio"] == 1.0
    assert "(median grad norm 1.7e308 vs max_norm 1)" in f.evidence


def test_val_loss_climbing_near_float64s_max_is_overfitting_beyond_any_ratio(tmp_path, rng):
    """The smoothed val loss ends at 1e308 from a best of 0.31: the rise overflows, quietly, to inf."""
    n = 300
    val = np.concatenate([np.linspace(1.0, 0.2, 8), np.full(4, 1e308)])
    d = run(write_huge_run(tmp_path / "huge", healthy_loss(n, rng), healthy_grads(n, rng), val=val))
    f = d.finding("overfitting")
    assert d.causes == ("overfitting",) and f.numbers["val_rise"] == math.inf
    assert "it ends at 1e308, more than 1e308× its best average" in f.evidence


def test_learning_rates_summing_beyond_float64s_max_give_unbounded_travel(tmp_path, rng):
    """lstm-train accepts any finite lr: 300 steps at 1e307 sum past float64's max (a RuntimeWarning before)."""
    n = 300
    d = run(write_run(tmp_path / "huge", healthy_loss(n, rng), healthy_grads(n, rng), lr=1e307))
    f = d.finding("lr_too_low")
    assert f.numbers["sum_lr"] == f.numbers["travel"] == math.inf and f.status == "ok"
    assert "a weight could move at most more than 1e308× its initial scale" in f.evidence


def test_spike_the_run_recovered_from_is_only_suspect(tmp_path, rng):
    n = 400
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    grads[200] = np.median(grads[150:200]) * 400
    loss[201:240] *= 8.0  # knocked up for 40 steps, then back on the healthy curve, which ends lower
    d = run(write_run(tmp_path / "knock-recover", loss, grads, clip=True))
    assert d.causes == ()
    f = d.finding("exploding_gradients")
    assert f.status == "suspect" and f.numbers["recovered"] is True
    assert "the run recovered" in f.evidence


@pytest.mark.parametrize(("loss_level", "status"), [(0.95, "found"), (0.05, "suspect")])
def test_gradient_growing_back_through_time(tmp_path, rng, loss_level, status):
    """‖dL/dh_0‖ 1e9 x ‖dL/dh_{T-1}‖: found when the loss stays high, suspect when the model learned anyway."""
    n = 300
    loss = loss_level * rng.lognormal(0.0, 0.05, n)
    d = run(write_run(tmp_path / "grow", loss, healthy_grads(n, rng), clip=False, flow_ratio=1e9, T=100))
    f = d.finding("exploding_gradients")
    assert f.status == status, format_report(d)
    assert f.numbers["flow_growth"] == pytest.approx(1e9, rel=1e-12)  # the profile's ends: rounding only
    # the profile 0.1 * 1e9 ** (1 - t / 99) is under 10x its last value from t89 on: the last 11 steps
    assert f.numbers["flow_growth_reach"] == 11
    assert f.remedy.startswith("--window 11 and --clip-norm 1.0")
    if status == "found":
        assert d.causes == ("exploding_gradients",)
        assert "grows back through time: at t0 it is 1e9× its value at the last step" in f.evidence
        assert d.finding("vanishing_gradients").status == "ok"


def test_rebound_near_the_noise_floor_is_not_lr_too_high(tmp_path, rng):
    """Real healthy adding-problem runs: curve points at 0.3 % of the baseline double and halve freely."""
    n = 500
    loss = healthy_loss(n, rng, floor=0.002)
    loss[300:350] *= 5.0  # 0.002 -> 0.01: 5x, but a climb of 1 % of the baseline
    d = run(write_run(tmp_path / "floor", loss, healthy_grads(n, rng), dataset="adding"))
    f = d.finding("lr_too_high")
    assert f.numbers["rebound"] >= dg.LR_HIGH_REBOUND
    assert f.numbers["climb_to_baseline"] < dg.LR_HIGH_MIN_CLIMB
    assert f.status == "ok" and "noise near the floor" in f.evidence
    assert d.healthy


def test_loss_ending_above_its_start_is_lr_too_high(tmp_path, rng):
    """Real lr 1.0 runs: the loss leaps to ~15x the baseline in a few steps, then creeps down to ~10x."""
    n = 200
    loss = np.concatenate([[1.0, 4.0], np.geomspace(15.0, 9.5, n - 2)]) * rng.lognormal(0.0, 0.03, n)
    d = run(write_run(tmp_path / "worse", loss, healthy_grads(n, rng), lr=1.0, flow_ratio=0.0))
    assert d.causes == ("lr_too_high",), format_report(d)
    f = d.finding("lr_too_high")
    assert "above its value before the first update" in f.evidence
    vanishing = d.finding("vanishing_gradients")  # saturated gates: ‖dL/dh_0‖ exactly 0
    assert vanishing.status == "suspect" and vanishing.consequence_of == ("lr_too_high",)
    assert "the gates are saturated" in vanishing.evidence and vanishing.remedy == "--lr 0.1"
    assert vanishing.evidence.startswith(
        "‖dL/dh_t‖ of layer 0 at t0 is 0: nothing of its value at t19 reaches it (median over 20 recorded steps; only "
    )  # no "0 of its value" and "×0 per step"


def test_val_below_train_is_not_overfitting(tmp_path, rng):
    """A val curve that rises but stays below the train curve: the model does not fit its training data better."""
    n = 500
    loss = healthy_loss(n, rng, floor=0.3)
    val = np.concatenate([np.linspace(0.8, 0.12, 10), np.linspace(0.13, 0.2, 10)])  # rises 1.5x, below train
    d = run(write_run(tmp_path / "below", loss, healthy_grads(n, rng), val=val))
    f = d.finding("overfitting")
    assert f.numbers["val_rise"] >= dg.OVERFIT_RISE and f.numbers["val_to_train"] < dg.OVERFIT_GAP
    assert f.status != "found" and "val ends below train" in f.evidence


def test_val_rise_near_the_floor_is_not_overfitting(tmp_path, rng):
    """Real healthy adding-problem runs: val moves 0.0012 <-> 0.0053 between epochs at 0.3 % of the baseline."""
    n = 500
    loss = healthy_loss(n, rng, floor=0.001)
    val = np.concatenate([np.linspace(0.8, 0.002, 10), np.linspace(0.0022, 0.005, 10)])  # 2x, but +0.3 %
    d = run(write_run(tmp_path / "floor", loss, healthy_grads(n, rng), val=val, dataset="adding"))
    f = d.finding("overfitting")
    assert f.numbers["val_rise"] >= dg.OVERFIT_RISE and f.numbers["climb_to_baseline"] < dg.OVERFIT_MIN_CLIMB
    assert f.status == "ok" and "noise of the val split" in f.evidence


def test_underfitting_remedy_doubles_a_default_sized_model(tmp_path, rng):
    n = 300
    d = run(write_run(tmp_path / "small", 0.8 * rng.lognormal(0, 0.05, n), healthy_grads(n, rng), hidden=64))
    assert d.finding("underfitting").remedy == "--hidden-size 128 or --num-layers 2"


def test_docstring_table_names_real_constants():
    """The threshold table (copied into the README) names constants that exist, with the values it states."""
    named = set(re.findall(r"`([A-Z][A-Z_]+)`", dg.__doc__))
    assert {"SPIKE_FOUND", "LR_LOW_TRAVEL", "VANISH_RATIO", "OVERFIT_RISE", "UNSCALED_FOUND"} <= named
    for name in named:
        assert isinstance(getattr(dg, name), int | float), name
    assert (dg.SPIKE_FOUND, dg.SPIKE_SUSPECT, dg.VANISH_RATIO, dg.HIGH_LOSS_RATIO) == (100.0, 20.0, 1e-6, 0.5)
    assert (dg.LR_HIGH_REBOUND, dg.LR_HIGH_ABOVE_BASELINE, dg.LR_LOW_TRAVEL, dg.OVERFIT_RISE) == (2.0, 1.5, 1.0, 1.2)


@pytest.mark.parametrize("std", ["inf", 1e200])
def test_nonfinite_statistics_of_raw_data_are_read(tmp_path, rng, std):
    """records.jsonable writes nan and inf as strings: a raw column's std may overflow to inf. A std of 1e200
    is finite, but its square (the variance) is not: squaring it warned of an overflow, and the baseline was
    inf."""
    n = 300
    path = write_run(tmp_path / "r", healthy_loss(n, rng), healthy_grads(n, rng), scaled=False)
    rewrite_json(path, "data_stats.json", lambda r: r["targets"].update(mean=["nan"], std=[std]))
    d = run(path)
    assert d.finding("unscaled_data").numbers["largest_column"] == "input feature 0"
    assert "the initial loss" in d.context["baseline_meaning"]  # no finite raw variance: the first chunk


def test_tiny_run_does_not_crash(tmp_path):
    d = run(write_run(tmp_path / "tiny", [1.0, 0.9, 0.8], [1.0, 1.1, 0.9]))
    assert set(to_json(d)["findings"]) == set(dg.CAUSES)
    assert "1 finite epochs are too few" in d.finding("overfitting").evidence


def test_classification_without_num_classes_uses_initial_loss(tmp_path, rng):
    n = 300
    path = write_run(
        tmp_path / "c",
        healthy_loss(n, rng, start=2.3, floor=0.1),
        healthy_grads(n, rng),
        task="classification",
        dataset="digits",
        T=8,
    )
    (path / "summary.json").unlink()
    d = run(path)
    assert d.context["baseline"] == np.median(load_run(path).loss[:30])  # the first of 10 chunks of 30, exactly
    assert "the initial loss (the trivial baseline is unknown)" in d.context["baseline_meaning"]
    assert d.healthy


def test_optional_json_files_may_be_missing(tmp_path, rng):
    n = 300
    path = write_run(tmp_path / "r", healthy_loss(n, rng), healthy_grads(n, rng))
    for name in ("summary.json", "config.json", "data_stats.json"):
        (path / name).unlink()
    d = run(path)
    assert d.healthy
    assert d.context["baseline"] == 1.0


def test_first_nonfinite_is_the_index_of_the_first_nan_or_inf():
    """Where a loss diverged, for the rules and for lstm-parity's message alike (index 0: before any update)."""
    assert dg.first_nonfinite(np.array([0.5, 0.4, np.inf, np.nan])) == 2
    assert dg.first_nonfinite(np.array([np.nan, 1.0])) == 0
    assert dg.first_nonfinite(np.array([0.5, 0.4])) is None


def test_loss_of_exactly_zero_from_the_start_is_healthy(tmp_path, rng):
    """Odd but valid records: every loss 0.0 and no num_classes, so the baseline (the initial loss) is 0. The
    exploding rule divided by it (ZeroDivisionError), lr_too_high read 0 after 0 as an unbounded rebound, and
    underfitting said the loss went non-finite and was still falling."""
    n = 300
    path = write_run(tmp_path / "zero", np.zeros(n), healthy_grads(n, rng), task="classification", dataset="digits")
    (path / "summary.json").unlink()
    d = run(path)
    assert d.context["baseline"] == 0.0
    assert d.healthy, format_report(d)
    assert d.finding("lr_too_high").numbers["rebound"] == 1.0
    under = d.finding("underfitting")
    assert under.numbers["still_falling"] is False
    assert under.evidence.endswith(": no baseline above 0 to judge the loss by") and "non-finite" not in under.evidence


def test_a_demoted_cause_outranks_nothing(tmp_path, rng):
    """Unscaled inputs, a loss that ends above its start (lr_too_high's signature) and vanishing gradients:
    unscaled_data demotes both, so lr_too_high, itself only suspect, must not also claim vanishing_gradients,
    nor may underfitting be "explained by" suspects. consequence_of lists found causes only."""
    n = 200
    inputs = {"mean": [1500.0], "std": [300.0], "min": [900.0], "max": [2100.0]}
    loss = np.concatenate([[1.0, 4.0], np.geomspace(15.0, 9.5, n - 2)]) * rng.lognormal(0.0, 0.03, n)
    grads = healthy_grads(n, rng)
    d = run(write_run(tmp_path / "r", loss, grads, lr=1.0, flow_ratio=1e-8, T=50, scaled=False, inputs=inputs))
    assert d.causes == ("unscaled_data",), format_report(d)
    for cause in ("lr_too_high", "vanishing_gradients", "underfitting"):
        f = d.finding(cause)
        assert f.status == "suspect" and f.consequence_of == ("unscaled_data",), (cause, f.consequence_of)
    assert d.finding("vanishing_gradients").evidence.count("may be a consequence of") == 1
    assert d.finding("underfitting").evidence.endswith(" — explained by unscaled_data")


def test_largest_column_skips_a_column_without_statistics(tmp_path, rng):
    """A raw column holding a nan has mean and std nan; listed first, it was reported as the largest column
    (magnitude nan), ahead of the 1500 that makes the data unscaled."""
    n = 300
    inputs = {"mean": [math.nan, 1500.0], "std": [math.nan, 300.0], "min": [0.0, 900.0], "max": [1.0, 2100.0]}
    d = run(write_run(tmp_path / "r", healthy_loss(n, rng), healthy_grads(n, rng), scaled=False, inputs=inputs))
    f = d.finding("unscaled_data")
    assert f.status == "found"
    assert (f.numbers["largest_column"], f.numbers["largest_magnitude"]) == ("input feature 1", 1500.0)


def test_spike_reference_skips_a_zero_grad_norm_in_its_window(tmp_path, rng):
    """A grad norm of exactly 0 at step 101 counts as no measurement (nan) in the 50-step windows after it: the
    spike at step 121 is judged against the median of the other 49, not left without a reference."""
    n = 300
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    grads[100] = 0.0
    others = np.delete(grads[70:120], 30)  # steps 71-120 without step 101
    grads[120] = np.median(others) * 400
    f = run(write_run(tmp_path / "zero-norm", loss, grads, clip=True)).finding("exploding_gradients")
    assert f.numbers["spike_step"] == 121
    assert f.numbers["spike_reference"] == np.median(others)  # 49 values: the middle one, halved and doubled exactly
    # 1e-12: the rule divides the same float64 values (CSV keeps them exactly); only rounding differs
    assert f.numbers["spike_ratio"] == pytest.approx(400, rel=1e-12)


def test_raw_targets_of_zero_variance_give_the_initial_loss_as_baseline(tmp_path, rng):
    """A constant target column (std 0): predicting its mean is perfect, no baseline to judge a loss by, so the
    rules fall back to the first curve point (the median of the first 30 of 300 losses)."""
    n = 300
    loss = healthy_loss(n, rng)
    targets = {"mean": [3.0], "std": [0.0], "min": [3.0], "max": [3.0]}
    d = run(write_run(tmp_path / "r", loss, healthy_grads(n, rng), scaled=False, targets=targets))
    assert d.context["baseline"] == np.median(loss[:30])  # the doctor's median of halves, doubled: exact here
    assert d.context["baseline_meaning"].endswith(", the initial loss (the trivial baseline is unknown)")


def test_a_climb_of_hundreds_of_baselines_is_worded_as_a_ratio(tmp_path, rng):
    """The loss falls to 0.05, then climbs to 250.05 with no gradient spike: a climb of 250 baselines (scaled
    targets, baseline 1), worded as the other ratios are ('250×', not '2.5e+02×')."""
    n = 300
    loss = np.concatenate([np.full(30, 1.0), np.full(120, 0.05), np.full(150, 250.05)])
    f = run(write_run(tmp_path / "climb", loss, healthy_grads(n, rng))).finding("lr_too_high")
    assert f.numbers["climb_to_baseline"] == pytest.approx(250.0, rel=1e-12)  # 250.05 - 0.05 rounds in float64
    assert "its earlier low 0.05 (a climb of 250× the baseline)" in f.evidence


def test_a_loss_ending_beyond_float64s_max_times_a_small_raw_baseline_is_worded_without_a_warning(tmp_path, rng):
    """Raw targets of std 0.1 (baseline 0.01) and a loss ending at 1.7e308: their ratio overflows, quietly, to
    inf ('more than 1e308×'), not a RuntimeWarning on the doctor's stderr (pytest makes it an error here)."""
    n = 300
    loss = np.concatenate([healthy_loss(150, rng), np.full(150, 1.7e308)])
    targets = {"mean": [0.0], "std": [0.1], "min": [-0.2], "max": [0.2]}
    path = write_huge_run(tmp_path / "huge", loss, healthy_grads(n, rng), scaled=False, targets=targets)
    f = run(path).finding("lr_too_high")
    assert (
        "the training loss ends at 1.7e308, more than 1e308× the trivial baseline 0.01, predicting the mean of the "
        "raw targets, and above its value before the first update" in f.evidence
    )


def test_a_run_back_at_exactly_its_loss_before_the_spike_has_recovered(tmp_path, rng):
    """A flat loss of 0.5 knocked up 10x for the 20 steps after a spike, then 0.5 again to the end: it ends at
    the loss before the spike, which is recovering ('at or below'), so the spike is only suspect."""
    n = 400
    loss, grads = np.full(n, 0.5), healthy_grads(n, rng)
    grads[200] = np.median(grads[150:200]) * 400
    loss[201:221] = 5.0
    f = run(write_run(tmp_path / "back", loss, grads, clip=True)).finding("exploding_gradients")
    assert (f.numbers["spike_step"], f.numbers["loss_jump"], f.numbers["recovered"]) == (201, 10.0, True)
    assert f.status == "suspect" and "the run recovered and ended at or below its loss before the spike" in f.evidence
