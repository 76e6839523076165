"""Datasets as numpy arrays, shared by both backends.

Every dataset becomes windows `x` of shape (N, T, F) and targets `y`: (N, 1) floats for regression, (N,)
int64 class labels for classification. Forecasting splits are chronological (the series is cut into train,
val and test segments before windowing, so no window straddles two splits). A `StandardScaler` is fitted on
the training split only and applied to the others; `Prepared.inverse_targets` maps predictions back to the
original units. The batch order comes from one seeded numpy generator (`epoch_batches`), so both backends
see the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.preprocessing import StandardScaler

from lstm_core import dtype_range
from lstm_core.config import Config, DataConfig
from lstm_core.machine import check_fits_memory
from lstm_core.textfile import read_csv_rows

SINE_PERIOD = 50  # samples per sine period: a window of 20 sees 0.4 of a cycle, enough to forecast one step


class DataError(ValueError):
    """The data cannot be used as asked; the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # (N, T, F)
    y: np.ndarray  # (N, 1) float for regression, (N,) int64 for classification

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Prepared:
    """Scaled splits plus what is needed to undo the scaling and to describe the raw data."""

    train: Split
    val: Split
    test: Split
    task: str  # "regression" | "classification"
    num_outputs: int
    feature_scaler: StandardScaler | None
    target_scaler: StandardScaler | None
    raw_stats: dict  # per-feature mean/std/min/max of the raw training inputs and targets

    @property
    def input_size(self) -> int:
        return self.train.x.shape[-1]

    @property
    def window(self) -> int:
        return self.train.x.shape[1]

    def inverse_targets(self, y: np.ndarray) -> np.ndarray:
        """Scaled regression targets or predictions (N, 1) -> original units (N, 1)."""
        if self.target_scaler is None:
            return np.asarray(y)
        return self.target_scaler.inverse_transform(np.asarray(y, dtype=np.float64))


def _fitted_scaler(values: np.ndarray, names: Sequence[str], source: str) -> StandardScaler:
    """A StandardScaler fitted on values (rows, C), whose column c is called names[c] in `source`."""
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported once, below, not as warnings
        scaler = StandardScaler().fit(values)
    # A variance beyond float64 leaves var_ inf but scale_ 1, so the scaled values would stay huge.
    overflowed = ~(np.isfinite(scaler.mean_) & np.isfinite(scaler.var_))
    if overflowed.any():
        raise DataError(
            f"column {names[int(np.argmax(overflowed))]!r} of {source} is too large to standardise "
            "(its variance overflows float64); rescale it"
        )
    return scaler


def column_stats(values: np.ndarray) -> dict[str, list[float]]:
    """values (N, ..., F) -> per-feature (last axis) mean, population std, min and max, other axes pooled."""
    flat = np.asarray(values, dtype=np.float64)
    flat = flat.reshape(-1, flat.shape[-1]) if flat.ndim > 1 else flat[:, None]  # (rows, F)
    with np.errstate(over="ignore"):  # unscaled values too large for float64's variance: std inf, no warning
        std = flat.std(axis=0)
    return {
        "mean": flat.mean(axis=0).tolist(),
        "std": std.tolist(),
        "min": flat.min(axis=0).tolist(),
        "max": flat.max(axis=0).tolist(),
    }


def _split_counts(n: int, splits: tuple[float, float, float]) -> tuple[int, int]:
    n_train = round(n * splits[0])
    n_val = round(n * splits[1])
    return n_train, n_val


def _windows(series: np.ndarray, targets: np.ndarray, window: int, horizon: int) -> Split:
    """series (L, F), targets (L, 1) -> x (N, window, F), y (N, 1) with y[i] = targets[i + window - 1 + horizon]."""
    count = len(series) - window - horizon + 1
    starts = np.arange(count)
    x = series[starts[:, None] + np.arange(window)[None, :]]  # (N, window, F)
    y = targets[starts + window - 1 + horizon]  # (N, 1)
    return Split(x=x, y=y)


