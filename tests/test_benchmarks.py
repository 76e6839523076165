"""The benchmark's arithmetic and one tiny row per trainer (timings themselves are never asserted)."""

from __future__ import annotations

import json

import pytest
from jax.experimental import rnn

from benchmarks import bench, impls, measure, peak, report
from benchmarks.impls import Shape
from benchmarks.measure import Timing, time_calls
from lstm_core import records
from lstm_core.flops import lstm_step_flops
from lstm_core.machine import cpu_cores
from parity_tests.engine import gpu_available
from tests.test_cudnn import reference_lstm


def test_flops_count_both_matmuls_of_every_layer_three_times():
    # layer 0: 2·B·(In + H)·4H, layer 1: 2·B·(H + H)·4H, per time step; backward = 2× forward
    assert lstm_step_flops(2, 3, 5, 7, 2) == 3 * 3 * (2 * 2 * (5 + 7) * 28 + 2 * 2 * 14 * 28)


def test_time_calls_reports_the_median_and_spread_of_the_timed_calls_only(monkeypatch):
    """A scripted clock (no real timing): each call advances it by the next duration; the two warm-up calls take
    1000 s each, so a warm-up counted among the repeats would show in every statistic."""
    clock = [0.0]
    durations = iter([1000.0, 1000.0, 0.001, 0.004, 0.1, 0.002, 0.003, 5.0])  # s: warm-up 2, then timed
    monkeypatch.setattr(measure.time, "perf_counter", lambda: clock[0])

    def call():
        clock[0] += next(durations)

    timing = time_calls(call, warmup=2, min_repeats=5, max_repeats=6, budget_s=0.0)
    # 5 timed calls of 1, 4, 100, 2, 3 ms: median 3 (their mean would be 22); a float clock, so 1e-9 relative
    assert timing.repeats == 5
    assert timing.median_ms == pytest.approx(3.0, rel=1e-9)
    assert (timing.min_ms, timing.max_ms) == (pytest.approx(1.0, rel=1e-9), pytest.approx(100.0, rel=1e-9))
    assert next(durations) == 5.0  # the budget spent, no sixth call
    clock[0] = 0.0
    durations = iter([0.0] * 2 + [0.001] * 10)
    assert time_calls(call, warmup=2, min_repeats=1, max_repeats=6, budget_s=1.0).repeats == 6  # capped


def test_the_matmul_peak_counts_two_flops_per_multiply_add_and_takes_the_faster_library(monkeypatch):
    timings = iter([Timing(9.0, 2.0, 9.0, 5, None), Timing(9.0, 1.0, 9.0, 5, None)])  # torch, then XLA: best ms
    monkeypatch.setattr(peak, "time_calls", lambda call, budget_s: (call(), next(timings))[1])
    result = peak.matmul_peak_gflops("cpu", size=16)
    # 2·16³ FLOPs in the fastest call (min_ms), in GFLOP/s: exact binary fractions but for the last division
    assert result["torch"] == pytest.approx(2 * 16**3 / 2.0 / 1e6, rel=1e-15)
    assert result["xla"] == pytest.approx(2 * 16**3 / 1.0 / 1e6, rel=1e-15)
    assert result["peak"] == result["xla"]


def test_ratios_are_against_torch_eager_of_the_same_shape():
    shape = {"batch": 1, "seq_len": 2, "input_size": 1, "hidden_size": 3, "num_layers": 1}
    rows = [
        {"impl": "torch-eager", "median_ms": 10.0, **shape},
        {"impl": "jax-epoch", "median_ms": 4.0, **shape},
        {"impl": "flax-stock", "error": "failed", **shape},
    ]
    bench.add_ratios(rows)
    assert [row["ratio_vs_torch_eager"] for row in rows] == [1.0, 2.5, None]


# The fields README's benchmark section and the issue name, and the ones a CPU row adds (memory, the split).
ROW_FIELDS = {"impl", "batch", "seq_len", "input_size", "hidden_size", "num_layers", "median_ms", "min_ms", "max_ms"}
ROW_FIELDS |= {"ratio_vs_torch_eager", "compile_s", "gflops", "peak_fraction"}
CPU_ROW_FIELDS = ROW_FIELDS | {"repeats", "peak_memory_mb", "xla_memory_mb", "shards"}
FAKE_TIMING = Timing(median_ms=80.0, min_ms=40.0, max_ms=160.0, repeats=5, peak_memory_mb=1.5)


