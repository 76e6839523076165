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
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lstm_core import convert
from lstm_core import data as datasets
from lstm_core import weights as weights_io
from lstm_core.config import Config
from lstm_core.convert import scaler_record
from lstm_core.records import RecordsWriter, RunDirError, start_run_dir


def backend_module(backend: str):
    return importlib.import_module(f"lstm_{backend}.train")


def test_metrics(prepared: datasets.Prepared, outputs: np.ndarray) -> dict[str, float]:
    """Accuracy for classification; RMSE and MAE in the data's original units for regression."""
    y = prepared.test.y
    if prepared.task == "classification":
        return {"test_accuracy": float(np.mean(np.argmax(outputs, axis=-1) == y))}
    errors = prepared.inverse_targets(outputs) - prepared.inverse_targets(y)  # (N, 1), original units
    return {"test_rmse": float(np.sqrt(np.mean(errors**2))), "test_mae": float(np.mean(np.abs(errors)))}


def prepare(config: Config) -> tuple[datasets.Prepared, dict[str, np.ndarray], dict[str, np.random.Generator]]:
    """The data, the starting weights (torch names) and the seeded generators of a run.

    The weights are drawn from the seed, or, with `training.init_from`, read from that run directory, whose
    fitted scaler then replaces the one fitted here (so the weights see inputs scaled as they were trained).
    """
    prepared = datasets.load(config)
    generators = datasets.seeded_generators(config.training.seed)
    m = config.model
    shapes = (prepared.input_size, m.hidden_size, m.num_layers, prepared.num_outputs)
    if not config.training.init_from:
        return prepared, weights_io.initial_weights(*shapes, generators["init"]), generators
    start = convert.load_run(config.training.init_from)
    weights_io.check_weights(start.weights, weights_io.parameter_shapes(*shapes), f"--init-from {start.source}")
    return convert.rescale(prepared, start.scaler), start.weights, generators


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
    Only the main thread can take signals; elsewhere Ctrl-C keeps its usual effect."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this epoch, with its weights and summary saved (Ctrl-C again aborts)", file=sys.stderr)

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train(config: Config, out_dir: str | Path, progress: bool = True) -> dict:
    """Train one run into `out_dir` and return its summary (also written to summary.json)."""
    started = time.perf_counter()
    if config.training.init_from and Path(config.training.init_from).resolve() == Path(out_dir).resolve():
        raise RunDirError(
            f"--out {str(out_dir)!r} is the --init-from run; this run would overwrite the records it starts "
            "from: pass another --out"
        )
    prepared, initial, generators = prepare(config)
    start_run_dir(out_dir)
    backend = backend_module(config.backend)
    trainer = backend.Trainer(config, prepared, initial)

    writer = RecordsWriter(out_dir, trainer.param_names)
    writer.write_json("config.json", config.to_dict())
    writer.write_json("data_stats.json", {"scaled": config.data.scale, "task": prepared.task, **prepared.raw_stats})
    writer.write_json("scaler.json", scaler_record(prepared))

    step = 1
    epoch = 0
    stopped_nonfinite = False
    train_loss = val_loss = math.nan
    epochs = tqdm(
        range(1, config.training.epochs + 1),
        desc=f"{config.backend} training",
        unit="epoch",
        disable=not progress,
        leave=False,
    )
    with StopRequest() as stop:
        for epoch in epochs:
            epoch_started = time.perf_counter()
            batches = datasets.epoch_batches(len(prepared.train), config.training.batch_size, generators["batches"])
            lr = trainer.lr
            stats, stopped_nonfinite = until_nonfinite(trainer.train_epoch(batches, step), step)
            val_loss, _ = trainer.evaluate(prepared.val)
            train_loss = float(np.mean(stats["loss"]))
            stopped_nonfinite = stopped_nonfinite or not math.isfinite(val_loss)
            if not stopped_nonfinite:
                trainer.end_epoch(val_loss)
            num_steps = len(stats["loss"])
            writer.write_steps(step_records(stats, step, epoch, trainer.param_names))
            writer.write_grad_flow(stats["grad_flow_steps"], stats["grad_flow"])
            writer.write_epoch(
                epoch=epoch,
                train_loss=train_loss,
                val_loss=val_loss,
                lr=lr,
                seconds=time.perf_counter() - epoch_started,
            )
            step += num_steps
            epochs.set_postfix(train_loss=f"{train_loss:.4g}", val_loss=f"{val_loss:.4g}", lr=f"{lr:.2g}")
            if stopped_nonfinite or stop.requested:
                break

        if epoch == 0:  # --epochs 0 with --init-from: evaluate the run's weights as they are
            val_loss, _ = trainer.evaluate(prepared.val)
        weights_io.save(trainer.weights(), Path(out_dir) / weights_io.WEIGHTS_FILE)  # the last finite ones
        test_loss, outputs = trainer.evaluate(prepared.test)
        summary = {
            "backend": config.backend,
            "versions": {"python": platform.python_version(), "numpy": np.__version__, **backend.versions()},
            "dtype": config.training.dtype,
            "devices": trainer.devices,
            "dataset": config.data.dataset,
            "task": prepared.task,
            "steps": step - 1,
            "epochs_run": epoch,
            "stopped_nonfinite": stopped_nonfinite,
            "stopped_at_step": step - 1 if stopped_nonfinite else None,
            "interrupted": stop.requested,
            "final_train_loss": train_loss,
            "final_val_loss": val_loss,
            "test_loss": test_loss,
            **test_metrics(prepared, outputs),
            "num_classes": prepared.num_outputs if prepared.task == "classification" else None,
            "compile_seconds": trainer.compile_seconds,
            "wall_seconds": time.perf_counter() - started,
        }
        writer.write_json("summary.json", summary)
        return summary