def _forecasting(
    series: np.ndarray,
    targets: np.ndarray,
    cfg: DataConfig,
    source: str,
    feature_names: Sequence[str],
    target_name: str,
    lengthen: str,
) -> Prepared:
    """Chronological split of finite series (L, F) with targets (L, 1) into scaled windows; names for errors, and
    `lengthen`: how to get a longer series, {rows} the length needed."""
    n_train, n_val = _split_counts(len(series), cfg.splits)
    bounds = [(0, n_train), (n_train, n_train + n_val), (n_train + n_val, len(series))]
    needed = cfg.window + cfg.horizon
    for (lo, hi), name in zip(bounds, ("train", "val", "test"), strict=True):
        if hi - lo < needed:
            raise DataError(
                f"{source}: the {name} split has {hi - lo} rows but a window of {cfg.window} plus a horizon of "
                f"{cfg.horizon} needs at least {needed}; "
                f"{lengthen.format(rows=int(np.ceil(needed / min(cfg.splits))))} or a smaller --window"
            )
    raw_train_x, raw_train_y = series[:n_train], targets[:n_train]
    feature_scaler = target_scaler = None
    if cfg.scale:
        feature_scaler = _fitted_scaler(raw_train_x, feature_names, source)
        target_scaler = _fitted_scaler(raw_train_y, [target_name], source)
        series = feature_scaler.transform(series)
        targets = target_scaler.transform(targets)
    train, val, test = (_windows(series[lo:hi], targets[lo:hi], cfg.window, cfg.horizon) for lo, hi in bounds)
    stats = {"inputs": column_stats(raw_train_x), "targets": column_stats(raw_train_y)}
    return Prepared(train, val, test, "regression", 1, feature_scaler, target_scaler, stats)


def _sine(cfg: DataConfig, rng: np.random.Generator) -> Prepared:
    t = np.arange(cfg.num_samples, dtype=np.float64)
    series = np.sin(2 * np.pi * t / SINE_PERIOD) + cfg.noise * rng.standard_normal(cfg.num_samples)
    series = series[:, None]  # (L, 1)
    return _forecasting(series, series, cfg, "sine", ["sine"], "sine", "pass --num-samples {rows}")


