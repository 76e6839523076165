from __future__ import annotations

import csv
import json
import math
import re
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.preprocessing import StandardScaler

from lstm_core import cli, data, loop, machine, weights
from lstm_core.config import DATASET_SETTINGS
from lstm_core.records import RUN_FILES

# A small run on windows of 10 steps; TINY adds the sine's length (which a CSV file has instead, and csv refuses).
TINY_WINDOWED = ["--window", "10", "--hidden-size", "8", "--epochs", "2", "--batch-size", "16", "--quiet"]
TINY = ["--num-samples", "300", *TINY_WINDOWED]


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "lstm_core.cli", *args], capture_output=True, text=True)


def test_train_sh_takes_paths_from_where_it_is_run(tmp_path):
    """It used to change to the repository first, so a relative --csv or --out meant a path inside the repository."""
    rows = "\n".join(f"{i},{np.sin(i / 5):.6f}" for i in range(300))
    (tmp_path / "series.csv").write_text("t,y\n" + rows + "\n")
    script = Path(__file__).resolve().parent.parent / "scripts" / "train.sh"
    flags = [
        "--backend",
        "torch",
        *TINY_WINDOWED,
        "--dataset",
        "csv",
        "--csv",
        "series.csv",
        "--target",
        "y",
        "--out",
        "run",
    ]
    result = subprocess.run(["bash", str(script), *flags], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "summary.json").is_file()


