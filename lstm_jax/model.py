"""An LSTM stack and linear head in Flax, with parameters laid out exactly as torch's nn.LSTM / nn.Linear.

Parameters (H hidden, In_k input of layer k, O outputs), gates ordered i, f, g, o as in torch:
    params["lstm"]["weight_ih_l{k}"] (4H, In_k)   params["lstm"]["weight_hh_l{k}"] (4H, H)
    params["lstm"]["bias_ih_l{k}"]   (4H,)        params["lstm"]["bias_hh_l{k}"]   (4H,)
    params["head"]["weight"]         (O, H)       params["head"]["bias"]           (O,)
The two bias vectors stay separate (their sum is what the cell sees, but Adam moves each on its own).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from lstm_core import convert
from lstm_jax import cudnn
from lstm_jax.fused import fused_layer


def torch_uniform(bound: float):
    """nn.LSTM / nn.Linear initialisation: U(-bound, bound). Training starts from `lstm_core.weights` instead."""

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


def lstm_layer(
    xs: jax.Array, w_ih, w_hh, b_ih, b_hh, h_perturb: jax.Array, unroll: int = 1, remat: bool = False
) -> jax.Array:
    """One LSTM layer over time from a zero state, differentiated by autodiff (`fused.fused_layer` is the same
    maths with a hand-written backward pass, the default).

    xs (T, B, In) time-major; h_perturb (T, B, H) is added to every h_t (zeros: its gradient is dL/dh_t).
    Returns hs (T, B, H). With `remat` each step is recomputed in the backward pass instead of stored.
    """
    batch, hidden = xs.shape[1], w_hh.shape[1]
    gates_x = xs @ w_ih.T + (b_ih + b_hh)  # (T, B, 4H): the input projection, one matmul for all steps

    def step(carry, inputs):
        h, c = carry  # (B, H) each
        gate_x, perturb = inputs  # (B, 4H), (B, H)
        gates = gate_x + h @ w_hh.T  # (B, 4H)
        i, f, g, o = jnp.split(gates, 4, axis=-1)  # torch's gate order
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c) + perturb
        return (h, c), h

    zeros = jnp.zeros((batch, hidden), xs.dtype)
    _, hs = jax.lax.scan(jax.checkpoint(step) if remat else step, (zeros, zeros), (gates_x, h_perturb), unroll=unroll)
    return hs


class LSTMStack(nn.Module):
    hidden_size: int
    num_layers: int
    dropout: float = 0.0
    unroll: int = 1
    backward: str = "custom"  # custom: fused.fused_layer; autodiff: lstm_layer
    remat: bool = False
    rnn: str = "scan"  # scan: the lax.scan recurrence (backward, unroll, remat apply); cudnn: lstm_jax.cudnn
    batch_axis: str | None = None  # the shard_map axis the batch is split over (lstm_jax.train), if any

    @nn.compact
    def __call__(self, x: jax.Array, h_perturb: jax.Array, *, train: bool) -> jax.Array:
        """x (B, T, In), h_perturb (L, T, B, H) -> the top layer's last hidden state h_T (B, H).

        The cuDNN path ignores h_perturb (cuDNN does not expose h_t inside its recurrence): the trainer reads
        ‖dL/dh_t‖ through the scan path on the steps it probes. cuDNN reads the batch-first input as it comes
        and writes batch-first outputs, so no transpose sits next to the kernel.
        """
        if self.rnn == "cudnn":  # no dropout here: config refuses it (layers would need one call each)
            inputs = [x.shape[-1]] + [self.hidden_size] * (self.num_layers - 1)
            layers = [self.layer_params(k, size, x.dtype) for k, size in enumerate(inputs)]
            return cudnn.stack(x, layers)[:, -1]  # (B, H)
        hs = jnp.swapaxes(x, 0, 1)  # (T, B, In)
        for k in range(self.num_layers):
            if k > 0:  # nn.LSTM's dropout: on every layer's output but the last
                hs = self.drop(hs, nn.Dropout(self.dropout, deterministic=not train))
            w_ih, w_hh, b_ih, b_hh = self.layer_params(k, hs.shape[-1], x.dtype)
            if self.backward == "custom":
                hs = fused_layer(self.unroll, self.remat)(w_ih, w_hh, b_ih + b_hh, hs, h_perturb[k])  # (T, B, H)
            else:
                hs = lstm_layer(hs, w_ih, w_hh, b_ih, b_hh, h_perturb[k], self.unroll, self.remat)  # (T, B, H)
        return hs[-1]

    def drop(self, hs: jax.Array, dropout: nn.Dropout) -> jax.Array:
        """Dropout on hs (T, B, H). On a shard of the batch, the shard's rows of the mask drawn for the whole batch
        (dropout of ones: 0 or 1 / (1 - rate)), so that a run's masks do not depend on the number of shards."""
        if self.batch_axis is None or dropout.deterministic or dropout.rate == 0:
            return dropout(hs)  # (no mask at all in the last two cases)
        steps, batch, hidden = hs.shape
        shards, shard = jax.lax.axis_size(self.batch_axis), jax.lax.axis_index(self.batch_axis)
        scale = dropout(jnp.ones((steps, shards * batch, hidden), hs.dtype))  # (T, B_whole, H)
        return hs * jax.lax.dynamic_slice_in_dim(scale, shard * batch, batch, axis=1)

    def layer_params(self, k: int, layer_input: int, dtype) -> cudnn.Layer:
        """Layer k's w_ih (4H, In_k), w_hh (4H, H), b_ih (4H,), b_hh (4H,), named as in torch's state_dict."""
        hidden, init = self.hidden_size, torch_uniform(1.0 / np.sqrt(self.hidden_size))
        return (
            self.param(f"weight_ih_l{k}", init, (4 * hidden, layer_input), dtype),
            self.param(f"weight_hh_l{k}", init, (4 * hidden, hidden), dtype),
            self.param(f"bias_ih_l{k}", init, (4 * hidden,), dtype),
            self.param(f"bias_hh_l{k}", init, (4 * hidden,), dtype),
        )