def _read_csv(cfg: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """The chosen feature columns (L, F) and the target column (L, 1) of the user's CSV file."""
    path = Path(cfg.csv)
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a directory; pass a CSV file (not its folder) with --csv PATH")
    if not path.is_file():
        raise DataError(f"CSV file {str(path)!r} does not exist; pass an existing file with --csv PATH")
    rows = read_csv_rows(path, "CSV file", DataError, "save the CSV file as UTF-8 text")
    while rows and not "".join(rows[-1]).strip():  # editors and spreadsheets leave empty lines at the end
        rows.pop()
    if not rows:
        raise DataError(f"CSV file {str(path)!r} is empty; it needs a header row and data rows")
    header = [name.strip() for name in rows[0]]
    rows = rows[1:]
    columns = [_column_index(header, name, path) for name in [*_csv_features(cfg), cfg.target]]
    values = np.empty((len(rows), len(columns)))
    for line, row in enumerate(rows, start=2):
        if not "".join(row).strip():
            raise DataError(f"{str(path)!r} line {line} is blank; delete it (a series has no gaps)")
        if len(row) != len(header):  # a longer row would have its extra fields dropped without a word
            raise DataError(
                f"{str(path)!r} line {line} has {len(row)} fields, the header has {len(header)}; give every row one "
                "field per header column (a value holding a comma must be quoted)"
            )
        for j, column in enumerate(columns):
            try:
                values[line - 2, j] = float(row[column])
            except ValueError:
                raise DataError(
                    f"{str(path)!r} line {line}, column {header[column]!r}: {row[column]!r} is not a number; the "
                    "columns read (--features and --target) must hold numbers only: choose numeric columns, or "
                    "correct that value"
                ) from None
    if len(values) == 0:
        raise DataError(f"CSV file {str(path)!r} has a header but no data rows")
    bad = ~np.isfinite(values)
    if bad.any():
        row, j = np.argwhere(bad)[0]
        raise DataError(
            f"column {header[columns[j]]!r} of {str(path)!r} has {int(bad[:, j].sum())} NaN/inf value(s), the "
            f"first on line {row + 2}; clean or drop those rows before training"
        )
    return values[:, :-1], values[:, -1:]


def _csv_features(cfg: DataConfig) -> list[str]:
    """The CSV columns fed to the model: --features, or the target's own past when none are given."""
    return list(cfg.features) or [cfg.target]


def _column_index(header: list[str], name: str, path: Path) -> int:
    """The position of column `name` in a CSV header, which must hold it exactly once."""
    positions = [i for i, column in enumerate(header) if column == name]
    if not positions:
        raise DataError(f"column {name!r} is not in {str(path)!r}; its columns are: {', '.join(header)}")
    if len(positions) > 1:
        numbers = ", ".join(str(i + 1) for i in positions[:-1]) + f" and {positions[-1] + 1}"
        raise DataError(
            f"column {name!r} appears {len(positions)} times in the header of {str(path)!r} (columns {numbers}); "
            "rename all but one"
        )
    return positions[0]


def _csv(cfg: DataConfig, rng: np.random.Generator) -> Prepared:
    del rng  # a user's series is used as it is
    series, targets = _read_csv(cfg)
    source = f"CSV file {cfg.csv!r}"
    lengthen = "provide a longer series (at least {rows} rows)"
    return _forecasting(series, targets, cfg, source, _csv_features(cfg), cfg.target, lengthen)


def _shuffled_splits(x: np.ndarray, y: np.ndarray, cfg: DataConfig, rng: np.random.Generator):
    """i.i.d. samples: one seeded permutation, then train/val/test by the split fractions."""
    order = rng.permutation(len(x))
    n_train, n_val = _split_counts(len(x), cfg.splits)
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    if min(len(p) for p in parts) == 0:
        raise DataError(
            f"{len(x)} samples are too few for splits {cfg.splits}: a split would be empty; "
            "raise --num-samples or change the splits"
        )
    return [(x[p], y[p]) for p in parts]


def _scaled(parts, cfg: DataConfig, task: str, num_outputs: int) -> Prepared:
    """Fit StandardScaler on the training inputs (and regression targets) only and apply it to every split."""
    (x_train, y_train) = parts[0]
    features = x_train.shape[-1]
    flat_train = x_train.reshape(-1, features)  # every time step of every training sample is one row
    feature_scaler = target_scaler = None
    if cfg.scale:
        feature_scaler = StandardScaler().fit(flat_train)
        if task == "regression":
            target_scaler = StandardScaler().fit(y_train)

    def transform(x, y):
        if feature_scaler is not None:
            x = feature_scaler.transform(x.reshape(-1, features)).reshape(x.shape)
        if target_scaler is not None:
            y = target_scaler.transform(y)
        return Split(x=x, y=y)

    stats = {
        "inputs": column_stats(flat_train),
        "targets": column_stats(y_train) if task == "regression" else None,
    }
    splits = [transform(x, y) for x, y in parts]
    return Prepared(*splits, task, num_outputs, feature_scaler, target_scaler, stats)


def _adding(cfg: DataConfig, rng: np.random.Generator) -> Prepared:
    """The adding problem: channel 0 holds U(0, 1) values, channel 1 marks two of them; the target is their sum.

    One marker lies in the first half of the sequence and one in the second, as in Hochreiter & Schmidhuber
    (1997), so the model must carry information across about T/2 steps.
    """
    n, length = cfg.num_samples, cfg.window
    if length < 2:
        raise DataError(f"the adding problem needs --window >= 2 (two marked positions), got {length}")
    values = rng.uniform(0.0, 1.0, size=(n, length))
    first = rng.integers(0, length // 2, size=n)
    second = rng.integers(length // 2, length, size=n)
    markers = np.zeros((n, length))
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    x = np.stack([values, markers], axis=-1)  # (N, T, 2)
    y = (values[np.arange(n), first] + values[np.arange(n), second])[:, None]  # (N, 1)
    return _scaled(_shuffled_splits(x, y, cfg, rng), cfg, "regression", 1)


def _digits(cfg: DataConfig, rng: np.random.Generator) -> Prepared:
    """scikit-learn's bundled 8x8 digits, each image read as 8 time steps of 8 pixels; 10 classes."""
    digits = load_digits()
    x = digits.images.astype(np.float64)  # (1797, 8, 8): rows are time steps
    y = digits.target.astype(np.int64)  # (1797,)
    return _scaled(_shuffled_splits(x, y, cfg, rng), cfg, "classification", 10)


_LOADERS = {"sine": _sine, "adding": _adding, "digits": _digits, "csv": _csv}


def seeded_generators(seed: int) -> dict[str, np.random.Generator]:
    """Independent numpy generators for data, initial weights and batch order, all from one seed."""
    names = ("data", "init", "batches")
    return {
        name: np.random.default_rng(child)
        for name, child in zip(names, np.random.SeedSequence(seed).spawn(len(names)), strict=True)
    }


def _check_generated_size(cfg: DataConfig) -> None:
    """Refuse a generated dataset too large for this machine before drawing it. Its windows (N, T, F) are held
    in float64 and again in the training dtype; N is about --num-samples for both sine and adding."""
    features = {"sine": 1, "adding": 2}.get(cfg.dataset)
    if features is not None:  # digits has a fixed size; a CSV file's size is the user's own
        check_fits_memory(
            cfg.num_samples * cfg.window * features * (8 + 4),
            f"{cfg.num_samples} {cfg.dataset} windows of {cfg.window} steps",
            "lower --num-samples or --window",
            DataError,
        )


def load(config: Config) -> Prepared:
    """The dataset named by the config, split and scaled; the same seed gives the same arrays."""
    _check_generated_size(config.data)
    prepared = _LOADERS[config.data.dataset](config.data, seeded_generators(config.training.seed)["data"])
    check_fits_dtype(prepared, config.training.dtype)
    return prepared


def check_fits_dtype(
    prepared: Prepared,
    dtype: str,
    fix: str = "keep them scaled (drop --no-scale), rescale them, or pass --dtype float64",
) -> None:
    """The trainers cast every split to the training dtype: DataError naming the inputs or targets that reach
    beyond its range (dtype_range.check_fits_dtype)."""
    splits = (prepared.train, prepared.val, prepared.test)
    parts = [(role, array) for split in splits for role, array in (("inputs", split.x), ("targets", split.y))]
    dtype_range.check_fits_dtype(parts, dtype, "the data", DataError, fix)


def check_batch_size(num_samples: int, batch_size: int) -> None:
    """A batch must fit in the training split: the partial batch is dropped, so a larger one leaves no step."""
    if batch_size > num_samples:
        raise DataError(
            f"batch_size {batch_size} exceeds the {num_samples} training samples; "
            f"pass --batch-size {num_samples} or less"
        )


def epoch_batches(num_samples: int, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's batch indices (num_batches, batch_size) from a fresh permutation.

    The last partial batch is dropped (as torch's `drop_last=True`) so every batch has one shape and the JAX
    step compiles once; the permutation changes every epoch, so every sample is still seen.
    """
    check_batch_size(num_samples, batch_size)
    num_batches = num_samples // batch_size
    return rng.permutation(num_samples)[: num_batches * batch_size].reshape(num_batches, batch_size)
