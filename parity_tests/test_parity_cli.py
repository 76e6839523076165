"""`lstm-parity`: lstm-train's flags, a table, parity.json and parity.png, exit 1 when out of tolerance."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from jax.experimental import rnn

from lstm_core import cli as train_cli
from lstm_core.cli import EXIT_INTERRUPTED
from lstm_core.config import load_file
from lstm_core.records import RUN_FILES
from lstm_jax import cudnn
from lstm_jax import model as jax_model
from parity_tests import cases, cli

FLAGS = ["--dtype", "float64", "--num-samples", "300", "--hidden-size", "17", "--batch-size", "16", "--quiet"]
FLAGS = [*FLAGS, "--clip-norm", "1.55", "--plateau-patience", "1", "--plateau-factor", "0.5"]
FLAGS = [*FLAGS, "--plateau-threshold", "0.5", "--grad-flow-every", "1"]
REPORT_KEYS = {"passed", "steps", "dtype", "device", "jax_rnn", "quantities", "lr_reductions"}
QUANTITY_KEYS = {"name", "max_diff", "tolerance", "passed", "first_failing_step"}


def test_a_passing_run_writes_the_report_the_plot_and_both_records(tmp_path, capsys):
    assert cli.main([*FLAGS, "--epochs", "5", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "parity.json").read_text())
    assert set(report) >= REPORT_KEYS and report["passed"] is True and report["first_failure"] is None
    assert (report["steps"], report["dtype"], report["device"], report["jax_rnn"]) == (55, "float64", "cpu", "scan")
    assert report["lr_reductions"] == {"torch": [4], "jax": [4]}
    names = [q["name"] for q in report["quantities"]]
    assert names[:4] == ["outputs", "loss", "grads_same_weights", "grads"] and "lr_reductions" in names
    for quantity in report["quantities"]:
        assert set(quantity) >= QUANTITY_KEYS and quantity["passed"] and quantity["first_failing_step"] is None
        assert quantity["max_diff"] <= quantity["tolerance"]
    assert (tmp_path / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    columns = {}
    for backend in ("torch", "jax"):
        with (tmp_path / backend / "steps.csv").open() as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == 55
        columns[backend] = list(rows[0])
    assert columns["torch"] == columns["jax"] and "grad_norm:lstm.bias_hh_l0" in columns["torch"]
    printed = capsys.readouterr().out
    assert "PASSED: 55 steps, float64 on cpu (JAX recurrence: scan)" in printed and "grads_same_weights" in printed


def test_a_failing_run_exits_1_and_names_the_first_step_and_quantity(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(jax_model.LSTMStack, "param", cases.single_bias_param)
    assert cli.main([*FLAGS, "--epochs", "1", "--out", str(tmp_path)]) == 1
    report = json.loads((tmp_path / "parity.json").read_text())
    assert report["passed"] is False
    failing = {q["name"]: q["first_failing_step"] for q in report["quantities"] if not q["passed"]}
    assert failing["grads_same_weights"] == 1 and failing["loss"] == 2
    assert report["first_failure"] == {"name": "grads_same_weights", "step": 1}
    assert "first out of tolerance: grads_same_weights at step 1" in capsys.readouterr().out


def test_usage_and_input_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--backend", "jax", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "trains both backends; drop --backend" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--doctor", "--out", str(tmp_path)])
    assert exit_info.value.code == 2 and "does not diagnose; drop --doctor" in capsys.readouterr().err
    assert cli.main(["--hidden-size", "0", "--out", str(tmp_path)]) == 2
    assert "hidden_size must be a positive integer, got 0" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("")
    refused = {
        ("--epochs", "0", "--init-from", str(tmp_path)): "lstm-parity compares training steps: --epochs must be >= 1",
        ("--num-layers", "2", "--dropout", "0.3"): "dropout masks come from each backend's own random numbers",
        ("--out", str(tmp_path / "a-file")): "cannot use --out '{}' as the run directory: it is a file".format(
            tmp_path / "a-file"
        ),
        ("--out", ""): "--out is empty; pass the directory",
    }
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "parity.json").write_text("{}")  # an earlier run's report: a refused run keeps it
    for args, message in refused.items():
        assert cli.main(["--out", str(tmp_path / "run"), *args]) == 2
        assert message in capsys.readouterr().err
    assert (tmp_path / "run" / "parity.json").read_text() == "{}"


def test_a_run_on_the_cudnn_path_says_so_in_its_report(tmp_path, capsys, monkeypatch):
    """On CPU, with jax's reference LSTM standing in for the cuDNN kernel (as tests/test_cudnn.py does): the report
    names the recurrence the JAX side ran, not the default scan."""

    def reference_lstm(x, h_0, c_0, flat, lengths, input_size, hidden_size, num_layers, dropout, bidirectional):
        w_ih, w_hh, b_ih, b_hh = rnn.unpack_lstm_weights(flat, input_size, hidden_size, num_layers, bidirectional)
        return rnn.lstm_ref(
            x, h_0, c_0, w_ih, w_hh, b_ih, b_hh, lengths, input_size, hidden_size, num_layers, dropout, bidirectional
        )

    monkeypatch.setattr(cudnn.rnn, "lstm", reference_lstm)
    monkeypatch.setattr(cudnn, "require_gpu", lambda device: None)
    flags = ["--num-samples", "300", "--hidden-size", "8", "--batch-size", "16", "--epochs", "1", "--quiet"]
    assert cli.main([*flags, "--rnn", "cudnn", "--out", str(tmp_path)]) == 0
    loaded = {backend: load_file(tmp_path / backend / "config.json") for backend in ("torch", "jax")}
    assert (loaded["torch"].training.rnn, loaded["jax"].training.rnn) == ("scan", "cudnn")
    report = json.loads((tmp_path / "parity.json").read_text())
    assert (report["dtype"], report["jax_rnn"]) == ("float32", "cudnn")
    assert "steps, float32 on cpu (JAX recurrence: cudnn)" in capsys.readouterr().out


def test_a_run_refused_by_a_trainer_keeps_the_earlier_report(tmp_path, capsys):
    """A refusal that only a trainer can make (the devices it finds) used to come after the earlier report was
    removed: here more shards than this machine's CPU devices, on a GPU machine rnn 'cudnn' on --device cpu."""
    for earlier in ("parity.json", "parity.png"):
        (tmp_path / earlier).write_text("earlier")
    assert cli.main([*FLAGS, "--epochs", "1", "--shards", "64", "--batch-size", "64", "--out", str(tmp_path)]) == 2
    assert "lstm-parity: error: shards 64 needs 64 cpu devices" in capsys.readouterr().err
    assert [(tmp_path / name).read_text() for name in ("parity.json", "parity.png")] == ["earlier", "earlier"]


