"""Weight conversion between torch's state_dict and the Flax tree: lossless both ways, loud on a mismatch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from lstm_core import convert
from lstm_core.weights import WeightsError
from lstm_jax.model import LSTMModel as FlaxLSTM
from lstm_torch.model import LSTMModel as TorchLSTM

INPUT, HIDDEN, OUTPUTS = 5, 17, 3


def torch_model(num_layers: int, dtype=torch.float64) -> TorchLSTM:
    torch.manual_seed(num_layers)
    return TorchLSTM(INPUT, HIDDEN, num_layers, dropout=0.0, num_outputs=OUTPUTS).to(dtype)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_state_dict_round_trips_through_flax_bit_for_bit(num_layers, dtype):
    state_dict = torch_model(num_layers, dtype).state_dict()
    params = convert.torch_to_flax({name: value.numpy() for name, value in state_dict.items()})
    flax_tree = jax.tree.map(
        jnp.shape, FlaxLSTM(HIDDEN, num_layers, OUTPUTS).init(jax.random.key(0), jnp.zeros((2, 4, INPUT)))
    )
    assert jax.tree.map(np.shape, params) == flax_tree["params"]  # the tree Flax itself builds
    with jax.enable_x64(True):  # as the JAX trainer runs float64 (a float32 run has no float64 to keep)
        back = convert.flax_to_torch(jax.tree.map(jnp.asarray, params))
    assert list(back) == list(state_dict)  # nn.LSTM's registration order, then the head
    for name, value in state_dict.items():
        restored = np.asarray(back[name])
        assert restored.dtype == value.numpy().dtype
        np.testing.assert_array_equal(restored, value.numpy())  # lossless: not one bit changes
    reloaded = torch_model(num_layers, dtype)
    reloaded.load_state_dict({name: torch.from_numpy(np.array(value)) for name, value in back.items()})


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_converted_weights_give_the_same_outputs_in_both_models(num_layers):
    module = torch_model(num_layers)
    x = np.random.default_rng(0).standard_normal((4, 7, INPUT))
    expected = module(torch.from_numpy(x)).detach().numpy()
    with jax.enable_x64(True):
        params = jax.tree.map(jnp.asarray, convert.torch_to_flax(module.state_dict()))
        outputs = FlaxLSTM(HIDDEN, num_layers, OUTPUTS).apply({"params": params}, jnp.asarray(x))
    # float64, 7 steps of recurrence in two libraries: rounding only (~1e-16 per operation)
    np.testing.assert_allclose(np.asarray(outputs), expected, rtol=1e-12, atol=1e-14)


def test_a_missing_tensor_is_named():
    state_dict = dict(torch_model(2).state_dict())
    del state_dict["lstm.bias_hh_l1"]
    with pytest.raises(WeightsError, match=r"missing lstm\.bias_hh_l1"):
        convert.torch_to_flax(state_dict)


def test_a_wrong_shape_is_named_with_both_shapes():
    state_dict = dict(torch_model(2).state_dict())
    state_dict["lstm.weight_hh_l1"] = state_dict["lstm.weight_hh_l1"][:, :-1]
    with pytest.raises(WeightsError, match=r"lstm\.weight_hh_l1 is \(68, 16\), expected \(68, 17\)"):
        convert.torch_to_flax(state_dict)


def test_an_unexpected_name_is_named():
    state_dict = {**torch_model(1).state_dict(), "lstm.weight_ih_l0_reverse": torch.zeros(68, INPUT)}
    with pytest.raises(WeightsError, match=r"unexpected lstm\.weight_ih_l0_reverse"):
        convert.torch_to_flax(state_dict)


def test_flax_params_with_a_foreign_module_or_a_bad_leaf_are_rejected():
    params = convert.torch_to_flax(dict(torch_model(1).state_dict()))
    with pytest.raises(WeightsError, match=r"unexpected module\(s\) Dense_0"):
        convert.flax_to_torch({**params, "Dense_0": {"kernel": np.zeros((17, 3))}})
    params["lstm"]["bias_l0"] = params["lstm"].pop("bias_ih_l0")  # a single-bias port's naming
    with pytest.raises(WeightsError, match=r"missing lstm\.bias_ih_l0; unexpected lstm\.bias_l0"):
        convert.flax_to_torch(params)


def test_weights_without_an_lstm_are_rejected():
    with pytest.raises(WeightsError, match=r"weights have no 'lstm\.weight_ih_l0'"):
        convert.torch_to_flax({"head.weight": np.zeros((1, 4)), "head.bias": np.zeros(1)})
