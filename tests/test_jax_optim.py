"""The optax pieces against torch's formulas written out in numpy (no torch here: tests/ is single-backend)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from lstm_core import config as config_io
from lstm_core.config import from_dict
from lstm_jax import optim


@pytest.fixture(autouse=True)
def x64():
    jax.config.update("jax_enable_x64", True)


def tree(scale):
    return {"a": jnp.array([3.0, 4.0]) * scale, "b": jnp.array([[0.0]])}  # global norm 5 * scale


def test_torch_clip_factor_always_multiplies():
    clip = optim.clip_by_global_norm_torch(1.0)
    clipped, _ = clip.update(tree(2.0), clip.init(None))
    np.testing.assert_allclose(clipped["a"], np.array([6.0, 8.0]) / (10.0 + 1e-6), rtol=1e-15)
    small, _ = clip.update(tree(0.1), clip.init(None))  # norm 0.5: factor min(1, 1 / 0.500001) = 1 exactly
    np.testing.assert_array_equal(small["a"], tree(0.1)["a"])
    # Just above max_norm torch clips by max_norm / (norm + 1e-6) while optax's stock clip scales by max_norm / norm.
    norm = jnp.asarray(1.0000005)
    assert float(optim.torch_clip_factor(norm, 1.0)) == pytest.approx(1 / 1.0000015, rel=1e-15)
    assert float(optim.optax_clip_factor(norm, 1.0)) == pytest.approx(1 / 1.0000005, rel=1e-15)
    with pytest.raises(ValueError, match="max_norm must be > 0, got 0"):
        optim.clip_by_global_norm_torch(0.0)


def test_optax_clip_factor_matches_stock_clip():
    stock = optax.clip_by_global_norm(1.0)
    for scale in (0.1, 0.2, 0.5, 3.0):
        clipped, _ = stock.update(tree(scale), stock.init(None))
        factor = optim.optax_clip_factor(optax.tree.norm(tree(scale)), 1.0)
        np.testing.assert_allclose(clipped["a"], tree(scale)["a"] * factor, rtol=1e-15)


def torch_adam_reference(param, grads, lr, betas, eps, weight_decay):
    """torch.optim.Adam's single-tensor update, written out (coupled weight decay)."""
    m = v = np.zeros_like(param)
    for step, grad in enumerate(grads, start=1):
        grad = grad + weight_decay * param
        m = betas[0] * m + (1 - betas[0]) * grad
        v = betas[1] * v + (1 - betas[1]) * grad**2
        denom = np.sqrt(v) / np.sqrt(1 - betas[1] ** step) + eps
        param = param - lr / (1 - betas[0] ** step) * m / denom
    return param


def test_adam_is_torch_adam_with_coupled_weight_decay():
    config = from_dict({"clipping": {"enabled": False}, "optimizer": {"lr": 0.05, "weight_decay": 0.1}})
    tx = optim.build_optimizer(config)
    rng = np.random.default_rng(0)
    param = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(4)]
    params, state = jnp.asarray(param), tx.init(jnp.asarray(param))
    for grad in grads:
        updates, state = tx.update(jnp.asarray(grad), state, params)
        params = optax.apply_updates(params, updates)
    expected = torch_adam_reference(param, grads, 0.05, (0.9, 0.999), 1e-8, 0.1)
    # float64, 4 steps of a handful of flops each: rounding alone, ~1e-16 per op
    np.testing.assert_allclose(np.asarray(params), expected, rtol=1e-13)
    # Decoupled decay (optax.adamw) lands elsewhere: the difference this test would catch.
    adamw = optax.adamw(0.05, weight_decay=0.1)
    params_w, state_w = jnp.asarray(param), adamw.init(jnp.asarray(param))
    for grad in grads:
        updates, state_w = adamw.update(jnp.asarray(grad), state_w, params_w)
        params_w = optax.apply_updates(params_w, updates)
    assert np.abs(np.asarray(params_w) - expected).max() > 1e-4


def test_learning_rate_is_injected_and_replaceable():
    config = from_dict({"optimizer": {"lr": 0.02}})
    state = optim.build_optimizer(config).init(jnp.zeros(3))
    assert float(optim.learning_rate(state)) == 0.02
    changed = optim.with_learning_rate(state, 0.002)
    assert float(optim.learning_rate(changed)) == 0.002 and float(optim.learning_rate(state)) == 0.02


