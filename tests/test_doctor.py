"""`lstm-doctor`: exit codes, text and JSON output, one-line errors for unreadable records (on synthetic run
directories, no training), and, marked slow, the healthy defaults of every dataset raising no alarm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from test_diagnosis import healthy_grads, healthy_loss, write_huge_run, write_run

from lstm_core import diagnosis, doctor
from lstm_core.diagnosis_report import format_report
from lstm_core.records import RecordsWriter


def exploding_run(path: Path, rng) -> Path:
    n = 250
    loss, grads = healthy_loss(n, rng), rng.lognormal(0.0, 0.2, n)
    grads[211] = 3.1e4
    loss[214:], grads[214:] = np.inf, np.nan
    return write_run(path, loss, grads, clip=False)


def test_healthy_run_exits_0(tmp_path, rng, capsys):
    path = write_run(tmp_path / "ok", healthy_loss(400, rng), healthy_grads(400, rng))
    assert doctor.main([str(path)]) == doctor.EXIT_HEALTHY == 0
    out = capsys.readouterr().out
    assert "Healthy: no cause found." in out
    assert "[ok]      unscaled_data, exploding_gradients, lr_too_high, lr_too_low, vanishing_gradients" in out


def test_found_cause_exits_3_with_evidence_and_flags(tmp_path, rng, capsys):
    assert doctor.main([str(exploding_run(tmp_path / "boom", rng))]) == doctor.EXIT_CAUSE_FOUND == 3
    out = capsys.readouterr().out
    assert "Cause found: exploding_gradients" in out
    assert "reached 3.1e4 at step 212" in out and "loss became inf at step 215" in out
    assert "fix: --clip-norm 1.0 (clipping is off)" in out


def test_json_output(tmp_path, rng, capsys):
    assert doctor.main([str(exploding_run(tmp_path / "boom", rng)), "--json"]) == 3
    report = json.loads(capsys.readouterr().out)  # strict JSON: no NaN or Infinity tokens
    assert report["causes"] == ["exploding_gradients"]
    assert set(report["causes"]) <= set(diagnosis.CAUSES)
    assert report["findings"]["exploding_gradients"]["status"] == "found"
    assert report["findings"]["exploding_gradients"]["remedy"].startswith("--clip-norm 1.0")


def test_json_of_a_healthy_run_has_an_empty_cause_list(tmp_path, rng, capsys):
    path = write_run(tmp_path / "ok", healthy_loss(400, rng), healthy_grads(400, rng))
    assert doctor.main([str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["causes"] == [] and report["healthy"] is True


def test_report_returns_text_and_exit_code(tmp_path, rng):
    text, code = doctor.report(exploding_run(tmp_path / "boom", rng))
    assert code == 3 and text.startswith("Diagnosis of ")
    text, code = doctor.report(tmp_path / "boom", as_json=True)
    assert code == 3 and json.loads(text)["causes"] == ["exploding_gradients"]


def run_with_binary(path: Path, record: str) -> Path:
    """A healthy run whose `record` file is overwritten with bytes that are not UTF-8, as disk corruption leaves."""
    run_dir = write_run(path / "r", np.linspace(1.0, 0.1, 50), np.ones(50))
    (run_dir / record).write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    return run_dir


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "does not exist"),
        (lambda p: p, "is not a run directory: it has no steps.csv or epochs.csv"),
        (lambda p: RecordsWriter(p / "r", ["head.bias"]).out_dir, "the run recorded zero optimizer steps"),
        (
            lambda p: run_with_binary(p, "steps.csv"),
            "run record '{p}/r/steps.csv' is not UTF-8 text (byte 0x89 on line 1); the file is corrupt or not",
        ),
        (lambda p: run_with_binary(p, "summary.json"), "run record '{p}/r/summary.json' is not UTF-8 text"),
    ],
    ids=["missing", "not-a-run", "zero-steps", "binary-steps", "binary-summary"],
)
def test_unreadable_records_exit_2_with_one_line(tmp_path, capsys, make, message):
    assert doctor.main([str(make(tmp_path))]) == doctor.EXIT_UNREADABLE == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("lstm-doctor: error: ")
    assert message.format(p=tmp_path) in captured.err


@pytest.mark.parametrize("given", ["", " "])
def test_an_empty_run_dir_is_refused_not_read_as_the_current_directory(given, tmp_path, rng, capsys, monkeypatch):
    """`lstm-doctor "$RUN"` with RUN unset: Path("") is ".", which diagnosed whatever run the shell stood in."""
    monkeypatch.chdir(write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng)))
    assert doctor.main([given]) == doctor.EXIT_UNREADABLE
    assert capsys.readouterr().err == (
        f"lstm-doctor: error: the run directory is empty ({given!r}); pass the directory lstm-train wrote (its --out)\n"
    )


@pytest.mark.parametrize(
    ("record", "edit", "message"),
    [
        (
            "config.json",
            lambda r: r["model"].update(hidden_size="big"),
            "config.json: model.hidden_size must be a positive whole number, got 'big'; the file is corrupt or not "
            "written by lstm-train",
        ),
        (
            "data_stats.json",
            lambda r: r["inputs"].update(mean="x"),
            "data_stats.json: inputs.mean must be a list of numbers, got 'x'; the file is corrupt",
        ),
        (
            "data_stats.json",
            lambda r: r["inputs"].update(mean=["x"]),
            "data_stats.json: inputs.mean[0] must be a number, got 'x'; the file is corrupt",
        ),
    ],
    ids=["hidden-size-text", "mean-text", "mean-list-of-text"],
)
def test_malformed_record_field_exits_2_with_one_line(tmp_path, rng, capsys, record, edit, message):
    """Fields of the wrong type were int()/float() tracebacks; with scaling off the doctor reads the raw means."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng), scaled=False)
    content = json.loads((path / record).read_text())
    edit(content)
    (path / record).write_text(json.dumps(content))
    assert doctor.main([str(path)]) == doctor.EXIT_UNREADABLE
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith(f"lstm-doctor: error: {message}")


