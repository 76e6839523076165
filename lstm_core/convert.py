"""Weights between torch's `state_dict` names and the Flax parameter tree, and starting from another run.

The two layouts hold the same arrays (gate rows i, f, g, o; weights stored (out, in), as torch stores them);
only the nesting differs, so converting copies no value and changes none, in either direction:
    torch  {"lstm.weight_ih_l0": (4H, In), ..., "head.weight": (O, H), "head.bias": (O,)}
    Flax   {"lstm": {"weight_ih_l0": (4H, In), ...}, "head": {"weight": (O, H), "bias": (O,)}}
Both converters check every name and shape against the architecture that the weights themselves imply
(`architecture`) and raise `WeightsError` naming what does not fit. They accept any array type with a
`shape` (numpy, torch tensors, jax arrays) and return the same objects, re-nested.

A run directory (`lstm-train --out`) holds `weights.safetensors` under torch names and `scaler.json`;
`load_run` reads both, and `rescale` re-expresses freshly loaded data in the run's scaling, so either
backend can continue or evaluate a run made by either backend (`--init-from RUN_DIR`).
"""

from __future__ import annotations

import dataclasses
import re
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from sklearn.preprocessing import StandardScaler

from lstm_core import weights as weights_io
from lstm_core.data import Prepared, Split
from lstm_core.records import SCALER_FILE
from lstm_core.textfile import parse_json, read_mapping
from lstm_core.weights import WeightsError

_LSTM_NAME = re.compile(r"lstm\.(weight_ih|weight_hh|bias_ih|bias_hh)_l(\d+)")


def architecture(weights: Mapping) -> tuple[int, int, int, int]:
    """(input_size, hidden_size, num_layers, num_outputs) implied by torch-named weights, or WeightsError."""
    for name in ("lstm.weight_ih_l0", "head.weight"):
        if name not in weights:
            raise WeightsError(f"weights have no {name!r}; got {', '.join(weights) or 'nothing'}")
    first, head = tuple(weights["lstm.weight_ih_l0"].shape), tuple(weights["head.weight"].shape)
    if len(first) != 2 or first[0] % 4 or len(head) != 2:
        raise WeightsError(f"lstm.weight_ih_l0 must be (4H, In) and head.weight (O, H); got {first} and {head}")
    layers = {int(match[2]) for match in map(_LSTM_NAME.fullmatch, weights) if match}
    return first[1], first[0] // 4, max(layers) + 1, head[0]


def check(weights: Mapping, source: str = "weights") -> tuple[int, int, int, int]:
    """Raise WeightsError unless `weights` are exactly an LSTM stack and head; return its architecture."""
    shapes = architecture(weights)
    weights_io.check_weights(weights, weights_io.parameter_shapes(*shapes), source)
    return shapes


def torch_to_flax(state_dict: Mapping) -> dict[str, dict]:
    """torch state_dict names -> the Flax tree {"lstm": {...}, "head": {...}}; values are passed through."""
    check(state_dict, "state_dict")
    params: dict[str, dict] = {}
    for name, value in state_dict.items():
        module, leaf = name.split(".", 1)
        params.setdefault(module, {})[leaf] = value
    return params


def flax_to_torch(params: Mapping[str, Mapping]) -> dict:
    """The Flax tree -> torch state_dict names in nn.LSTM's registration order, then the head."""
    unknown = sorted(set(params) - {"lstm", "head"})
    if unknown:
        raise WeightsError(f"Flax params have unexpected module(s) {', '.join(unknown)}; expected 'lstm' and 'head'")
    flat = {f"{module}.{leaf}": value for module, leaves in params.items() for leaf, value in leaves.items()}
    order = weights_io.parameter_shapes(*check(flat, "Flax params"))
    return {name: flat[name] for name in order}


def scaler_record(prepared: Prepared) -> dict:
    """The fitted StandardScalers' mean and scale (None when scaling is off), to undo or re-apply them."""

    def describe(scaler):
        return None if scaler is None else {"mean": scaler.mean_.tolist(), "scale": scaler.scale_.tolist()}

    return {"features": describe(prepared.feature_scaler), "targets": describe(prepared.target_scaler)}


class Scaling(NamedTuple):
    """One StandardScaler as scaler.json keeps it: per-column mean and scale (columns,), float64."""

    mean: np.ndarray
    scale: np.ndarray


@dataclass(frozen=True)
class RunStart:
    """What a run directory hands to a new run: its final weights (torch names), the model they make, and its
    scaling."""

    weights: dict[str, np.ndarray]
    architecture: tuple[int, int, int, int]  # the weights' (input_size, hidden_size, num_layers, num_outputs)
    scaler: dict[str, Scaling | None]  # "features", "targets": None where the run did not scale them
    source: Path