def torch_plateau_reference(losses, lr, factor, patience, threshold, mode, cooldown, min_lr):
    """ReduceLROnPlateau.step as torch's source states it; returns the lr in force after each epoch."""
    best, bad, cool, lrs = np.inf, 0, 0, []
    for loss in losses:
        better = loss < best * (1 - threshold) if mode == "rel" else loss < best - threshold
        best, bad = (loss, 0) if better else (best, bad + 1)
        if cool > 0:
            cool, bad = cool - 1, 0
        if bad > patience:
            new = max(lr * factor, min_lr)
            if lr - new > 1e-8:
                lr = new
            cool, bad = cooldown, 0
        lrs.append(lr)
    return lrs


@pytest.mark.parametrize(
    ("settings", "losses"),
    [
        ({"patience": 2}, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5]),
        ({"patience": 0, "cooldown": 2}, [1.0, 1.1, 1.2, 1.3, 1.4, 0.1, 0.2]),
        (
            {"patience": 1, "threshold": 0.1, "threshold_mode": "abs", "min_lr": 0.0005},
            [1.0, 0.95, 0.8, 0.75, 0.72, 0.71, 0.705],
        ),
        ({"patience": 1, "threshold": 0.2}, [1.0, 0.9, 0.85, 0.6, 0.55]),
    ],
)
def test_plateau_gives_torch_learning_rates(settings, losses):
    config = from_dict({"plateau": settings})
    plateau = optim.build_plateau(config.plateau, config.optimizer.lr)
    state = optim.plateau_init(plateau, jnp.float64)
    lrs = []
    for loss in losses:
        state, lr = optim.plateau_step(plateau, state, loss)
        lrs.append(float(lr))
    p = config.plateau
    expected = torch_plateau_reference(
        losses, config.optimizer.lr, p.factor, p.patience, p.threshold, p.threshold_mode, p.cooldown, p.min_lr
    )
    assert any(e < config.optimizer.lr for e in expected)  # each case reduces at least once
    # lr * scale vs torch's repeated lr * factor: the same reals, rounded differently (≤ a few ulps)
    np.testing.assert_allclose(lrs, expected, rtol=1e-14)


def test_bias_correction_is_accurate_in_float32_where_the_plain_formula_is_not():
    """Why bias_correction exists: float32 1 - b**t rounds b2 = 0.999 first (2e-5 off, a bias on every step)."""
    with jax.enable_x64(False):
        counts = jnp.arange(1, 1001, dtype=jnp.int32)
        ours = np.asarray(optim.bias_correction(0.999, counts, jnp.float32), np.float64)
        plain = np.asarray(1 - jnp.float32(0.999) ** counts.astype(jnp.float32), np.float64)
        no_decay = float(optim.bias_correction(0.0, counts[:1], jnp.float32)[0])
    exact = 1 - 0.999 ** np.arange(1, 1001, dtype=np.float64)
    # measured 3.3e-7 (a few float32 ulps, 6e-8 each) against 2.0e-5 for the plain formula
    assert np.max(np.abs(ours / exact - 1)) <= 1e-6
    assert np.max(np.abs(plain / exact - 1)) > 1e-5
    assert no_decay == 1.0  # decay 0: 1 - 0**t, no correction


def test_the_largest_patience_and_cooldown_the_config_takes_step_in_int32():
    """config.EPOCH_COUNT_MAX: optax counts epochs in jax's default int32, where patience + 1 and the cooldown must
    fit (one more overflowed at the end of the first epoch)."""
    limit = config_io.EPOCH_COUNT_MAX
    config = from_dict({"plateau": {"patience": limit - 1, "cooldown": limit}})
    with jax.enable_x64(False):
        plateau = optim.build_plateau(config.plateau, config.optimizer.lr)
        state = optim.plateau_init(plateau, jnp.float32)
        for loss in (1.0, 1.0, 1.0):
            state, lr = optim.plateau_step(plateau, state, loss)
    assert float(lr) == np.float32(config.optimizer.lr)  # never reduced
