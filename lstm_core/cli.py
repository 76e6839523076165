"""`lstm-train`: one command line for both backends.

Precedence: defaults < `--config FILE` < flags. Usage and input errors exit with status 2 and one line on
stderr (no traceback); a run stopped by a non-finite loss exits 1, one stopped by Ctrl-C 130.
"""

from __future__ import annotations

import argparse
import sys

from lstm_core import config as config_io
from lstm_core.data import DataError
from lstm_core.records import RunDirError
from lstm_core.weights import WeightsError

INPUT_ERRORS = (config_io.ConfigError, DataError, WeightsError, RunDirError)
EXIT_INTERRUPTED = 130  # the shell's code for a process stopped by SIGINT

# (flag, section, field, type, help). Flag names follow torch's names where torch has one.
FLAGS = [
    ("--dataset", "data", "dataset", str, "sine, adding, digits or csv"),
    ("--csv", "data", "csv", str, "CSV file for --dataset csv (header row, numeric columns)"),
    (
        "--features",
        "data",
        "features",
        str,
        "comma-separated feature columns of the CSV (default: the target)",
    ),
    ("--target", "data", "target", str, "target column of the CSV"),
    (
        "--window",
        "data",
        "window",
        int,
        "sequence length: the forecasting window, or T of the adding problem",
    ),
    ("--horizon", "data", "horizon", int, "forecast this many steps after the window's last step"),
    ("--num-samples", "data", "num_samples", int, "sine: series length; adding: number of sequences"),
    ("--noise", "data", "noise", float, "sine: standard deviation of the added noise"),
    ("--splits", "data", "splits", str, "train,val,test fractions, e.g. 0.7,0.15,0.15"),
    ("--hidden-size", "model", "hidden_size", int, "LSTM hidden size H"),
    ("--num-layers", "model", "num_layers", int, "stacked LSTM layers"),
    ("--dropout", "model", "dropout", float, "dropout between LSTM layers (needs --num-layers >= 2)"),
    ("--head", "model", "head", str, "auto (from the dataset), or the dataset's own task to assert it"),
    ("--lr", "optimizer", "lr", float, "Adam learning rate"),
    ("--betas", "optimizer", "betas", str, "Adam betas, e.g. 0.9,0.999"),
    ("--eps", "optimizer", "eps", float, "Adam eps"),
    ("--weight-decay", "optimizer", "weight_decay", float, "torch Adam's coupled L2 weight decay"),
    (
        "--clip-style",
        "clipping",
        "style",
        str,
        "torch (clip_grad_norm_) or optax (JAX backend only)",
    ),
    ("--plateau-factor", "plateau", "factor", float, "ReduceLROnPlateau factor"),
    ("--plateau-patience", "plateau", "patience", int, "ReduceLROnPlateau patience (epochs)"),
    ("--plateau-threshold", "plateau", "threshold", float, "ReduceLROnPlateau threshold (> 0)"),
    ("--plateau-threshold-mode", "plateau", "threshold_mode", str, "rel or abs"),
    ("--plateau-cooldown", "plateau", "cooldown", int, "ReduceLROnPlateau cooldown (epochs)"),
    ("--min-lr", "plateau", "min_lr", float, "ReduceLROnPlateau min_lr"),
    ("--batch-size", "training", "batch_size", int, "minibatch size (the last partial batch is dropped)"),
    ("--epochs", "training", "epochs", int, "training epochs"),
    ("--seed", "training", "seed", int, "seed of data, initial weights, batch order and dropout"),
    ("--dtype", "training", "dtype", str, "float32 or float64"),
    ("--grad-flow-every", "training", "grad_flow_every", int, "record ‖dL/dh_t‖ every N steps (0: never)"),
    ("--unroll", "training", "unroll", int, "lax.scan unroll of the JAX recurrence"),
    ("--backward", "training", "backward", str, "JAX backward pass of the recurrence: custom or autodiff"),
    ("--device", "training", "device", str, "cpu or gpu (the first CUDA GPU)"),
    ("--rnn", "training", "rnn", str, "JAX recurrence: scan (lax.scan) or cudnn (NVIDIA cuDNN; GPU, float32)"),
    (
        "--shards",
        "training",
        "shards",
        int,
        "JAX: split each batch over this many devices, one per CPU core (0: auto, where the step's work pays for it)",
    ),
    (
        "--init-from",
        "training",
        "init_from",
        str,
        "run directory (either backend's) whose weights and fitted scaler this run starts from; "
        "with --epochs 0 it only evaluates them",
    ),
]
CHOICES = {
    "--dataset": config_io.DATASETS,
    "--head": ("auto", "regression", "classification"),
    "--clip-style": ("torch", "optax"),
    "--plateau-threshold-mode": ("rel", "abs"),
    "--dtype": ("float32", "float64"),
    "--backward": ("custom", "autodiff"),
    "--device": ("cpu", "gpu"),
    "--rnn": ("scan", "cudnn"),
}


def _default_note(defaults: config_io.Config, section: str, field: str) -> str:
    """' (default: X)', X the field's value in `defaults`, or '' where it has none (--csv, --features)."""
    value = getattr(getattr(defaults, section), field)
    if value is None or value == ():
        return ""
    shown = ",".join(map(str, value)) if isinstance(value, tuple) else value  # as the flag takes it: 0.9,0.999
    return f" (default: {shown})"


