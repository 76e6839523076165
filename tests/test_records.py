from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from lstm_core.records import RUN_FILES, RecordsWriter, check_run_dir, clear_run_dir, write_atomically


def read(path):
    with path.open() as handle:
        return list(csv.reader(handle))


def test_step_epoch_and_grad_flow_files(tmp_path):
    writer = RecordsWriter(tmp_path, ["lstm.weight_ih_l0", "head.bias"])
    writer.write_steps(
        {
            "step": np.array([1, 2]),
            "epoch": np.array([1, 1]),
            "loss": np.array([0.5, np.nan]),
            "grad_norm": np.array([2.0, 3.0]),
            "clip_factor": np.array([0.5, 1 / 3]),
            "lr": np.array([0.01, 0.01]),
            "grad_norm:lstm.weight_ih_l0": np.array([1.0, 2.0]),
            "grad_norm:head.bias": np.array([0.1, 0.2]),
        }
    )
    writer.write_epoch(epoch=1, train_loss=0.5, val_loss=0.25, lr=0.01, seconds=1.5)
    writer.write_grad_flow(np.array([2]), np.arange(6, dtype=float).reshape(1, 2, 3))
    steps = read(tmp_path / "steps.csv")
    assert steps[0] == [
        "step",
        "epoch",
        "loss",
        "grad_norm",
        "clip_factor",
        "lr",
        "grad_norm:lstm.weight_ih_l0",
        "grad_norm:head.bias",
    ]
    assert steps[1][:3] == ["1", "1", "0.5"] and math.isnan(float(steps[2][2]))
    assert float(steps[2][4]) == 1 / 3  # repr keeps every digit, so parity can be checked from the files
    assert read(tmp_path / "epochs.csv") == [
        ["epoch", "train_loss", "val_loss", "lr", "seconds"],
        ["1", "0.5", "0.25", "0.01", "1.5"],
    ]
    assert read(tmp_path / "grad_flow.csv") == [
        ["step", "layer", "t0", "t1", "t2"],
        ["2", "0", "0.0", "1.0", "2.0"],
        ["2", "1", "3.0", "4.0", "5.0"],
    ]


def test_json_carries_non_finite_numbers(tmp_path):
    writer = RecordsWriter(tmp_path, [])
    writer.write_json("summary.json", {"loss": float("inf"), "values": np.array([1.5, np.nan]), "count": np.int64(3)})
    assert json.loads((tmp_path / "summary.json").read_text()) == {"loss": "inf", "values": [1.5, "nan"], "count": 3}


def test_a_run_directory_starts_without_an_earlier_runs_files(tmp_path):
    """An interrupted run must not sit beside an older run's weights and summary; files not ours stay."""
    for name in (*RUN_FILES, "notes.txt"):
        (tmp_path / name).write_text("earlier run")
    clear_run_dir(check_run_dir(tmp_path))
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]
    assert check_run_dir(tmp_path / "new" / "run").is_dir()  # created with its parents


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path, failure):
    """A full disk, or a Ctrl-C (not an Exception) while the weights are written."""
    path = tmp_path / "summary.json"
    path.write_text("old")

    def half_then_fail(temporary):
        temporary.write_text("ha")
        raise failure

    with pytest.raises(type(failure)):
        write_atomically(path, half_then_fail)
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"] and path.read_text() == "old"
    write_atomically(path, lambda temporary: temporary.write_text("new"))
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"] and path.read_text() == "new"
