"""`lstm-train --init-from RUN_DIR`: either backend continues or evaluates a run made by either backend."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from lstm_core import cli, convert, loop
from lstm_core import weights as weights_io
from lstm_core.config import from_dict

TINY_MODEL = ["--dtype", "float64", "--hidden-size", "8", "--batch-size", "16", "--grad-flow-every", "0", "--quiet"]
TINY_SINE = ["--num-samples", "300", "--window", "10"]  # settings another dataset refuses
TINY = [*TINY_SINE, *TINY_MODEL]


def train(backend: str, out, *flags: str) -> dict:
    assert cli.main(["--backend", backend, "--out", str(out), *TINY, *flags]) == 0
    return json.loads((out / "summary.json").read_text())


def step_losses(run_dir) -> np.ndarray:
    with (run_dir / "steps.csv").open() as handle:
        return np.array([float(row["loss"]) for row in csv.DictReader(handle)])


@pytest.fixture(scope="module")
def source_runs(tmp_path_factory):
    """A 2-epoch run of each backend (float64, 22 steps)."""
    root = tmp_path_factory.mktemp("sources")
    return {backend: (root / backend, train(backend, root / backend, "--epochs", "2")) for backend in ("torch", "jax")}


@pytest.mark.parametrize(("source", "target"), [("torch", "jax"), ("jax", "torch")])
def test_one_backend_evaluates_the_others_run(source, target, source_runs, tmp_path):
    run_dir, trained = source_runs[source]
    evaluated = train(target, tmp_path, "--init-from", str(run_dir), "--epochs", "0")
    # The same float64 weights evaluated by the other library on the same (scaled) data: rounding only.
    for key in ("final_val_loss", "test_loss", "test_rmse"):
        assert evaluated[key] == pytest.approx(trained[key], rel=1e-12, abs=0)
    # Nothing trained, so the weights written are the weights read, bit for bit.
    written, read = (
        weights_io.load(tmp_path / weights_io.WEIGHTS_FILE),
        weights_io.load(run_dir / "weights.safetensors"),
    )
    assert set(written) == set(read)
    for name in read:
        np.testing.assert_array_equal(written[name], read[name])


def test_both_backends_continue_a_run_alike(source_runs, tmp_path):
    run_dir, _ = source_runs["torch"]
    continued = {
        backend: train(backend, tmp_path / backend, "--init-from", str(run_dir), "--epochs", "2")
        for backend in ("torch", "jax")
    }
    # steps.csv's per-tensor columns in the model's order on both sides, as in a run from fresh weights (the
    # weights file sorts its names; the JAX trainer once took that order and its columns differed from torch's).
    headers = [(path / "steps.csv").read_text().splitlines()[0] for path in (tmp_path / "jax", tmp_path / "torch")]
    assert headers[0] == headers[1] == (run_dir / "steps.csv").read_text().splitlines()[0]
    # 22 more float64 steps from the same weights and scaler: the parity suite's float64 bound (1e-10).
    np.testing.assert_allclose(step_losses(tmp_path / "jax"), step_losses(tmp_path / "torch"), rtol=1e-10)
    assert continued["jax"]["final_val_loss"] == pytest.approx(continued["torch"]["final_val_loss"], rel=1e-10, abs=0)
    # ...and they did continue: from the source's final weights, not from fresh ones (whose first loss is ~1).
    assert step_losses(tmp_path / "torch")[0] < 0.5 * step_losses(run_dir)[0]


def test_the_runs_scaler_replaces_the_one_fitted_here(source_runs, tmp_path):
    run_dir, _ = source_runs["torch"]
    source_scaler = json.loads((run_dir / "scaler.json").read_text())
    sections = {"data": {"num_samples": 300, "window": 10}, "model": {"hidden_size": 8}}
    other_seed = from_dict({**sections, "training": {"seed": 1}})  # other noise: another fitted scaler
    fitted_here, _, _ = loop.prepare(other_seed)
    assert convert.scaler_record(fitted_here) != source_scaler
    started, weights, _ = loop.prepare(from_dict({**sections, "training": {"seed": 1, "init_from": str(run_dir)}}))
    assert convert.scaler_record(started) == source_scaler
    raw = fitted_here.val.x * fitted_here.feature_scaler.scale_ + fitted_here.feature_scaler.mean_
    expected = (raw - source_scaler["features"]["mean"]) / source_scaler["features"]["scale"]
    np.testing.assert_allclose(started.val.x, expected, rtol=1e-12)  # one affine map each way, float64
    np.testing.assert_allclose(started.inverse_targets(started.val.y), fitted_here.inverse_targets(fitted_here.val.y))
    assert list(weights) == list(weights_io.parameter_shapes(1, 8, 1, 1))  # the model's order, not the file's
    # On the run's own data the scalers are equal and the arrays are handed back untouched.
    same, _, _ = loop.prepare(from_dict({**sections, "training": {"init_from": str(run_dir)}}))
    own, _, _ = loop.prepare(from_dict(sections))
    np.testing.assert_array_equal(same.train.x, own.train.x)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (
            [*TINY_SINE, "--hidden-size", "9"],
            "this run's has 1 input(s), hidden size 9, 1 layer(s), 1 output(s): pass --hidden-size 8",
        ),
        (
            [*TINY_SINE, "--num-layers", "2", "--hidden-size", "4"],
            "this run's has 1 input(s), hidden size 4, 2 layer(s), 1 output(s): pass --hidden-size 8 --num-layers 1",
        ),
        (
            ["--dataset", "digits"],
            "this run's has 8 input(s), hidden size 8, 1 layer(s), 10 output(s): use the dataset and --features the "
            "run was trained on",
        ),
    ],
)
def test_a_run_that_does_not_fit_is_refused_with_exit_2(flags, message, source_runs, tmp_path, capsys):
    """The message names the run's model (as its weights have it), this run's, and what makes them equal."""
    run_dir, _ = source_runs["torch"]
    argv = ["--backend", "jax", "--out", str(tmp_path), *TINY_MODEL, "--init-from", str(run_dir), *flags]
    assert cli.main(argv) == 2
    run_model = "holds a model of 1 input(s), hidden size 8, 1 layer(s), 1 output(s); "
    assert capsys.readouterr().err == f"lstm-train: error: --init-from {str(run_dir)!r} {run_model}{message}\n"


@pytest.mark.parametrize(
    ("this", "fix"),
    [
        # the inputs alone, or the outputs alone, differ: the data, not a flag, makes them equal
        ((2, 8, 1, 1), "use the dataset and --features the run was trained on"),
        ((1, 8, 1, 10), "use the dataset and --features the run was trained on"),
        ((3, 9, 1, 1), "pass --hidden-size 8; use the dataset and --features the run was trained on"),
    ],
)
def test_a_model_that_differs_in_its_inputs_or_outputs_alone_is_refused(this, fix):
    with pytest.raises(weights_io.WeightsError) as error:
        loop.check_same_model((1, 8, 1, 1), this, Path("runs/first"))
    inputs, hidden, layers, outputs = this
    assert str(error.value) == (
        "--init-from 'runs/first' holds a model of 1 input(s), hidden size 8, 1 layer(s), 1 output(s); this run's "
        f"has {inputs} input(s), hidden size {hidden}, {layers} layer(s), {outputs} output(s): {fix}"
    )


def test_a_missing_run_directory_and_epochs_0_without_a_run_are_refused(tmp_path, capsys):
    assert cli.main(["--out", str(tmp_path), *TINY, "--init-from", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory; pass a run directory" in capsys.readouterr().err
    assert cli.main(["--out", str(tmp_path), *TINY, "--epochs", "0"]) == 2
    assert "epochs must be a positive integer, got 0" in capsys.readouterr().err


def tiny_run(path, weights=None, scaler=None):
    """A run directory holding only what --init-from reads: weights for sine (1 input, hidden 8) and a scaler."""
    path.mkdir()
    weights = weights or weights_io.initial_weights(1, 8, 1, 1, np.random.default_rng(0))
    weights_io.save(weights, path / weights_io.WEIGHTS_FILE)
    scaler = scaler or {"features": {"mean": [0.0], "scale": [1.0]}, "targets": {"mean": [0.0], "scale": [1.0]}}
    (path / convert.SCALER_FILE).write_text(json.dumps(scaler))
    return path


def test_non_finite_weights_are_refused_with_exit_2(tmp_path, capsys):
    weights = weights_io.initial_weights(1, 8, 1, 1, np.random.default_rng(0))
    weights["lstm.weight_hh_l0"][3, 5] = np.nan
    run_dir = tiny_run(tmp_path / "run", weights)
    assert cli.main(["--out", str(tmp_path / "out"), *TINY, "--init-from", str(run_dir)]) == 2
    path = run_dir / weights_io.WEIGHTS_FILE
    expected = (
        f"weights file {str(path)!r}: lstm.weight_hh_l0 has 1 non-finite value(s); "
        "start from a run that ended with finite weights\n"
    )
    assert capsys.readouterr().err == f"lstm-train: error: {expected}"


def test_a_run_without_weights_or_with_folders_for_files_is_refused_with_exit_2(tmp_path, capsys):
    run_dir = tiny_run(tmp_path / "run")
    weights_path, scaler_path = run_dir / weights_io.WEIGHTS_FILE, run_dir / convert.SCALER_FILE
    flags = ["--out", str(tmp_path / "out"), *TINY, "--init-from", str(run_dir), "--epochs", "0"]
    weights_path.unlink()  # as a run aborted by a second Ctrl-C leaves it
    assert cli.main(flags) == 2
    assert capsys.readouterr().err == (
        f"lstm-train: error: run directory {str(run_dir)!r} has no weights.safetensors: its run was aborted "
        "before it saved them; start from a run that finished\n"
    )
    weights_path.mkdir()
    assert cli.main(flags) == 2
    assert capsys.readouterr().err == (
        f"lstm-train: error: weights file {str(weights_path)!r} is a directory, not a safetensors file; pass the file\n"
    )
    scaler_path.unlink()
    scaler_path.mkdir()
    assert cli.main(flags) == 2
    assert capsys.readouterr().err == (
        f"lstm-train: error: cannot read scaler file {str(scaler_path)!r}: Is a directory; re-run the training that "
        "wrote it\n"
    )


def test_a_run_scaled_otherwise_than_its_start_is_refused_with_exit_2(tmp_path, capsys):
    """The start's scaler replaces the one fitted here, so the other setting of --no-scale would be ignored and
    the records (data_stats.json's "scaled") would say what did not happen; the same setting trains."""
    scaled = tiny_run(tmp_path / "scaled")
    unscaled = tiny_run(tmp_path / "unscaled", scaler={"features": None, "targets": None})
    flags = ["--out", str(tmp_path / "out"), *TINY, "--epochs", "0", "--init-from"]
    assert cli.main([*flags, str(scaled), "--no-scale"]) == 2
    assert capsys.readouterr().err == (
        f"lstm-train: error: --no-scale, but --init-from {str(scaled)!r} was trained on scaled data, which its "
        "weights take: drop --no-scale (that run's scaler is applied)\n"
    )
    assert cli.main([*flags, str(unscaled)]) == 2
    assert capsys.readouterr().err == (
        f"lstm-train: error: --init-from {str(unscaled)!r} was trained on unscaled data (--no-scale), which its "
        "weights take: pass --no-scale too\n"
    )
    assert cli.main([*flags, str(unscaled), "--no-scale"]) == 0
    assert json.loads((tmp_path / "out" / "data_stats.json").read_text())["scaled"] is False


def test_float64_weights_beyond_float32_are_refused_for_a_float32_run(tmp_path, capsys):
    weights = weights_io.initial_weights(1, 8, 1, 1, np.random.default_rng(0))
    weights["head.weight"][0, 2] = -1e300  # finite in the file, -inf once cast to float32
    run_dir = tiny_run(tmp_path / "run", weights)
    flags = ["--out", str(tmp_path / "out"), *TINY, "--init-from", str(run_dir), "--epochs", "0"]
    assert cli.main([*flags, "--dtype", "float32"]) == 2
    expected = (
        f"the weights in --init-from {str(run_dir)!r} reach beyond float32's largest value 3.4e+38 (largest "
        "magnitudes: head.weight 1e+300); pass --dtype float64, or start from another run\n"
    )
    assert capsys.readouterr().err == f"lstm-train: error: {expected}"
    assert not (tmp_path / "out" / "summary.json").exists()


@pytest.mark.parametrize(
    ("features", "problem"),
    [
        (
            {"mean": [float("nan"), 0.0], "scale": [1.0, float("inf")]},
            "features.mean has 1 non-finite value(s); features.scale has 1 non-finite value(s)",
        ),
        ({"mean": ["-inf"], "scale": [1.0]}, "features.mean has 1 non-finite value(s)"),
        ({"mean": [0.0, 0.0], "scale": [0.0, -2.0]}, "features.scale has 2 value(s) <= 0"),
    ],
    ids=["nan-and-inf", "inf-as-records-writes-it", "not-positive"],
)
def test_non_finite_or_non_positive_scaling_is_refused(features, problem, tmp_path):
    run_dir = tiny_run(tmp_path / "run", scaler={"features": features, "targets": None})
    expected = f"scaler file {str(run_dir / convert.SCALER_FILE)!r}: {problem}"
    with pytest.raises(weights_io.WeightsError, match=re.escape(expected)):
        convert.load_run(run_dir)


@pytest.mark.parametrize(
    ("scaler", "wrong"),
    [
        ({"features": {"mu": [0]}, "targets": None}, "'features' is {'mu': [0]}"),
        ({"features": [1, 2], "targets": None}, "'features' is [1, 2]"),
        (
            {"features": {"mean": ["abc"], "scale": [1]}, "targets": None},
            "'features' is {'mean': ['abc'], 'scale': [1]}",
        ),
        (
            {"features": {"mean": [[0.0]], "scale": [[1.0]]}, "targets": None},
            "'features' is {'mean': [[0.0]], 'scale': [[1.0]]}",
        ),
        (
            {"features": {"mean": [0, 0], "scale": [1]}, "targets": None},
            "'features' is {'mean': [0, 0], 'scale': [1]}",
        ),
        ({"features": None, "targets": 3}, "'targets' is 3"),
        (  # numpy would read true as 1.0
            {"features": {"mean": [True], "scale": [1]}, "targets": None},
            "'features' is {'mean': [True], 'scale': [1]}",
        ),
    ],
    ids=["unknown-keys", "a-list", "text", "nested-lists", "unequal-lengths", "a-number", "a-boolean"],
)
def test_malformed_scaling_names_the_entry(scaler, wrong, tmp_path):
    run_dir = tiny_run(tmp_path / "run", scaler=scaler)
    expected = (
        f"scaler file {str(run_dir / convert.SCALER_FILE)!r}: {wrong}; each of 'features' and 'targets' must be "
        "null or {'mean': [numbers], 'scale': [positive numbers]} with lists of equal length; re-run the training "
        "that wrote it"
    )
    with pytest.raises(weights_io.WeightsError, match=re.escape(expected)):
        convert.load_run(run_dir)


def test_a_scaler_file_giving_a_key_twice_is_refused(tmp_path):
    """json would keep the last 'features' (null here: the data would go unscaled into a model trained scaled)."""
    run_dir = tiny_run(tmp_path / "run")
    text = '{"features": {"mean": [0], "scale": [1]}, "targets": {"mean": [0], "scale": [1]}, "features": null}'
    (run_dir / convert.SCALER_FILE).write_text(text)
    with pytest.raises(weights_io.WeightsError) as error:
        convert.load_run(run_dir)
    assert str(error.value) == (
        f"scaler file {str(run_dir / convert.SCALER_FILE)!r} has the key 'features' twice in one object (keep one "
        "of them); re-run the training that wrote it"
    )


def test_a_scaler_file_nested_beyond_the_json_parsers_depth_is_refused(tmp_path):
    run_dir = tiny_run(tmp_path / "run")
    (run_dir / convert.SCALER_FILE).write_text('{"features": ' + "[" * 100_000 + "]" * 100_000 + "}")
    expected = (
        f"scaler file {str(run_dir / convert.SCALER_FILE)!r} is nested too deeply to read (brackets or indents "
        "thousands of levels deep); re-run the training that wrote it"
    )
    with pytest.raises(weights_io.WeightsError, match=re.escape(expected)):  # json's RecursionError was a traceback
        convert.load_run(run_dir)


def test_a_scaler_file_that_is_not_utf8_is_refused(tmp_path):
    run_dir = tiny_run(tmp_path / "run")
    (run_dir / convert.SCALER_FILE).write_bytes(b"\xff\xfe{\x00}")
    with pytest.raises(weights_io.WeightsError) as error:
        convert.load_run(run_dir)
    assert str(error.value) == (
        f"scaler file {str(run_dir / convert.SCALER_FILE)!r} is not UTF-8 text (byte 0xff on line 1); re-run the "
        "training that wrote it"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '{"features": null, "targets": ',
            "is not valid JSON: Expecting value (at line 1, column 31, where the text ends)",
        ),
        ("[null, null]", "must hold a mapping {name: value, ...}, got [None, None]"),
        ('{"features": null}', "must hold 'features' and 'targets', got {'features': None}"),
    ],
    ids=["cut-short", "a-list", "no-targets"],
)
def test_a_scaler_file_without_both_entries_is_refused(tmp_path, text, problem):
    run_dir = tiny_run(tmp_path / "run")
    (run_dir / convert.SCALER_FILE).write_text(text)
    with pytest.raises(weights_io.WeightsError) as error:
        convert.load_run(run_dir)
    assert str(error.value) == (
        f"scaler file {str(run_dir / convert.SCALER_FILE)!r} {problem}; re-run the training that wrote it"
    )