def test_a_hand_edited_grad_norm_exits_2_with_one_line(tmp_path, rng, capsys):
    """A negative gradient norm, which no run writes, was diagnosed as a tiny one."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "steps.csv").read_text().splitlines()
    fields = lines[6].split(",")
    fields[3] = "-2.5"  # step 6's grad_norm
    lines[6] = ",".join(fields)
    (path / "steps.csv").write_text("\n".join(lines) + "\n")
    assert doctor.main([str(path)]) == doctor.EXIT_UNREADABLE
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "lstm-doctor: error: steps.csv line 7, column 'grad_norm': '-2.5' is negative, which no norm is; no run "
        "writes that: the records were edited or corrupted; re-run the training that wrote them\n"
    )


def test_reader_that_stops_early_ends_quietly(tmp_path, rng):
    """`lstm-doctor RUN | head -1`: a pipe whose reader is gone (here before the doctor writes, so the write
    fails whatever the pipe's buffer holds) ends the output without a BrokenPipeError, with the verdict's status."""
    path = exploding_run(tmp_path / "boom", rng)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lstm_core.doctor", str(path)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            cwd=Path(__file__).parents[1],
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == doctor.EXIT_CAUSE_FOUND


def test_losses_near_float64s_max_are_diagnosed_with_nothing_on_stderr(tmp_path, rng):
    """As a user runs it, outside pytest's warning filter: numpy's overflow warnings went to stderr."""
    n = 300
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    loss[150:], grads[150:] = 1.7e308, 1e300
    path = write_huge_run(tmp_path / "huge", loss, grads, clip=False)
    result = subprocess.run(
        [sys.executable, "-m", "lstm_core.doctor", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[1],
        check=False,
    )
    assert (result.returncode, result.stderr) == (doctor.EXIT_CAUSE_FOUND, "")
    assert "Cause found: exploding_gradients" in result.stdout
    assert "the median loss of the next 20 steps was more than 1e308× that of the 20 before" in result.stdout


def test_run_too_short_to_judge_exits_3_with_a_note_not_an_lr(tmp_path, rng, capsys):
    """lstm-train --epochs 1 --num-samples 160 --batch-size 64: one optimizer step. The doctor prescribed
    --lr 1.8 (100x the default), which diverges; the run is too short to judge, so it says to train longer."""
    path = write_run(tmp_path / "r", [0.75], [1.2])
    assert doctor.main([str(path)]) == doctor.EXIT_CAUSE_FOUND
    out = capsys.readouterr().out
    assert "Cause found" not in out and "--lr" not in out
    assert "Note: only 1 optimizer step, fewer than 100: too short to judge why the loss is still 0.75× the " in out
    assert "train longer: --epochs 100 (≥ 100 optimizer steps), then run the doctor again" in out


def test_truncated_steps_exit_2(tmp_path, rng, capsys):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "steps.csv").read_text().splitlines()
    lines[-1] = lines[-1][: len(lines[-1]) // 2]  # the last row cut in half, as a killed run can leave it
    (path / "steps.csv").write_text("\n".join(lines))
    assert doctor.main([str(path)]) == 2
    assert "the file is truncated" in capsys.readouterr().err


def test_console_scripts_point_at_main():
    scripts = tomllib.loads(Path(__file__).parents[1].joinpath("pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["lstm-doctor"] == "lstm_core.doctor:main"
    assert scripts["lstm-zoo"] == "lstm_core.zoo:main"


# -------------------------------------------------------------------------------- slow: real healthy runs
HEALTHY_SEEDS = (0, 1, 2)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("dataset", ["sine", "adding", "digits"])
@pytest.mark.parametrize("seed", HEALTHY_SEEDS)
def test_defaults_raise_no_alarm(tmp_path, backend, dataset, seed):
    """lstm-train's defaults (20 epochs) on every bundled dataset, several seeds: no cause found."""
    from lstm_core.zoo import train_run

    run = train_run(["--dataset", dataset, "--seed", str(seed)], backend, tmp_path / "run")
    assert run.diagnosis.causes == (), format_report(run.diagnosis)
    assert run.diagnosis.healthy
