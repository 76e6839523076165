"""The matmul work of a training step: what the benchmark's GFLOP/s count and the JAX trainer's batch split weighs."""

from __future__ import annotations


def lstm_step_flops(batch: int, seq_len: int, input_size: int, hidden_size: int, num_layers: int) -> float:
    """Matmul FLOPs of one training step: forward 2·B·(In_k + H)·4H per layer and time step; the backward pass
    does twice that (input gradients and weight gradients). Element-wise work and the head are left out."""
    forward = (
        sum(
            2 * batch * ((input_size if k == 0 else hidden_size) + hidden_size) * 4 * hidden_size
            for k in range(num_layers)
        )
        * seq_len
    )
    return 3.0 * forward
