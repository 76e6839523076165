"""The plateau schedule and the clipping rule as state machines: random inputs, the same outputs in both stacks.

torch's ReduceLROnPlateau and the optax mapping in `lstm_jax.optim` are fed the same random validation-loss
sequences under random settings; torch's `clip_grad_norm_` path and the JAX clip are fed the same random
gradients at random scales. Both run in float64, where the two can only differ by rounding.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import optax
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lstm_core.config import ClippingConfig, Config, PlateauConfig
from lstm_core.weights import parameter_shapes
from lstm_jax import optim as jax_optim
from lstm_torch import optim as torch_optim

plateau_settings = st.builds(
    PlateauConfig,
    factor=st.floats(0.05, 0.95),
    patience=st.integers(0, 4),
    threshold=st.floats(1e-4, 0.3),
    threshold_mode=st.sampled_from(["rel", "abs"]),
    cooldown=st.integers(0, 3),
    min_lr=st.just(0.0),  # replaced by a fraction of lr below
    eps=st.one_of(st.just(1e-8), st.floats(1e-6, 0.05)),  # torch's default, and sizes that ignore reductions
)
losses = st.lists(st.floats(1e-3, 10.0), min_size=1, max_size=25)


def reductions_clear_of_eps(lr: float, cfg: PlateauConfig, epochs: int) -> bool:
    """Whether no reduction the run could make is within rounding of torch's eps.

    A reduction of eps or less is ignored in both stacks; one that equals eps to a few ulp of the lr may fall on
    either side of it, since torch subtracts lrs and the JAX side scales (see `jax_optim.plateau_step`).
    """
    old = lr
    for _ in range(epochs):
        new = max(old * cfg.factor, cfg.min_lr)
        if abs((old - new) - cfg.eps) <= 8 * math.ulp(old):
            return False
        old = new if old - new > cfg.eps else old
    return True


def torch_lrs(lr: float, cfg: PlateauConfig, values: list[float]) -> list[float]:
    optimizer = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch_optim.build_scheduler(optimizer, cfg)
    lrs = []
    for value in values:
        scheduler.step(value)
        lrs.append(optimizer.param_groups[0]["lr"])
    return lrs


def jax_lrs(lr: float, cfg: PlateauConfig, values: list[float]) -> list[float]:
    # Eager, op by op: jitting would compile each random setting anew (~0.3 s an example).
    with jax.enable_x64(True), jax.disable_jit():
        plateau = jax_optim.build_plateau(cfg, lr)
        state = jax_optim.plateau_init(plateau, np.float64)
        lrs = []
        for value in values:
            state, new_lr = jax_optim.plateau_step(plateau, state, value)
            lrs.append(float(new_lr))
    return lrs


@settings(max_examples=60, deadline=None)
@given(
    cfg=plateau_settings,
    lr=st.floats(1e-4, 1.0),
    min_lr_fraction=st.one_of(st.just(0.0), st.floats(0.0, 0.5)),
    values=losses,
)
def test_plateau_gives_the_same_learning_rates_in_both_stacks(cfg, lr, min_lr_fraction, values):
    cfg = PlateauConfig(**{**cfg.__dict__, "min_lr": lr * min_lr_fraction})
    assume(reductions_clear_of_eps(lr, cfg, len(values)))
    expected, got = torch_lrs(lr, cfg, values), jax_lrs(lr, cfg, values)
    # lr * f * f ... (torch) against lr * (f * f ...) (optax), float64: a few ulp, far below 1e-12.
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    reduced = [epoch for epoch in range(len(values)) if expected[epoch] < (expected[epoch - 1] if epoch else lr)]
    reduced_jax = [
        epoch for epoch in range(len(values)) if got[epoch] < (got[epoch - 1] if epoch else lr) * (1 - 1e-12)
    ]
    assert reduced_jax == reduced


def test_plateau_ignores_reductions_within_eps_as_torch_does():
    """eps 0.03 at lr 0.1, factor 0.5: the first reduction (0.05) is applied, the second (0.025) is not, and
    the plateau count restarts anyway, so the next attempt comes a patience later (and is ignored too)."""
    cfg = PlateauConfig(factor=0.5, patience=1, threshold=0.01, eps=0.03)
    values = [1.0] * 8
    expected = torch_lrs(0.1, cfg, values)
    assert expected == [0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.05, 0.05]
    np.testing.assert_allclose(jax_lrs(0.1, cfg, values), expected, rtol=1e-12)


def test_plateau_property_is_not_vacuous():
    """A fixed sequence that must reduce twice: patience 1 and a plateau from epoch 2 on."""
    cfg = PlateauConfig(factor=0.5, patience=1, threshold=0.01, cooldown=1)
    values = [1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    expected = torch_lrs(0.1, cfg, values)
    assert expected == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]
    np.testing.assert_allclose(jax_lrs(0.1, cfg, values), expected, rtol=1e-12)


def random_gradients(seed: int, scale: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: scale * rng.standard_normal(shape) for name, shape in parameter_shapes(5, 17, 2, 3).items()}


def torch_clip(grads: dict[str, np.ndarray], cfg: ClippingConfig, dtype) -> tuple[float, float, dict[str, np.ndarray]]:
    """The torch trainer's clip: (factor reported, norm reported, the gradients Adam then steps with)."""
    params = []
    for value in grads.values():
        param = torch.nn.Parameter(torch.zeros(value.shape, dtype=dtype))
        param.grad = torch.tensor(value, dtype=dtype)
        params.append(param)
    norm, factor = torch_optim.clip_gradients(params, cfg)
    return float(factor), float(norm), {name: p.grad.numpy() for name, p in zip(grads, params, strict=True)}


