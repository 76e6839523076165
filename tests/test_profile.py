"""`lstm-bench --profile`: its kernel count and its arithmetic (timings themselves are never asserted; its flags:
test_benchmarks.py)."""

from __future__ import annotations

import pytest

from benchmarks import profile, report
from benchmarks.impls import Shape
from lstm_core.flops import lstm_step_flops

# A compiled module as XLA prints it, cut to what the count reads: a forward loop whose body runs 3 kernels
# (a fusion, a custom fusion, a dynamic-update-slice) beside 5 instructions that run none, and a
# backward (transposed) loop whose body runs 2 (a dot, a copy).
HLO = """\
HloModule jit_f

%forward_body (param: (s32[], f32[8,64])) -> (s32[], f32[8,64]) {
  %param = (s32[], f32[8,64]{1,0}) parameter(0)
  %constant.1 = s32[] constant(1)
  %get-tuple-element.1 = s32[] get-tuple-element(%param), index=0
  %wrapped_add = s32[] fusion(%get-tuple-element.1, %constant.1), kind=kLoop, calls=%add
  %ynn_fusion = f32[8,256]{1,0} fusion(%get-tuple-element.1), kind=kCustom, calls=%dot
  %bitcast.2 = f32[8,64]{1,0} bitcast(%ynn_fusion)
  %dynamic-update-slice.3 = f32[50,8,64]{2,1,0} dynamic-update-slice(%bitcast.2, %wrapped_add)
  ROOT %tuple.4 = (s32[], f32[8,64]{1,0}) tuple(%wrapped_add, %bitcast.2)
}

%backward_body (param.1: (s32[], f32[8,64])) -> (s32[], f32[8,64]) {
  %param.1 = (s32[], f32[8,64]{1,0}) parameter(0)
  %dot_general.5 = f32[66,256]{1,0} dot(%param.1, %param.1), lhs_contracting_dims={0}, rhs_contracting_dims={0}
  %copy.6 = f32[8,64]{1,0} copy(%dot_general.5)
  ROOT %tuple.7 = (s32[], f32[8,64]{1,0}) tuple(%copy.6, %copy.6)
}

ENTRY %main (x: f32[8,64]) -> f32[8,64] {
  %x = f32[8,64]{1,0} parameter(0)
  %w = (s32[], f32[8,64]) while(%x), body=%forward_body, metadata={op_name="jit(f)/jvp(lstm)/while"}
  %while.9 = (s32[], f32[8,64]) while(%w), body=%backward_body, metadata={op_name="jit(f)/transpose(jvp(lstm))/while"}
  ROOT %get-tuple-element.10 = f32[8,64]{1,0} get-tuple-element(%while.9), index=1
}
"""


def test_kernels_are_counted_per_loop_body_and_direction():
    assert profile.loop_kernels(HLO) == {"forward": [3], "backward": [2]}


@pytest.fixture(scope="module")
def tiny_row():
    """Split over two devices (auto would not split a step this small), so that the one-device pass runs one
    shard's 2 rows."""
    return profile.profile_shape(Shape(4, 6, 2, 3, 2), budget_s=0.0, peak_gflops=100.0, shards=2)


