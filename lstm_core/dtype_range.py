"""Arrays the trainers are about to cast to the training dtype, checked to fit its range first: a float64 value
beyond float32's largest (3.4e38) would become inf in the cast, and every loss after it NaN. Used for the data
(`data.check_fits_dtype`) and for the weights an --init-from run hands over (`loop.prepare`)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def check_fits_dtype(
    arrays: Iterable[tuple[str, np.ndarray]], dtype: str, what: str, error: type[Exception], fix: str
) -> None:
    """Raise `error` unless every value of the (name, array) pairs fits `dtype` ("float32"): `what` the arrays are,
    the dtype's largest value, each name (the pairs of one name taken together) whose largest magnitude is beyond
    it, then `fix`."""
    largest = float(np.finfo(dtype).max)
    peaks: dict[str, float] = {}
    for name, values in arrays:
        peaks[name] = max(peaks.get(name, 0.0), float(np.max(np.abs(values))))
    beyond = [f"{name} {peak:.3g}" for name, peak in peaks.items() if peak > largest]
    if beyond:
        raise error(
            f"{what} reach beyond {dtype}'s largest value {largest:.3g} (largest magnitudes: {', '.join(beyond)}); "
            f"{fix}"
        )
