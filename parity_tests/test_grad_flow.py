"""‖dL/dh_t‖ means the same in both backends: the total derivative of the loss w.r.t. layer k's h_t, which
feeds both layer k at t + 1 and layer k + 1 at t. Checked against central finite differences of a plain
numpy forward pass, independent of either library's autograd."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from lstm_jax import model as jax_model
from lstm_torch.model import LSTMModel

BATCH, STEPS, INPUT, HIDDEN, LAYERS = 3, 6, 2, 4, 2


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def numpy_loss(weights: dict, x: np.ndarray, y: np.ndarray, perturb_at=None, delta=None) -> float:
    """MSE of the head on the top layer's last h; `delta` (B, H) is added to h of (layer, t) = perturb_at."""
    h = [np.zeros((BATCH, HIDDEN)) for _ in range(LAYERS)]
    c = [np.zeros((BATCH, HIDDEN)) for _ in range(LAYERS)]
    for t in range(STEPS):
        layer_input = x[:, t]
        for k in range(LAYERS):
            gates = (
                layer_input @ weights[f"lstm.weight_ih_l{k}"].T
                + weights[f"lstm.bias_ih_l{k}"]
                + h[k] @ weights[f"lstm.weight_hh_l{k}"].T
                + weights[f"lstm.bias_hh_l{k}"]
            )
            i, f, g, o = np.split(gates, 4, axis=-1)
            c[k] = sigmoid(f) * c[k] + sigmoid(i) * np.tanh(g)
            h[k] = sigmoid(o) * np.tanh(c[k])
            if perturb_at == (k, t):
                h[k] = h[k] + delta
            layer_input = h[k]
    outputs = h[-1] @ weights["head.weight"].T + weights["head.bias"]
    return float(np.mean((outputs - y) ** 2))


def finite_difference_norms(weights, x, y, eps: float = 1e-5) -> np.ndarray:
    """(L, T): the norm of the central-difference gradient w.r.t. every h_t, coordinate by coordinate."""
    norms = np.zeros((LAYERS, STEPS))
    for k in range(LAYERS):
        for t in range(STEPS):
            grad = np.zeros((BATCH, HIDDEN))
            for index in np.ndindex(BATCH, HIDDEN):
                delta = np.zeros((BATCH, HIDDEN))
                delta[index] = eps
                up = numpy_loss(weights, x, y, (k, t), delta)
                down = numpy_loss(weights, x, y, (k, t), -delta)
                grad[index] = (up - down) / (2 * eps)
            norms[k, t] = np.linalg.norm(grad)
    return norms


def test_both_probes_give_the_total_derivative():
    torch.manual_seed(0)
    module = LSTMModel(INPUT, HIDDEN, LAYERS, dropout=0.0, num_outputs=1).double()
    weights = {name: value.numpy() for name, value in module.state_dict().items()}
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((BATCH, STEPS, INPUT)), rng.standard_normal((BATCH, 1))
    # The numpy forward is the model: its loss equals torch's (float64 rounding).
    expected_loss = float(F.mse_loss(module(torch.from_numpy(x)), torch.from_numpy(y)).detach())
    assert abs(numpy_loss(weights, x, y) - expected_loss) <= 1e-14

    reference = finite_difference_norms(weights, x, y)
    torch_norms = module.hidden_state_gradients(torch.from_numpy(x), torch.from_numpy(y), F.mse_loss).numpy()
    with jax.enable_x64(True):
        flax = jax_model.LSTMModel(HIDDEN, LAYERS, 1)
        params = jax_model.from_torch_names(weights, jnp.float64)
        perturb = jax_model.zero_perturbation(LAYERS, STEPS, BATCH, HIDDEN, jnp.float64)

        def loss(perturb):
            return jnp.mean((flax.apply({"params": params}, jnp.asarray(x), perturb) - y) ** 2)

        jax_norms = np.sqrt(np.sum(np.asarray(jax.grad(loss)(perturb)) ** 2, axis=(2, 3)))  # (L, T)
    # Central differences with eps 1e-5 in float64: truncation ~eps^2 and cancellation ~1e-16 / eps on
    # gradients of 1e-4 .. 1e-1; measured agreement ~1e-9 relative.
    np.testing.assert_allclose(torch_norms, reference, rtol=1e-6)
    np.testing.assert_allclose(jax_norms, reference, rtol=1e-6)
    # The lower layer's h_T-1 only reaches the loss through the layer above: a state-only derivative is 0 there.
    assert reference[0, -1] > 1e-3  # measured 0.026
