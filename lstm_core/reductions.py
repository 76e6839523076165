"""Means, root mean squares and L2 norms of values that may lie near their dtype's largest (float64's 1.8e308,
float32's 3.4e38): lstm-train's epoch train losses and test errors, the plain-loop recorders' train losses and
global gradient norms, the doctor's medians of losses and norms.

numpy sums before it divides, and squares before it sums: finite values whose sum or squares pass the largest
value give inf, with a RuntimeWarning on stderr (an epoch of losses of 1e306, errors of 6e153). Each function here
returns numpy's own result, bit for bit, wherever that is finite or an input is not; only where finite inputs
overflowed does it rescale (the mean of values / N; the RMS or norm of values / max|values|, times max|values|).
That result is within a few units in the last place of the exact value (each division, the sum and the square
root round once), and is inf only where the quantity itself lies beyond the dtype.
"""

from __future__ import annotations

import numpy as np


def _overflowed(results: np.ndarray, values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Where `results` of a reduction of `values` over `axis` are non-finite although every value reduced is
    finite: an overflow of the sum or the squares, not an inf or nan that the values held."""
    return ~np.isfinite(results) & np.all(np.isfinite(values), axis=axis)


def mean(values: np.ndarray) -> np.floating:
    """np.mean of `values` (N,), N >= 1, e.g. an epoch's step losses."""
    values = np.asarray(values)
    with np.errstate(over="ignore"):
        result = np.mean(values)
    return np.sum(values / len(values)) if _overflowed(result, values) else result


def root_mean_square(values: np.ndarray) -> np.floating:
    """sqrt(mean(values**2)) of `values` (any shape, at least one value), e.g. a test split's errors (N, 1)."""
    values = np.asarray(values)
    with np.errstate(over="ignore"):
        result = np.sqrt(np.mean(values**2))
    if not _overflowed(result, values):
        return result
    largest = np.max(np.abs(values))
    return largest * np.sqrt(np.mean((values / largest) ** 2))  # at most `largest`: it cannot overflow


def l2_norms(rows: np.ndarray) -> np.ndarray:
    """sqrt(sum(rows**2, axis=1)) of `rows` (S, P) -> (S,), e.g. each step's global gradient norm from its P
    per-tensor norms."""
    rows = np.asarray(rows)
    with np.errstate(over="ignore"):
        norms = np.sqrt(np.sum(rows**2, axis=1))
    redo = _overflowed(norms, rows, axis=1)
    if redo.any():
        largest = np.max(np.abs(rows[redo]), axis=1)  # > 0: squares of zeros do not overflow
        with np.errstate(over="ignore"):  # up to √P × largest: beyond the dtype only where the norm itself is
            norms[redo] = largest * np.sqrt(np.sum((rows[redo] / largest[:, None]) ** 2, axis=1))
    return norms


def median(values: np.ndarray, axis: int | None = None, *, skip_nan: bool = False) -> np.floating | np.ndarray:
    """np.median (np.nanmedian with `skip_nan`) over `axis`: numpy averages the two middle values of an even count,
    and two above half the dtype's largest sum to inf, with a RuntimeWarning. Halving first keeps that sum finite
    and changes no result down to 4.5e-308 (float64): halving and doubling are exact there, and rounding commutes
    with them (below it, a subnormal may lose its last bit)."""
    return 2 * (np.nanmedian if skip_nan else np.median)(np.asarray(values) / 2, axis=axis)
