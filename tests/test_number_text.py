"""lstm_core.number_text: numbers and ratios as the doctor words them."""

from __future__ import annotations

import math

import pytest

from lstm_core.number_text import times


@pytest.mark.parametrize(
    ("ratio", "text"),
    [
        (0.25, "0.25×"),
        (400.0, "400×"),
        (31000.0, "3.1e4×"),
        (1.5e308, "1.5e308×"),  # finite however large: its own value
        (math.inf, "more than 1e308×"),  # a quotient past float64's max
        (math.nan, "nan×"),
    ],
)
def test_times_words_a_ratio(ratio, text):
    assert times(ratio) == text
