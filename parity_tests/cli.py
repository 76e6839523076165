"""`lstm-parity`: train both backends from the same weights, compare them step by step, report.

It takes `lstm-train`'s flags but --backend (both backends run) and --doctor. It prints, for every compared
quantity, the largest difference, the tolerance and pass/fail, and writes into --out:
    parity.json   {"passed", "steps", "dtype", "device", "jax_rnn", "quantities": [{"name", "max_diff", "tolerance",
                  "passed", "first_failing_step", "checked_steps"}], "lr_reductions": {"torch", "jax"},
                  "first_failure": {"name", "step"} or null}
    parity.png    both loss curves, both gradient-norm curves, and their per-step relative differences
    torch/, jax/  each backend's records (steps.csv, epochs.csv, grad_flow.csv, config.json)
Exit status: 0 when every quantity is within tolerance, 1 when any is not, 2 on a usage or input error.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from lstm_core.cli import EXIT_INTERRUPTED, INPUT_ERRORS, build_parser, config_from_args
from lstm_core.config import ConfigError
from lstm_core.diagnosis import first_nonfinite
from lstm_core.loop import check_out_dir
from lstm_core.records import check_run_dir, write_json
from parity_tests import compare, engine

REPORT_FILE = "parity.json"
PLOT_FILE = "parity.png"


def plot(traces: dict[str, engine.Trace], diffs: dict[str, tuple], path: Path) -> None:
    """Loss and global gradient norm of both backends per step, and the relative differences (log scale)."""
    figure = Figure(figsize=(9, 9), layout="constrained")
    loss_axes, norm_axes, diff_axes = figure.subplots(3, 1, sharex=True)
    for name, style in (("torch", "-"), ("jax", "--")):
        steps = np.arange(1, traces[name].steps + 1)
        loss_axes.plot(steps, traces[name].stats["loss"], style, label=name)
        norm_axes.plot(steps, traces[name].stats["grad_norm"], style, label=name)
    loss_axes.set(ylabel="training loss", yscale="log", title="torch reference and JAX trainer, step by step")
    norm_axes.set(ylabel="‖grad‖ before clipping", yscale="log")
    for name in ("loss", "grads", "grad_norm", "params"):
        steps, values = diffs[name]
        diff_axes.plot(steps, np.maximum(values, 1e-18), label=name)  # exact agreement drawn at the floor
    diff_axes.set(xlabel="optimizer step", ylabel="relative difference", yscale="log")
    for axes in (loss_axes, norm_axes, diff_axes):
        axes.legend()
    figure.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(
        prog="lstm-parity",
        description="Train the torch reference and the JAX trainer from the same weights and compare every step.",
        unlisted=("--backend", "--doctor"),  # refused below: both backends run, and nothing is diagnosed
    )
    parser.set_defaults(out="runs/parity")
    args = parser.parse_args(argv)
    if args.backend:
        parser.error("lstm-parity trains both backends; drop --backend")
    if args.doctor:
        parser.error("lstm-parity compares the backends and does not diagnose; drop --doctor (lstm-train has it)")
    try:
        out = check_run_dir(args.out)
        config = config_from_args(args)
        if config.training.epochs == 0:
            raise ConfigError("lstm-parity compares training steps: --epochs must be >= 1")
        if config.model.dropout:
            raise ConfigError(
                "dropout masks come from each backend's own random numbers, so no step can match; use --dropout 0 "
                "(parity_tests/test_dropout.py checks dropout by its statistics)"
            )
        for name in engine.BACKENDS:  # each backend's records go to a run directory of its own
            check_out_dir(config, out / name, args.config)
        if config.training.device == "gpu":
            engine.pin_gpu_precision()
        # an earlier run's report is never left beside this run's records
        traces = engine.run(config, out_dir=out, earlier_files=(REPORT_FILE, PLOT_FILE), progress=not args.quiet)
    except INPUT_ERRORS as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: aborted by Ctrl-C; nothing was compared and no report was written (the records of "
            f"finished epochs, if any, are in {out / 'torch'} and {out / 'jax'})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    diffs = {}
    report = compare.compare(
        traces,
        config.training.dtype,
        config.training.device,
        on_diffs=lambda name, steps, values: diffs.__setitem__(name, (steps, values)),
        jax_rnn=config.training.rnn,
    )
    write_json(out / REPORT_FILE, report.to_json())
    plot(traces, diffs, out / PLOT_FILE)
    print(report.table())
    first_bad = {name: first_nonfinite(trace.stats["loss"]) for name, trace in traces.items()}
    diverged = {name: index + 1 for name, index in first_bad.items() if index is not None}  # 1-based steps
    if diverged:  # compared as they are: the same inf or NaN in both agrees (compare.relative)
        print("  the loss turned non-finite: " + ", ".join(f"{name} at step {step}" for name, step in diverged.items()))
    print(f"  report in {out / REPORT_FILE}, plot in {out / PLOT_FILE}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