def build_parser(
    prog: str = "lstm-train", description: str | None = None, unlisted: tuple[str, ...] = ()
) -> argparse.ArgumentParser:
    """lstm-train's parser; `unlisted` flags are parsed (for the caller to refuse with its own message) but kept
    out of the help."""
    # Every flag's argparse default is None, so that only the flags given override a --config file; the help
    # states the config's defaults instead, which are what a run without the flag takes.

    def listed(flag: str, text: str) -> str:
        return argparse.SUPPRESS if flag in unlisted else text

    defaults = config_io.Config()

    parser = argparse.ArgumentParser(
        prog=prog,
        description=description or "Train an LSTM with the PyTorch reference or the JAX/Flax trainer.",
        argument_default=None,
    )
    parser.add_argument(
        "--backend",
        choices=config_io.BACKENDS,
        help=listed("--backend", f"which trainer runs: jax or the torch reference (default: {defaults.backend})"),
    )
    parser.add_argument("--config", help="TOML/YAML/JSON config file; flags override it")
    parser.add_argument(
        "--out", default="runs/latest", help="run directory for records and weights (default: %(default)s)"
    )
    for flag, section, field, kind, text in FLAGS:
        parser.add_argument(
            flag, type=kind, choices=CHOICES.get(flag), help=text + _default_note(defaults, section, field)
        )
    parser.add_argument(
        "--clip-norm",
        type=float,
        help="clip_grad_norm_ max norm; 0 turns clipping off" + _default_note(defaults, "clipping", "max_norm"),
    )
    parser.add_argument("--no-plateau", action="store_true", help="keep the learning rate fixed")
    parser.add_argument("--no-scale", action="store_true", help="train on raw data (no StandardScaler)")
    parser.add_argument(
        "--remat",
        action="store_true",
        help="JAX: recompute the recurrence in the backward pass (less memory, more time)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--doctor",
        action="store_true",
        help=listed("--doctor", "diagnose the run at the end (as lstm-doctor); exit 3 when a cause is found"),
    )
    return parser


def config_from_args(args: argparse.Namespace) -> config_io.Config:
    """Defaults, then --config, then every flag that was given."""
    if args.config is not None and not args.config.strip():  # `--config "$CFG"`, unset: it trained the defaults
        raise config_io.ConfigError(
            f"--config is empty ({args.config!r}); pass a .toml/.yaml/.json file, or leave it out"
        )
    base = config_io.load_file(args.config) if args.config else config_io.Config()
    overrides: dict[str, dict] = {}
    for flag, section, field, _, _ in FLAGS:
        value = getattr(args, flag[2:].replace("-", "_"))
        if value is not None:
            overrides.setdefault(section, {})[field] = value
    if args.clip_norm is not None:
        overrides.setdefault("clipping", {}).update(enabled=args.clip_norm != 0, max_norm=args.clip_norm or 1.0)
    if args.no_plateau:
        overrides.setdefault("plateau", {})["enabled"] = False
    if args.no_scale:
        overrides.setdefault("data", {})["scale"] = False
    if args.remat:
        overrides.setdefault("training", {})["remat"] = True
    if args.backend:
        overrides["backend"] = args.backend
    return config_io.from_dict(overrides, base)


def format_summary(summary: dict) -> str:
    lines = [
        f"{summary['backend']} · {summary['dataset']} · {summary['dtype']} · {summary['steps']} steps, "
        f"{summary['epochs_run']} epochs in {summary['wall_seconds']:.1f} s "
        f"(compile {summary['compile_seconds']:.1f} s)",
        f"  loss  train {summary['final_train_loss']:.5g}  val {summary['final_val_loss']:.5g}  "
        f"test {summary['test_loss']:.5g}",
    ]
    if "test_accuracy" in summary:
        lines.append(f"  test accuracy {summary['test_accuracy']:.2%}")
    else:
        lines.append(f"  test RMSE {summary['test_rmse']:.5g}  MAE {summary['test_mae']:.5g} (original units)")
    if summary["stopped_nonfinite"]:
        lines.append("  stopped: the loss became non-finite; the last finite weights were kept")
    elif summary["interrupted"]:
        lines.append(f"  interrupted (Ctrl-C) after epoch {summary['epochs_run']}; its weights were kept")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        if args.doctor and config.training.epochs == 0:
            raise config_io.ConfigError(
                "--doctor diagnoses training, and --epochs 0 trains nothing; drop --doctor "
                "(lstm-doctor RUN_DIR diagnoses the --init-from run)"
            )
        from lstm_core.loop import train

        summary = train(config, args.out, progress=not args.quiet, config_file=args.config)
    except INPUT_ERRORS as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    except MemoryError as error:  # numpy's, at once, for sizes no machine holds (e.g. --hidden-size 100000)
        print(
            f"{parser.prog}: error: out of memory ({error}); reduce --hidden-size, --num-layers or --batch-size, "
            "or the data (--num-samples, --window)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: aborted by Ctrl-C; no weights or summary were saved (the records of finished epochs, "
            f"if any, are in {args.out})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    print(format_summary(summary))
    print(f"  records in {args.out}")
    if args.doctor or summary["stopped_nonfinite"]:  # a run that blew up always gets the diagnosis
        from lstm_core import doctor

        text, code = doctor.report(args.out)
        print(text)
        if args.doctor and code != doctor.EXIT_HEALTHY:
            return code
    if summary["stopped_nonfinite"]:
        return 1
    return EXIT_INTERRUPTED if summary["interrupted"] else 0


if __name__ == "__main__":
    sys.exit(main())
