"""The LSTM stack on NVIDIA's cuDNN kernel through `jax.experimental.rnn`: the JAX trainer's GPU path
(`training.rnn = "cudnn"`), beside the `lax.scan` recurrence of `lstm_jax.model` / `lstm_jax.fused`.

cuDNN reads one flat weight vector: every layer's W_ih and W_hh (row-major, gates i, f, g, o as in torch),
then every layer's b_ih and b_hh. `pack` builds it from the torch-layout parameters, so the model keeps one
set of parameters whatever runs the recurrence, and cuDNN's backward pass hands each of them its gradient
(both bias vectors included). The binding runs float32 only, and its matmuls follow
`jax_default_matmul_precision` ('highest' turns TF32 off, as the parity suite does).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.experimental import rnn

from lstm_core.config import ConfigError

Layer = tuple[jax.Array, jax.Array, jax.Array, jax.Array]  # w_ih (4H, In), w_hh (4H, H), b_ih (4H,), b_hh (4H,)


def require_gpu(device: str) -> None:
    """cuDNN is a CUDA library: refuse the configured device (cpu | gpu) unless it is a GPU that jax sees, before
    the trainer looks for its devices, whose own refusal of an unseen GPU advises --device cpu (refused here)."""
    if device != "gpu":
        raise ConfigError(f"rnn 'cudnn' runs on a CUDA GPU, not on {device}; use --device gpu or --rnn scan")
    try:
        jax.devices("gpu")
    except RuntimeError:
        seen = ", ".join(sorted({d.platform for d in jax.devices()}))
        raise ConfigError(
            f"rnn 'cudnn' runs on a CUDA GPU, and jax sees no gpu device here (only {seen}); use --rnn scan"
        ) from None


def pack(layers: list[Layer]) -> jax.Array:
    """Torch-layout layer parameters -> cuDNN's flat weight vector (all matrices first, then all biases)."""
    matrices = [w.ravel() for w_ih, w_hh, _, _ in layers for w in (w_ih, w_hh)]
    biases = [b for _, _, b_ih, b_hh in layers for b in (b_ih, b_hh)]
    return jnp.concatenate(matrices + biases)


def stack(x: jax.Array, layers: list[Layer]) -> jax.Array:
    """x (B, T, In) batch-first, as cuDNN reads it -> the top layer's outputs (B, T, H): all layers in one cuDNN
    call, from a zero state."""
    batch, steps, inputs = x.shape
    hidden = layers[0][1].shape[1]
    zeros = jnp.zeros((len(layers), batch, hidden), x.dtype)
    lengths = jnp.full((batch,), steps, jnp.int32)
    ys, _, _ = rnn.lstm(
        x,
        zeros,
        zeros,
        pack(layers),
        lengths,
        input_size=inputs,
        hidden_size=hidden,
        num_layers=len(layers),
        dropout=0.0,
        bidirectional=False,
    )
    return ys
