from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

from lstm_core import weights


def test_shapes_follow_nn_lstm_and_nn_linear():
    shapes = weights.parameter_shapes(input_size=5, hidden_size=17, num_layers=2, num_outputs=3)
    assert list(shapes) == [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
        "lstm.weight_ih_l1",
        "lstm.weight_hh_l1",
        "lstm.bias_ih_l1",
        "lstm.bias_hh_l1",
        "head.weight",
        "head.bias",
    ]
    assert shapes["lstm.weight_ih_l0"] == (68, 5) and shapes["lstm.weight_ih_l1"] == (68, 17)
    assert shapes["lstm.weight_hh_l1"] == (68, 17) and shapes["head.weight"] == (3, 17)


def test_same_seed_same_draw_and_torch_bounds():
    draw = [weights.initial_weights(5, 16, 2, 1, np.random.default_rng(3)) for _ in range(2)]
    for name in draw[0]:
        np.testing.assert_array_equal(draw[0][name], draw[1][name])
    bound = 1 / np.sqrt(16)  # nn.LSTM and nn.Linear(16, .) both draw U(±1/sqrt(16))
    values = np.concatenate([v.ravel() for v in draw[0].values()])
    assert values.min() >= -bound and values.max() <= bound
    # 1,600 uniform draws: the extremes land within 2 % of the bound (probability of failing < 1e-13)
    assert values.max() > 0.98 * bound and values.min() < -0.98 * bound
    other = weights.initial_weights(5, 16, 2, 1, np.random.default_rng(4))
    assert not np.array_equal(other["lstm.weight_hh_l0"], draw[0]["lstm.weight_hh_l0"])


def test_save_load_roundtrip_is_exact(tmp_path):
    original = weights.initial_weights(3, 4, 1, 2, np.random.default_rng(0))
    weights.save(original, tmp_path / "w.safetensors")
    loaded = weights.load(tmp_path / "w.safetensors")
    assert set(loaded) == set(original)  # safetensors sorts the names; the model's order is parameter_shapes
    for name, value in original.items():
        np.testing.assert_array_equal(loaded[name], value)


def test_corrupt_and_missing_files_give_clear_errors(tmp_path):
    corrupt = tmp_path / "w.safetensors"
    corrupt.write_bytes(b"\x00\x01 not a safetensors file")
    with pytest.raises(weights.WeightsError, match="is corrupt or not safetensors"):
        weights.load(corrupt)
    with pytest.raises(weights.WeightsError, match="does not exist"):
        weights.load(tmp_path / "missing.safetensors")
    (tmp_path / "folder.safetensors").mkdir()
    with pytest.raises(weights.WeightsError) as error:
        weights.load(tmp_path / "folder.safetensors")
    path = str(tmp_path / "folder.safetensors")
    assert str(error.value) == f"weights file {path!r} is a directory, not a safetensors file; pass the file"


def test_weights_of_other_dtypes_are_refused_naming_each(tmp_path):
    given = weights.initial_weights(1, 4, 1, 1, np.random.default_rng(0))  # float64
    given["lstm.weight_ih_l0"] = given["lstm.weight_ih_l0"].astype(np.int32)
    given["head.bias"] = given["head.bias"] > 0
    given["head.weight"] = given["head.weight"].astype(np.float32)  # float32 is fine
    path = tmp_path / "w.safetensors"
    weights.save(given, path)
    expected = (
        f"weights file {str(path)!r}: head.bias is stored as BOOL; lstm.weight_ih_l0 is stored as I32; "
        "expected float32 (F32) or float64 (F64): save it as float32"
    )
    with pytest.raises(weights.WeightsError, match=re.escape(expected)):
        weights.load(path)


def test_bfloat16_weights_which_numpy_cannot_read_are_refused(tmp_path):
    # Written by hand as safetensors lays a file out (header length, JSON header, data): numpy has no bfloat16.
    header = json.dumps({"lstm.weight_ih_l0": {"dtype": "BF16", "shape": [16, 1], "data_offsets": [0, 32]}}).encode()
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(32))
    expected = f"weights file {str(path)!r}: lstm.weight_ih_l0 is stored as BF16; expected float32 (F32) or float64"
    with pytest.raises(weights.WeightsError, match=re.escape(expected)):
        weights.load(path)


def test_check_weights_names_each_problem():
    expected = weights.parameter_shapes(1, 4, 1, 1)
    given = weights.initial_weights(1, 4, 1, 1, np.random.default_rng(0))
    given["lstm.weight_hh_l0"] = np.zeros((16, 5))
    del given["head.bias"]
    given["lstm.weight_ih_l1"] = np.zeros((16, 4))
    with pytest.raises(weights.WeightsError) as error:
        weights.check_weights(given, expected, "run a")
    message = str(error.value)
    assert "missing head.bias" in message
    assert "unexpected lstm.weight_ih_l1" in message
    assert "lstm.weight_hh_l0 is (16, 5), expected (16, 4)" in message