def test_readme_names_the_settings_each_dataset_reads():
    """README's Data table, by lstm-train's flags, against config.DATASET_SETTINGS, from which they are refused."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    flag_of = {field: flag for flag, section, field, _, _ in cli.FLAGS if section == "data"}
    for dataset, reads in DATASET_SETTINGS.items():
        row = re.search(rf"^\| `{dataset}`.*\| ([^|]*) \|$", readme, re.MULTILINE)
        assert row is not None, dataset
        assert row.group(1) == (", ".join(f"`{flag_of[name]}`" for name in reads) or "nothing more")


def test_help_explains_every_flag():
    result = run_cli("--help")
    assert result.returncode == 0
    for flag in (
        "--backend",
        "--dataset",
        "--csv",
        "--features",
        "--target",
        "--window",
        "--hidden-size",
        "--num-layers",
        "--dropout",
        "--lr",
        "--weight-decay",
        "--clip-norm",
        "--plateau-factor",
        "--plateau-patience",
        "--plateau-threshold",
        "--plateau-threshold-mode",
        "--plateau-cooldown",
        "--min-lr",
        "--no-plateau",
        "--no-scale",
        "--batch-size",
        "--epochs",
        "--seed",
        "--dtype",
        "--config",
        "--out",
    ):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-0.1"], "lstm-train: error: lr must be > 0, got -0.1"),
        (
            ["--dataset", "csv", "--csv", "/nonexistent/x.csv", "--target", "y"],
            "lstm-train: error: CSV file '/nonexistent/x.csv' does not exist",
        ),
        (["--hidden-size", "ten"], "argument --hidden-size: invalid int value: 'ten'"),
        (["--backend", "tf"], "argument --backend: invalid choice: 'tf'"),
        (["--config", "/nonexistent.toml"], "config file '/nonexistent.toml' does not exist"),
        (["--shards", "5"], "lstm-train: error: shards (5) must divide batch_size (32) into equal parts"),
        (["--shards", "64", "--batch-size", "64"], "lstm-train: error: shards 64 needs 64 cpu devices; jax has"),
        (["--backend", "torch", "--shards", "2"], "shards 2: a setting of the JAX trainer only; drop it"),
        (["--csv", "prices.csv", "--target", "close"], "csv, target apply to dataset 'csv', not 'sine'"),
        (  # digits took --window and trained on its 8 rows without a word
            ["--dataset", "digits", "--window", "50"],
            "lstm-train: error: window applies to datasets 'sine', 'adding' and 'csv', not 'digits'; drop it, or "
            "choose one of those datasets\n",
        ),
        (["--init-from", ""], "lstm-train: error: init_from is empty (''); pass the run directory to start from"),
        (
            ["--init-from", "runs/first", "--epochs", "0", "--doctor"],
            "lstm-train: error: --doctor diagnoses training, and --epochs 0 trains nothing; drop --doctor "
            "(lstm-doctor RUN_DIR diagnoses the --init-from run)\n",
        ),
    ],
)
def test_input_errors_exit_2_with_one_line(args, message, tmp_path):
    result = run_cli(*args, "--out", str(tmp_path / "run"))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_states_the_defaults_a_run_takes():
    """Every value flag's argparse default is None (only given flags override --config), and argparse's own
    formatter printed that: "--epochs EPOCHS training epochs (default: None)" where a run trains 20."""
    text = " ".join(cli.build_parser().format_help().split())  # one line: wrapping depends on the terminal
    assert "(default: None)" not in text
    for stated in (
        "--epochs EPOCHS training epochs (default: 20)",
        "--lr LR Adam learning rate (default: 0.01)",
        "train,val,test fractions, e.g. 0.7,0.15,0.15 (default: 0.7,0.15,0.15)",
        "0 turns clipping off (default: 1.0)",
        "float32 or float64 (default: float32)",
        "run directory for records and weights (default: runs/latest)",
        "--csv CSV CSV file for --dataset csv (header row, numeric columns) --features",
        "comma-separated feature columns of the CSV (default: the target) --target",
    ):
        assert stated in text


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_gpu_asked_for_where_there_is_none_is_one_line(backend, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    assert cli.main(["--backend", backend, *TINY, "--device", "gpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lstm-train: error: ") and "use --device cpu" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_run_writes_every_record(backend, tmp_path, capsys):
    out = tmp_path / backend
    assert cli.main(["--backend", backend, *TINY, "--grad-flow-every", "4", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{backend} · sine · float32" in printed and "test RMSE" in printed
    steps, epochs = read_csv(out / "steps.csv"), read_csv(out / "epochs.csv")
    assert len(steps) == 2 * (200 // 16) and len(epochs) == 2  # 210 points - 10 of window = 200 train windows
    assert {"step", "epoch", "loss", "grad_norm", "clip_factor", "lr", "grad_norm:lstm.weight_hh_l0"} <= set(steps[0])
    assert [row["step"] for row in read_csv(out / "grad_flow.csv")] == ["4", "8", "12", "16", "20", "24"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == backend and summary["steps"] == 24 and summary["dtype"] == "float32"
    assert {
        "final_train_loss",
        "final_val_loss",
        "test_loss",
        "test_rmse",
        "test_mae",
        "wall_seconds",
        "compile_seconds",
        "versions",
    } <= set(summary)
    assert summary["final_val_loss"] < 0.5  # 24 steps take the scaled val MSE from ~0.5 well down
    # test RMSE in the target's own units: √(scaled test MSE) × the target scaler's scale; the float32 mean of the
    # squared errors rounds alike either way (measured 4.7e-8 torch, 2e-8 jax), so 1e-6
    target_scale = json.loads((out / "scaler.json").read_text())["targets"]["scale"][0]
    assert summary["test_rmse"] == pytest.approx(np.sqrt(summary["test_loss"]) * target_scale, rel=1e-6)
    assert 0 < summary["test_mae"] <= summary["test_rmse"]
    threads = f"cpu ({torch.get_num_threads()} threads)"
    assert summary["devices"] == ([threads] if backend == "torch" else ["cpu:0"])  # hidden 8: too small to split
    assert json.loads((out / "config.json").read_text())["model"]["hidden_size"] == 8
    stats = json.loads((out / "data_stats.json").read_text())
    assert stats["scaled"] is True and len(stats["inputs"]["mean"]) == 1
    saved = weights.load(out / weights.WEIGHTS_FILE)
    assert saved["lstm.weight_hh_l0"].shape == (32, 8) and np.isfinite(saved["head.weight"]).all()
    assert sorted(path.name for path in out.iterdir()) == sorted(RUN_FILES)  # what a new run clears, exactly


def test_digits_run_reports_accuracy(tmp_path, capsys):
    out = tmp_path / "digits"
    assert cli.main(["--dataset", "digits", "--hidden-size", "16", "--epochs", "2", "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_accuracy"] > 0.5  # 2 epochs of a 16-unit LSTM already far above the 10 % of chance
    assert "test accuracy" in capsys.readouterr().out


def test_config_file_and_flag_precedence(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("backend = 'jax'\n[model]\nhidden_size = 5\n[training]\nepochs = 7\n")
    args = cli.build_parser().parse_args(["--config", str(path), "--epochs", "3", "--clip-norm", "0"])
    config = cli.config_from_args(args)
    assert config.backend == "jax" and config.model.hidden_size == 5  # from the file
    assert config.training.epochs == 3 and config.clipping.enabled is False  # flags win


@pytest.mark.parametrize("given", ["", " "])
def test_an_empty_config_path_is_refused_not_skipped(given, tmp_path, capsys):
    """`--config "$CFG"` with CFG unset trained the defaults, as if no file had been asked for."""
    assert cli.main([*TINY, "--config", given, "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        f"lstm-train: error: --config is empty ({given!r}); pass a .toml/.yaml/.json file, or leave it out\n"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_a_non_finite_loss_stops_at_once_keeps_finite_weights_and_diagnoses(backend, tmp_path, capsys):
    out = tmp_path / backend
    # lr 1e30 without clipping: Adam moves every weight by ~1e30 at step 1, and step 2's float32 loss overflows
    code = cli.main(["--backend", backend, *TINY, "--lr", "1e30", "--clip-norm", "0", "--out", str(out)])
    assert code == 1
    steps = read_csv(out / "steps.csv")
    assert [row["loss"] for row in steps][-1] == "inf" and len(steps) == 2  # nothing trained on after it
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_nonfinite"] is True and summary["stopped_at_step"] == 2
    saved = weights.load(out / weights.WEIGHTS_FILE)
    assert all(np.isfinite(value).all() for value in saved.values())  # step 1's weights: huge but finite
    assert min(np.abs(value).max() for value in saved.values()) > 1e29  # step 1's, not the initial ones (~0.35)
    assert not (out / "grad_flow.csv").exists()  # step 10's probe came after the stop: dropped with its step
    assert "Cause found: lr_too_high" in capsys.readouterr().out


def huge_series(path: Path) -> np.ndarray:
    """A CSV file of 270 rows: a feature of size 1 and a target of 1e153 (1% wiggle), 6e153 in the last 41 rows, the
    test split (with --window 2, its 39 windows' targets are rows 231 to 269). Returns the target column."""
    rows = np.arange(270)
    target = np.where(rows < 229, 1e153, 6e153) * (1 + 0.01 * np.sin(rows / 3))
    lines = [f"{math.sin(i / 5)!r},{y!r}" for i, y in enumerate(target.tolist())]
    path.write_text("f,y\n" + "\n".join(lines) + "\n")
    return target


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_losses_and_errors_near_float64s_max_are_averaged_without_overflow(backend, tmp_path, capsys):
    """Unscaled targets of 1e153, one per step: 187 finite losses of ~1e306 sum past float64's max. The epoch's
    train loss read inf, the test RMSE too (squares of 6e153), each with a numpy RuntimeWarning on stderr (pytest
    makes it an error here); the run is healthy as far as its numbers go, and ends with 0."""
    target = huge_series(tmp_path / "huge.csv")
    data = [
        "--dataset",
        "csv",
        "--csv",
        str(tmp_path / "huge.csv"),
        "--features",
        "f",
        "--target",
        "y",
        "--window",
        "2",
    ]
    flags = ["--hidden-size", "4", "--no-scale", "--dtype", "float64", "--batch-size", "1", "--epochs", "1", "--quiet"]
    out = tmp_path / backend
    assert cli.main(["--backend", backend, *data, *flags, "--out", str(out)]) == 0
    losses = [Fraction(row["loss"]) for row in read_csv(out / "steps.csv")]
    assert len(losses) == 187 and sum(losses) > Fraction(sys.float_info.max)
    # 1e-14: 187 divisions and numpy's pairwise sum, each rounding once, against the exactly rounded mean
    train_loss = float(read_csv(out / "epochs.csv")[0]["train_loss"])
    assert train_loss == pytest.approx(float(sum(losses) / len(losses)), rel=1e-14)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stopped_nonfinite"] is False and summary["final_train_loss"] == train_loss
    # the errors are the test targets to 1e-150 (the model's outputs are O(1)); 1e-14: the rescaled RMS rounds
    # its 39 divisions, the mean and the square root once each
    tests = [Fraction(y) for y in target[231:].tolist()]
    assert summary["test_rmse"] == pytest.approx(math.sqrt(sum(y * y for y in tests) / len(tests)), rel=1e-14)
    assert summary["test_mae"] == pytest.approx(float(sum(tests) / len(tests)), rel=1e-14)


def test_test_errors_beyond_float64_in_original_units_are_inf_without_a_warning():
    """Scaled outputs of ±1e307 with a target scale of 100 are ±1e309 in original units, beyond float64: the test
    RMSE and MAE are inf, as they are, without sklearn's RuntimeWarning (overflow in its multiply)."""
    scaler = StandardScaler().fit(np.array([[-100.0], [100.0]]))  # mean 0, scale 100
    split = data.Split(x=np.zeros((2, 1, 1)), y=np.zeros((2, 1)))
    prepared = data.Prepared(split, split, split, "regression", 1, None, scaler, {})
    assert loop.test_metrics(prepared, np.array([[1e307], [-1e307]])) == {"test_rmse": math.inf, "test_mae": math.inf}


def test_an_unusable_out_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("not a directory")
    (tmp_path / "taken" / "weights.safetensors").mkdir(parents=True)
    (tmp_path / "dangling").symlink_to(tmp_path / "removed")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    cases = {
        str(tmp_path / "dangling"): f"cannot use --out '{{}}' as the run directory: it is a link to "
        f"{str(tmp_path / 'removed')!r}, which leads nowhere; pass a directory",
        str(tmp_path / "loop"): f"it is a link to {str(tmp_path / 'loop')!r}, which leads nowhere",
        str(tmp_path / "file"): "cannot use --out '{}' as the run directory: it is a file; pass a directory",
        "": "--out is empty; pass the directory the run's records go to",
        str(tmp_path / "taken"): "'{}/weights.safetensors' is a directory, where the run writes its weights",
    }
    for out, message in cases.items():
        assert cli.main([*TINY, "--out", out]) == 2
        assert message.format(out) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--shards", "64", "--batch-size", "64"], "shards 64 needs 64 cpu devices"),  # the JAX trainer's own check
        (["--batch-size", "500"], "batch_size 500 exceeds the 200 training samples"),  # found when batches are drawn
    ],
)
def test_a_refused_run_leaves_the_earlier_run_in_its_out_as_it_was(flags, message, tmp_path, capsys):
    assert cli.main([*TINY, "--out", str(tmp_path)]) == 0
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    assert cli.main([*TINY, *flags, "--out", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


@pytest.mark.parametrize(("flag", "name"), [("--csv", "steps.csv"), ("--config", "config.json")])
def test_an_input_file_that_the_run_would_replace_is_refused(flag, name, tmp_path, capsys):
    """A user's data or config file named as a record, in --out: the run used to read it, then write over it."""
    rows = "\n".join(f"{i},{np.sin(i / 5):.6f}" for i in range(300))
    user_file = tmp_path / name
    user_file.write_text("t,y\n" + rows + "\n" if flag == "--csv" else '{"model": {"hidden_size": 8}}\n')
    csv_flags = ["--dataset", "csv", "--csv", str(user_file), "--target", "y"] if flag == "--csv" else []
    config_flags = ["--config", str(user_file)] if flag == "--config" else []
    before = user_file.read_bytes()
    tiny = TINY_WINDOWED if csv_flags else TINY
    assert cli.main([*tiny, *csv_flags, *config_flags, "--out", str(tmp_path)]) == 2
    assert f"{flag} '{user_file}' is the {name} that this run writes in --out" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir()) == [name] and user_file.read_bytes() == before


def test_evaluating_a_run_into_its_own_directory_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main([*TINY, "--out", str(run)]) == 0
    before = {path.name: path.read_bytes() for path in run.iterdir()}
    assert cli.main([*TINY, "--init-from", str(run), "--epochs", "0", "--out", str(run / ".." / "run")]) == 2
    assert "is the --init-from run; this run would overwrite the records it starts from" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in run.iterdir()} == before  # nothing lost


