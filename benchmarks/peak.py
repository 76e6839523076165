"""The machine's float32 matmul peak, measured in the same run as the benchmark it scales."""

from __future__ import annotations

from benchmarks.measure import time_calls

PEAK_SIZE = 2048  # large enough that both BLAS libraries run at full speed on every core


def matmul_peak_gflops(device: str = "cpu", size: int = PEAK_SIZE) -> dict[str, float]:
    """GFLOP/s of a square float32 matmul through torch and through XLA; the benchmark uses the larger."""
    import jax
    import jax.numpy as jnp
    import torch

    flops = 2.0 * size**3
    results = {}
    torch_device = "cuda" if device == "gpu" else "cpu"
    a = torch.randn(size, size, device=torch_device)
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)

    def torch_mm():
        torch.mm(a, a)
        sync()

    results["torch"] = flops / time_calls(torch_mm, budget_s=1.0).min_ms / 1e6
    target = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    b = jax.device_put(jnp.ones((size, size), jnp.float32), target)
    dot = jax.jit(lambda m: m @ m)
    results["xla"] = flops / time_calls(lambda: dot(b).block_until_ready(), budget_s=1.0).min_ms / 1e6
    results["peak"] = max(results["torch"], results["xla"])
    return results
