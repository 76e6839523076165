"""How the cost of a training step grows with sequence length and hidden size, for both backends.

The JAX rows are one jitted step per call (`jax-step`); `jax-step-remat` wraps each layer's recurrence in
`jax.checkpoint`, trading recomputation in the backward pass for memory that no longer grows with T.
"""

from __future__ import annotations

import sys

from benchmarks import impls
from benchmarks.impls import Shape
from benchmarks.measure import time_calls

SEQ_LENS = [50, 100, 200, 500, 1000, 2000]
HIDDEN_SIZES = [32, 64, 128, 256, 512, 1024]
QUICK_SEQ_LENS = [50, 200, 1000]
QUICK_HIDDEN_SIZES = [32, 128, 512]
SCALING_IMPLS = {
    "torch-eager": lambda shape, device: impls.BUILDERS["torch-eager"](shape, device),
    "jax-step": lambda shape, device: impls.BUILDERS["jax-step"](shape, device),
    "jax-step-remat": lambda shape, device: impls.BUILDERS["jax-step"](shape, device, remat=True),
}


def sweeps(quick: bool) -> list[tuple[str, int, Shape]]:
    seq_lens, hidden_sizes = (QUICK_SEQ_LENS, QUICK_HIDDEN_SIZES) if quick else (SEQ_LENS, HIDDEN_SIZES)
    return [("seq_len", t, Shape(16, t, 1, 64, 1)) for t in seq_lens] + [
        ("hidden_size", h, Shape(32, 100, 8, h, 1)) for h in hidden_sizes
    ]


def run(device: str, budget_s: float, quick: bool = False) -> dict:
    rows = []
    for sweep, value, shape in sweeps(quick):
        for name, build in SCALING_IMPLS.items():
            print(f"  {name:15s} {sweep}={value}", file=sys.stderr, flush=True)
            row = {"sweep": sweep, "value": value, "impl": name, "shape": str(shape)}
            try:
                built = build(shape, device)
                timing = time_calls(built.step, warmup=1, min_repeats=3, budget_s=budget_s)
            except Exception as error:  # reported in the table, not fatal
                rows.append({**row, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"})
                continue
            rows.append(
                {
                    **row,
                    "median_ms": timing.median_ms,
                    "min_ms": timing.min_ms,
                    "max_ms": timing.max_ms,
                    "compile_s": built.compile_s,
                    "peak_memory_mb": timing.peak_memory_mb,
                    "xla_memory_mb": built.xla_memory_mb,
                    "shards": built.shards,
                }
            )
    return {
        "title": f"Training step cost, {device}, float32: seq_len sweep at (16,T,1,64,1), "
        "hidden sweep at (32,100,8,H,1)",
        "rows": rows,
    }