def ctrl_c_at_epoch(monkeypatch, epoch: int, times: int = 1):
    """Deliver SIGINT to this process `times` times as epoch `epoch` (1-based) draws its batches."""
    draw = loop.datasets.epoch_batches
    calls = iter(range(1, 1000))

    def interrupted(*args):
        if next(calls) == epoch:
            for _ in range(times):
                signal.raise_signal(signal.SIGINT)
        return draw(*args)

    monkeypatch.setattr(loop.datasets, "epoch_batches", interrupted)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_ctrl_c_stops_after_the_epoch_and_saves_that_state(backend, tmp_path, monkeypatch, capsys):
    out = tmp_path / backend
    ctrl_c_at_epoch(monkeypatch, 2)
    assert cli.main(["--backend", backend, *TINY, "--epochs", "5", "--out", str(out)]) == cli.EXIT_INTERRUPTED
    assert "interrupted (Ctrl-C) after epoch 2; its weights were kept" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["epochs_run"] == 2 and summary["steps"] == 2 * 12
    assert len(read_csv(out / "epochs.csv")) == 2 and len(read_csv(out / "steps.csv")) == 2 * 12
    assert all(np.isfinite(value).all() for value in weights.load(out / weights.WEIGHTS_FILE).values())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_ctrl_c_in_the_last_epoch_lets_the_run_complete(tmp_path, monkeypatch, capsys):
    ctrl_c_at_epoch(monkeypatch, 2)
    assert cli.main([*TINY, "--out", str(tmp_path)]) == 0  # TINY trains 2 epochs
    assert "interrupted" not in capsys.readouterr().out
    assert json.loads((tmp_path / "summary.json").read_text())["interrupted"] is False


