"""A run directory's records read back for the doctor: the files `lstm_core.records` writes, as numpy arrays.

`load_run(run_dir)` reads steps.csv, epochs.csv, grad_flow.csv when recorded, and data_stats.json /
config.json / summary.json when present. A directory that is missing, is not a run, or holds missing,
truncated or malformed records raises one `RunRecordsError` that names the file, the line or field, and what
is wrong; every JSON field the rules convert is checked here, at load, so a rule never meets a bad one. So
is every CSV value that no run writes (`_check_steps`, `_check_epochs`, `_check_grad_flow`): a record edited
by hand or corrupted is refused, not diagnosed as given. numpy, the standard library and lstm_core (no torch,
no jax).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lstm_core.config import BACKENDS, CLASSIFICATION_DATASETS, DATASETS
from lstm_core.records import EPOCH_FIELDS, STEP_FIELDS
from lstm_core.textfile import parse_json, read_csv_rows, read_mapping


class RunRecordsError(ValueError):
    """A run directory is missing, is not a run, or holds missing, truncated or malformed records."""


@dataclass(frozen=True)
class GradFlow:
    """grad_flow.csv: `norms[i, t]` = ‖dL/dh_t‖ of layer `layer[i]` at optimizer step `step[i]`."""

    step: np.ndarray  # (R,) int
    layer: np.ndarray  # (R,) int
    norms: np.ndarray  # (R, T) float


@dataclass(frozen=True)
class Settings:
    """The run's settings that the rules use: config.json's, or the steps' own values where it is silent."""

    lr: float  # the initial learning rate
    min_lr: float  # the plateau scheduler's floor; 0 when not recorded
    hidden_size: int
    num_layers: int
    dropout: float
    weight_decay: float
    clipping: bool  # config.json's clipping.enabled; unrecorded: whether clipping scaled some step's gradient
    max_norm: float  # the clipping threshold; 1.0 with clipping off (the value a remedy writes)
    epochs: int  # as configured; unrecorded: the last recorded epoch
    dataset: str | None  # one of config.DATASETS; None when not recorded (a plain loop's records)
    rnn: str  # the JAX trainer's recurrence, "scan" or "cudnn" (which has no dropout); unrecorded: "scan"
    init_from: bool  # started from another run's weights (--init-from), which fix the model's shape and scaling
    features: list[str]  # the input columns' names; empty when not recorded
    train_split: float | None  # the training fraction, when the config holds three splits


@dataclass(frozen=True)
class RunRecords:
    run_dir: Path
    step: np.ndarray  # (S,) int, 1-based global optimizer step
    epoch: np.ndarray  # (S,) int, 1-based
    loss: np.ndarray  # (S,) float >= 0, may hold nan/±inf
    grad_norm: np.ndarray  # (S,) float >= 0, may hold nan/inf: global L2 norm before clipping
    clip_factor: np.ndarray  # (S,) float in [0, 1] (0: an inf norm), or nan (a nan norm)
    lr: np.ndarray  # (S,) finite float >= 0
    param_grad_norms: dict[str, np.ndarray]  # torch parameter name -> (S,), as grad_norm
    epochs: dict[str, np.ndarray]  # EPOCH_FIELDS -> (E,) arrays (E may be 0)
    settings: Settings  # read once, at load
    num_classes: int | None  # summary.json's; None for regression or when absent
    column_stats: dict[str, tuple[np.ndarray, np.ndarray]]  # "inputs", "targets" -> raw (mean, std) per column
    grad_flow: GradFlow | None = None
    data_stats: dict | None = None
    config: dict | None = None
    summary: dict | None = None

    @property
    def num_steps(self) -> int:
        return len(self.step)


NOT_A_RECORD = "the file is corrupt or not written by lstm-train"
RECORD = "run record"  # what textfile's errors call a file of the run
EDITED = "no run writes that: the records were edited or corrupted; re-run the training that wrote them"


