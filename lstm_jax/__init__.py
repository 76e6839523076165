"""The JAX/Flax trainer: lax.scan recurrence, jit-compiled epochs, optax. Never imports torch.

Importing it gives jax one CPU device per core (jax's default is one for the whole host), so that the trainer
can split a batch over the cores (`training.shards`): XLA runs a recurrence's small per-step matmuls on one
core, and two independent halves of the batch keep two cores busy. This must happen before jax's first
computation; where that has already run, jax keeps the devices it has and the trainer uses those.
"""

import contextlib
import os

import jax

from lstm_core.machine import cpu_cores

if jax.config.jax_num_cpu_devices < 0 and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    with contextlib.suppress(RuntimeError):  # raised where jax already computed: its device count is fixed
        jax.config.update("jax_num_cpu_devices", cpu_cores())
