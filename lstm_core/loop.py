"""The training loop both backends share: batch order, epochs, plateau steps, records, final evaluation.

A backend provides `<backend>.train.Trainer(config, data, weights)` with `param_names`, `compile_seconds`,
`devices` (what it runs on, as strings), `lr`, `train_epoch(batches, first_step)`, `evaluate(split)`,
`end_epoch(val_loss)` and `weights()` (and, for the parity suite, `step_details(batch, weights=None)`); it is
imported only when asked for, so this package never imports torch or jax itself.
"""

from __future__ import annotations

import importlib
import math
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lstm_core import convert, dtype_range, reductions
from lstm_core import data as datasets
from lstm_core import weights as weights_io
from lstm_core.config import Config, ConfigError
from lstm_core.convert import scaler_record
from lstm_core.machine import check_fits_memory
from lstm_core.records import SCALER_FILE, WEIGHTS_FILE, RecordsWriter, RunDirError, check_run_dir, clear_run_dir


def backend_module(backend: str):
    return importlib.import_module(f"lstm_{backend}.train")


def test_metrics(prepared: datasets.Prepared, outputs: np.ndarray) -> dict[str, float]:
    """Accuracy for classification; RMSE and MAE in the data's original units for regression, without overflow
    where the errors are finite (`reductions`)."""
    y = prepared.test.y
    if prepared.task == "classification":
        return {"test_accuracy": float(np.mean(np.argmax(outputs, axis=-1) == y))}
    with np.errstate(over="ignore"):  # an output beyond float64 in original units is an inf error, reported so
        errors = prepared.inverse_targets(outputs) - prepared.inverse_targets(y)  # (N, 1), original units
    return {"test_rmse": float(reductions.root_mean_square(errors)), "test_mae": float(reductions.mean(np.abs(errors)))}


def check_model_fits_memory(config: Config, shapes: tuple[int, int, int, int], window: int) -> None:
    """Refuse, before drawing them, a model and batch that this machine cannot hold: at least the float64 initial
    draw, then weights, gradients and Adam's two moments in the training dtype, and per step and layer the
    gates, h and c (6H values a row) that the backward pass keeps."""
    parameters = sum(math.prod(shape) for shape in weights_io.parameter_shapes(*shapes).values())
    _, hidden, layers, _ = shapes
    itemsize = 4 if config.training.dtype == "float32" else 8
    activations = config.training.batch_size * window * layers * 6 * hidden
    check_fits_memory(
        parameters * (8 + 4 * itemsize) + activations * itemsize,
        f"a model of {parameters:,} parameters (--hidden-size {hidden}, --num-layers {layers}) trained on "
        f"batches of {config.training.batch_size} x {window} steps",
        "reduce --hidden-size, --num-layers, --batch-size or --window",
        ConfigError,
    )


def prepare(config: Config) -> tuple[datasets.Prepared, dict[str, np.ndarray], dict[str, np.random.Generator]]:
    """The data, the starting weights (torch names) and the seeded generators of a run.

    The weights are drawn from the seed, or, with `training.init_from`, read from that run directory, whose
    fitted scaler then replaces the one fitted here (so the weights see inputs scaled as they were trained).
    """
    prepared = datasets.load(config)
    if config.training.epochs:  # refused here, before a run clears its --out, not when the first batch is drawn
        datasets.check_batch_size(len(prepared.train), config.training.batch_size)
    generators = datasets.seeded_generators(config.training.seed)
    m = config.model
    shapes = (prepared.input_size, m.hidden_size, m.num_layers, prepared.num_outputs)
    check_model_fits_memory(config, shapes, prepared.window)
    if not config.training.init_from:
        return prepared, weights_io.initial_weights(*shapes, generators["init"]), generators
    start = convert.load_run(config.training.init_from)
    check_same_model(start.architecture, shapes, start.source)
    check_same_scaling(start.scaler["features"] is not None, config.data.scale, start.source)
    # in the model's order, not the file's (safetensors sorts names): it orders steps.csv and the trainers' tensors
    weights = {name: start.weights[name] for name in weights_io.parameter_shapes(*shapes)}
    dtype_range.check_fits_dtype(
        weights.items(),
        config.training.dtype,
        f"the weights in --init-from {str(start.source)!r}",
        weights_io.WeightsError,
        "pass --dtype float64, or start from another run",
    )
    prepared = convert.rescale(prepared, start.scaler)
    stretched = "the --init-from run's scaler.json stretches them so: start from a run trained on these data"
    datasets.check_fits_dtype(prepared, config.training.dtype, stretched)
    return prepared, weights, generators