def test_a_profile_row_adds_up(tiny_row):
    """The parts are differences of the measured wholes, so they add up to the step exactly (to float rounding);
    the rates are the step's FLOPs over the measured times."""
    r = tiny_row  # rel=1e-12: these are the same float64 sums and quotients, a few roundings apart
    assert r["forward_ms"] + r["backward_ms"] + r["rest_ms"] == pytest.approx(r["step_ms"], rel=1e-12)
    assert r["ratio_vs_torch_eager"] == pytest.approx(r["torch_eager_ms"] / r["step_ms"], rel=1e-12)
    layer_steps = 6 * 2
    gradients_ms = r["forward_ms"] + r["backward_ms"]
    assert r["us_per_layer_time_step"] == pytest.approx(1e3 * gradients_ms / layer_steps, rel=1e-12)
    matmul_ms = r["matmul_forward_ms"] + r["matmul_backward_ms"]
    assert r["matmul_us_per_layer_time_step"] == pytest.approx(1e3 * matmul_ms / layer_steps, rel=1e-12)
    flops = lstm_step_flops(4, 6, 2, 3, 2)
    assert r["gflops"] == pytest.approx(flops / r["step_ms"] / 1e6, rel=1e-12)
    assert r["matmul_gflops"] == pytest.approx(flops / matmul_ms / 1e6, rel=1e-12)
    assert r["peak_fraction"] == pytest.approx(r["gflops"] / 100.0, rel=1e-12)
    assert r["matmul_peak_fraction"] == pytest.approx(r["matmul_gflops"] / 100.0, rel=1e-12)
    assert (r["shards"], r["one_device_rows"]) == (2, 2)
    for field in ("one_device_us_per_layer_time_step", "one_device_matmul_us_per_layer_time_step"):
        assert r[field] > 0.0


def test_the_one_device_pass_runs_one_shards_rows_on_one_device(monkeypatch):
    """The recurrence's times (stand-ins here, distinct per pass) of the trainer's own run and of one shard's rows
    on a trainer asked for exactly one device, each in its own fields."""
    own = {"forward": 1.0, "gradients": 3.0, "matmul_forward": 0.5, "matmul_backward": 1.0}
    one = {"forward": 2.0, "gradients": 6.0, "matmul_forward": 1.5, "matmul_backward": 2.25}
    passes = []

    def recurrence_ms(trainer, shape, budget_s):
        passes.append((trainer.config.training.shards, trainer.mesh.size, shape.batch))
        return own if len(passes) == 1 else one

    monkeypatch.setattr(profile, "recurrence_ms", recurrence_ms)
    r = profile.profile_shape(Shape(4, 6, 2, 3, 2), budget_s=0.0, peak_gflops=100.0, shards=2)
    assert passes == [(2, 2, 4), (1, 1, 2)]
    layer_steps = 6 * 2  # exact below: these stand-ins and their sums are exact in binary
    assert (r["forward_ms"], r["backward_ms"]) == (1.0, 2.0)
    assert r["us_per_layer_time_step"] == 1e3 * 3.0 / layer_steps
    assert r["matmul_us_per_layer_time_step"] == 1e3 * 1.5 / layer_steps
    assert r["one_device_us_per_layer_time_step"] == 1e3 * 6.0 / layer_steps
    assert r["one_device_matmul_us_per_layer_time_step"] == 1e3 * 3.75 / layer_steps


def test_the_trainers_gradient_program_has_one_forward_and_one_backward_loop_per_layer(tiny_row):
    """Each loop runs at least a matmul, a gate activation and a write of its output per time step (the exact
    count is XLA's to choose)."""
    assert len(tiny_row["kernels_forward"]) == len(tiny_row["kernels_backward"]) == 2
    assert min(tiny_row["kernels_forward"] + tiny_row["kernels_backward"]) >= 3


def test_the_table_has_a_row_per_shape_with_each_layers_kernels(tiny_row):
    environment = {
        "device": "cpu",
        "cpu": "x86_64",
        "cores": 2,
        "torch_threads": 2,
        "versions": {"jax": "-", "torch": "-"},
    }
    table = report.profile_table(
        {"environment": environment, "matmul_peak_gflops": {"peak": 100.0}, "rows": [tiny_row]}
    )
    lines = table.splitlines()
    assert "float32 matmul peak 100 GFLOP/s" in lines[0]
    assert len(lines) == 5 and lines[4].startswith("| (4,6,2,3,2) | 2 |")
    one_device = tiny_row["one_device_us_per_layer_time_step"], tiny_row["one_device_matmul_us_per_layer_time_step"]
    assert f"| 2: {one_device[0]:.1f} ({one_device[1]:.1f}) |" in lines[4]
    kernels = " / ".join(
        f"{f} + {b}" for f, b in zip(tiny_row["kernels_forward"], tiny_row["kernels_backward"], strict=True)
    )
    assert f"| {kernels} |" in lines[4]
