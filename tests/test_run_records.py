"""lstm_core.run_records: a run directory read back into arrays, and one RunRecordsError naming the file and
what is wrong for directories that are missing, not a run's, truncated or malformed (synthetic run
directories written with the real RecordsWriter)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from test_diagnosis import PARAMS, healthy_grads, healthy_loss, rewrite_json, write_run

from lstm_core.records import RecordsWriter
from lstm_core.run_records import RunRecordsError, load_run


def test_load_run_parses_nonfinite_values(tmp_path, rng):
    n = 50
    loss = healthy_loss(n, rng)
    loss[40], loss[41], loss[42] = np.inf, -np.inf, np.nan
    records = load_run(write_run(tmp_path / "r", loss, healthy_grads(n, rng)))
    assert records.num_steps == 50
    assert records.loss[40] == np.inf and records.loss[41] == -np.inf and np.isnan(records.loss[42])
    assert records.step[0] == 1 and records.epoch[-1] == 2
    assert set(records.param_grad_norms) == set(PARAMS)
    assert records.grad_flow is not None and records.grad_flow.norms.shape == (5, 20)
    assert records.config["model"]["hidden_size"] == 32


def test_missing_directory(tmp_path):
    with pytest.raises(RunRecordsError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_file_instead_of_directory(tmp_path):
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(RunRecordsError, match="is a file, not a run directory"):
        load_run(tmp_path / "f.txt")


def test_not_a_run(tmp_path):
    with pytest.raises(RunRecordsError, match=re.escape("not a run directory: it has no steps.csv or epochs.csv")):
        load_run(tmp_path)


def test_a_parity_directory_names_its_backends_run_directories(tmp_path, rng):
    for backend in ("torch", "jax"):
        write_run(tmp_path / "parity" / backend, healthy_loss(50, rng), healthy_grads(50, rng))
    parity = tmp_path / "parity"
    expected = f"{str(parity)!r} holds lstm-parity's runs, one per backend: pass {str(parity / 'torch')!r} or "
    with pytest.raises(RunRecordsError, match=re.escape(expected + repr(str(parity / "jax")))):
        load_run(parity)


def test_a_parity_directory_with_one_backends_run_names_that_one(tmp_path, rng):
    write_run(tmp_path / "parity" / "jax", healthy_loss(50, rng), healthy_grads(50, rng))
    (tmp_path / "parity" / "torch").mkdir()  # created, but no records in it
    parity = tmp_path / "parity"
    with pytest.raises(RunRecordsError) as error:
        load_run(parity)
    expected = f"{str(parity)!r} holds lstm-parity's runs, one per backend: pass {str(parity / 'jax')!r}"
    assert str(error.value) == expected


def test_empty_backend_folders_are_not_a_parity_run(tmp_path):
    """lstm-parity refused before training leaves its torch/ and jax/ folders empty: nothing to point at."""
    for backend in ("torch", "jax"):
        (tmp_path / backend).mkdir()
    with pytest.raises(RunRecordsError) as error:
        load_run(tmp_path)
    assert str(error.value) == (
        f"{str(tmp_path)!r} is not a run directory: it has no steps.csv or epochs.csv; pass the directory "
        "lstm-train wrote (its --out)"
    )


def test_a_record_that_is_a_broken_link_is_refused_not_skipped(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    (path / "summary.json").unlink()
    (path / "summary.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(RunRecordsError) as error:
        load_run(path)
    assert str(error.value) == (
        f"cannot read run record {str(path / 'summary.json')!r}: No such file or directory; the file is corrupt or "
        "not written by lstm-train"
    )


def test_missing_epochs_csv(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    (path / "epochs.csv").unlink()
    with pytest.raises(RunRecordsError, match=re.escape("lacks epochs.csv")):
        load_run(path)


def test_truncated_row(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    text = (path / "steps.csv").read_text().rstrip("\n")
    (path / "steps.csv").write_text(text.rsplit(",", 3)[0] + "\n")  # the last row lost 3 fields
    with pytest.raises(
        RunRecordsError, match=re.escape("steps.csv line 51 has 9 fields, the header has 12: the file is truncated")
    ):
        load_run(path)


def test_a_field_beyond_the_csv_field_limit(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "steps.csv").read_text().splitlines()
    lines[5] = '"' + lines[5]  # a quote never closed: the field runs on past the csv module's 131072 characters
    (path / "steps.csv").write_text("\n".join(lines + ["1"] * 70000) + "\n")
    with pytest.raises(RunRecordsError) as error:
        load_run(path)
    assert str(error.value) == (
        f"run record {str(path / 'steps.csv')!r} line 6: field larger than field limit (131072), as when a quote "
        "that opens a field is never closed (the field then runs on to the end of the file); close that quote or "
        "remove it"
    )


def test_header_missing_columns(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "epochs.csv").read_text().splitlines()
    (path / "epochs.csv").write_text(
        "\n".join(
            ["epoch,train_loss,lr,seconds"]
            + [",".join(line.split(",")[:2] + line.split(",")[3:]) for line in lines[1:]]
        )
        + "\n"
    )
    with pytest.raises(RunRecordsError, match=re.escape("epochs.csv header lacks required column")):
        load_run(path)


def test_empty_steps_file(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    (path / "steps.csv").write_text("")
    with pytest.raises(RunRecordsError, match=r"steps\.csv .* is empty"):
        load_run(path)


def test_zero_steps(tmp_path):
    RecordsWriter(tmp_path / "r", PARAMS)  # writes only the headers, as a run that stopped in epoch 1
    with pytest.raises(RunRecordsError, match="zero optimizer steps"):
        load_run(tmp_path / "r")


def test_an_evaluation_run_points_at_the_run_it_evaluated(tmp_path):
    """`lstm-train --epochs 0 --init-from RUN` writes headers only: it did not stop early, it trained nothing."""
    writer = RecordsWriter(tmp_path / "r", PARAMS)
    writer.write_json("config.json", {"training": {"epochs": 0, "init_from": "runs/first"}})
    with pytest.raises(RunRecordsError) as error:
        load_run(tmp_path / "r")
    assert str(error.value) == (
        f"{str(tmp_path / 'r')!r} holds an evaluation (--epochs 0) of the run in 'runs/first', no training steps; "
        "diagnose that run instead"
    )


def test_a_continued_run_with_no_steps_is_not_taken_for_an_evaluation(tmp_path):
    """--init-from with --epochs 2, stopped before its first step: it was meant to train."""
    writer = RecordsWriter(tmp_path / "r", PARAMS)
    writer.write_json("config.json", {"training": {"epochs": 2, "init_from": "runs/first"}})
    expected = f"steps.csv in {str(tmp_path / 'r')!r} has a header but no rows: the run recorded zero"
    with pytest.raises(RunRecordsError, match=re.escape(expected)):
        load_run(tmp_path / "r")


@pytest.mark.parametrize(("blank_lines", "line"), [(0, 4), (1, 5)])
def test_not_a_number_is_named_by_its_file_line(tmp_path, rng, blank_lines, line):
    """A blank line before the bad row, which the csv reader skips, still counts in the line named."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "steps.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[2] = "oops"
    lines[3] = ",".join(fields)
    lines[2:2] = [""] * blank_lines
    (path / "steps.csv").write_text("\n".join(lines) + "\n")
    message = f"steps.csv line {line}, column 'loss': 'oops' is not a number"
    with pytest.raises(RunRecordsError, match=re.escape(message)):
        load_run(path)