def jax_clip(grads: dict[str, np.ndarray], cfg: ClippingConfig, dtype) -> tuple[float, float, dict[str, np.ndarray]]:
    """The JAX trainer's clip: (factor and norm as its train_step reports them, the gradients its optimizer hands
    Adam). The latter are read from Adam's first moment after one update: mu = (1 - b1) * g from zero."""
    with jax.enable_x64(dtype == np.float64):
        tree = jax.tree.map(lambda g: jax.numpy.asarray(g, dtype), grads)
        norm = optax.tree.norm(tree)
        config = Config(clipping=cfg)
        tx = jax_optim.build_optimizer(config)
        params = jax.tree.map(jax.numpy.zeros_like, tree)
        _, state = tx.update(tree, tx.init(params), params)
        mu = optax.tree.get(state, "mu")
        handed_to_adam = {name: np.asarray(m, np.float64) / (1 - config.optimizer.betas[0]) for name, m in mu.items()}
        return float(jax_optim.clip_factor(norm, cfg)), float(norm), handed_to_adam


@pytest.mark.parametrize(
    ("dtype", "torch_dtype", "rtol"),
    [
        # float64: two summation orders of ~10^4 squares: ~1e-15
        (np.float64, torch.float64, 1e-13),
        # float32: the same, at float32's 6e-8 per operation
        (np.float32, torch.float32, 1e-5),
    ],
)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**16), log_scale=st.floats(-4, 3), max_norm=st.floats(0.01, 10.0))
def test_clipping_applies_the_same_factor_in_both_stacks(dtype, torch_dtype, rtol, seed, log_scale, max_norm):
    grads = random_gradients(seed, 10.0**log_scale)
    cfg = ClippingConfig(max_norm=max_norm)
    expected_factor, expected_norm, expected = torch_clip(grads, cfg, torch_dtype)
    factor, norm, clipped = jax_clip(grads, cfg, dtype)
    assert factor == pytest.approx(expected_factor, rel=rtol, abs=0)
    assert norm == pytest.approx(expected_norm, rel=rtol, abs=0)
    for name in grads:
        np.testing.assert_allclose(clipped[name], expected[name], rtol=rtol, atol=0)


def test_clipping_off_leaves_gradients_alone_and_on_follows_torch_rule():
    grads = random_gradients(0, 100.0)
    norm = math.sqrt(sum(float((g**2).sum()) for g in grads.values()))  # ~6800: every clip scales down
    off = ClippingConfig(enabled=False)
    for factor, reported_norm, stepped in (torch_clip(grads, off, torch.float64), jax_clip(grads, off, np.float64)):
        # Off: factor 1, the norm still reported (two summation orders of ~10^4 squares, float64: ~1e-15), and
        # Adam steps with the gradients as they are: exactly in torch, and in JAX up to the 2 roundings of reading
        # them back through Adam's first moment, (0.1 * g) / 0.1 (<= 2.3e-16 relative)
        assert factor == 1.0
        assert reported_norm == pytest.approx(norm, rel=1e-13, abs=0)
        for name, value in grads.items():
            np.testing.assert_allclose(stepped[name], value, rtol=1e-15, atol=0, err_msg=name)
    on = ClippingConfig(max_norm=1.0)
    for factor, reported_norm, stepped in (torch_clip(grads, on, torch.float64), jax_clip(grads, on, np.float64)):
        assert factor == pytest.approx(1.0 / (norm + 1e-6), rel=1e-13, abs=0)  # torch's rule, 1e-6 included
        assert reported_norm == pytest.approx(norm, rel=1e-13, abs=0)  # before clipping
        for name, value in grads.items():  # the same factor on every tensor; float64 as above
            np.testing.assert_allclose(stepped[name], value / (norm + 1e-6), rtol=1e-13, atol=0, err_msg=name)
