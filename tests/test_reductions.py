"""lstm_core.reductions: numpy's own mean, RMS and L2 norms where those are finite, and the rescaled ones where
finite values overflowed them (no RuntimeWarning: pytest makes any warning an error here)."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_core import reductions


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ordinary_values_give_numpys_own_results_bit_for_bit(rng, dtype):
    values = rng.lognormal(0.0, 2.0, 1000).astype(dtype)
    assert reductions.mean(values) == np.mean(values)
    errors = rng.standard_normal((1000, 1)).astype(dtype)
    assert reductions.root_mean_square(errors) == np.sqrt(np.mean(errors**2))


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.array([1.5e308, 1e308]), 1.25e308),  # halves, exact in float64, sum exactly
        (np.array([3e38, 3e38], dtype=np.float32), np.float32(3e38)),  # float32's sum passes its 3.4e38
    ],
)
def test_mean_of_values_whose_sum_overflows(values, expected):
    assert reductions.mean(values) == expected


def test_mean_keeps_the_inf_and_nan_the_values_hold():
    """A diverged step's loss is in the epoch's mean (the step that stopped the run): inf or nan it stays."""
    assert reductions.mean(np.array([1e308, 1e308, np.inf])) == np.inf
    assert np.isnan(reductions.mean(np.array([1.0, np.nan])))


def test_root_mean_square_of_errors_whose_squares_overflow():
    errors = np.array([[3 * 2.0**600], [-3 * 2.0**600]])  # squares 9 × 2**1200: beyond float64's 2**1024
    assert reductions.root_mean_square(errors) == 3 * 2.0**600  # powers of two: every step exact
    assert reductions.root_mean_square(np.array([1e308, np.inf])) == np.inf


def test_l2_norms_of_ordinary_rows_are_numpys_own_bit_for_bit(rng):
    rows = rng.lognormal(0.0, 3.0, (50, 6))
    np.testing.assert_array_equal(reductions.l2_norms(rows), np.sqrt(np.sum(rows**2, axis=1)))


def test_l2_norms_of_rows_whose_squares_overflow():
    """Per row: an ordinary one, one whose squares pass float64's max (3·2**600, 4·2**600: exactly 5·2**600,
    powers of two keeping every step exact), one whose norm itself lies beyond it, and one holding an inf."""
    rows = np.array([[3.0, 4.0], [3 * 2.0**600, 4 * 2.0**600], [1.5e308, 1.5e308], [np.inf, 1.0]])
    np.testing.assert_array_equal(reductions.l2_norms(rows), [5.0, 5 * 2.0**600, np.inf, np.inf])


def test_median_is_numpys_own_and_its_middle_pair_does_not_overflow(rng):
    values = rng.lognormal(0.0, 2.0, (6, 1000))
    assert np.array_equal(reductions.median(values, axis=1), np.median(values, axis=1))  # halving is exact
    values[0, 3] = np.nan
    assert np.array_equal(reductions.median(values, axis=1, skip_nan=True), np.nanmedian(values, axis=1))
    assert reductions.median(np.array([1.5e308, 1e308])) == 1.25e308  # np.median: inf, with a RuntimeWarning
