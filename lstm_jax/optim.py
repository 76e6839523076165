"""The optax side of torch's Adam, clip_grad_norm_ and ReduceLROnPlateau.

- Clipping: `clip_by_global_norm_torch` multiplies by min(1, max_norm / (norm + 1e-6)) on every step, as
  `torch.nn.utils.clip_grad_norm_` does (the default, for parity); `optax.clip_by_global_norm` (style
  "optax") scales only when norm >= max_norm and has no 1e-6.
- Adam: torch's `Adam(weight_decay=w)` adds w * param to the gradient before the moments (coupled L2), so it
  is chain(add_decayed_weights(w), scale_by_adam, scale by -lr); `optax.adamw` is decoupled (torch's AdamW).
  The bias corrections 1 - b**t are computed as torch computes them, to float precision from b in float64
  (`scale_by_adam_torch`): optax's b**t in float32 rounds b first and is off by 1.3e-5 for b2 = 0.999, a
  bias on every float32 step that made the runs drift ~60x faster (1e-4 by step 34 instead of 2e-6 by 50).
- Plateau: `optax.contrib.reduce_on_plateau` reduces when its plateau count reaches `patience`, torch when
  the bad-epoch count exceeds it, so optax gets patience + 1; torch's threshold is `rtol` in 'rel' mode and
  `atol` in 'abs' mode; min_lr becomes min_scale = min_lr / lr. It is stepped once per epoch on the
  validation loss, outside the per-step update (inside the chain it would scale the very update that
  triggered it, an epoch before torch does), and the lr it yields reaches Adam through
  `optax.inject_hyperparams`. optax has no counterpart to torch's `eps` (a reduction of eps or less is
  ignored; with the default 1e-8 that happens only within 1e-8 of min_lr), so `plateau_step` keeps the old
  scale where torch keeps the old lr (the plateau count and cooldown restart either way, in both).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from optax import contrib

from lstm_core.config import TORCH_CLIP_EPS, ClippingConfig, Config, PlateauConfig


def torch_clip_factor(norm: jax.Array, max_norm: float) -> jax.Array:
    """The factor clip_grad_norm_ multiplies every gradient by."""
    return jnp.minimum(1.0, max_norm / (norm + TORCH_CLIP_EPS))


def optax_clip_factor(norm: jax.Array, max_norm: float) -> jax.Array:
    """The factor optax.clip_by_global_norm applies: 1 below max_norm, max_norm / norm from it on."""
    return jnp.where(norm < max_norm, 1.0, max_norm / norm)


def clip_factor(norm: jax.Array, cfg: ClippingConfig) -> jax.Array:
    """The factor the configured clipping applies for a global norm (1 when clipping is off)."""
    if not cfg.enabled:
        return jnp.ones_like(norm)
    return (torch_clip_factor if cfg.style == "torch" else optax_clip_factor)(norm, cfg.max_norm)


def clip_by_global_norm_torch(max_norm: float) -> optax.GradientTransformation:
    """torch.nn.utils.clip_grad_norm_ as an optax transform: g * min(1, max_norm / (‖g‖ + 1e-6))."""
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        factor = torch_clip_factor(optax.tree.norm(updates), max_norm)
        return jax.tree.map(lambda g: (g * factor).astype(g.dtype), updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def bias_correction(decay: float, count: jax.Array, dtype) -> jax.Array:
    """1 - decay**count as -expm1(count * log(decay)), log taken in float64: accurate to a few ulp in any dtype."""
    log_decay = math.log(decay) if decay > 0 else -math.inf  # decay 0: no correction (1 - 0**t = 1)
    return -jnp.expm1(count.astype(dtype) * jnp.asarray(log_decay, dtype))


def scale_by_adam_torch(b1: float, b2: float, eps: float) -> optax.GradientTransformation:
    """optax.scale_by_adam with accurate bias corrections (see the module docstring)."""

    def init_fn(params):
        mu, nu = optax.tree.zeros_like(params), optax.tree.zeros_like(params)  # two buffers: the state is donated
        return optax.ScaleByAdamState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def update_fn(updates, state, params=None):
        del params
        mu = optax.tree.update_moment(updates, state.mu, b1, 1)
        nu = optax.tree.update_moment_per_elem_norm(updates, state.nu, b2, 2)
        count = optax.safe_increment(state.count)

        def scale(m, v):
            m_hat, v_hat = m / bias_correction(b1, count, m.dtype), v / bias_correction(b2, count, v.dtype)
            return m_hat / (jnp.sqrt(v_hat) + eps)

        return jax.tree.map(scale, mu, nu), optax.ScaleByAdamState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def torch_adam(learning_rate, b1: float, b2: float, eps: float, weight_decay: float) -> optax.GradientTransformation:
    """torch.optim.Adam: coupled L2 weight decay, then Adam's moments, then -lr."""
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        scale_by_adam_torch(b1=b1, b2=b2, eps=eps),
        optax.scale_by_learning_rate(learning_rate),
    )