@pytest.fixture
def fixed_timing(monkeypatch):
    """Every row is timed as FAKE_TIMING after one real step, and the matmul peak is 100 GFLOP/s: the rows'
    arithmetic is checked with numbers that do not depend on the machine."""
    monkeypatch.setattr(bench, "time_calls", lambda step, budget_s: (step(), FAKE_TIMING)[1])
    monkeypatch.setattr(bench, "matmul_peak_gflops", lambda device: {"peak": 100.0, "torch": 100.0, "xla": 50.0})


@pytest.mark.parametrize("impl", ["jax-epoch", "jax-epoch-1shard", "flax-stock"])
def test_a_tiny_row_is_its_timing_per_batch_against_torch_eager_measured_in_the_same_run(impl, fixed_timing):
    shape = Shape(4, 5, 2, 3, 2)
    results = bench.run_grid([shape], ["torch-eager", impl], "cpu", budget_s=0.0)
    assert results["matmul_peak_gflops"]["peak"] == 100.0
    torch_row, row = results["rows"]
    assert "error" not in row, row.get("error")
    assert set(torch_row) == set(row) == CPU_ROW_FIELDS
    shape_fields = ("impl", "batch", "seq_len", "input_size", "hidden_size", "num_layers")
    assert [row[field] for field in shape_fields] == [impl, 4, 5, 2, 3, 2]
    # A jax-epoch call runs the epoch's 8 batches: its times are per batch; the other rows run one a call.
    per_call = impls.NUM_BATCHES if impl.startswith("jax-epoch") else 1
    timings = (row["median_ms"], row["min_ms"], row["max_ms"], row["repeats"], row["peak_memory_mb"])
    assert timings == (80.0 / per_call, 40.0 / per_call, 160.0 / per_call, 5, 1.5)
    assert (torch_row["median_ms"], torch_row["min_ms"], torch_row["max_ms"]) == (80.0, 40.0, 160.0)
    for r in (torch_row, row):
        # GFLOP/s: the step's matmul FLOPs over the median; a fraction of the peak. One or two float roundings.
        assert r["gflops"] == pytest.approx(lstm_step_flops(4, 5, 2, 3, 2) / r["median_ms"] / 1e6, rel=1e-15)
        assert r["peak_fraction"] == pytest.approx(r["gflops"] / 100.0, rel=1e-15)
        assert r["compile_s"] > 0  # a real build: compile or the first call's set-up
    assert torch_row["ratio_vs_torch_eager"] == 1.0
    assert row["ratio_vs_torch_eager"] == pytest.approx(torch_row["median_ms"] / row["median_ms"], rel=1e-15)
    assert row["shards"] == (1 if impl.startswith("jax-epoch") else None)  # a tiny step is not worth splitting
    assert torch_row["xla_memory_mb"] is None and torch_row["shards"] is None
    # at least the float32 training data XLA holds as an argument: 32 samples x 5 steps x 2 features
    assert row["xla_memory_mb"] >= 32 * 5 * 2 * 4 / 2**20


@pytest.mark.parametrize("impl", impls.GPU_ONLY)
def test_cudnn_rows_on_a_cpu_are_reported_as_errors_that_name_the_fix(impl):
    row = bench.bench_one(impl, Shape(4, 5, 2, 3, 2), "cpu", budget_s=0.0, peak=100.0)
    assert "--device gpu" in row["error"] and "median_ms" not in row


def test_the_stock_cudnn_row_trains_with_jax_reference_lstm_standing_in(monkeypatch, fixed_timing):
    """jax-rnn-stock's row (flat weights, head, optax chain), with the kernel replaced by jax's reference
    (tests/test_cudnn.py): it compiles, steps and is reported as the other rows; on a GPU the same code calls
    cuDNN."""
    monkeypatch.setattr(rnn, "lstm", reference_lstm)
    monkeypatch.setattr(impls, "_require_gpu", lambda impl, device: None)
    row = bench.bench_one("jax-rnn-stock", Shape(4, 5, 2, 3, 2), "cpu", budget_s=0.0, peak=100.0)
    assert "error" not in row, row.get("error")
    assert set(row) == CPU_ROW_FIELDS - {"ratio_vs_torch_eager"}  # add_ratios adds it, from the run's rows
    assert (row["median_ms"], row["min_ms"], row["max_ms"]) == (80.0, 40.0, 160.0)  # one batch a call
    assert row["gflops"] == pytest.approx(lstm_step_flops(4, 5, 2, 3, 2) / 80.0 / 1e6, rel=1e-15)
    assert row["shards"] is None  # not our trainer
    # XLA's account holds at least the arguments: the weights and Adam's two moments, float32
    weights = rnn.get_num_params_in_lstm(2, 3, 2, False) + 3  # the LSTM's flat vector and the (3, 1) head
    assert row["xla_memory_mb"] >= 3 * weights * 4 / 2**20


