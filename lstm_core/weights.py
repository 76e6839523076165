"""Initial weights drawn once, with torch's distributions, in torch's `state_dict` layout.

Both backends start from these arrays, so one seed gives the same initial model on both. Names and shapes
(H = hidden size, In_k = input size of layer k, O = outputs):
    lstm.weight_ih_l{k} (4H, In_k), lstm.weight_hh_l{k} (4H, H), lstm.bias_ih_l{k} (4H,), lstm.bias_hh_l{k} (4H,)
    head.weight (O, H), head.bias (O,)
Gate rows are ordered i, f, g, o as in `nn.LSTM`. Weights files are safetensors: loading runs no code.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from lstm_core.records import WEIGHTS_FILE as WEIGHTS_FILE  # the name the run directory gives this file
from lstm_core.records import write_atomically


class WeightsError(ValueError):
    """A weights file is missing, corrupt, or does not fit the model."""


def parameter_shapes(input_size: int, hidden_size: int, num_layers: int, num_outputs: int) -> dict[str, tuple]:
    """Every parameter's torch name and shape, in nn.LSTM's registration order, then the head."""
    shapes = {}
    for k in range(num_layers):
        layer_input = input_size if k == 0 else hidden_size
        shapes[f"lstm.weight_ih_l{k}"] = (4 * hidden_size, layer_input)
        shapes[f"lstm.weight_hh_l{k}"] = (4 * hidden_size, hidden_size)
        shapes[f"lstm.bias_ih_l{k}"] = (4 * hidden_size,)
        shapes[f"lstm.bias_hh_l{k}"] = (4 * hidden_size,)
    shapes["head.weight"] = (num_outputs, hidden_size)
    shapes["head.bias"] = (num_outputs,)
    return shapes


def initial_weights(
    input_size: int, hidden_size: int, num_layers: int, num_outputs: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """float64 arrays drawn as torch draws them: U(±1/sqrt(H)) for every LSTM weight and bias (nn.LSTM's
    reset_parameters), and U(±1/sqrt(fan_in)) for the head's weight and bias (nn.Linear's kaiming-uniform
    with a = sqrt(5) reduces to that bound). Fan-in of the head is H, so every bound is 1/sqrt(H)."""
    bound = 1.0 / np.sqrt(hidden_size)
    return {
        name: rng.uniform(-bound, bound, size=shape)
        for name, shape in parameter_shapes(input_size, hidden_size, num_layers, num_outputs).items()
    }


def check_weights(weights: dict[str, np.ndarray], expected: dict[str, tuple], source: str) -> None:
    """Raise WeightsError naming every missing, unexpected or misshapen tensor."""
    missing = [name for name in expected if name not in weights]
    unexpected = [name for name in weights if name not in expected]
    wrong = [
        f"{name} is {tuple(weights[name].shape)}, expected {expected[name]}"
        for name in expected
        if name in weights and tuple(weights[name].shape) != tuple(expected[name])
    ]
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unexpected:
        problems.append(f"unexpected {', '.join(unexpected)}")
    if wrong:
        problems.append("; ".join(wrong))
    if problems:
        raise WeightsError(
            f"{source} does not fit the model: {'; '.join(problems)} "
            "(check --hidden-size, --num-layers and the dataset)"
        )


def save(weights: dict[str, np.ndarray], path: str | Path) -> None:
    arrays = {name: np.ascontiguousarray(value) for name, value in weights.items()}
    write_atomically(Path(path), lambda temporary: save_file(arrays, str(temporary)))


def load(path: str | Path) -> dict[str, np.ndarray]:
    """The float32 or float64 arrays of a safetensors file, by name; WeightsError if it holds anything else."""
    path = Path(path)
    if not path.exists():
        raise WeightsError(f"weights file {str(path)!r} does not exist")
    if path.is_dir():
        raise WeightsError(f"weights file {str(path)!r} is a directory, not a safetensors file; pass the file")
    floats = ("F32", "F64")  # safetensors' names; only these are read: numpy cannot even read some (bfloat16)
    try:
        with safe_open(str(path), framework="np") as file:
            stored = {name: file.get_slice(name).get_dtype() for name in file.keys()}  # noqa: SIM118 (not iterable)
            arrays = {name: file.get_tensor(name) for name, dtype in stored.items() if dtype in floats}
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(
            f"weights file {str(path)!r} is corrupt or not safetensors ({error}); re-run the training that wrote it"
        ) from None
    wrong = [f"{name} is stored as {dtype}" for name, dtype in stored.items() if dtype not in floats]
    if wrong:
        raise WeightsError(
            f"weights file {str(path)!r}: {'; '.join(wrong)}; expected float32 (F32) or float64 (F64): "
            "save it as float32"
        )
    return arrays
