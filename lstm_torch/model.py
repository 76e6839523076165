"""nn.LSTM (batch_first) and a linear head on the last time step."""

from __future__ import annotations

import torch
from torch import nn


class LSTMModel(nn.Module):
    """x (B, T, In) -> outputs (B, O): regression values or class logits.

    Parameter names are the ones `lstm_core.weights` draws: `lstm.weight_ih_l{k}`, ..., `head.weight`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float, num_outputs: int):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, num_layers, batch_first=True, dropout=dropout)
        self.head = nn.Linear(hidden_size, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs, _ = self.lstm(x)  # (B, T, H): the top layer's h_t
        return self.head(hs[:, -1])  # (B, O)

    def hidden_state_gradients(self, x: torch.Tensor, targets: torch.Tensor, loss_fn) -> torch.Tensor:
        """‖dL/dh_t‖ (L, T) for every layer and time step, norms over batch and hidden.

        nn.LSTM keeps h_t inside its kernel, so the total derivative w.r.t. h_t is read by stepping the same
        module one time step at a time and keeping each step's (h_t of every layer) in the graph. Parameter
        gradients of this probe are discarded; the model's mode (dropout) is used as it is.
        """
        state = None
        hidden_states = []
        for t in range(x.shape[1]):
            _, state = self.lstm(x[:, t : t + 1], state)  # state: h, c each (L, B, H)
            hidden_states.append(state[0])
        # The head reads the top layer's h_T from the state, so that gradient lands on hidden_states[-1].
        loss = loss_fn(self.head(state[0][-1]), targets)
        grads = torch.autograd.grad(loss, hidden_states)  # T tensors (L, B, H)
        return torch.stack([g.pow(2).sum(dim=(1, 2)).sqrt() for g in grads], dim=1)  # (L, T)
