"""dtype_range.check_fits_dtype: arrays refused before a cast to the training dtype would make them inf."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_core.dtype_range import check_fits_dtype


def test_values_just_beyond_float32_are_refused_and_its_largest_value_kept():
    """4e38 becomes inf as float32 (its largest value is 3.4028235e38); 3.4e38 stays finite."""
    fits = {"head.weight": np.array([[3.4e38, -3.4e38]]), "head.bias": np.array([1.0])}
    check_fits_dtype(fits.items(), "float32", "the weights", ValueError, "pass --dtype float64")
    assert np.all(np.isfinite(fits["head.weight"].astype(np.float32)))
    beyond = {"head.weight": np.array([[1.0, -4e38]]), "head.bias": np.array([4e38])}
    with np.errstate(over="ignore"):  # the overflow the check exists to prevent
        assert not np.any(np.isfinite(beyond["head.bias"].astype(np.float32)))
    with pytest.raises(ValueError) as error:
        check_fits_dtype(beyond.items(), "float32", "the weights", ValueError, "pass --dtype float64")
    assert str(error.value) == (
        "the weights reach beyond float32's largest value 3.4e+38 (largest magnitudes: head.weight 4e+38, "
        "head.bias 4e+38); pass --dtype float64"
    )
    check_fits_dtype(beyond.items(), "float64", "the weights", ValueError, "pass --dtype float64")


def test_arrays_of_one_name_are_judged_together_and_only_those_beyond_are_named():
    """The data pass each split's inputs and targets under "inputs" and "targets": one entry each, its peak the
    largest over the splits; inf (a rescale that overflowed float64) is beyond every dtype."""
    parts = [("inputs", np.array([1.0])), ("targets", np.array([5e38])), ("targets", np.array([-np.inf, 2.0]))]
    with pytest.raises(ValueError) as error:
        check_fits_dtype(parts, "float32", "the data", ValueError, "rescale them")
    assert str(error.value) == (
        "the data reach beyond float32's largest value 3.4e+38 (largest magnitudes: targets inf); rescale them"
    )


def test_float32s_largest_value_itself_fits():
    """np.finfo("float32").max (3.4028235e38) casts to itself: only a value above it is refused."""
    largest = float(np.finfo(np.float32).max)
    check_fits_dtype([("inputs", np.array([-largest, largest]))], "float32", "the data", ValueError, "rescale them")
    assert np.float32(largest) == largest


def test_an_arrays_peak_is_kept_over_a_smaller_later_array_of_its_name():
    """The training split's targets reach 5e38, the validation and test splits' only 1: "targets" is named at 5e38."""
    parts = [("targets", np.array([5e38])), ("inputs", np.array([1.0])), ("targets", np.array([1.0, -0.5]))]
    with pytest.raises(ValueError) as error:
        check_fits_dtype(parts, "float32", "the data", ValueError, "rescale them")
    assert str(error.value) == (
        "the data reach beyond float32's largest value 3.4e+38 (largest magnitudes: targets 5e+38); rescale them"
    )