def check_same_model(run: tuple[int, int, int, int], this: tuple[int, int, int, int], source: Path) -> None:
    """WeightsError unless the --init-from run's model, (input_size, hidden_size, num_layers, num_outputs) as
    its weights have it, is this run's: the message names both and the flags or data that make them equal."""
    if run == this:
        return
    (run_inputs, run_hidden, run_layers, run_outputs), (inputs, hidden, layers, outputs) = run, this

    def describe(inputs, hidden, layers, outputs) -> str:
        return f"{inputs} input(s), hidden size {hidden}, {layers} layer(s), {outputs} output(s)"

    flags = [
        f"{flag} {run_value}"
        for flag, run_value, value in (("--hidden-size", run_hidden, hidden), ("--num-layers", run_layers, layers))
        if run_value != value
    ]
    fixes = [f"pass {' '.join(flags)}"] if flags else []
    if (run_inputs, run_outputs) != (inputs, outputs):  # set by the data, not by a flag of their own
        fixes.append("use the dataset and --features the run was trained on")
    raise weights_io.WeightsError(
        f"--init-from {str(source)!r} holds a model of {describe(*run)}; this run's has {describe(*this)}: "
        f"{'; '.join(fixes)}"
    )


def check_same_scaling(run_scaled: bool, scale: bool, source: Path) -> None:
    """WeightsError unless this run scales its data (`data.scale`) as the --init-from run did: the run's scaler
    replaces the one fitted here (`convert.rescale`), so --no-scale against a scaled run would be ignored, and the
    records would call the data unscaled; scaling against an unscaled run would be ignored the same way."""
    if run_scaled and not scale:
        raise weights_io.WeightsError(
            f"--no-scale, but --init-from {str(source)!r} was trained on scaled data, which its weights take: drop "
            "--no-scale (that run's scaler is applied)"
        )
    if scale and not run_scaled:
        raise weights_io.WeightsError(
            f"--init-from {str(source)!r} was trained on unscaled data (--no-scale), which its weights take: pass "
            "--no-scale too"
        )


def until_nonfinite(stats: dict, first_step: int) -> tuple[dict, bool]:
    """The epoch's statistics up to and including the first step whose loss or gradient norm is non-finite
    (the trainers apply no update from there on), and whether there was one."""
    finite = np.isfinite(stats["loss"]) & np.isfinite(stats["grad_norm"])
    if finite.all():
        return stats, False
    last = int(np.argmin(finite)) + 1
    kept = {name: value[:last] for name, value in stats.items() if name not in ("grad_flow", "grad_flow_steps")}
    probed = stats["grad_flow_steps"] < first_step + last
    kept.update(grad_flow=stats["grad_flow"][probed], grad_flow_steps=stats["grad_flow_steps"][probed])
    return kept, True


def step_records(stats: dict, first_step: int, epoch: int, param_names) -> dict[str, np.ndarray]:
    """A trainer's per-step statistics as the columns of steps.csv (see `lstm_core.records`)."""
    num_steps = len(stats["loss"])
    steps = {"step": np.arange(first_step, first_step + num_steps), "epoch": np.full(num_steps, epoch), **stats}
    steps.update({f"grad_norm:{name}": stats["grad_norms"][:, i] for i, name in enumerate(param_names)})
    return steps


class StopRequest:
    """Ctrl-C (SIGINT) while training asks the loop to stop after the current epoch, so that the run ends as
    a shorter run would: records, weights and summary of the same state. A second Ctrl-C aborts at once.
    Only the main thread can take signals; elsewhere, and with `install` False (a caller that discards a
    shortened run), Ctrl-C keeps its usual effect: KeyboardInterrupt at once."""

    def __init__(self, install: bool = True):
        self.requested = False
        self._install = install
        self._installed = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nCtrl-C: the run ends after this epoch, its weights and summary saved (again: abort)", file=sys.stderr)

    def __enter__(self) -> StopRequest:
        if self._install and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._installed = True
        return self

    def __exit__(self, *exc) -> None:
        if self._installed:  # None: the handler was set outside Python; the default is the nearest we can restore
            signal.signal(signal.SIGINT, signal.SIG_DFL if self._previous is None else self._previous)


@dataclass
class EpochsRun:
    """Where the epochs of a run ended: the last epoch and the next step, the last losses, and why it stopped."""

    epoch: int = 0
    next_step: int = 1
    train_loss: float = math.nan
    val_loss: float = math.nan
    stopped_nonfinite: bool = False
    interrupted: bool = False