class TorchLinear(nn.Module):
    """nn.Linear: weight (O, In) as torch stores it, y = x @ W.T + b."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        init = torch_uniform(1.0 / np.sqrt(x.shape[-1]))
        weight = self.param("weight", init, (self.features, x.shape[-1]), x.dtype)
        bias = self.param("bias", init, (self.features,), x.dtype)
        return x @ weight.T + bias


class LSTMModel(nn.Module):
    """x (B, T, In) -> outputs (B, O) from the top layer's last h_t."""

    hidden_size: int
    num_layers: int
    num_outputs: int
    dropout: float = 0.0
    unroll: int = 1
    backward: str = "custom"
    remat: bool = False
    rnn: str = "scan"
    batch_axis: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, h_perturb: jax.Array | None = None, *, train: bool = False) -> jax.Array:
        if h_perturb is None:
            h_perturb = zero_perturbation(self.num_layers, x.shape[1], x.shape[0], self.hidden_size, x.dtype)
        stack = LSTMStack(
            self.hidden_size,
            self.num_layers,
            self.dropout,
            self.unroll,
            self.backward,
            self.remat,
            self.rnn,
            self.batch_axis,
            name="lstm",
        )
        return TorchLinear(self.num_outputs, name="head")(stack(x, h_perturb, train=train))  # (B, O)


def zero_perturbation(num_layers: int, seq_len: int, batch: int, hidden: int, dtype) -> jax.Array:
    """(L, T, B, H) zeros: differentiate the loss w.r.t. this to read ‖dL/dh_t‖ of every layer."""
    return jnp.zeros((num_layers, seq_len, batch, hidden), dtype)


def from_torch_names(weights: dict[str, np.ndarray], dtype) -> dict:
    """{"lstm.weight_ih_l0": array, ...} (torch state_dict names) -> Flax params {"lstm": {...}, "head": {...}}
    as `dtype` arrays; `lstm_core.convert` checks every name and shape."""
    return jax.tree.map(lambda value: jnp.asarray(value, dtype), convert.torch_to_flax(weights))


def to_torch_names(params: dict) -> dict[str, np.ndarray]:
    """Flax params -> numpy arrays under torch state_dict names (the inverse of `from_torch_names`)."""
    return {name: np.asarray(value) for name, value in convert.flax_to_torch(params).items()}