def test_cpu_default_rows_leave_out_the_cudnn_ones():
    assert not set(bench.CPU_IMPLS) & set(impls.GPU_ONLY)
    assert set(bench.CPU_IMPLS) | set(impls.GPU_ONLY) == set(impls.BUILDERS)


@pytest.mark.skipif(cpu_cores() < 2, reason="a split needs two CPU cores")
def test_the_trainer_rows_report_the_split_they_ran():
    row = bench.bench_one("jax-epoch", Shape(4, 5, 2, 3, 2), "cpu", budget_s=0.0, peak=100.0, shards=2)
    assert "error" not in row, row.get("error")
    assert row["shards"] == 2


@pytest.mark.skipif(cpu_cores() < 2, reason="a split needs two CPU cores")
def test_unroll_and_shards_set_our_trainers_rows_only(fixed_timing):
    """They went to every builder: torch-eager, the rows' reference, and flax-stock failed with a TypeError (an
    unexpected keyword), and jax-epoch-1shard ran on --shards devices."""
    names = [name for name in bench.CPU_IMPLS if name != "torch-compile"]  # its jit warns (an error here)
    rows = bench.run_grid([Shape(4, 5, 2, 3, 1)], names, "cpu", budget_s=0.0, unroll=2, shards=2)["rows"]
    assert [row.get("error") for row in rows] == [None] * len(names)
    assert {row["impl"]: row["shards"] for row in rows} == {
        "torch-eager": None,
        "jax-step": 2,
        "jax-epoch": 2,
        "jax-epoch-1shard": 1,
        "jax-epoch-autodiff": 2,
        "flax-stock": None,
    }


def test_an_end_to_end_job_that_fails_is_a_row_with_its_error(tmp_path, monkeypatch):
    """--end-to-end on a machine without the asked device: each job's own one-line error, and the table says so."""
    monkeypatch.chdir(tmp_path)  # the jobs write runs/bench-e2e-* here
    rows = bench.end_to_end("gpu")
    assert [(row["backend"], row["rnn"]) for row in rows] == [("torch", "scan"), ("jax", "scan"), ("jax", "cudnn")]
    for row in rows:
        assert row["error"].startswith("lstm-train: error:") and "gpu" in row["error"], row
    environment = {"device": "gpu", "gpu": "-", "cores": 1, "torch_threads": 1, "versions": {"jax": "-", "torch": "-"}}
    peak = {"peak": 1.0, "torch": 1.0, "xla": 1.0}
    table = report.markdown({"environment": environment, "matmul_peak_gflops": peak, "rows": [], "end_to_end": rows})
    assert table.count("| failed: lstm-train: error:") == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shards", "-3"], "--shards must be >= 0 (0: auto, one device per core where it pays), got -3"),
        (["--unroll", "0"], "--unroll must be >= 1, got 0"),
        (["--budget", "0"], "--budget must be a finite number > 0 of seconds of timed repeats per row, got 0.0"),
        (["--budget", "inf"], "--budget must be a finite number > 0 of seconds of timed repeats per row, got inf"),
        (["--budget", "nan"], "--budget must be a finite number > 0 of seconds of timed repeats per row, got nan"),
        (["--impls", "jax-steps"], "unknown implementation(s) jax-steps; choose from torch-eager"),
        (["--quick", "x"], "unrecognized arguments: x"),
        (["--impls", " , "], "--impls names no implementation; choose from torch-eager"),
        (  # each shape's row read "failed: ... (--device gpu)", exit 0
            ["--impls", "torch-eager,jax-cudnn,torch-cudnn"],
            "jax-cudnn, torch-cudnn run cuDNN, on a CUDA GPU only; add --device gpu, or drop them\n",
        ),
        (["--shards", "64"], "--shards 64: the JAX trainer has "),
        (["--scaling", "--impls", "torch-eager", "--end-to-end"], "--scaling times its own rows (torch-eager, "),
        (["--profile", "--scaling"], "--scaling and --profile are two runs of their own; choose one"),
        (["--profile", "--impls", "torch-eager"], "--profile times its own rows (our trainer, auto shards, and "),
        (["--profile", "--shards", "1"], "--profile times its own rows (our trainer, auto shards, and "),
        (["--profile", "--device", "gpu"], "--profile runs on the CPU"),
        (
            ["--impls", "torch-eager,flax-stock", "--unroll", "2"],
            "--unroll sets the rows jax-step, jax-epoch, jax-epoch-1shard, jax-epoch-autodiff, jax-cudnn, and --impls "
            "names none of them; add one, or drop it",
        ),
        (  # jax-epoch-1shard runs on one shard whatever --shards says
            ["--impls", "torch-eager,jax-epoch-1shard", "--shards", "1"],
            "--shards sets the rows jax-step, jax-epoch, jax-epoch-autodiff, jax-cudnn, and --impls names none of",
        ),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(args, message, tmp_path, capsys):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*args, "--out", str(out)])
    assert exit_info.value.code == 2 and f"lstm-bench: error: {message}" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(gpu_available(), reason="the refusal of a machine without a GPU")