@pytest.mark.parametrize(("field", "column", "text"), [(0, "step", "3.5"), (1, "epoch", "1.25")])
def test_a_step_or_epoch_number_with_a_fraction_is_refused_not_cut(tmp_path, rng, field, column, text):
    """int(float('3.5')) read it as step 3, a second step 3 beside the real one."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "steps.csv").read_text().splitlines()
    fields = lines[3].split(",")
    fields[field] = text
    lines[3] = ",".join(fields)
    (path / "steps.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(RunRecordsError) as error:
        load_run(path)
    assert str(error.value) == f"steps.csv line 4, column {column!r}: {text!r} is not a whole number"


def test_whole_numbers_written_as_floats_are_read(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    lines = (path / "steps.csv").read_text().splitlines()
    lines[3] = ",".join(["3.0", "1e0", *lines[3].split(",")[2:]])  # as a spreadsheet may save them
    (path / "steps.csv").write_text("\n".join(lines) + "\n")
    records = load_run(path)
    assert (records.step[2], records.epoch[2]) == (3, 1)


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "summary.json",
            '{"task": "classification", "task": "regression"}',
            "has the key 'task' twice in one object (keep one of them)",
        ),
        # json's RecursionError, and its ValueError past 4300 digits, were tracebacks
        (
            "summary.json",
            '{"task": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "is nested too deeply to read (brackets or indents thousands of levels deep)",
        ),
        (
            "summary.json",
            '{"num_classes": ' + "1" * 5000 + "}",
            "holds an integer of more than 4300 digits, beyond any value it could set",
        ),
        (
            "summary.json",
            '{"backend": "torch", "steps": ',  # cut short
            "is not valid JSON: Expecting value (at line 1, column 31, where the text ends)",
        ),
        ("data_stats.json", "[1, 2]", "must hold a mapping {name: value, ...}, got [1, 2]"),
        ("data_stats.json", "null", "must hold a mapping {name: value, ...}, got None"),
    ],
)
def test_a_json_record_the_parser_refuses_is_named_with_its_problem(tmp_path, rng, name, text, problem):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    (path / name).write_text(text)
    with pytest.raises(RunRecordsError) as error:
        load_run(path)
    assert str(error.value) == (
        f"run record {str(path / name)!r} {problem}; the file is corrupt or not written by lstm-train"
    )


def test_a_loss_below_zero_is_refused_not_judged(tmp_path, rng):
    """The rules compare losses by ratios (an earlier low of -2 makes any later point an 'infinite rebound'):
    a negative loss, e.g. a Gaussian negative log-likelihood from a plain loop, is refused by its line."""
    loss = healthy_loss(50, rng)
    loss[9] = -0.5
    path = write_run(tmp_path / "r", loss, healthy_grads(50, rng))
    with pytest.raises(RunRecordsError, match=re.escape("steps.csv line 11: the loss is -0.5, below 0; the doctor")):
        load_run(path)


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("config.json", lambda r: r["model"].update(hidden_size="big"), "model.hidden_size must be a positive whole"),
        ("config.json", lambda r: r["model"].update(hidden_size=-4), "model.hidden_size must be a positive whole"),
        ("config.json", lambda r: r["model"].update(num_layers=True), "model.num_layers must be a positive whole"),
        ("config.json", lambda r: r["model"].update(dropout=[0.1]), "model.dropout must be a number"),
        ("config.json", lambda r: r["optimizer"].update(lr="0.01"), "optimizer.lr must be a number, got '0.01'"),
        ("config.json", lambda r: r["optimizer"].update(weight_decay="nan"), "optimizer.weight_decay must be a"),
        ("config.json", lambda r: r["clipping"].update(max_norm={}), "clipping.max_norm must be a number"),
        ("config.json", lambda r: r["plateau"].update(min_lr="0"), "plateau.min_lr must be a number, got '0'"),
        ("config.json", lambda r: r["training"].update(epochs=2.5), "training.epochs must be a positive whole"),
        ("config.json", lambda r: r["training"].update(rnn=["cudnn"]), "training.rnn must be text, got ['cudnn']"),
        (
            "config.json",
            lambda r: r["data"].update(dataset="mnist"),
            "data.dataset must be one of sine, adding, digits, csv, got 'mnist'",
        ),
        ("config.json", lambda r: r["data"].update(splits=["a", 0.2, 0.1]), "data.splits[0] must be a number"),
        ("config.json", lambda r: r["data"].update(features=5), "data.features must be a list of column names"),
        ("data_stats.json", lambda r: r["inputs"].update(mean="x"), "inputs.mean must be a list of numbers, got 'x'"),
        ("data_stats.json", lambda r: r["targets"].update(std=[1, "x"]), "targets.std[1] must be a number, got 'x'"),
        ("summary.json", lambda r: r.update(num_classes="ten"), "num_classes must be a positive whole number"),
    ],
)
def test_malformed_record_field_names_the_file_and_field(tmp_path, rng, name, edit, message):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng), scaled=False)
    rewrite_json(path, name, edit)
    with pytest.raises(RunRecordsError, match=re.escape(f"{name}: {message}")) as error:
        load_run(path)
    assert str(error.value).endswith("; the file is corrupt or not written by lstm-train")


def edit_csv(path, name: str, line: int, column: str, text: str) -> None:
    """Set `column` of file line `line` (1: the header) of the CSV record `name` to `text`, as a hand edit."""
    lines = (path / name).read_text().splitlines()
    fields = lines[line - 1].split(",")
    fields[lines[0].split(",").index(column)] = text
    lines[line - 1] = ",".join(fields)
    (path / name).write_text("\n".join(lines) + "\n")


EDITED = "no run writes that: the records were edited or corrupted; re-run the training that wrote them"


NEGATIVE_NORM = "is negative, which no norm is"
OUTSIDE_CLIP = "is outside [0, 1], where min(1, max_norm / norm) lies"
NOT_LR = "is not a learning rate (finite, >= 0)"
STEP_OUT_OF_ORDER = "is not above the step on the row before it: steps go up, one row each"


@pytest.mark.parametrize(
    ("name", "line", "column", "text", "refused"),
    [
        ("steps.csv", 4, "grad_norm", "-0.5", f"'grad_norm': '-0.5' {NEGATIVE_NORM}"),
        ("steps.csv", 4, "grad_norm", "-inf", f"'grad_norm': '-inf' {NEGATIVE_NORM}"),
        (
            "steps.csv",
            9,
            "grad_norm:lstm.bias_ih_l0",
            "-0.001",
            f"'grad_norm:lstm.bias_ih_l0': '-0.001' {NEGATIVE_NORM}",
        ),
        ("steps.csv", 4, "clip_factor", "1.5", f"'clip_factor': '1.5' {OUTSIDE_CLIP}"),
        ("steps.csv", 4, "clip_factor", "-0.1", f"'clip_factor': '-0.1' {OUTSIDE_CLIP}"),
        ("steps.csv", 4, "lr", "-0.01", f"'lr': '-0.01' {NOT_LR}"),
        ("steps.csv", 4, "lr", "nan", f"'lr': 'nan' {NOT_LR}"),
        ("steps.csv", 4, "lr", "inf", f"'lr': 'inf' {NOT_LR}"),
        ("steps.csv", 2, "step", "0", "'step': '0' is below 1: steps are numbered from 1"),
        ("steps.csv", 5, "step", "3", f"'step': '3' {STEP_OUT_OF_ORDER}"),  # step 3 twice
        ("steps.csv", 5, "step", "2", f"'step': '2' {STEP_OUT_OF_ORDER}"),  # back to step 2
        ("steps.csv", 2, "epoch", "0", "'epoch': '0' is below 1: epochs are numbered from 1"),
        ("steps.csv", 28, "epoch", "1", "'epoch': '1' is below the epoch on the row before it: epochs only go up"),
        (
            "epochs.csv",
            3,
            "epoch",
            "1",
            "'epoch': '1' is not above the epoch on the row before it: epochs go up, one row each",
        ),
        ("epochs.csv", 2, "lr", "-0.01", f"'lr': '-0.01' {NOT_LR}"),
        ("grad_flow.csv", 2, "step", "0", "'step': '0' is below 1: steps are numbered from 1"),
        ("grad_flow.csv", 3, "step", "5", "'step': '5' is below the step on the row before it: steps only go up"),
        # step 10 twice, each with its one layer 0: the layer repeats
        (
            "grad_flow.csv",
            3,
            "step",
            "10",
            "'layer': '0' is not above the layer on the row before it, of the same step",
        ),
        ("grad_flow.csv", 2, "layer", "-1", "'layer': '-1' is below 0: layers are numbered from 0"),
        ("grad_flow.csv", 4, "t7", "-0.2", f"'t7': '-0.2' {NEGATIVE_NORM}"),
        ("grad_flow.csv", 3, "t19", "-0.2", f"'t19': '-0.2' {NEGATIVE_NORM}"),  # the last of T = 20 columns
        # a spreadsheet may pad a field: the value reads as -0.5 and is named as such
        ("steps.csv", 4, "grad_norm", " -0.5 ", f"'grad_norm': '-0.5' {NEGATIVE_NORM}"),
    ],
)
def test_a_value_no_run_writes_is_refused_by_its_line(tmp_path, rng, name, line, column, text, refused):
    """Hand edits the rules would judge as given (a negative norm read as a tiny one, a clip factor of 1.5 as
    no clipping, a repeated step as two): refused, naming the file, line, column and value. Steps 1-25 are
    epoch 1 (lines 2-26); grad_flow.csv probes steps 10, 20, ... with one layer, a row each from line 2."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    edit_csv(path, name, line, column, text)
    with pytest.raises(RunRecordsError) as error:
        load_run(path)
    assert str(error.value) == f"{name} line {line}, column {refused}; {EDITED}"


