"""The suite can fail: deliberately wrong JAX variants are caught, at the quantity and step where they show.

Each variant is one small, plausible porting mistake, injected from the outside (a config switch or a
monkeypatched function of lstm_jax) so that production code carries no test hooks. The unpatched port passes
this very configuration: test_parity_cli's passing run uses the same flags.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import optax
import pytest

from lstm_jax import model as jax_model
from lstm_jax import optim as jax_optim
from parity_tests import cases, compare, engine, test_state_machines

# float64, 1 layer of 17, 5 epochs of 11 steps. Gradient norms start at 1.54, 1.60, 1.27, so max_norm 1.55
# first clips step 2; the plateau (patience 1, a 50 % threshold) first lowers the lr after epoch 4.
SECTIONS = {
    "training": {"epochs": 5, "batch_size": 16, "grad_flow_every": 1, "dtype": "float64"},
    "model": {"hidden_size": 17},
    "data": {"num_samples": 300},
    "clipping": {"max_norm": 1.55},
    "plateau": {"patience": 1, "factor": 0.5, "threshold": 0.5},
}


def run(jax_config=None, **sections) -> tuple[compare.Report, dict[str, engine.Trace]]:
    config = cases.make_config({**SECTIONS, **sections})
    traces = engine.run(config, jax_config=jax_config(config) if jax_config else None)
    return compare.compare(traces, "float64"), traces


def first_failing(report: compare.Report, name: str) -> int | None:
    return cases.quantity(report, name).first_failing_step


def test_optax_stock_clip_is_caught_at_the_first_clipped_step():
    """optax.clip_by_global_norm scales by max_norm / norm, torch by max_norm / (norm + 1e-6)."""
    report, traces = run(
        jax_config=lambda c: dataclasses.replace(c, clipping=dataclasses.replace(c.clipping, style="optax"))
    )
    first_clipped = int(np.flatnonzero(traces["torch"].stats["clip_factor"] < 1)[0]) + 1
    assert first_clipped == 2  # step 1 is not clipped: the step is found, not assumed
    assert report.first_failure.name == "clip_factor" and report.first_failure.first_failing_step == first_clipped
    assert first_failing(report, "params") == first_clipped  # the update that used the factor
    assert first_failing(report, "loss") == first_clipped + 1  # the loss sees it one step later


@pytest.mark.parametrize("backward", ["custom", pytest.param("autodiff", marks=pytest.mark.slow)])
def test_a_single_summed_bias_is_caught_in_the_first_gradients(backward, monkeypatch):
    """A port that trains one bias b = b_ih + b_hh: the cell sees the same sum, but Adam moves it once, not twice.

    Emulated by stopping the gradient into bias_hh (cases.single_bias_param), on either backward path.
    """
    monkeypatch.setattr(jax_model.LSTMStack, "param", cases.single_bias_param)
    report, _ = run(training={**SECTIONS["training"], "backward": backward})
    assert first_failing(report, "outputs") == first_failing(report, "loss") == 2  # step 1's forward is right
    assert report.first_failure.name == "grads_same_weights" and report.first_failure.first_failing_step == 1
    assert first_failing(report, "grad_norm") == 1  # the global norm lacks the second bias's share


def patience_off_by_one(monkeypatch):
    """The JAX plateau built with torch's patience as optax's: forgetting the + 1 of `build_plateau`."""
    build_plateau = jax_optim.build_plateau
    monkeypatch.setattr(
        jax_optim,
        "build_plateau",
        lambda cfg, lr: build_plateau(dataclasses.replace(cfg, patience=cfg.patience - 1), lr),
    )


def test_plateau_patience_off_by_one_is_caught_at_the_early_reduction(monkeypatch):
    """optax reduces when its count reaches patience, torch when it exceeds it: forgetting the + 1."""
    patience_off_by_one(monkeypatch)
    report, traces = run()
    reference, variant = traces["torch"], traces["jax"]
    early = reference.lr_reductions[0] - 1
    assert variant.lr_reductions[0] == early  # one epoch before torch
    end_of_early = int(reference.epoch_last_step[early - 1])
    assert report.first_failure.name == "lr_reductions" and report.first_failure.first_failing_step == end_of_early
    assert first_failing(report, "lr") == end_of_early + 1  # the next epoch's steps run at the lower lr
    assert first_failing(report, "val_loss") == int(reference.epoch_last_step[early])  # after that epoch


def test_decoupled_weight_decay_is_caught_in_the_first_update(monkeypatch):
    """torch's Adam adds weight_decay * param to the gradient (coupled L2); AdamW decays the weights apart."""

    def adamw(learning_rate, b1, b2, eps, weight_decay):
        return optax.chain(
            jax_optim.scale_by_adam_torch(b1, b2, eps),
            optax.add_decayed_weights(weight_decay),
            optax.scale_by_learning_rate(learning_rate),
        )

    monkeypatch.setattr(jax_optim, "torch_adam", adamw)
    report, _ = run(optimizer={"weight_decay": 0.01})
    assert first_failing(report, "grads") == 2  # step 1's gradients are right...
    assert report.first_failure.name == "params" and report.first_failure.first_failing_step == 1  # ...its update not
    assert first_failing(report, "loss") == 2


def test_the_state_machine_checks_catch_the_wrong_variants(monkeypatch):
    """The property tests' checks fail on the variants (on fixed cases, so no search has to find them)."""
    patience_off_by_one(monkeypatch)
    with pytest.raises(AssertionError):
        test_state_machines.test_plateau_property_is_not_vacuous()
    monkeypatch.undo()
    monkeypatch.setattr(jax_optim, "torch_clip_factor", jax_optim.optax_clip_factor)
    with pytest.raises(AssertionError):
        test_state_machines.test_clipping_off_leaves_gradients_alone_and_on_follows_torch_rule()
