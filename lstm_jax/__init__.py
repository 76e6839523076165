"""The JAX/Flax trainer: lax.scan recurrence, jit-compiled epochs, optax. Never imports torch."""