def test_a_second_ctrl_c_aborts_at_once(tmp_path, monkeypatch, capsys):
    ctrl_c_at_epoch(monkeypatch, 2, times=2)
    assert cli.main([*TINY, "--epochs", "5", "--out", str(tmp_path)]) == cli.EXIT_INTERRUPTED
    assert "aborted by Ctrl-C; no weights or summary were saved" in capsys.readouterr().err
    assert not (tmp_path / "summary.json").exists() and len(read_csv(tmp_path / "epochs.csv")) == 1


def test_a_model_beyond_the_machine_is_refused_before_anything_is_drawn(tmp_path, monkeypatch, capsys):
    """--num-layers 100000 allocates layer by layer: no MemoryError, minutes of swapping, then the OOM killer."""
    monkeypatch.setattr(machine, "memory_bytes", lambda: 2**20)  # a 1 MiB machine
    monkeypatch.setattr(loop.weights_io, "initial_weights", lambda *args: pytest.fail("drew the weights"))
    # 4H(1 + H) + 2 * 4H + H + 1 = 1,055,233 parameters * (8 + 4 * 4) bytes, and 16 * 10 * 6H * 4 bytes of activations
    assert cli.main([*TINY, "--hidden-size", "512", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == (
        "lstm-train: error: a model of 1,055,233 parameters (--hidden-size 512, --num-layers 1) trained on batches "
        "of 16 x 10 steps: at least 0.0254 GiB of memory, and this process may use 0.000977 GiB (the machine's "
        "memory, or its container's limit where smaller); reduce --hidden-size, --num-layers, --batch-size or "
        "--window\n"
    )
    assert list((tmp_path / "run").iterdir()) == []


def test_an_allocation_beyond_the_machine_is_one_line(tmp_path, monkeypatch, capsys):
    """numpy raises MemoryError at once for sizes no machine holds (--hidden-size 100000 asks 298 GiB)."""

    def too_large(*args):
        raise MemoryError("Unable to allocate 298. GiB for an array with shape (400000, 100000)")

    monkeypatch.setattr(loop.weights_io, "initial_weights", too_large)
    assert cli.main([*TINY, "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        "lstm-train: error: out of memory (Unable to allocate 298. GiB for an array with shape (400000, 100000)); "
        "reduce --hidden-size, --num-layers or --batch-size, or the data (--num-samples, --window)\n"
    )


def test_backend_choices_are_the_configs_backends():
    """--backend offers config.BACKENDS, no more: a choice validate refuses would pass argparse."""
    text = " ".join(cli.build_parser().format_help().split())
    assert "--backend {torch,jax}" in text
