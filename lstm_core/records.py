"""One records writer for both backends: the trainers hand it numbers, it owns every file format.

Files in the run directory:
    steps.csv      step, epoch, loss, grad_norm (global, before clipping), clip_factor, lr,
                   grad_norm:<param> (per tensor, before clipping)          one row per optimizer step
    epochs.csv     epoch, train_loss, val_loss, lr, seconds                  one row per epoch
    grad_flow.csv  step, layer, t0 ... t{T-1}: ‖dL/dh_t‖ over batch and hidden, every N steps
    data_stats.json, config.json, summary.json, scaler.json, weights.safetensors
Rows are appended and flushed every epoch, so an interrupted run keeps what it wrote.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

STEP_FIELDS = ("step", "epoch", "loss", "grad_norm", "clip_factor", "lr")
EPOCH_FIELDS = ("epoch", "train_loss", "val_loss", "lr", "seconds")
WEIGHTS_FILE = "weights.safetensors"
SCALER_FILE = "scaler.json"
RUN_FILES = (
    "steps.csv",
    "epochs.csv",
    "grad_flow.csv",
    "data_stats.json",
    "config.json",
    "summary.json",
    SCALER_FILE,
    WEIGHTS_FILE,
)


class RunDirError(ValueError):
    """The run directory cannot hold a run's records; the message says why and what to pass instead."""


def make_dir(path: str | Path, flag: str, role: str = "a directory", writes: Sequence[str] = ()) -> Path:
    """`path`, created with its parents if missing; RunDirError naming `flag` and why it cannot be `role`: empty
    (Path("") is ".", and writing into the current directory is not what it asked for), not a directory, not
    writable, or holding a directory where one of the files it `writes` goes (found before the work, not at its
    end)."""
    if not str(path).strip():
        raise RunDirError(f"{flag} is empty; pass a directory")
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        if path.is_symlink() and not path.exists():  # mkdir's own reason for a broken link is "File exists"
            reason = f"it is a link to {os.readlink(path)!r}, which leads nowhere"
        elif path.exists() and not path.is_dir():
            reason = "it is a file"
        else:
            reason = error.strerror
        raise RunDirError(f"cannot use {flag} {str(path)!r} as {role}: {reason}; pass a directory") from None
    for name in writes:
        if (path / name).is_dir():
            raise RunDirError(
                f"{str(path / name)!r} is a directory, where the run writes its {name}; pass another {flag}"
            )
    if not os.access(path, os.W_OK):
        raise RunDirError(f"cannot write in {flag} {str(path)!r}: permission denied; pass a writable directory")
    return path


def check_run_dir(out_dir: str | Path, inputs: Mapping[str, str | None] | None = None) -> Path:
    """`out_dir`, created if missing; RunDirError, before any training, when it cannot hold a run's files or when
    one of `inputs` (flag -> the file it names, e.g. {"--csv": "prices.csv"}) is a file the run would replace."""
    if not str(out_dir).strip():
        raise RunDirError("--out is empty; pass the directory the run's records go to, e.g. --out runs/mine")
    path = make_dir(out_dir, "--out", "the run directory", RUN_FILES)
    replaced = {path.resolve() / name: name for name in RUN_FILES}  # a link there is removed, not its target
    for flag, given in (inputs or {}).items():
        if given and Path(given).resolve() in replaced:
            raise RunDirError(
                f"{flag} {given!r} is the {replaced[Path(given).resolve()]} that this run writes in --out "
                f"{str(path)!r}, which would replace it; pass another --out, or move the file out of it first"
            )
    return path


def clear_run_dir(path: Path) -> None:
    """Remove an earlier run's files from `path`, so that it never holds two runs' records at once (an interrupted
    run would otherwise sit beside an older run's weights and summary). Other files stay."""
    for name in RUN_FILES:
        (path / name).unlink(missing_ok=True)


def write_atomically(path: Path, write) -> None:
    """write(temporary path), then the temporary file renamed to `path`: an interrupted write leaves the old file
    or none, never half of one, and no temporary file behind."""
    temporary = path.with_name(f".{path.name}.partial")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:  # Ctrl-C or a full disk as much as a failing writer
        temporary.unlink(missing_ok=True)
        raise


def jsonable(value):
    """numpy scalars and arrays -> JSON-ready Python values (NaN and inf as strings JSON can carry)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: str | Path, obj) -> None:
    text = json.dumps(jsonable(obj), indent=2) + "\n"
    write_atomically(Path(path), lambda temporary: temporary.write_text(text))


class RecordsWriter:
    """Appends step, epoch and gradient-flow rows to CSV files in `out_dir` (created if missing)."""

    def __init__(self, out_dir: str | Path, param_names: Sequence[str]):
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.step_fields = (*STEP_FIELDS, *(f"grad_norm:{name}" for name in param_names))
        self._start(self.out_dir / "steps.csv", self.step_fields)
        self._start(self.out_dir / "epochs.csv", EPOCH_FIELDS)
        self._grad_flow_path = self.out_dir / "grad_flow.csv"
        self._grad_flow_path.unlink(missing_ok=True)

    @staticmethod
    def _start(path: Path, fields: Sequence[str]) -> None:
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerow(fields)

    @staticmethod
    def _append(path: Path, rows: list[list]) -> None:
        with path.open("a", newline="") as handle:
            csv.writer(handle).writerows(
                [[repr(float(v)) if isinstance(v, float | np.floating) else v for v in row] for row in rows]
            )

    def write_steps(self, steps: Mapping[str, np.ndarray]) -> None:
        """steps: one array (num_steps,) per field in `step_fields`, e.g. one epoch's worth."""
        columns = [np.asarray(steps[name]).tolist() for name in self.step_fields]
        self._append(self.out_dir / "steps.csv", [list(row) for row in zip(*columns, strict=True)])

    def write_epoch(self, **values) -> None:
        self._append(self.out_dir / "epochs.csv", [[values[name] for name in EPOCH_FIELDS]])

    def write_grad_flow(self, steps: np.ndarray, norms: np.ndarray) -> None:
        """steps (S,), norms (S, L, T): ‖dL/dh_t‖ of every layer at every time step, for S probed steps."""
        norms = np.asarray(norms)
        if norms.size == 0:
            return
        if not self._grad_flow_path.exists():
            self._start(self._grad_flow_path, ["step", "layer", *(f"t{t}" for t in range(norms.shape[-1]))])
        rows = [
            [int(step), layer, *map(float, norms[i, layer])]
            for i, step in enumerate(steps)
            for layer in range(norms.shape[1])
        ]
        self._append(self._grad_flow_path, rows)

    def write_json(self, name: str, obj) -> None:
        write_json(self.out_dir / name, obj)
