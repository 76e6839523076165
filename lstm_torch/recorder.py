"""Records a plain PyTorch training loop so that `lstm-doctor` can diagnose it.

Four lines in your loop (the `recorder` ones):

    recorder = Recorder("runs/mine", model, optimizer, max_norm=1.0, inputs=x_train, targets=y_train)
    for epoch in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            recorder.step(loss)                    # after backward, before clipping and optimizer.step()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        recorder.end_epoch(val_loss)               # once per epoch: the one host transfer
    recorder.close()                               # summary.json

then `lstm-doctor runs/mine`. Hidden size and layers are read from the model's `nn.LSTM`, lr and weight decay
from the optimizer; pass `max_norm=None` if the loop does not clip. `x_train`, `y_train` are the arrays the
model is fed; if the loop standardises them itself, pass the raw ones with `scaled=True`. The files are
written by `lstm_core.recorder.RunRecorder`, the half this shares with `lstm_jax.recorder`.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lstm_core.recorder import RunRecorder


def _fetch(values: list) -> np.ndarray:
    """A list of same-shaped tensors, Python floats or arrays -> one numpy array, in one device-to-host copy."""
    device = next((value.device for value in values if isinstance(value, torch.Tensor)), None)
    if device is None:
        return np.asarray(values, dtype=np.float64)
    stacked = torch.stack([torch.as_tensor(value, device=device) for value in values])
    return stacked.cpu().to(torch.float64).numpy()  # float64 on the host: numpy has no bfloat16


def _detached(value):
    """A tensor cut from its graph (so the step's graph can be freed); a number or array as it is."""
    return value.detach() if isinstance(value, torch.Tensor) else value


class Recorder(RunRecorder):
    """lstm-train's records for a plain PyTorch loop; see the module docstring for the lines to add.

    `inputs`, `targets`: the training arrays (N, T, F) and (N,) / (N, O), for data_stats.json, with `scaled`
    saying whether the loop standardises them (default False: the model is fed them as given); `task` and
    `num_classes` set the doctor's baseline.
    `hidden_size` and `num_layers` are needed only when the model has no `nn.LSTM`.
    """

    def __init__(
        self,
        out_dir,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        max_norm: float | None = None,
        hidden_size: int | None = None,
        num_layers: int | None = None,
        **run,
    ):
        self.optimizer = optimizer
        self.params = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        lstms = [m for m in model.modules() if isinstance(m, nn.LSTM)]
        if hidden_size is None and not lstms:
            raise ValueError("the model has no nn.LSTM to read the hidden size from; pass hidden_size=")
        super().__init__(
            out_dir,
            [name for name, _ in self.params],
            _fetch,
            backend="torch",
            lr=float(optimizer.param_groups[0]["lr"]),
            hidden_size=lstms[0].hidden_size if hidden_size is None else hidden_size,
            num_layers=(sum(m.num_layers for m in lstms) or 1) if num_layers is None else num_layers,
            max_norm=max_norm,
            weight_decay=float(optimizer.param_groups[0].get("weight_decay", 0.0)),
            **run,
        )

    @torch.no_grad()
    def step(self, loss: torch.Tensor | float, hidden_grad_norms: torch.Tensor | None = None) -> None:
        """Record one optimizer step: call after `loss.backward()`, before clipping and `optimizer.step()`.

        loss: the batch's scalar loss, as a tensor (kept on its device until the epoch ends) or a float
        (`loss.item()`); the gradient norms are read from the parameters' `.grad`.
        hidden_grad_norms (L, T): ‖dL/dh_t‖ per layer and time step, if the loop measures it (for the
        vanishing-gradient rule; `lstm_torch.model.LSTMModel.hidden_state_gradients` shows one way).
        """
        norms = torch.stack(
            [torch.linalg.vector_norm(p.grad) if p.grad is not None else p.new_zeros(()) for _, p in self.params]
        )  # (P,), before clipping
        lr = self.optimizer.param_groups[0]["lr"]
        self._add_step(_detached(loss), norms, lr, _detached(hidden_grad_norms))