def _read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header and the (file line, fields) of every non-blank row below it."""
    name = path.name
    rows = read_csv_rows(path, RECORD, RunRecordsError, NOT_A_RECORD)
    lines = [(i, row) for i, row in enumerate(rows, start=1) if row]
    if not lines:
        raise RunRecordsError(
            f"{name} in {str(path.parent)!r} is empty (no header): the file is truncated "
            "or the run was interrupted before it wrote anything"
        )
    header = [h.strip() for h in lines[0][1]]
    missing = [c for c in required if c not in header]
    if missing:
        raise RunRecordsError(
            f"{name} header lacks required column(s) {', '.join(missing)} "
            f"(found: {', '.join(header)}); the file is truncated or not written by lstm-train"
        )
    rows = []
    for line, row in lines[1:]:
        if len(row) != len(header):
            raise RunRecordsError(
                f"{name} line {line} has {len(row)} fields, the header has {len(header)}: "
                "the file is truncated or corrupt"
            )
        rows.append((line, row))
    return header, rows


def _whole_number(text: str) -> int:
    """A step, epoch or layer number: 12, or 12.0 and 1.2e1 as a spreadsheet may write it; not 12.5, which int()
    would cut to 12, nor nan or inf (ValueError)."""
    value = float(text)
    if not value.is_integer():
        raise ValueError(f"{text!r} is not a whole number")
    return int(value)


def _column(name: str, header: list[str], rows: list[tuple[int, list[str]]], column: str, kind=float) -> np.ndarray:
    j = header.index(column)
    out = np.empty(len(rows), dtype=np.float64 if kind is float else np.int64)
    for i, (line, row) in enumerate(rows):
        text = row[j].strip()
        try:
            out[i] = (float(text) if text else math.nan) if kind is float else _whole_number(text)
        except (ValueError, OverflowError):
            raise RunRecordsError(
                f"{name} line {line}, column {column!r}: {row[j]!r} is not a "
                f"{'number' if kind is float else 'whole number'}"
            ) from None
    return out


def _read_json(path: Path) -> dict | None:
    """A JSON record as a dict; None when the run did not write it (a link that leads nowhere is not absent:
    read_text refuses it)."""
    if not path.exists() and not path.is_symlink():
        return None
    return read_mapping(path, parse_json, RECORD, RunRecordsError, NOT_A_RECORD)


# records.jsonable writes a non-finite float as its str(); data statistics of raw data may hold them
NONFINITE_TEXT = ("nan", "inf", "-inf")


def _record_number(value: Any, where: str, *, count: bool = False, finite: bool = True) -> float | int:
    """A number read from a JSON record, or RunRecordsError naming `where` ("config.json: model.hidden_size").

    `count`: a positive whole number (a size, a number of epochs), returned as int. `finite=False` also
    accepts nan and inf, as records.jsonable writes them. A bool is not a number here.
    """
    if value in NONFINITE_TEXT and not finite:
        return float(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        if not count:
            return float(value)
        if value > 0 and float(value).is_integer():
            return int(value)
    kind = "a positive whole number" if count else "a number"
    raise RunRecordsError(f"{where} must be {kind}, got {value!r}; {NOT_A_RECORD}")


def _record_numbers(value: Any, where: str) -> np.ndarray:
    """A JSON list of numbers (null, nan and inf allowed: statistics of raw data) as a float array."""
    if value is None:
        return np.array([])
    if not isinstance(value, list):
        raise RunRecordsError(f"{where} must be a list of numbers, got {value!r}; {NOT_A_RECORD}")
    return np.array(
        [math.nan if v is None else _record_number(v, f"{where}[{j}]", finite=False) for j, v in enumerate(value)],
        dtype=np.float64,
    )


def load_run(run_dir: str | Path) -> RunRecords:
    """Read a run directory written by lstm-train (either backend) into numpy arrays and dicts."""
    if not str(run_dir).strip():  # an unset shell variable, `lstm-doctor "$RUN"`: Path("") would be "."
        raise RunRecordsError(
            f"the run directory is empty ({str(run_dir)!r}); pass the directory lstm-train wrote (its --out)"
        )
    run_dir = Path(run_dir)
    if not run_dir.exists():
        raise RunRecordsError(f"run directory {str(run_dir)!r} does not exist")
    if not run_dir.is_dir():
        raise RunRecordsError(f"{str(run_dir)!r} is a file, not a run directory; pass the --out directory")
    steps_path, epochs_path = run_dir / "steps.csv", run_dir / "epochs.csv"
    if not steps_path.exists() and not epochs_path.exists():
        parity_runs = [run_dir / name for name in BACKENDS if (run_dir / name / "steps.csv").exists()]
        if parity_runs:  # lstm-parity's --out: a run directory per backend
            choices = " or ".join(repr(str(path)) for path in parity_runs)
            raise RunRecordsError(f"{str(run_dir)!r} holds lstm-parity's runs, one per backend: pass {choices}")
        raise RunRecordsError(
            f"{str(run_dir)!r} is not a run directory: it has no steps.csv or epochs.csv; "
            "pass the directory lstm-train wrote (its --out)"
        )
    for path in (steps_path, epochs_path):
        if not path.exists():
            raise RunRecordsError(f"run directory {str(run_dir)!r} lacks {path.name}; the run is incomplete")

    header, rows = _read_csv(steps_path, STEP_FIELDS)
    config = _read_json(run_dir / "config.json")
    if not rows:
        training = _section(config, "training")
        if training.get("epochs") == 0 and isinstance(training.get("init_from"), str):
            raise RunRecordsError(
                f"{str(run_dir)!r} holds an evaluation (--epochs 0) of the run in {training['init_from']!r}, "
                "no training steps; diagnose that run instead"
            )
        raise RunRecordsError(
            f"steps.csv in {str(run_dir)!r} has a header but no rows: the run recorded zero "
            "optimizer steps (it stopped before its first epoch ended); nothing to diagnose"
        )
    cols = {c: _column("steps.csv", header, rows, c, int if c in ("step", "epoch") else float) for c in STEP_FIELDS}
    params = {c.split(":", 1)[1]: _column("steps.csv", header, rows, c) for c in header if c.startswith("grad_norm:")}
    _check_steps(_Rows("steps.csv", header, rows), cols, params)

    e_header, e_rows = _read_csv(epochs_path, EPOCH_FIELDS)
    epochs = {c: _column("epochs.csv", e_header, e_rows, c, int if c == "epoch" else float) for c in EPOCH_FIELDS}
    _check_epochs(_Rows("epochs.csv", e_header, e_rows), epochs)

    grad_flow = None
    flow_path = run_dir / "grad_flow.csv"
    if flow_path.exists():
        f_header, f_rows = _read_csv(flow_path, ("step", "layer", "t0"))
        times = [c for c in f_header if c not in ("step", "layer")]
        if times != [f"t{t}" for t in range(len(times))]:
            raise RunRecordsError(f"grad_flow.csv time columns must be t0, t1, ... in order, got {', '.join(times)}")
        if f_rows:
            grad_flow = GradFlow(
                step=_column("grad_flow.csv", f_header, f_rows, "step", int),
                layer=_column("grad_flow.csv", f_header, f_rows, "layer", int),
                norms=np.stack([_column("grad_flow.csv", f_header, f_rows, c) for c in times], axis=1),
            )
            _check_grad_flow(_Rows("grad_flow.csv", f_header, f_rows), grad_flow)
    summary, data_stats = _read_json(run_dir / "summary.json"), _read_json(run_dir / "data_stats.json")
    return RunRecords(
        run_dir=run_dir,
        **cols,
        param_grad_norms=params,
        epochs=epochs,
        settings=_read_settings(config, cols),
        num_classes=_read_num_classes(summary),
        column_stats={part: _read_column_stats(data_stats, part) for part in ("inputs", "targets")},
        grad_flow=grad_flow,
        data_stats=data_stats,
        config=config,
        summary=summary,
    )


# What the trainers and recorders can write (lstm_core.records, lstm_core.recorder, the backends' optim.py):
# a norm is >= 0, or nan / inf where the gradient overflowed (diverged runs are what the doctor diagnoses);
# a clip factor min(1, max_norm / (norm + 1e-6)) lies in [0, 1] (0 for an inf norm) or is nan (a nan norm);
# a learning rate is finite and >= 0 (0 where a plain loop's schedule starts or ends, as optax's
# warmup_cosine_decay_schedule with init_value 0, or at its default end_value 0);
# steps and epochs are numbered from 1, upward. Anything else was edited in by hand or corrupted.
@dataclass(frozen=True)
class _Rows:
    """A CSV record's rows as `_read_csv` returns them, to name a refused value by its line and text."""

    name: str  # "steps.csv"
    header: list[str]
    rows: list[tuple[int, list[str]]]

    def refuse(self, column: str, bad: np.ndarray, what: str) -> None:
        """RunRecordsError at the first row where `bad` (R,) holds: its line, `column`, the value as written and
        `what` is wrong with it; nothing when no row is bad."""
        first = np.flatnonzero(bad)
        if first.size:
            line, row = self.rows[first[0]]
            text = row[self.header.index(column)].strip()
            raise RunRecordsError(f"{self.name} line {line}, column {column!r}: {text!r} {what}; {EDITED}")

    def numbering(self, column: str, numbers: np.ndarray, *, once: bool) -> None:
        """Step or epoch numbers (R,) from 1, upward: strictly with `once` (a row per step, or per epoch in
        epochs.csv), else never down (the epoch of each step)."""
        self.refuse(column, numbers < 1, f"is below 1: {column}s are numbered from 1")
        if once:
            back = np.concatenate([[False], numbers[1:] <= numbers[:-1]])
            self.refuse(column, back, f"is not above the {column} on the row before it: {column}s go up, one row each")
        else:
            back = np.concatenate([[False], numbers[1:] < numbers[:-1]])
            self.refuse(column, back, f"is below the {column} on the row before it: {column}s only go up")

    def norms(self, column: str, norms: np.ndarray) -> None:
        self.refuse(column, norms < 0, "is negative, which no norm is")  # nan and inf pass: they are judged

    def learning_rates(self, lr: np.ndarray) -> None:
        self.refuse("lr", ~(np.isfinite(lr) & (lr >= 0)), "is not a learning rate (finite, >= 0)")

    def losses(self, column: str, loss: np.ndarray) -> None:
        """A finite loss below 0 (nan and inf are judged), which the rules' ratios cannot read."""
        negative = np.flatnonzero(np.isfinite(loss) & (loss < 0))
        if negative.size:
            line, value = self.rows[negative[0]][0], loss[negative[0]]
            raise RunRecordsError(
                f"{self.name} line {line}: the {column} is {value:g}, below 0; the doctor reads a loss curve by its "
                "ratios (as MSE and cross-entropy, >= 0, allow) and cannot judge a loss that goes negative"
            )