def load_run(run_dir: str | Path) -> RunStart:
    """Read `weights.safetensors` and `scaler.json` from a run directory written by either backend."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise WeightsError(f"--init-from {str(run_dir)!r} is not a directory; pass a run directory (lstm-train --out)")
    scaler = _read_scaler(run_dir / SCALER_FILE)
    weights_path = run_dir / weights_io.WEIGHTS_FILE
    if not weights_path.exists():  # lstm-train writes the scaler first and the weights when its epochs end
        raise WeightsError(
            f"run directory {str(run_dir)!r} has no {weights_io.WEIGHTS_FILE}: its run was aborted before it "
            "saved them; start from a run that finished"
        )
    run_weights = weights_io.load(weights_path)
    shapes = check(run_weights, f"weights file in {str(run_dir)!r}")
    nonfinite = _nonfinite(run_weights)
    if nonfinite:
        raise WeightsError(
            f"weights file {str(weights_path)!r}: {'; '.join(nonfinite)}; "
            "start from a run that ended with finite weights"
        )
    return RunStart(run_weights, shapes, scaler, run_dir)


def _nonfinite(arrays: Mapping[str, np.ndarray]) -> list[str]:
    """'NAME has N non-finite value(s)' for each array that holds NaN or ±inf."""
    counts = {name: np.size(values) - np.count_nonzero(np.isfinite(values)) for name, values in arrays.items()}
    return [f"{name} has {count} non-finite value(s)" for name, count in counts.items() if count]


def _read_scaler(path: Path) -> dict[str, Scaling | None]:
    """scaler.json as `scaler_record` writes it, checked ('features' and 'targets', each null or mean and scale
    lists of one length, finite, scales > 0: they divide) and converted: a Scaling per entry, None for null;
    WeightsError naming the entry otherwise."""
    if not path.exists():
        raise WeightsError(f"run directory {str(path.parent)!r} has no {SCALER_FILE}; re-run the training")
    fix = "re-run the training that wrote it"
    scaler = read_mapping(path, parse_json, "scaler file", WeightsError, fix)
    named = f"scaler file {str(path)!r}"  # as read_mapping names it
    if set(scaler) != {"features", "targets"}:
        raise WeightsError(f"{named} must hold 'features' and 'targets', got {reprlib.repr(scaler)}; {fix}")
    scalings = {}
    for key, entry in scaler.items():
        if entry is None:
            scalings[key] = None
            continue
        try:  # numbers, or "nan"/"inf" as records.jsonable writes them (refused below as non-finite)
            if any(isinstance(value, bool) for name in ("mean", "scale") for value in entry[name]):
                raise TypeError("true/false is not a number here (numpy would read it as 1/0)")
            mean, scale = (np.asarray(entry[name], dtype=np.float64) for name in ("mean", "scale"))
        except (KeyError, TypeError, ValueError):
            mean = scale = None
        if mean is None or set(entry) != {"mean", "scale"} or mean.ndim != 1 or mean.shape != scale.shape:
            raise WeightsError(
                f"{named}: {key!r} is {reprlib.repr(entry)}; each of 'features' and 'targets' must "
                f"be null or {{'mean': [numbers], 'scale': [positive numbers]}} with lists of equal length; {fix}"
            )
        problems = _nonfinite({f"{key}.mean": mean, f"{key}.scale": scale})
        if np.count_nonzero(scale <= 0):
            problems.append(f"{key}.scale has {np.count_nonzero(scale <= 0)} value(s) <= 0 (a scale divides)")
        if problems:
            raise WeightsError(f"{named}: {'; '.join(problems)}; {fix}")
        scalings[key] = Scaling(mean, scale)
    return scalings


def _standard_scaler(scaling: Scaling | None, expected_width: int, what: str) -> StandardScaler | None:
    """A fitted StandardScaler rebuilt from one scaler.json entry as `_read_scaler` checked and converted it."""
    if scaling is None:
        return None
    mean, scale = scaling
    if mean.shape != (expected_width,) or scale.shape != (expected_width,):
        raise WeightsError(
            f"the run's {what} scaler has {mean.size} column(s), this data has {expected_width}; "
            "use the dataset and columns that the run was trained on"
        )
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = mean, scale, scale**2
    scaler.n_features_in_ = expected_width
    scaler.n_samples_seen_ = 0
    return scaler


def _same(a: StandardScaler | None, b: StandardScaler | None) -> bool:
    if a is None or b is None:
        return a is b
    return np.array_equal(a.mean_, b.mean_) and np.array_equal(a.scale_, b.scale_)


def _remap(values: np.ndarray, old: StandardScaler | None, new: StandardScaler | None) -> np.ndarray:
    """values (..., F) in `old`'s scaling (None: raw) -> the same values in `new`'s scaling."""
    if _same(old, new):
        return values
    with np.errstate(over="ignore"):  # a value beyond float64 becomes inf, which data.check_fits_dtype refuses
        raw = values if old is None else values * old.scale_ + old.mean_
        return raw if new is None else (raw - new.mean_) / new.scale_


def rescale(prepared: Prepared, scalings: dict[str, Scaling | None]) -> Prepared:
    """The same data expressed in the run's `scalings` (its scaler.json as `load_run` reads it) instead of the one
    fitted here.

    When the run was trained on these very data the scalers are equal and the arrays are returned untouched.
    """
    feature_scaler = _standard_scaler(scalings["features"], prepared.input_size, "feature")
    if prepared.task == "classification" and scalings["targets"] is not None:
        raise WeightsError("the run scaled regression targets, but this data is a classification task")
    target_scaler = _standard_scaler(scalings["targets"], 1, "target") if prepared.task == "regression" else None

    def split(part: Split) -> Split:
        x = _remap(part.x, prepared.feature_scaler, feature_scaler)
        y = part.y if prepared.task == "classification" else _remap(part.y, prepared.target_scaler, target_scaler)
        return Split(x=x, y=y)

    if _same(prepared.feature_scaler, feature_scaler) and _same(prepared.target_scaler, target_scaler):
        return prepared
    return dataclasses.replace(
        prepared,
        train=split(prepared.train),
        val=split(prepared.val),
        test=split(prepared.test),
        feature_scaler=feature_scaler,
        target_scaler=target_scaler,
    )