def test_a_backend_directory_that_cannot_hold_records_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "torch").write_text("a file where the torch records go")
    assert cli.main([*FLAGS, "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"lstm-parity: error: cannot use --out {str(tmp_path / 'torch')!r} as the run directory: it is a file; "
        "pass a directory\n"
    )
    (tmp_path / "torch").unlink()
    (tmp_path / "jax" / "steps.csv").mkdir(parents=True)
    assert cli.main([*FLAGS, "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"lstm-parity: error: {str(tmp_path / 'jax' / 'steps.csv')!r} is a directory, where the run writes its "
        "steps.csv; pass another --out\n"
    )


def test_a_run_or_input_in_a_backend_directory_is_kept(tmp_path, capsys):
    """lstm-parity writes each backend's records where a run (--init-from) or an input file may already lie."""
    run_dir = tmp_path / "out" / "torch"
    assert train_cli.main(["--backend", "torch", *FLAGS, "--epochs", "1", "--out", str(run_dir)]) == 0
    before = {name: (run_dir / name).read_bytes() for name in RUN_FILES if (run_dir / name).exists()}
    out = ["--out", str(tmp_path / "out")]
    assert cli.main([*FLAGS, "--epochs", "1", *out, "--init-from", str(run_dir)]) == 2
    assert f"lstm-parity: error: --out {str(run_dir)!r} is the --init-from run" in capsys.readouterr().err
    config = tmp_path / "out" / "jax" / "config.json"
    config.parent.mkdir()
    config.write_text('{"training": {"epochs": 1}}')
    assert cli.main([*FLAGS, *out, "--config", str(config)]) == 2
    assert f"lstm-parity: error: --config {str(config)!r} is the config.json that this run writes" in (
        capsys.readouterr().err
    )
    assert {name: (run_dir / name).read_bytes() for name in before} == before
    assert config.read_text() == '{"training": {"epochs": 1}}'
    # a run that goes ahead leaves no earlier run's weights or summary beside its records
    assert cli.main([*FLAGS, *out, "--epochs", "1"]) == 0
    assert sorted(path.name for path in run_dir.iterdir()) == [
        "config.json",
        "epochs.csv",
        "grad_flow.csv",
        "steps.csv",
    ]


def test_each_backends_config_json_is_what_it_ran_and_loads_again(tmp_path):
    """The torch side's config.json used to carry the JAX trainer's own settings (here unroll 2; on a GPU
    rnn 'cudnn'), which torch does not run and `lstm-train --config` refuses for backend torch."""
    assert cli.main([*FLAGS, "--epochs", "1", "--unroll", "2", "--out", str(tmp_path)]) == 0
    loaded = {backend: load_file(tmp_path / backend / "config.json") for backend in ("torch", "jax")}
    assert (loaded["torch"].backend, loaded["torch"].training.unroll) == ("torch", 1)
    assert (loaded["jax"].backend, loaded["jax"].training.unroll) == ("jax", 2)
    assert loaded["torch"].model == loaded["jax"].model and loaded["torch"].data == loaded["jax"].data


def test_ctrl_c_is_one_line_and_exit_130(tmp_path, monkeypatch, capsys):
    """No StopRequest here: the lockstep run aborts at once, as lstm-train's second Ctrl-C does."""

    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli.engine.datasets, "epoch_batches", ctrl_c)  # the first epoch, once both trainers are built
    for earlier in ("parity.json", "parity.png"):  # an earlier run's report must not pass for this run's
        (tmp_path / earlier).write_text("earlier")
    assert cli.main([*FLAGS, "--out", str(tmp_path)]) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == (
        f"lstm-parity: aborted by Ctrl-C; nothing was compared and no report was written (the records of finished "
        f"epochs, if any, are in {tmp_path / 'torch'} and {tmp_path / 'jax'})\n"
    )
    assert not (tmp_path / "parity.json").exists() and not (tmp_path / "parity.png").exists()


def test_the_console_script_takes_lstm_train_flags():
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["lstm-parity"] == "parity_tests.cli:main"
    assert "parity_tests*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    result = subprocess.run(
        [sys.executable, "-m", "parity_tests.cli", "--help"], capture_output=True, text=True, check=True
    )
    for flag in ("--init-from", "--device", "--dtype", "--clip-norm", "--plateau-patience", "--out"):
        assert flag in result.stdout
    assert "--backend" not in result.stdout and "--doctor" not in result.stdout  # refused, so not offered
