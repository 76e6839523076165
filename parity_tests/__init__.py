"""The parity suite: the torch reference and the JAX trainer, driven side by side and compared step by step.

`engine` trains both in lockstep from the same weights, data and batches; `compare` measures every quantity
against a stated tolerance and names the first step and quantity that left it; `cli` is `lstm-parity`.
The tests beside them prove agreement, and that deliberately wrong variants are caught.
"""