def run_epochs(config: Config, prepared, generators, trainer, writer: RecordsWriter, stop, progress: bool) -> EpochsRun:
    """Train epoch by epoch, each recorded as it ends, until the last epoch, a non-finite loss or a Ctrl-C."""
    run = EpochsRun()
    epochs = tqdm(
        range(1, config.training.epochs + 1),
        desc=f"{config.backend} training",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    for epoch in epochs:
        run.epoch, epoch_started = epoch, time.perf_counter()
        batches = datasets.epoch_batches(len(prepared.train), config.training.batch_size, generators["batches"])
        lr = trainer.lr
        stats, run.stopped_nonfinite = until_nonfinite(trainer.train_epoch(batches, run.next_step), run.next_step)
        run.val_loss, _ = trainer.evaluate(prepared.val)
        run.train_loss = float(reductions.mean(stats["loss"]))
        run.stopped_nonfinite = run.stopped_nonfinite or not math.isfinite(run.val_loss)
        if not run.stopped_nonfinite:
            trainer.end_epoch(run.val_loss)
        writer.write_steps(step_records(stats, run.next_step, run.epoch, trainer.param_names))
        writer.write_grad_flow(stats["grad_flow_steps"], stats["grad_flow"])
        seconds = time.perf_counter() - epoch_started
        writer.write_epoch(epoch=run.epoch, train_loss=run.train_loss, val_loss=run.val_loss, lr=lr, seconds=seconds)
        run.next_step += len(stats["loss"])
        epochs.set_postfix(train_loss=f"{run.train_loss:.4g}", val_loss=f"{run.val_loss:.4g}", lr=f"{lr:.2g}")
        if run.stopped_nonfinite:
            break
        if stop.requested and run.epoch < config.training.epochs:
            run.interrupted = True
            break
    if run.epoch == 0:  # --epochs 0 with --init-from: evaluate the run's weights as they are
        run.val_loss, _ = trainer.evaluate(prepared.val)
    return run


def check_out_dir(config: Config, out_dir: str | Path, config_file: str | None = None) -> Path:
    """`out_dir`, created if missing, once `records.check_run_dir` finds that it can hold the run's records without
    replacing one of the run's inputs: the --config file, the --csv, or the --init-from run's records."""
    if config.training.init_from and Path(config.training.init_from).resolve() == Path(out_dir).resolve():
        raise RunDirError(
            f"--out {str(out_dir)!r} is the --init-from run; this run would overwrite the records it starts "
            "from: pass another --out"
        )
    return check_run_dir(out_dir, {"--config": config_file, "--csv": config.data.csv})


def train(
    config: Config,
    out_dir: str | Path,
    progress: bool = True,
    config_file: str | None = None,
    finish_epoch_on_ctrl_c: bool = True,
) -> dict:
    """Train one run into `out_dir` and return its summary (also written to summary.json). A Ctrl-C ends the run
    after its epoch (`StopRequest`), or, with `finish_epoch_on_ctrl_c` False, raises KeyboardInterrupt at once.

    Every refusal comes before an earlier run's files in `out_dir` are removed (among them: a --csv or the
    `config_file` it was loaded from that the run would replace), and a Ctrl-C after the epochs (while the
    weights and summary are written) is taken as one during the last epoch: the run completes."""
    started = time.perf_counter()
    out = check_out_dir(config, out_dir, config_file)
    prepared, initial, generators = prepare(config)
    backend = backend_module(config.backend)
    trainer = backend.Trainer(config, prepared, initial)
    clear_run_dir(out)

    writer = RecordsWriter(out, trainer.param_names)
    writer.write_json("config.json", config.to_dict())
    writer.write_json("data_stats.json", {"scaled": config.data.scale, "task": prepared.task, **prepared.raw_stats})
    writer.write_json(SCALER_FILE, scaler_record(prepared))
    with StopRequest(install=finish_epoch_on_ctrl_c) as stop:
        run = run_epochs(config, prepared, generators, trainer, writer, stop, progress)
        weights_io.save(trainer.weights(), out / WEIGHTS_FILE)  # the last finite ones
        test_loss, outputs = trainer.evaluate(prepared.test)
        summary = {
            "backend": config.backend,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, **backend.versions()},
            "dtype": config.training.dtype,
            "devices": trainer.devices,
            "dataset": config.data.dataset,
            "task": prepared.task,
            "steps": run.next_step - 1,
            "epochs_run": run.epoch,
            "stopped_nonfinite": run.stopped_nonfinite,
            "stopped_at_step": run.next_step - 1 if run.stopped_nonfinite else None,
            "interrupted": run.interrupted,
            "final_train_loss": run.train_loss,
            "final_val_loss": run.val_loss,
            "test_loss": test_loss,
            **test_metrics(prepared, outputs),
            "num_classes": prepared.num_outputs if prepared.task == "classification" else None,
            "compile_seconds": trainer.compile_seconds,
            "wall_seconds": time.perf_counter() - started,
        }
        writer.write_json("summary.json", summary)
    return summary
