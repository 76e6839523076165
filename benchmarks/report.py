"""Markdown tables and PNG charts of benchmark results."""

from __future__ import annotations

from pathlib import Path


def _fmt(value, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def markdown(results: dict) -> str:
    env = results["environment"]
    peak = results["matmul_peak_gflops"]
    lines = [
        f"Device: {env['device']} ({env.get('gpu') or env['cpu']}), {env['cores']} cores, torch threads "
        f"{env['torch_threads']}; float32 matmul peak {peak['peak']:.0f} GFLOP/s (torch {peak['torch']:.0f}, "
        f"XLA {peak['xla']:.0f}); jax {env['versions']['jax']}, torch {env['versions']['torch']}.",
        "",
        "| shape (B,T,In,H,L) | impl | median ms | min–max ms | × torch-eager | compile s | GFLOP/s | % peak "
        "| peak MiB | XLA MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        shape = f"({r['batch']},{r['seq_len']},{r['input_size']},{r['hidden_size']},{r['num_layers']})"
        if "error" in r:
            lines.append(f"| {shape} | {r['impl']} | failed: {r['error']} | | | | | | | |")
            continue
        lines.append(
            f"| {shape} | {r['impl']} | {r['median_ms']:.2f} | {r['min_ms']:.2f}–{r['max_ms']:.2f} | "
            f"{_fmt(r['ratio_vs_torch_eager'], '.2f')} | {r['compile_s']:.2f} | {r['gflops']:.1f} | "
            f"{100 * r['peak_fraction']:.1f} | {_fmt(r.get('gpu_peak_memory_mb', r['peak_memory_mb']), '.0f')} | "
            f"{_fmt(r.get('xla_memory_mb'), '.1f')} |"
        )
    if env["device"] == "gpu":
        lines += [
            "",
            "On the GPU, peak MiB is torch's CUDA peak allocation for torch rows and host memory growth for JAX "
            "rows, whose device buffers are XLA MiB; torch-eager is the reference trainer, its nn.LSTM on cuDNN.",
        ]
    if "end_to_end" in results:
        lines += [
            "",
            "Default `lstm-train` job, process start to final summary:",
            "",
            "| backend | process wall s | training wall s | compile s | final val loss |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in results["end_to_end"]:
            backend = f"{r['backend']}{' (cudnn)' if r.get('rnn') == 'cudnn' else ''}"
            if "error" in r:
                lines.append(f"| {backend} | failed: {r['error']} | | | |")
            else:
                lines.append(
                    f"| {backend} | {r['process_wall_s']:.1f} | {r['train_wall_s']:.1f} | {r['compile_s']:.2f} | "
                    f"{r['final_val_loss']:.4g} |"
                )
    return "\n".join(lines) + "\n"


def ratio_chart(results: dict, path: Path) -> None:
    """Grouped bars: speed relative to torch-eager, per shape and implementation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in results["rows"] if r.get("ratio_vs_torch_eager")]
    shapes = list(
        dict.fromkeys((r["batch"], r["seq_len"], r["input_size"], r["hidden_size"], r["num_layers"]) for r in rows)
    )
    names = list(dict.fromkeys(r["impl"] for r in rows))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(len(names), 1)
    for j, name in enumerate(names):
        values = []
        for shape in shapes:
            match = [
                r["ratio_vs_torch_eager"]
                for r in rows
                if r["impl"] == name
                and (r["batch"], r["seq_len"], r["input_size"], r["hidden_size"], r["num_layers"]) == shape
            ]
            values.append(match[0] if match else 0.0)
        ax.bar([i + j * width for i in range(len(shapes))], values, width, label=name)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(shapes))], [str(s) for s in shapes])
    ax.set_xlabel("shape (batch, seq_len, input, hidden, layers)")
    ax.set_ylabel("speed vs torch-eager (×, higher is faster)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"One training step, {results['environment']['device']}, float32")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def profile_table(results: dict) -> str:
    """One row per shape: the step, its parts, the same matmuls alone, kernels per time step (ms per batch), and one
    shard's recurrence on one device."""
    env = results["environment"]
    lines = [
        f"Device: {env['device']} ({env['cpu']}), {env['cores']} cores, torch threads {env['torch_threads']}; "
        f"float32 matmul peak {results['matmul_peak_gflops']['peak']:.0f} GFLOP/s; jax {env['versions']['jax']}, "
        f"torch {env['versions']['torch']}. Times are medians, ms per training step of one batch.",
        "",
        "| shape (B,T,In,H,L) | shards | torch-eager ms | jax-epoch ms (× torch) | forward ms | backward ms | "
        "rest ms | matmuls alone ms (fwd + bwd) | kernels per time step (fwd + bwd) | µs per layer time step "
        "(matmuls alone) | one shard on one device: rows, µs per layer time step (matmuls alone) | "
        "% peak (matmuls alone) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["rows"]:
        shape = f"({r['batch']},{r['seq_len']},{r['input_size']},{r['hidden_size']},{r['num_layers']})"
        kernels = " / ".join(f"{f} + {b}" for f, b in zip(r["kernels_forward"], r["kernels_backward"], strict=True))
        lines.append(
            f"| {shape} | {r['shards']} | {r['torch_eager_ms']:.2f} | {r['step_ms']:.2f} "
            f"({r['ratio_vs_torch_eager']:.2f}×) | {r['forward_ms']:.2f} | {r['backward_ms']:.2f} | "
            f"{r['rest_ms']:.2f} | {r['matmul_forward_ms']:.2f} + {r['matmul_backward_ms']:.2f} | {kernels} | "
            f"{r['us_per_layer_time_step']:.1f} ({r['matmul_us_per_layer_time_step']:.1f}) | "
            f"{r['one_device_rows']}: {r['one_device_us_per_layer_time_step']:.1f} "
            f"({r['one_device_matmul_us_per_layer_time_step']:.1f}) | "
            f"{100 * r['peak_fraction']:.0f} ({100 * r['matmul_peak_fraction']:.0f}) |"
        )
    return "\n".join(lines) + "\n"


def scaling_table(results: dict) -> str:
    lines = ["| sweep | value | impl | median ms | peak MiB | XLA MiB |", "|---|---:|---|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(
            f"| {r['sweep']} | {r['value']} | {r['impl']} | {_fmt(r.get('median_ms'), '.2f')} | "
            f"{_fmt(r.get('peak_memory_mb'), '.0f')} | {_fmt(r.get('xla_memory_mb'), '.1f')} |"
        )
    return "\n".join(lines) + "\n"


def scaling_chart(results: dict, path: Path) -> None:
    """Time per step and peak memory against sequence length and hidden size, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    for col, sweep in enumerate(("seq_len", "hidden_size")):
        rows = [r for r in results["rows"] if r["sweep"] == sweep and "median_ms" in r]
        for impl in dict.fromkeys(r["impl"] for r in rows):
            points = [r for r in rows if r["impl"] == impl]
            xs = [r["value"] for r in points]
            axes[0, col].plot(xs, [r["median_ms"] for r in points], marker="o", label=impl)
            memory = [r.get("xla_memory_mb") or r["peak_memory_mb"] or 0 for r in points]
            axes[1, col].plot(xs, memory, marker="o", label=impl)
        memory_label = "MiB: XLA's buffers (JAX), RSS growth (torch)"
        for row, label in ((0, "ms per step"), (1, memory_label)):
            axes[row, col].set_xscale("log")
            axes[row, col].set_yscale("log")
            axes[row, col].set_xlabel(sweep)
            axes[row, col].set_ylabel(label)
            axes[row, col].legend(fontsize=8)
    fig.suptitle(results.get("title", "Scaling"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