def build_optimizer(config: Config) -> optax.GradientTransformation:
    """chain(clip, Adam) with the learning rate injected, so `with_learning_rate` can set it per epoch."""
    o, c = config.optimizer, config.clipping
    if not c.enabled:
        clip = optax.identity()
    elif c.style == "torch":
        clip = clip_by_global_norm_torch(c.max_norm)
    else:
        clip = optax.clip_by_global_norm(c.max_norm)
    adam = optax.inject_hyperparams(torch_adam, static_args=("b1", "b2", "eps", "weight_decay"))(
        learning_rate=o.lr, b1=o.betas[0], b2=o.betas[1], eps=o.eps, weight_decay=o.weight_decay
    )
    return optax.chain(clip, adam)


def learning_rate(opt_state) -> jax.Array:
    return opt_state[1].hyperparams["learning_rate"]


def with_learning_rate(opt_state, lr) -> tuple:
    """The optimizer state with Adam's learning rate replaced (pure: the input is left unchanged)."""
    clip_state, adam_state = opt_state
    hyperparams = {
        **adam_state.hyperparams,
        "learning_rate": jnp.asarray(lr, adam_state.hyperparams["learning_rate"].dtype),
    }
    return clip_state, adam_state._replace(hyperparams=hyperparams)


class Plateau(NamedTuple):
    """reduce_on_plateau mapped from torch's settings, and the base lr its scale multiplies."""

    transform: optax.GradientTransformationExtraArgs
    base_lr: float
    eps: float  # torch's: a reduction of the lr by eps or less is not applied


def build_plateau(cfg: PlateauConfig, lr: float) -> Plateau:
    rel = cfg.threshold_mode == "rel"
    transform = contrib.reduce_on_plateau(
        factor=cfg.factor,
        patience=cfg.patience + 1,  # optax reduces at count == patience, torch at count > patience
        rtol=cfg.threshold if rel else 0.0,
        atol=0.0 if rel else cfg.threshold,
        cooldown=cfg.cooldown,
        min_scale=cfg.min_lr / lr,
    )
    return Plateau(transform, lr, cfg.eps)


def plateau_init(plateau: Plateau, dtype) -> contrib.ReduceLROnPlateauState:
    return plateau.transform.init(jnp.zeros((), dtype))


def plateau_step(plateau: Plateau, state, val_loss) -> tuple[contrib.ReduceLROnPlateauState, jax.Array]:
    """Feed one epoch's validation loss; return the new state and the lr for the next epoch."""
    _, reduced = plateau.transform.update(updates={}, state=state, value=val_loss)
    applied = plateau.base_lr * (state.scale - reduced.scale) > plateau.eps
    reduced = reduced._replace(scale=jnp.where(applied, reduced.scale, state.scale))
    return reduced, plateau.base_lr * reduced.scale
