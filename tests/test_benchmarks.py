"""The benchmark's arithmetic and one tiny row per trainer (timings themselves are never asserted)."""

from __future__ import annotations

import pytest
from jax.experimental import rnn

from benchmarks import bench, impls, report
from benchmarks.impls import Shape
from benchmarks.measure import time_calls
from lstm_core.flops import lstm_step_flops
from lstm_core.machine import cpu_cores
from tests.test_cudnn import reference_lstm


def test_flops_count_both_matmuls_of_every_layer_three_times():
    # layer 0: 2·B·(In + H)·4H, layer 1: 2·B·(H + H)·4H, per time step; backward = 2× forward
    assert lstm_step_flops(2, 3, 5, 7, 2) == 3 * 3 * (2 * 2 * (5 + 7) * 28 + 2 * 2 * 14 * 28)


def test_time_calls_repeats_within_its_bounds():
    calls = []
    timing = time_calls(lambda: calls.append(1), warmup=2, min_repeats=4, max_repeats=6, budget_s=0.0)
    assert len(calls) == 2 + 4 and timing.repeats == 4
    assert 0 <= timing.min_ms <= timing.median_ms <= timing.max_ms


def test_ratios_are_against_torch_eager_of_the_same_shape():
    shape = {"batch": 1, "seq_len": 2, "input_size": 1, "hidden_size": 3, "num_layers": 1}
    rows = [
        {"impl": "torch-eager", "median_ms": 10.0, **shape},
        {"impl": "jax-epoch", "median_ms": 4.0, **shape},
        {"impl": "flax-stock", "error": "failed", **shape},
    ]
    bench.add_ratios(rows)
    assert [row["ratio_vs_torch_eager"] for row in rows] == [1.0, 2.5, None]


@pytest.mark.parametrize("impl", ["torch-eager", "jax-epoch", "jax-epoch-1shard", "flax-stock"])
def test_a_tiny_row_has_every_field(impl):
    row = bench.bench_one(impl, Shape(4, 5, 2, 3, 2), "cpu", budget_s=0.0, peak=100.0)
    assert "error" not in row, row.get("error")
    for field in ("median_ms", "min_ms", "max_ms", "compile_s", "gflops", "peak_fraction", "peak_memory_mb"):
        assert field in row
    assert row["min_ms"] <= row["median_ms"] <= row["max_ms"]
    assert row["peak_fraction"] == pytest.approx(row["gflops"] / 100.0, rel=1e-12)
    assert row["shards"] == (1 if impl.startswith("jax-epoch") else None)  # a tiny step is not worth splitting
    if impl == "torch-eager":
        assert row["xla_memory_mb"] is None
    else:  # at least the float32 training data XLA holds as an argument: 32 samples x 5 steps x 2 features
        assert row["xla_memory_mb"] >= 32 * 5 * 2 * 4 / 2**20


@pytest.mark.parametrize("impl", impls.GPU_ONLY)
def test_cudnn_rows_on_a_cpu_are_reported_as_errors_that_name_the_fix(impl):
    row = bench.bench_one(impl, Shape(4, 5, 2, 3, 2), "cpu", budget_s=0.0, peak=100.0)
    assert "--device gpu" in row["error"] and "median_ms" not in row


def test_the_stock_cudnn_row_trains_with_jax_reference_lstm_standing_in(monkeypatch):
    """jax-rnn-stock's step (flat weights, head, optax chain), with the kernel replaced by jax's reference
    (tests/test_cudnn.py): it compiles and steps; on a GPU the same code calls cuDNN."""
    monkeypatch.setattr(rnn, "lstm", reference_lstm)
    monkeypatch.setattr(impls, "_require_gpu", lambda impl, device: None)
    built = impls.jax_rnn_stock(Shape(4, 5, 2, 3, 2), "cpu")
    for _ in range(3):
        built.step()
    assert built.compile_s > 0 and built.xla_memory_mb > 0


def test_cpu_default_rows_leave_out_the_cudnn_ones():
    assert not set(bench.CPU_IMPLS) & set(impls.GPU_ONLY)
    assert set(bench.CPU_IMPLS) | set(impls.GPU_ONLY) == set(impls.BUILDERS)


@pytest.mark.skipif(cpu_cores() < 2, reason="a split needs two CPU cores")
def test_the_trainer_rows_report_the_split_they_ran():
    row = bench.bench_one("jax-epoch", Shape(4, 5, 2, 3, 2), "cpu", budget_s=0.0, peak=100.0, shards=2)
    assert "error" not in row, row.get("error")
    assert row["shards"] == 2


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
        (["--budget", "0"], "--budget must be > 0 seconds of timed repeats per row, got 0.0"),
        (["--impls", "jax-steps"], "unknown implementation(s) jax-steps; choose from torch-eager"),
        (["--quick", "x"], "unrecognized arguments: x"),
        (["--impls", " , "], "--impls names no implementation; choose from torch-eager"),
        (["--shards", "64"], "--shards 64: the JAX trainer has "),
        (["--scaling", "--impls", "torch-eager", "--end-to-end"], "--scaling times its own rows (torch-eager, "),
    ],
)
def test_bad_arguments_are_refused_before_anything_runs(args, message, tmp_path, capsys):
    out = tmp_path / "results"
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*args, "--out", str(out)])
    assert exit_info.value.code == 2 and f"lstm-bench: error: {message}" in capsys.readouterr().err
    assert not out.exists()
