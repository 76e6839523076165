"""`lstm-bench`: one training step of each implementation, timed side by side in one process.

    lstm-bench --quick --out benchmarks/results/cpu-quick      # reduced grid (3 shapes), about a minute on 2 cores
    lstm-bench --out benchmarks/results/cpu                    # the full grid
    lstm-bench --scaling --out benchmarks/results/cpu-scaling  # cost against sequence length and hidden size
    lstm-bench --end-to-end --out ...                          # the default lstm-train job, process start to summary
    lstm-bench --profile --out benchmarks/results/cpu-profile  # where the JAX trainer's step spends its time

Every ratio is against `torch-eager` measured in the same run. GFLOP/s count the step's matmul FLOPs
(`lstm_core.flops.lstm_step_flops`) and are compared with the float32 matmul peak measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import lstm_jax  # noqa: F401  (first: one jax CPU device per core, before the peak measurement runs jax)
from benchmarks import impls, report
from benchmarks.impls import PER_CALL_BATCHES, Shape
from benchmarks.measure import time_calls
from benchmarks.peak import matmul_peak_gflops
from lstm_core.config import comma_separated
from lstm_core.flops import lstm_step_flops
from lstm_core.machine import cpu_cores
from lstm_core.records import RunDirError, make_dir
from parity_tests.engine import gpu_available, pin_gpu_precision

GRID = [Shape(32, 50, 1, 64, 1), Shape(64, 100, 8, 128, 1), Shape(128, 100, 32, 256, 2), Shape(16, 500, 1, 64, 1)]
QUICK_GRID = [Shape(32, 50, 1, 64, 1), Shape(16, 500, 1, 64, 1), Shape(64, 100, 8, 128, 1)]
BUDGET_S, QUICK_BUDGET_S = 2.0, 0.5  # seconds of timed repeats per row, without and with --quick
CPU_IMPLS = [name for name in impls.BUILDERS if name not in impls.GPU_ONLY]
# Flags of the grid that --scaling and --profile, with rows of their own, do not take: flag -> whether it was given.
GRID_ONLY = {
    "--impls": lambda args: args.impls is not None,
    "--shards": lambda args: args.shards != 0,
    "--unroll": lambda args: args.unroll != 1,
    "--end-to-end": lambda args: args.end_to_end,
}
# The rows --scaling and --profile time instead.
OWN_ROWS = {"scaling": "torch-eager, jax-step, jax-step-remat", "profile": "our trainer, auto shards, and torch-eager"}
# The files each kind of run writes in --out (a directory in the way of one was a traceback after the timing).
OUT_FILES = {
    "scaling": ("scaling.json", "scaling.png"),
    "profile": ("profile.json", "profile.md"),
    "grid": ("results.json", "results.md", "results.png"),
}
# torch-compile is not a default row on the GPU: Inductor compiles for minutes per shape there, and on the CPU it
# leaves nn.LSTM to the eager kernel anyway (--impls still runs it).
GPU_IMPLS = [name for name in CPU_IMPLS if name != "torch-compile"] + list(impls.GPU_ONLY)


def environment(device: str) -> dict:
    import jax
    import torch

    versions = {name: metadata.version(name) for name in ("jax", "jaxlib", "flax", "optax", "torch", "numpy")}
    info = {
        "device": device,
        "cpu": platform.processor() or platform.machine(),
        "cores": cpu_cores(),  # the cores this process may use (its CPU affinity)
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "versions": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_cpu_devices": len(jax.devices("cpu")),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if device == "gpu":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["matmul_precision"] = "float32, TF32 off (as the parity suite runs)"
    return info


def bench_one(impl: str, shape: Shape, device: str, budget_s: float, peak: float, **training) -> dict:
    row = {
        "impl": impl,
        "batch": shape.batch,
        "seq_len": shape.seq_len,
        "input_size": shape.input_size,
        "hidden_size": shape.hidden_size,
        "num_layers": shape.num_layers,
    }
    torch_on_gpu = device == "gpu" and impl.startswith("torch")
    if torch_on_gpu:
        import torch

        torch.cuda.reset_peak_memory_stats()
    try:
        built = impls.build(impl, shape, device, **training)
        timing = time_calls(built.step, budget_s=budget_s)
    except Exception as error:  # a peer that cannot run this shape is reported, not fatal
        return {**row, "error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
    if torch_on_gpu:  # JAX rows have XLA's own account (xla_memory_mb)
        row["gpu_peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    per_batch = PER_CALL_BATCHES.get(impl, 1)
    median = timing.median_ms / per_batch
    gflops = (
        lstm_step_flops(shape.batch, shape.seq_len, shape.input_size, shape.hidden_size, shape.num_layers)
        / median
        / 1e6
    )
    return {
        **row,
        "median_ms": median,
        "min_ms": timing.min_ms / per_batch,
        "max_ms": timing.max_ms / per_batch,
        "repeats": timing.repeats,
        "compile_s": built.compile_s,
        "gflops": gflops,
        "peak_fraction": gflops / peak,
        "peak_memory_mb": timing.peak_memory_mb,
        "xla_memory_mb": built.xla_memory_mb,
        "shards": built.shards,
    }


def add_ratios(rows: list[dict]) -> None:
    """ratio_vs_torch_eager = torch-eager's median / this median, for the same shape (> 1: faster than torch)."""
    key = ("batch", "seq_len", "input_size", "hidden_size", "num_layers")
    reference = {
        tuple(r[k] for k in key): r["median_ms"] for r in rows if r["impl"] == "torch-eager" and "median_ms" in r
    }
    for row in rows:
        base = reference.get(tuple(row[k] for k in key))
        row["ratio_vs_torch_eager"] = base / row["median_ms"] if base and "median_ms" in row else None


