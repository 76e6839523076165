"""nn.LSTM (batch_first) and a linear head on the last time step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
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

        The total derivative: layer k's h_t feeds both layer k at t + 1 and layer k + 1 at t. nn.LSTM keeps
        h_t inside its kernel (and hands the next layer a separate copy), so the probe steps the same weights
        through the cell's equations, one layer and one time step at a time, and gives both uses the one
        tensor h_t. Parameter gradients of this probe are discarded; the model's mode (dropout) is used as it is.
        """
        lstm = self.lstm
        batch = x.shape[0]
        zeros = x.new_zeros(batch, lstm.hidden_size)
        state = [(zeros, zeros)] * lstm.num_layers  # (h, c) of every layer, (B, H) each
        hidden_states = []  # T lists of L tensors (B, H)
        for t in range(x.shape[1]):
            layer_input = x[:, t]  # (B, In)
            for k in range(lstm.num_layers):
                if k > 0:  # nn.LSTM's dropout: on every layer's output but the last
                    layer_input = F.dropout(layer_input, lstm.dropout, self.training)
                h, c = state[k]
                gates = (
                    layer_input @ getattr(lstm, f"weight_ih_l{k}").T
                    + getattr(lstm, f"bias_ih_l{k}")
                    + h @ getattr(lstm, f"weight_hh_l{k}").T
                    + getattr(lstm, f"bias_hh_l{k}")
                )  # (B, 4H)
                i, f, g, o = gates.chunk(4, dim=-1)  # nn.LSTM's gate order
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                state[k] = (h, c)
                layer_input = h
            hidden_states.append([h for h, _ in state])
        loss = loss_fn(self.head(state[-1][0]), targets)
        grads = torch.autograd.grad(loss, [h for layers in hidden_states for h in layers])  # T * L tensors (B, H)
        norms = torch.stack([g.pow(2).sum().sqrt() for g in grads])  # (T * L,)
        return norms.reshape(x.shape[1], lstm.num_layers).T  # (L, T)
