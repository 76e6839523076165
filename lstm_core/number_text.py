"""Numbers as the doctor writes them for people: 3 significant figures with a compact exponent, ratios as
"400×", and the values of lstm-train flags in its remedies."""

from __future__ import annotations

import math


def num(x: float) -> str:
    """3 significant figures, compact exponent: 31000 -> '3.1e4', 0.00012 -> '1.2e-4', 0.25 -> '0.25'."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    text = f"{x:.3g}" if 1e-3 <= abs(x) < 1e4 else f"{x:.2e}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def times(ratio: float) -> str:
    """A ratio: 0.25 -> '0.25×', 400 -> '400×', 31000 -> '3.1e4×'. inf (a quotient of finite values past
    float64's max of 1.8e308, or a rise from 0) -> 'more than 1e308×', which says how far it went."""
    if ratio == math.inf:
        return "more than 1e308×"
    if not math.isfinite(ratio):
        return f"{ratio}×"
    return f"{ratio:.0f}×" if 100 <= ratio < 1e4 else f"{num(ratio) if ratio >= 1e4 else f'{ratio:.2g}'}×"


def flag_value(value: float) -> str:
    """A float flag value with at most 2 significant figures: 1.0, 0.05, 0.0035, 1e-05."""
    value = float(f"{value:.2g}")
    return f"{value:.1f}" if value.is_integer() and abs(value) < 1e6 else f"{value:g}"
