"""lstm_core.diagnosis_report: the doctor's verdict as strict JSON and as terminal text."""

from __future__ import annotations

import json

import numpy as np
from test_diagnosis import healthy_loss, run, write_run

from lstm_core import diagnosis as dg
from lstm_core.diagnosis_report import format_report, to_json


def test_to_json_is_strict_json(tmp_path, rng):
    n = 250
    loss = healthy_loss(n, rng)
    grads = rng.lognormal(0.0, 0.2, n)
    grads[211] = 3.1e4
    loss[214:], grads[214:] = np.inf, np.nan
    d = run(write_run(tmp_path / "boom", loss, grads, clip=False))
    out = to_json(d)
    text = json.dumps(out, allow_nan=False)
    back = json.loads(text)
    assert back["causes"] == ["exploding_gradients"]
    assert back["healthy"] is False
    assert set(back["findings"]) == set(dg.CAUSES)
    assert back["findings"]["exploding_gradients"]["numbers"]["spike_step"] == 212
    assert back["findings"]["exploding_gradients"]["remedy"].startswith("--clip-norm 1.0")
    report = format_report(d)
    assert "Cause found: exploding_gradients" in report
    assert "fix: --clip-norm 1.0" in report