def run_grid(shapes, impl_names, device, budget_s, on_row=None, **training) -> dict:
    """Every implementation on every shape; `on_row(results so far)` after each row (partial results survive
    a time limit)."""
    import torch

    torch.set_num_threads(cpu_cores())
    if device == "gpu":  # full float32 on both stacks: the configuration whose parity is tested
        pin_gpu_precision()
    peak = matmul_peak_gflops(device)
    results = {"environment": environment(device), "matmul_peak_gflops": peak, "rows": []}
    for shape in shapes:
        for impl in impl_names:
            print(f"  {impl:14s} {shape}", file=sys.stderr, flush=True)
            results["rows"].append(bench_one(impl, shape, device, budget_s, peak["peak"], **training))
            add_ratios(results["rows"])
            if on_row:
                on_row(results)
    return results


def end_to_end(device: str, runs: int = 1) -> list[dict]:
    """The default `lstm-train` job for each backend (on a GPU, JAX's cuDNN path too), timed from process start
    to the final summary."""
    variants = [("torch", "scan"), ("jax", "scan")] + ([("jax", "cudnn")] if device == "gpu" else [])
    rows = []
    for backend, rnn in variants:
        for _ in range(runs):
            out = Path("runs") / f"bench-e2e-{backend}-{rnn}"
            command = [sys.executable, "-m", "lstm_core.cli", "--backend", backend, "--quiet", "--out", str(out)]
            started = time.perf_counter()
            job = subprocess.run(
                [*command, "--device", device, "--rnn", rnn],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            wall = time.perf_counter() - started
            if job.returncode != 0:  # reported like a grid row that cannot run, not fatal
                error = (job.stderr.strip().splitlines() or [f"exit status {job.returncode}"])[-1][:200]
                rows.append({"backend": backend, "rnn": rnn, "error": error})
                continue
            summary = json.loads((out / "summary.json").read_text())
            rows.append(
                {
                    "backend": backend,
                    "rnn": rnn,
                    "process_wall_s": wall,
                    "train_wall_s": summary["wall_seconds"],
                    "compile_s": summary["compile_seconds"],
                    "final_val_loss": summary["final_val_loss"],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lstm-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", default="benchmarks/results/latest", help="directory for results (default: %(default)s)"
    )
    parser.add_argument("--quick", action="store_true", help="reduced grid, shorter timing budget")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu")
    parser.add_argument(
        "--impls",
        help=f"comma-separated implementations (default: {','.join(CPU_IMPLS)}; with --device gpu "
        f"{','.join(GPU_IMPLS)})",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help=f"seconds of timed repeats per row (default: {BUDGET_S:g}; {QUICK_BUDGET_S:g} with --quick)",
    )
    parser.add_argument(
        "--unroll", type=int, default=1, help="lax.scan unroll for the JAX trainer rows (default: %(default)s)"
    )
    parser.add_argument(
        "--shards", type=int, default=0, help="devices the JAX trainer rows split a batch over (0: auto, per core)"
    )
    parser.add_argument("--scaling", action="store_true", help="time and memory against seq_len and hidden size")
    parser.add_argument("--end-to-end", action="store_true", help="also time the default lstm-train job")
    parser.add_argument("--profile", action="store_true", help="the JAX trainer's step on the grid, part by part (CPU)")
    args = parser.parse_args(argv)
    ignored = [flag for flag, given in GRID_ONLY.items() if given(args)]
    if args.scaling and args.profile:
        parser.error("--scaling and --profile are two runs of their own; choose one")
    for mode, rows in OWN_ROWS.items():
        if getattr(args, mode) and ignored:
            parser.error(f"--{mode} times its own rows ({rows}); drop {', '.join(ignored)}")
    if args.profile and args.device == "gpu":
        parser.error("--profile runs on the CPU (it reads the kernels of XLA's CPU program); drop --device gpu")
    if args.device == "gpu" and not gpu_available():
        parser.error("--device gpu: torch and jax see no CUDA GPU here; run on a GPU machine or use --device cpu")
    default_impls = GPU_IMPLS if args.device == "gpu" else CPU_IMPLS
    listed = comma_separated(args.impls) if args.impls is not None else default_impls
    impl_names = list(dict.fromkeys(listed))  # each row once: ratios are to one torch-eager
    if not impl_names:
        parser.error(f"--impls names no implementation; choose from {', '.join(impls.BUILDERS)}")
    unknown = sorted(set(impl_names) - set(impls.BUILDERS))
    if unknown:
        parser.error(f"unknown implementation(s) {', '.join(unknown)}; choose from {', '.join(impls.BUILDERS)}")
    cudnn_rows = [name for name in impl_names if name in impls.GPU_ONLY]
    if cudnn_rows and args.device != "gpu":  # each shape's row would only read "failed", after the others' timing
        parser.error(f"{', '.join(cudnn_rows)} run cuDNN, on a CUDA GPU only; add --device gpu, or drop them")
    for flag in ("--unroll", "--shards"):
        rows = impls.rows_taking(flag[2:])
        if GRID_ONLY[flag](args) and not set(impl_names) & set(rows):
            parser.error(f"{flag} sets the rows {', '.join(rows)}, and --impls names none of them; add one, or drop it")
    if args.shards < 0:
        parser.error(f"--shards must be >= 0 (0: auto, one device per core where it pays), got {args.shards}")
    if args.shards > 1:
        import jax

        import lstm_jax  # noqa: F401  (gives jax one CPU device per core)

        available = 1 if args.device == "gpu" else len(jax.devices("cpu"))  # on a GPU the trainer uses the first
        if args.shards > available:
            parser.error(f"--shards {args.shards}: the JAX trainer has {available} {args.device} device(s) here")
    if args.unroll < 1:
        parser.error(f"--unroll must be >= 1, got {args.unroll}")
    if args.budget is not None and not 0 < args.budget < float("inf"):  # inf ran a row's repeat cap, not a budget
        parser.error(f"--budget must be a finite number > 0 of seconds of timed repeats per row, got {args.budget}")
    try:
        kind = next((mode for mode in OWN_ROWS if getattr(args, mode)), "grid")
        out = make_dir(args.out, "--out", writes=OUT_FILES[kind])
    except RunDirError as error:
        parser.error(str(error))
    budget = args.budget or (QUICK_BUDGET_S if args.quick else BUDGET_S)
    command = "lstm-bench " + " ".join(argv if argv is not None else sys.argv[1:])
    training = {"unroll": args.unroll} if args.unroll != 1 else {}
    if args.shards:
        training["shards"] = args.shards
    if args.scaling:
        from benchmarks import scaling

        results = scaling.run(args.device, budget, quick=args.quick)
        results["environment"] = environment(args.device)
        results["command"] = command
        (out / "scaling.json").write_text(json.dumps(results, indent=2) + "\n")
        report.scaling_chart(results, out / "scaling.png")
        print(report.scaling_table(results))
        return 0

    if args.profile:
        from benchmarks import profile

        results = profile.run(QUICK_GRID if args.quick else GRID, budget)
        results["environment"] = environment("cpu")
        results["command"] = command
        (out / "profile.json").write_text(json.dumps(results, indent=2) + "\n")
        table = report.profile_table(results)
        (out / "profile.md").write_text(table)
        print(table)
        return 0

    def save(results: dict) -> None:
        (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

    results = run_grid(QUICK_GRID if args.quick else GRID, impl_names, args.device, budget, save, **training)
    results["command"] = command
    if args.end_to_end:
        results["end_to_end"] = end_to_end(args.device)
    save(results)
    table = report.markdown(results)
    (out / "results.md").write_text(table)
    report.ratio_chart(results, out / "results.png")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
