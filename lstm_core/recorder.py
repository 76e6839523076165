"""The backend-neutral half of the plain-loop recorders (`lstm_torch.recorder`, `lstm_jax.recorder`).

A user's own PyTorch or optax loop hands its backend's `Recorder` each step's loss and gradients. The backend
half computes per-tensor gradient norms on the device and says how to fetch a list of its arrays; this half
does everything else: it buffers the step values and fetches them once per epoch (no host sync per step),
numbers the steps, derives the global norm and the clip factor, and writes steps.csv, epochs.csv,
grad_flow.csv, config.json, data_stats.json and summary.json through `lstm_core.records.RecordsWriter`, so
`lstm-doctor` reads a plain loop's run directory exactly as it reads one that `lstm-train` wrote.

config.json holds only the settings the doctor uses (lr, hidden size, layers, clipping, weight decay,
scaling) and the inputs' window, in lstm-train's sections; the doctor's remedies name lstm-train flags, which
map one to one onto those settings of a plain loop. (The doctor takes the sequence length from grad_flow.csv's
columns, which hold it wherever a rule needs it.)

Each step's values are checked when the step is recorded (their shapes are known on the host without a
transfer), so a wrong one is refused at that line of the loop, not at the end of the epoch it would spoil.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lstm_core import reductions
from lstm_core.config import TORCH_CLIP_EPS
from lstm_core.data import column_stats
from lstm_core.records import RecordsWriter

TASKS = ("regression", "classification")


def clip_factors(grad_norm: np.ndarray, max_norm: float | None) -> np.ndarray:
    """The factor global-norm clipping at `max_norm` multiplies each step's gradient by (1 without clipping)."""
    if max_norm is None:
        return np.ones_like(grad_norm)
    with np.errstate(invalid="ignore"):  # a nan norm gives a nan factor, as it does in torch
        return np.minimum(1.0, max_norm / (grad_norm + TORCH_CLIP_EPS))