def test_valid_scaler_files_still_load(tmp_path):
    # Classification runs write targets: null; a hand-written file may hold integers, read as floats.
    scaler = {"features": {"mean": [2], "scale": [0.5]}, "targets": None}
    start = convert.load_run(tiny_run(tmp_path / "run", scaler=scaler))
    assert start.scaler["targets"] is None
    mean, scale = start.scaler["features"]
    assert (mean.tolist(), scale.tolist(), mean.dtype, scale.dtype) == ([2.0], [0.5], np.float64, np.float64)


def test_a_run_scaling_that_stretches_these_data_beyond_float32_is_refused(tmp_path, capsys):
    """A positive but tiny scale passes the scaler checks; the data it scales must still fit the training dtype."""
    scaler = {"features": {"mean": [0.0], "scale": [1e-300]}, "targets": {"mean": [0.0], "scale": [1.0]}}
    run_dir = tiny_run(tmp_path / "run", scaler=scaler)
    argv = ["--out", str(tmp_path / "out"), *TINY, "--dtype", "float32", "--init-from", str(run_dir)]
    assert cli.main(argv) == 2
    expected = (
        "the data reach beyond float32's largest value 3.4e+38 (largest magnitudes: inputs 1.18e+300); the "
        "--init-from run's scaler.json stretches them so"
    )
    assert expected in capsys.readouterr().err
