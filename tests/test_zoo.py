"""lstm-zoo: the scenarios' flags, the data they generate, the gallery (on synthetic records), one fast
end-to-end scenario, and, marked slow, every scenario on both backends diagnosed as its own cause and only
that cause, with its remedy lowering the final validation loss by the promised factor."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from test_diagnosis import healthy_grads, healthy_loss, write_run

from lstm_core import data as datasets
from lstm_core import diagnosis, loop, zoo
from lstm_core.cli import EXIT_INTERRUPTED, build_parser, config_from_args
from lstm_core.config import DataConfig
from lstm_core.convert import scaler_record
from lstm_core.diagnosis_report import format_report
from lstm_core.run_records import load_run

SCENARIOS = {s.name: s for s in zoo.SCENARIOS}


def test_one_scenario_per_cause_and_a_healthy_one():
    assert [s.cause for s in zoo.SCENARIOS if s.cause] == [c for c in diagnosis.CAUSES if c in SCENARIOS]
    assert set(diagnosis.CAUSES) <= set(SCENARIOS) and SCENARIOS["healthy"].cause is None
    assert len(SCENARIOS) == len(zoo.SCENARIOS)  # unique names
    for s in zoo.SCENARIOS:
        assert (s.cause is None) == (not s.remedy and not s.drop), s.name
        assert s.factor >= 1.0 and s.story


def test_remedy_drops_then_appends_flags(tmp_path):
    s = SCENARIOS["unscaled_data"]
    broken, remedied = s.flags("broken", tmp_path), s.flags("remedied", tmp_path)
    assert "--no-scale" in broken and "--no-scale" not in remedied
    assert f"{tmp_path}/{zoo.UNSCALED_CSV}" in broken
    s = SCENARIOS["lr_too_high"]
    args = build_parser().parse_args(s.flags("remedied", tmp_path))
    assert args.lr == float(s.remedy[-1])  # the remedy's value wins over the broken one


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_is_a_valid_lstm_train_config(tmp_path, name):
    s = SCENARIOS[name]
    if s.prepare is not None:
        s.prepare(tmp_path)
    for which in ("broken", "remedied"):
        config = config_from_args(build_parser().parse_args(s.flags(which, tmp_path)))
        assert config.training.grad_flow_every > 0  # the heat map needs ‖dL/dh_t‖
        # the zoo's 1000 samples go to the generated datasets only: the digits and a CSV file refuse them
        generated = config.data.dataset in ("sine", "adding")
        assert config.data.num_samples == (1000 if generated else DataConfig().num_samples)


def test_unscaled_csv_is_a_sine_of_amplitude_1000_around_5000(tmp_path):
    zoo.write_unscaled_csv(tmp_path)
    values = np.loadtxt(tmp_path / zoo.UNSCALED_CSV, skiprows=1)
    assert values.shape == (1000,)
    # a sine's std is amplitude / √2 = 707, plus noise 100 in quadrature: 714; 20 whole periods, mean 5000
    assert values.mean() == pytest.approx(5000, abs=10)
    assert values.std() == pytest.approx(np.hypot(1000 / np.sqrt(2), 100), rel=0.02)


def test_overscaled_init_scales_only_the_recurrent_weights(tmp_path):
    from lstm_core import weights as weights_io

    zoo.write_overscaled_init(tmp_path)
    weights = weights_io.load(tmp_path / zoo.OVERSCALED_INIT / weights_io.WEIGHTS_FILE)
    bound = 1 / np.sqrt(32)  # torch's U(±1/√H) at the default hidden size
    assert np.abs(weights["lstm.weight_hh_l0"]).max() == pytest.approx(zoo.RECURRENT_INIT_GAIN * bound, rel=0.01)
    assert np.abs(weights["lstm.weight_ih_l0"]).max() <= bound
    assert (tmp_path / zoo.OVERSCALED_INIT / "scaler.json").is_file()


def synthetic_result(tmp_path, name, backend, rng, cause_loss=0.9):
    """A ScenarioResult from synthetic records: a broken run stuck near the baseline and a healthy remedy."""
    n = 250
    broken_dir = write_run(
        tmp_path / name / backend / "broken", cause_loss * rng.lognormal(0, 0.05, n), healthy_grads(n, rng), hidden=1
    )
    fixed_dir = write_run(tmp_path / name / backend / "remedied", healthy_loss(n, rng), healthy_grads(n, rng))
    runs = []
    for path in (broken_dir, fixed_dir):
        d = diagnosis.diagnose(load_run(path))
        runs.append(zoo.RunResult([], path, d, json.loads((path / "summary.json").read_text()), 1.0))
    return zoo.ScenarioResult(SCENARIOS[name], backend, *runs)


def test_gallery_and_report_from_synthetic_records(tmp_path):
    rng = np.random.default_rng(0)
    results = [synthetic_result(tmp_path / "work", "underfitting", b, rng) for b in ("torch", "jax")]
    for r in results:
        assert r.broken.diagnosis.causes == ("underfitting",) and r.problems() == []
        assert r.improvement == r.broken.relative_val / r.remedied.relative_val  # the same division: exact
    out = tmp_path / "gallery"
    out.mkdir()
    image = out / "underfitting.png"
    zoo.plot_scenario(results, image)
    assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = zoo.write_report(results, out, 12.0, {"underfitting": image}).read_text()
    assert "| [underfitting](#underfitting) |" in report
    assert "![underfitting](underfitting.png)" in report
    assert "All scenarios behaved as described." in report
    assert (
        "Every run also passes `--epochs 10 --grad-flow-every 10`, and `--num-samples 1000` where its dataset reads "
        "it (sine, adding); WORK is the `--work` directory" in report
    )
    assert report.count("diagnosed **underfitting**") == 2


def test_problems_name_a_wrong_verdict_and_a_short_remedy(tmp_path):
    rng = np.random.default_rng(0)
    result = synthetic_result(tmp_path, "overfitting", "jax", rng)  # diagnosed underfitting, not overfitting
    problems = result.problems()
    assert any("diagnosed as ['underfitting'], expected ['overfitting']" in p for p in problems)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenarios", "healthy,nonsense"], "unknown scenario(s) in 'healthy,nonsense'; choose from healthy, "),
        (["--backends", "torch,tf"], "unknown backend(s) in 'torch,tf'; choose from torch, jax"),
        (["--scenarios", ","], "--backends and --scenarios need at least one name each"),
        (["--out", "{file}"], "cannot use --out '{file}' as a directory:"),
        (["--work", "{file}"], "cannot use --work '{file}' as a directory:"),
        # A subset's gallery goes to WORK/gallery: this was "cannot use --out '{file}/gallery' ...: Not a directory".
        (
            ["--work", "{file}", "--scenarios", "healthy"],
            "lstm-zoo: error: cannot use --work '{file}' as a directory: it is a file; pass a directory\n",
        ),
        # found before the training, not after it by a traceback
        (["--out", "{pngs}", "--scenarios", "healthy"], "'{pngs}/healthy.png' is a directory, where the run writes"),
        (["--out", "{dir}"], "'{dir}/report.md' is a directory, where the run writes its report.md; pass another"),
        # Empty, --out was taken for its default (the committed gallery) and --work for the current directory.
        (["--out", ""], "lstm-zoo: error: --out is empty; pass a directory\n"),
        (["--work", " "], "lstm-zoo: error: --work is empty; pass a directory\n"),
    ],
)
def test_main_refuses_bad_arguments_before_training(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(zoo, "run_zoo", lambda *a, **k: pytest.fail("trained despite bad arguments"))
    monkeypatch.chdir(tmp_path)  # the default --work, runs/zoo, made here
    paths = {"file": tmp_path / "a-file", "dir": tmp_path / "taken", "pngs": tmp_path / "pngs"}
    paths["file"].write_text("")
    (paths["dir"] / "report.md").mkdir(parents=True)
    (paths["pngs"] / "healthy.png").mkdir(parents=True)
    with pytest.raises(SystemExit) as exit_info:
        zoo.main([arg.format(**paths) for arg in args])
    assert exit_info.value.code == 2
    assert message.format(**paths) in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "gallery"),
    [([], zoo.GALLERY), (["--backends", "jax"], "{work}/gallery"), (["--scenarios", "healthy"], "{work}/gallery")],
)
def test_only_the_whole_zoo_writes_the_committed_gallery_by_default(args, gallery, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(zoo, "run_zoo", lambda out, work, *rest: calls.append(out) or ([], []))
    monkeypatch.chdir(tmp_path)
    assert zoo.main([*args, "--work", str(tmp_path / "work")]) == 0
    assert calls == [Path(gallery.format(work=tmp_path / "work"))]


def test_a_backend_named_twice_trains_once(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(zoo, "run_zoo", lambda out, work, backends, names: calls.append(backends) or ([], []))
    monkeypatch.chdir(tmp_path)  # the whole zoo's default --out, docs/zoo, made here
    assert zoo.main(["--backends", "torch, jax,torch", "--work", str(tmp_path / "work")]) == 0
    assert calls == [["torch", "jax"]]


def test_ctrl_c_stops_the_zoo_without_judging_the_shortened_run(tmp_path, monkeypatch, capsys):
    """lstm-train's first Ctrl-C ends a run after its epoch; the zoo would diagnose that run as if whole. It stops
    at once instead, saying so in one line."""
    draw = loop.datasets.epoch_batches

    def interrupted(*args):
        signal.raise_signal(signal.SIGINT)
        return draw(*args)

    monkeypatch.setattr(loop.datasets, "epoch_batches", interrupted)
    out, work = tmp_path / "gallery", tmp_path / "work"
    args = ["--scenarios", "healthy", "--backends", "torch", "--out", str(out), "--work", str(work)]
    assert zoo.main(args) == EXIT_INTERRUPTED
    assert capsys.readouterr().err == (
        f"lstm-zoo: stopped by Ctrl-C; {out / 'report.md'} was not rewritten (the scenarios' runs so far are in "
        f"{work})\n"
    )
    assert list(out.iterdir()) == []


def test_lr_too_low_end_to_end(tmp_path):
    """The one fast end-to-end scenario: trains broken and remedied (T = 20, 210 steps each) on jax, whose
    jitted epochs make it the quicker backend here; the slow tests run every scenario on both."""
    results, problems = zoo.run_zoo(tmp_path / "out", tmp_path / "work", ["jax"], ["lr_too_low"], log=lambda _: None)
    assert problems == []
    (result,) = results
    assert result.broken.diagnosis.causes == ("lr_too_low",)
    assert (tmp_path / "out" / "lr_too_low.png").is_file() and (tmp_path / "out" / "report.md").is_file()


# --------------------------------------------------------------------------------- slow: every scenario
@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "jax"])
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_is_diagnosed_as_its_cause_and_remedied(tmp_path, name, backend):
    result = zoo.run_scenario(SCENARIOS[name], backend, tmp_path)
    assert result.problems() == [], format_report(result.broken.diagnosis)


def test_a_scenarios_own_flags_win_over_the_common_ones(tmp_path):
    """The exploding scenario probes ‖dL/dh_t‖ every 20 steps (torch's probe of its 100 steps is slow), over
    COMMON's 10: argparse keeps a flag's last value, so COMMON goes first."""
    s = SCENARIOS["exploding_gradients"]
    for which in ("broken", "remedied"):
        config = config_from_args(build_parser().parse_args(s.flags(which, tmp_path)))
        assert (config.training.grad_flow_every, config.training.epochs) == (20, 10)


def test_overscaled_init_holds_the_scaler_of_the_exploding_runs_own_data(tmp_path):
    """Fitted on the broken run's data (1000 samples of T = 100, not lstm-train's default 2000), the starting
    run's scaler.json makes --init-from's rescaling the identity. Exact: the same fit of the same arrays."""
    zoo.write_overscaled_init(tmp_path)
    config = config_from_args(build_parser().parse_args(SCENARIOS["exploding_gradients"].flags("broken", tmp_path)))
    written = json.loads((tmp_path / zoo.OVERSCALED_INIT / "scaler.json").read_text())
    assert written == scaler_record(datasets.load(config))


def test_help_lists_the_backends():
    text = " ".join(zoo.build_parser().format_help().split())  # one line: wrapping depends on the terminal
    assert "comma-separated: torch,jax (default: torch,jax)" in text