def data_stats(inputs, targets, *, scaled: bool, task: str) -> dict[str, Any]:
    """data_stats.json for a plain loop: inputs (N, T, F) or (N, F); regression targets (N,) or (N, O).

    `scaled`: whether the loop standardises these arrays before the model sees them. False (the recorders'
    default) says the model is fed them as given: the doctor then takes the targets' variance as the
    trivial baseline and judges the arrays' scale. Their statistics cannot tell: standardised arrays given
    as they are fed are `scaled=False` too (their variance is the baseline 1.0 that True would claim).
    """
    stats: dict[str, Any] = {"scaled": bool(scaled), "task": task}
    if inputs is not None:
        stats["inputs"] = column_stats(inputs)
    stats["targets"] = column_stats(targets) if targets is not None and task == "regression" else None
    return stats


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_count(value, least: int) -> bool:
    """Whether `value` is an integral number (Python's or numpy's int, not a bool) of at least `least`."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= least


def _shape(value) -> tuple[int, ...]:
    """The shape of a number, numpy array or backend tensor, read on the host (no device transfer)."""
    return tuple(int(n) for n in np.shape(value))


class RunRecorder:
    """Buffers a plain loop's steps and writes lstm-train's records; a backend's `Recorder` builds on it.

    `fetch(list of backend arrays, all of one shape) -> numpy array (len, ...)` is the backend's single
    transfer per epoch. `param_names` name the gradient tensors, in the order of the norms handed to
    `_add_step`. `scaled`: see `data_stats` (default False: `inputs` and `targets` are what the model sees).
    """

    def __init__(
        self,
        out_dir: str | Path,
        param_names: Sequence[str],
        fetch: Callable[[list], np.ndarray],
        *,
        backend: str,
        lr: float,
        hidden_size: int,
        num_layers: int = 1,
        max_norm: float | None = None,
        weight_decay: float = 0.0,
        task: str = "regression",
        num_classes: int | None = None,
        inputs=None,
        targets=None,
        scaled: bool = False,
    ):
        _check(task in TASKS, f"task must be 'regression' or 'classification', got {task!r}")
        _check(
            task == "regression" or _is_count(num_classes, 2),
            f"a classification run needs num_classes >= 2 (the doctor's baseline is ln(num_classes)), "
            f"got {num_classes!r}",
        )
        _check(
            not callable(lr),
            "lr must be the initial learning rate, a number; with a schedule pass schedule(0) here and each "
            "step's value to step(..., lr=)",
        )
        _check(math.isfinite(lr) and lr > 0, f"lr must be a positive number, got {lr!r}")
        _check(_is_count(hidden_size, 1), f"hidden_size must be a positive int, got {hidden_size!r}")
        _check(_is_count(num_layers, 1), f"num_layers must be a positive int, got {num_layers!r}")
        _check(
            max_norm is None or (math.isfinite(max_norm) and max_norm > 0),
            f"max_norm must be > 0, or None when the loop does not clip, got {max_norm!r}",
        )
        self.param_names = tuple(param_names)
        self.writer = RecordsWriter(out_dir, self.param_names)
        self.max_norm = max_norm
        self.lr = float(lr)
        self.backend = backend
        self.task = task
        self.num_classes = int(num_classes) if task == "classification" else None
        self.num_layers = int(num_layers)
        self._fetch = fetch
        self._losses: list = []
        self._norms: list = []
        self._lrs: list = []
        self._flow: list = []
        self._flow_steps: list[int] = []
        self.grad_flow_shape: tuple[int, ...] | None = None  # (L, T), fixed by the first probed step
        self.grad_flow_first_step = 0
        self.next_step = 1
        self.epoch = 0
        self.train_loss = self.val_loss = math.nan
        self._epoch_started = time.perf_counter()
        window = np.shape(inputs)[1] if inputs is not None and np.ndim(inputs) == 3 else None
        self.writer.write_json(
            "config.json",
            {
                "backend": backend,
                "model": {"hidden_size": int(hidden_size), "num_layers": self.num_layers},
                "optimizer": {"lr": self.lr, "weight_decay": float(weight_decay)},
                "clipping": {"enabled": max_norm is not None, "max_norm": max_norm if max_norm is not None else 0.0},
                "data": {"window": window, "scale": bool(scaled)},
            },
        )
        self.writer.write_json("data_stats.json", data_stats(inputs, targets, scaled=scaled, task=task))

    def _add_step(self, loss, grad_norms, lr=None, hidden_grad_norms=None) -> None:
        """Buffer one step: loss (scalar), grad_norms (P,) per tensor before clipping, lr (None: the initial
        lr), hidden_grad_norms (L, T) ‖dL/dh_t‖ if the loop measured it at this step. Backend arrays stay on
        their device until the epoch ends; a value of the wrong shape is refused before anything is kept."""
        step = self.next_step + len(self._losses)
        _check(_shape(loss) == (), f"loss must be a scalar (the batch mean: take .mean()), got shape {_shape(loss)}")
        _check(
            _shape(grad_norms) == (len(self.param_names),),
            "the gradients need one norm per parameter tensor the Recorder was built with: "
            f"({len(self.param_names)},), got {_shape(grad_norms)}",
        )
        _check(
            lr is None or _shape(lr) == (), f"lr must be this step's learning rate, a number, got shape {_shape(lr)}"
        )
        if hidden_grad_norms is not None:
            self._check_grad_flow_shape(_shape(hidden_grad_norms), step)
        self._losses.append(loss)
        self._norms.append(grad_norms)
        self._lrs.append(self.lr if lr is None else lr)
        if hidden_grad_norms is not None:
            self._flow.append(hidden_grad_norms)
            self._flow_steps.append(step)

    def _check_grad_flow_shape(self, shape: tuple[int, ...], step: int) -> None:
        """hidden_grad_norms must be (num_layers, T); the first step that passes it fixes T for the run."""
        if self.grad_flow_shape is None and len(shape) == 2 and shape[0] == self.num_layers and shape[1] > 0:
            self.grad_flow_shape, self.grad_flow_first_step = shape, step
        if shape == self.grad_flow_shape:
            return
        if self.grad_flow_shape is None:
            expected = f"({self.num_layers}, T)"
        else:
            expected = f"{self.grad_flow_shape} as at step {self.grad_flow_first_step}"
        message = f"hidden_grad_norms must be (num_layers, T) = {expected}, got {shape}"
        if len(shape) == 2 and shape[0] != self.num_layers:
            message += (
                f" (num_layers is {self.num_layers}: pass num_layers={shape[0]} to the Recorder if the model has "
                f"{shape[0]} layers)"
            )
        raise ValueError(message)

    def end_epoch(self, val_loss: float) -> dict[str, float]:
        """Write the epoch's steps (one fetch) and its row; returns the epoch's mean train loss and val loss."""
        _check(bool(self._losses), "end_epoch() before any step(): record at least one step per epoch")
        self.epoch += 1
        losses = np.asarray(self._fetch(self._losses), dtype=np.float64)  # (S,)
        tensor_norms = np.asarray(self._fetch(self._norms), dtype=np.float64)  # (S, P)
        lrs = np.asarray(self._fetch(self._lrs), dtype=np.float64)  # (S,)
        # the global L2 norm, as clip_grad_norm_ takes it, but without overflow: where torch's (and optax's) float64
        # sum of squares passes 1.8e308 they clip by 0; the factor recorded is the vanishing one the norm gives
        grad_norm = reductions.l2_norms(tensor_norms)
        steps = np.arange(self.next_step, self.next_step + len(losses))
        columns = {
            "step": steps,
            "epoch": np.full(len(losses), self.epoch),
            "loss": losses,
            "grad_norm": grad_norm,
            "clip_factor": clip_factors(grad_norm, self.max_norm),
            "lr": lrs,
            **{f"grad_norm:{name}": tensor_norms[:, i] for i, name in enumerate(self.param_names)},
        }
        self.writer.write_steps(columns)
        if self._flow:
            self.writer.write_grad_flow(np.asarray(self._flow_steps), self._fetch(self._flow))  # (S', L, T)
        self.train_loss, self.val_loss = float(reductions.mean(losses)), float(val_loss)
        now = time.perf_counter()
        self.writer.write_epoch(
            epoch=self.epoch,
            train_loss=self.train_loss,
            val_loss=self.val_loss,
            lr=float(lrs[0]),
            seconds=now - self._epoch_started,
        )
        self._epoch_started = now
        self.next_step += len(losses)
        self._losses, self._norms, self._lrs, self._flow, self._flow_steps = [], [], [], [], []
        return {"train_loss": self.train_loss, "val_loss": self.val_loss}

    @property
    def stopped_nonfinite(self) -> bool:
        """Whether the last recorded epoch's train or val loss is non-finite (no epoch recorded: False)."""
        return self.epoch > 0 and not (math.isfinite(self.train_loss) and math.isfinite(self.val_loss))

    def close(self) -> dict[str, Any]:
        """Write summary.json (steps still buffered are dropped: call end_epoch first) and return it."""
        summary = {
            "backend": self.backend,
            "recorder": f"lstm_{self.backend}.recorder",
            "task": self.task,
            "num_classes": self.num_classes,
            "steps": self.next_step - 1,
            "epochs_run": self.epoch,
            "stopped_nonfinite": self.stopped_nonfinite,
            "final_train_loss": self.train_loss,
            "final_val_loss": self.val_loss,
        }
        self.writer.write_json("summary.json", summary)
        return summary