def test_an_epoch_loss_below_zero_is_refused_as_a_step_loss_is(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    edit_csv(path, "epochs.csv", 3, "val_loss", "-0.2")
    with pytest.raises(RunRecordsError, match=re.escape("epochs.csv line 3: the val_loss is -0.2, below 0; the")):
        load_run(path)


def test_values_a_diverged_run_or_a_warm_up_writes_are_read(tmp_path, rng):
    """What the trainers really write at the edges: a loss and grad norm that overflowed to inf or nan (clip
    factor 0 for an inf norm, nan for a nan one, as torch and optax compute it), ‖dL/dh_t‖ nan at a diverged
    probe, and a learning rate of 0 at a warm-up schedule's first step (optax's init_value=0.0)."""
    n = 50
    loss, grads = healthy_loss(n, rng), healthy_grads(n, rng)
    loss[44], grads[44] = np.inf, np.inf
    loss[45:], grads[45:] = np.nan, np.nan
    lr = np.full(n, 0.01)
    lr[0] = 0.0
    records = load_run(write_run(tmp_path / "r", loss, grads, lr=lr))
    assert records.loss[44] == records.grad_norm[44] == np.inf
    assert records.clip_factor[44] == 0.0 and np.isnan(records.clip_factor[45])
    assert records.lr[0] == 0.0 and records.lr[1] == 0.01
    assert records.grad_flow is not None and np.all(np.isnan(records.grad_flow.norms[-1]))  # the probe at step 50


def test_of_two_values_no_run_writes_the_first_is_named(tmp_path, rng):
    """Two hand edits, a negative grad norm on line 9 and one on line 4: the refusal names line 4."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    edit_csv(path, "steps.csv", 9, "grad_norm", "-2.5")
    edit_csv(path, "steps.csv", 4, "grad_norm", "-0.5")
    with pytest.raises(RunRecordsError) as error:
        load_run(path)
    assert str(error.value) == f"steps.csv line 4, column 'grad_norm': '-0.5' {NEGATIVE_NORM}; {EDITED}"


def test_of_two_losses_below_zero_the_first_is_named(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    edit_csv(path, "steps.csv", 11, "loss", "-2.5")
    edit_csv(path, "steps.csv", 5, "loss", "-0.5")
    with pytest.raises(RunRecordsError, match=re.escape("steps.csv line 5: the loss is -0.5, below 0; the doctor")):
        load_run(path)


def test_norms_of_exactly_zero_are_read(tmp_path, rng):
    """A gradient of exactly 0 (a parameter the loss does not reach, a probe at a saturated gate) is a norm a
    run writes: only norms below 0 are refused."""
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    edit_csv(path, "steps.csv", 4, "grad_norm", "0.0")
    edit_csv(path, "steps.csv", 4, "grad_norm:head.bias", "0.0")
    edit_csv(path, "grad_flow.csv", 2, "t0", "0.0")
    records = load_run(path)
    assert records.grad_norm[2] == records.param_grad_norms["head.bias"][2] == 0.0
    assert records.grad_flow is not None and records.grad_flow.norms[0, 0] == 0.0


def test_an_epoch_train_loss_below_zero_is_refused_as_the_val_loss_is(tmp_path, rng):
    path = write_run(tmp_path / "r", healthy_loss(50, rng), healthy_grads(50, rng))
    edit_csv(path, "epochs.csv", 2, "train_loss", "-0.2")
    with pytest.raises(RunRecordsError, match=re.escape("epochs.csv line 2: the train_loss is -0.2, below 0; the")):
        load_run(path)