def test_no_gpu_is_said_before_the_gpus_device_count(tmp_path, capsys):
    """--shards 2 on a machine without a GPU was refused as 'the JAX trainer has 1 gpu device(s) here', and only
    the next try said that there is no GPU at all."""
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--device", "gpu", "--shards", "2", "--out", str(tmp_path / "results")])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(
        "lstm-bench: error: --device gpu: torch and jax see no CUDA GPU here; run on a GPU machine or use --device "
        "cpu\n"
    )


def test_an_empty_out_is_refused_not_taken_for_the_current_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_grid", lambda *a, **k: pytest.fail("ran despite an empty --out"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--out", ""])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith("lstm-bench: error: --out is empty; pass a directory\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "written"),
    [
        ([], "results.json"),
        ([], "results.md"),
        ([], "results.png"),
        (["--scaling"], "scaling.json"),
        (["--scaling"], "scaling.png"),
        (["--profile"], "profile.json"),
        (["--profile"], "profile.md"),
    ],
)
def test_a_directory_where_a_result_goes_is_refused_before_anything_runs(args, written, tmp_path, monkeypatch, capsys):
    """It was an IsADirectoryError traceback when the results were written, after the timing."""
    for runner in ("benchmarks.bench.run_grid", "benchmarks.scaling.run", "benchmarks.profile.run"):
        monkeypatch.setattr(runner, lambda *a, **k: pytest.fail("ran despite the directory in the way"))
    (tmp_path / written).mkdir()
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*args, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"lstm-bench: error: {str(tmp_path / written)!r} is a directory, where the run writes its {written}; pass "
        "another --out\n"
    )


def test_an_out_it_cannot_write_in_is_refused_before_anything_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(bench, "run_grid", lambda *a, **k: pytest.fail("ran despite an unwritable --out"))
    monkeypatch.setattr(records.os, "access", lambda path, mode: False)  # as a non-root user's read-only directory
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.endswith(
        f"lstm-bench: error: cannot write in --out {str(tmp_path)!r}: permission denied; pass a writable directory\n"
    )


def test_scaling_writes_its_rows_with_the_machine_and_the_command(monkeypatch, tmp_path):
    """One tiny point per sweep: scaling.json holds every row, and the environment and command that made them,
    as results.json and profile.json do."""
    from benchmarks import scaling

    tiny = Shape(4, 5, 1, 3, 1)
    monkeypatch.setattr(scaling, "sweeps", lambda quick: [("seq_len", 5, tiny), ("hidden_size", 3, tiny)])
    out = tmp_path / "scaling"
    assert bench.main(["--scaling", "--quick", "--budget", "0.01", "--out", str(out)]) == 0
    results = json.loads((out / "scaling.json").read_text())
    assert [row["impl"] for row in results["rows"]] == 2 * list(scaling.SCALING_IMPLS)
    assert all("error" not in row and row["median_ms"] > 0 for row in results["rows"])
    assert results["command"] == f"lstm-bench --scaling --quick --budget 0.01 --out {out}"
    assert results["environment"]["device"] == "cpu" and results["environment"]["cores"] == cpu_cores()
    assert (out / "scaling.png").stat().st_size > 0
