"""Backend-neutral pieces of lstm-parity: config, data, initial weights, records, training loop, command line.

Imports neither torch nor jax (a test asserts it); the backends `lstm_torch` and `lstm_jax` import this.
"""
