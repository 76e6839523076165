"""Records a plain optax training loop so that `lstm-doctor` can diagnose it.

Four lines in your loop (the `recorder` ones):

    recorder = Recorder("runs/mine", params, lr=1e-3, hidden_size=64, max_norm=1.0, inputs=x_train, targets=y_train)
    for epoch in range(epochs):
        for x, y in batches:
            loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
            recorder.step(loss, grads)             # the gradients before clipping; nothing is fetched here
            updates, opt_state = tx.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
        recorder.end_epoch(val_loss)               # once per epoch: the one host transfer
    recorder.close()                               # summary.json

then `lstm-doctor runs/mine`. `x_train`, `y_train` are the arrays the model is fed; if the loop standardises
them itself, pass the raw ones with `scaled=True`. Pass the step's lr to `step(loss, grads, lr=...)` when a
schedule changes it, and `max_norm=None` if the loop does not clip. A jitted step can return
`grad_norms(grads)` instead of the gradients (`recorder.step(loss, norms=...)`). The files are written by
`lstm_core.recorder.RunRecorder`, the half this shares with `lstm_torch.recorder`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from lstm_core.recorder import RunRecorder


def parameter_names(params) -> list[str]:
    """Dotted names of a parameter tree's leaves, in `jax.tree.leaves` order: {"lstm": {"w": ...}} -> lstm.w."""
    paths, _ = jax.tree_util.tree_flatten_with_path(params)
    return [".".join(str(getattr(key, "key", getattr(key, "idx", key))) for key in path) for path, _ in paths]


@jax.jit
def grad_norms(grads) -> jax.Array:
    """Per-leaf L2 norms (P,) of a gradient tree, in `jax.tree.leaves` order."""
    return jnp.stack([jnp.linalg.norm(leaf.ravel()) for leaf in jax.tree.leaves(grads)])


def _fetch(values: list) -> np.ndarray:
    """A list of same-shaped device arrays (or floats) -> one numpy array, in one device-to-host transfer."""
    return np.stack([np.asarray(v) for v in jax.device_get(values)])


class Recorder(RunRecorder):
    """lstm-train's records for a plain optax loop; see the module docstring for the lines to add.

    `params`: the parameter tree (names the gradient norms). `lr`, `hidden_size`, `num_layers`, `max_norm`,
    `weight_decay`: the loop's settings, as the doctor's remedies name them. `inputs`, `targets`: the training
    arrays (N, T, F) and (N,) / (N, O), for data_stats.json, with `scaled` saying whether the loop
    standardises them (default False: the model is fed them as given); `task` and `num_classes` set the
    doctor's baseline.
    """

    def __init__(self, out_dir, params, *, lr: float, hidden_size: int, **run):
        super().__init__(out_dir, parameter_names(params), _fetch, backend="jax", lr=lr, hidden_size=hidden_size, **run)

    def step(self, loss, grads=None, *, norms=None, lr: float | None = None, hidden_grad_norms=None) -> None:
        """Record one optimizer step from its loss and its gradients before clipping (or their `grad_norms`).

        lr: this step's learning rate (default: the initial one). hidden_grad_norms (L, T): ‖dL/dh_t‖ per
        layer and time step, if the loop measures it (for the vanishing-gradient rule).
        """
        if (grads is None) == (norms is None):
            raise ValueError("pass the step's gradients or their grad_norms(grads) as norms=, exactly one of them")
        self._add_step(loss, grad_norms(grads) if norms is None else norms, lr, hidden_grad_norms)