def _check_steps(steps: _Rows, cols: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> None:
    """steps.csv's columns (STEP_FIELDS, and grad_norm:<param> as `params`) hold only values a run writes."""
    steps.numbering("step", cols["step"], once=True)
    steps.numbering("epoch", cols["epoch"], once=False)
    steps.losses("loss", cols["loss"])
    steps.norms("grad_norm", cols["grad_norm"])
    for name, norms in params.items():
        steps.norms(f"grad_norm:{name}", norms)
    factor = cols["clip_factor"]
    steps.refuse("clip_factor", (factor < 0) | (factor > 1), "is outside [0, 1], where min(1, max_norm / norm) lies")
    steps.learning_rates(cols["lr"])


def _check_epochs(epochs: _Rows, cols: dict[str, np.ndarray]) -> None:
    """epochs.csv's columns (EPOCH_FIELDS) hold only values a run writes."""
    epochs.numbering("epoch", cols["epoch"], once=True)
    epochs.losses("train_loss", cols["train_loss"])
    epochs.losses("val_loss", cols["val_loss"])
    epochs.learning_rates(cols["lr"])


def _check_grad_flow(rows: _Rows, flow: GradFlow) -> None:
    """grad_flow.csv as RecordsWriter.write_grad_flow writes it: steps from 1, never down, each with its layers
    from 0, each once and in order; ‖dL/dh_t‖ >= 0, nan or inf."""
    rows.numbering("step", flow.step, once=False)
    rows.refuse("layer", flow.layer < 0, "is below 0: layers are numbered from 0")
    repeated = np.concatenate([[False], (flow.step[1:] == flow.step[:-1]) & (flow.layer[1:] <= flow.layer[:-1])])
    rows.refuse("layer", repeated, "is not above the layer on the row before it, of the same step")
    for t in range(flow.norms.shape[1]):
        rows.norms(f"t{t}", flow.norms[:, t])


def _section(config: dict | None, name: str) -> dict:
    value = (config or {}).get(name)
    return value if isinstance(value, dict) else {}


def task(records: RunRecords) -> str:
    """ "regression" or "classification": as data_stats.json or summary.json says, else config.json's head or
    dataset, else regression."""
    for source in (records.data_stats or {}, records.summary or {}):
        if source.get("task") in ("regression", "classification"):
            return source["task"]
    head = _section(records.config, "model").get("head")
    if head in ("regression", "classification"):
        return head
    dataset = _section(records.config, "data").get("dataset")
    if dataset in CLASSIFICATION_DATASETS or (records.summary or {}).get("num_classes"):
        return "classification"
    return "regression"


def scaled(records: RunRecords) -> bool | None:
    """Whether the model was fed standardised inputs and targets; None when the records do not say."""
    stats = records.data_stats or {}
    if isinstance(stats.get("scaled"), bool):
        return stats["scaled"]
    scale = _section(records.config, "data").get("scale")
    return scale if isinstance(scale, bool) else None


def _read_num_classes(summary: dict | None) -> int | None:
    """summary.json's number of classes; None for regression or when absent."""
    classes = (summary or {}).get("num_classes")
    return None if classes is None else _record_number(classes, "summary.json: num_classes", count=True)


def _read_column_stats(data_stats: dict | None, part: str) -> tuple[np.ndarray, np.ndarray]:
    """data_stats.json's per-column raw mean and std of `part` ("inputs" or "targets"); empty when absent."""
    block = (data_stats or {}).get(part)
    if not isinstance(block, dict):
        return np.array([]), np.array([])
    means, stds = (_record_numbers(block.get(k), f"data_stats.json: {part}.{k}") for k in ("mean", "std"))
    return means, stds


def _setting(config: dict | None, key: str, default: Any, *, count: bool = False) -> Any:
    """config.json's `section.field` as a number; `default` when it is absent or null."""
    section, name = key.split(".")
    value = _section(config, section).get(name)
    return default if value is None else _record_number(value, f"config.json: {key}", count=count)


def _text_setting(config: dict | None, key: str, default: str | None, choices: tuple[str, ...] = ()) -> str | None:
    """config.json's `section.field` as text, one of `choices` where they are given; `default` when it is absent
    or null."""
    section, name = key.split(".")
    value = _section(config, section).get(name)
    if value is None:
        return default
    if not isinstance(value, str) or (choices and value not in choices):
        expected = f"one of {', '.join(choices)}" if choices else "text"
        raise RunRecordsError(f"config.json: {key} must be {expected}, got {value!r}; {NOT_A_RECORD}")
    return value


def _read_settings(config: dict | None, steps: dict[str, np.ndarray]) -> Settings:
    """The Settings in config.json (None: not recorded), completed from the steps' columns (STEP_FIELDS)."""
    enabled = _section(config, "clipping").get("enabled")
    if not isinstance(enabled, bool):  # unknown: infer from the records (clipping changed some step)
        clip_factor = steps["clip_factor"]
        enabled = bool(np.any(clip_factor[np.isfinite(clip_factor)] < 1.0))
    features = _section(config, "data").get("features") or []
    if not isinstance(features, list):
        raise RunRecordsError(
            f"config.json: data.features must be a list of column names, got {features!r}; {NOT_A_RECORD}"
        )
    splits = _section(config, "data").get("splits")
    train_split = None
    if isinstance(splits, list) and len(splits) == 3:
        train_split = _record_number(splits[0], "config.json: data.splits[0]")
    return Settings(
        lr=_setting(config, "optimizer.lr", float(steps["lr"][0])),
        min_lr=_setting(config, "plateau.min_lr", 0.0),
        hidden_size=_setting(config, "model.hidden_size", 32, count=True),
        num_layers=_setting(config, "model.num_layers", 1, count=True),
        dropout=_setting(config, "model.dropout", 0.0),
        weight_decay=_setting(config, "optimizer.weight_decay", 0.0),
        clipping=enabled,
        max_norm=_setting(config, "clipping.max_norm", 0.0) or 1.0,  # 0: clipping off, write 1.0 as the fix
        epochs=_setting(config, "training.epochs", None, count=True) or int(steps["epoch"].max()),
        dataset=_text_setting(config, "data.dataset", None, DATASETS),
        rnn=_text_setting(config, "training.rnn", "scan"),
        init_from=bool(_text_setting(config, "training.init_from", None)),
        features=features,
        train_split=train_split,
    )
