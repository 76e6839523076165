"""The configurations the parity suite trains, and the helpers its tests share.

Configs are nested sections, as a config file gives them, so each case reads like the TOML a user would
write. Sizes are odd on purpose (hidden 17, input 5) so that no shape coincidence hides a transposed weight.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import linen as nn

from lstm_core.config import Config, from_dict
from parity_tests import compare, engine

DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("gpu", id="gpu", marks=pytest.mark.gpu)]

# The headline float64 run: 522 steps of a 2-layer sine model; max_norm 0.3 clips 29 % of the steps and the
# plateau (patience 1, threshold 5 %, factor 0.5) lowers the lr after epochs 4, 7, 9, 11, 13, 15 and 17.
LONG_FLOAT64 = {
    "training": {"dtype": "float64", "epochs": 18, "batch_size": 16, "grad_flow_every": 5},
    "model": {"hidden_size": 17, "num_layers": 2},
    "data": {"num_samples": 700},
    "clipping": {"max_norm": 0.3},
    "plateau": {"patience": 1, "factor": 0.5, "threshold": 0.05},
}

# A plateau that fires early: patience 0 and a 50 % improvement threshold make nearly every epoch "bad".
EAGER_PLATEAU = {"patience": 0, "factor": 0.5, "threshold": 0.5}
SHORT_SINE = {"num_samples": 300}  # 190 training windows of 20 steps

# Short float64 runs covering layers x task x clipping x plateau, weight decay and both JAX backward paths
# (the hand-written default elsewhere, autodiff here); grad_flow probed at every step.
MATRIX = {
    "sine-1layer-clip-plateau": {
        "training": {"epochs": 4, "batch_size": 32},
        "model": {"hidden_size": 17},
        "data": SHORT_SINE,
        "clipping": {"max_norm": 0.3},
        "plateau": EAGER_PLATEAU,
    },
    "sine-2layer-noclip-plateau": {
        "training": {"epochs": 4, "batch_size": 32},
        "model": {"hidden_size": 17, "num_layers": 2},
        "data": SHORT_SINE,
        "clipping": {"enabled": False},
        "plateau": EAGER_PLATEAU,
    },
    "digits-1layer-clip-plateau": {
        "training": {"epochs": 3, "batch_size": 128},
        "model": {"hidden_size": 17},
        "data": {"dataset": "digits"},
        "clipping": {"max_norm": 0.1},
        "plateau": EAGER_PLATEAU,
    },
    "csv5-1layer-clip-plateau-decay": {
        "training": {"epochs": 4, "batch_size": 32},
        "model": {"hidden_size": 17},
        "optimizer": {"weight_decay": 0.01},  # torch's coupled L2
        "data": {"dataset": "csv", "features": ["f0", "f1", "f2", "f3", "f4"], "target": "y"},
        "clipping": {"max_norm": 0.3},
        "plateau": EAGER_PLATEAU,
    },
    "digits-2layer-noclip-noplateau-autodiff": {
        "training": {"epochs": 2, "batch_size": 128, "backward": "autodiff"},  # JAX's other backward path
        "model": {"hidden_size": 17, "num_layers": 2},
        "data": {"dataset": "digits"},
        "clipping": {"enabled": False},
        "plateau": {"enabled": False},
    },
    "csv5-2layer-clip-noplateau": {
        "training": {"epochs": 2, "batch_size": 32},
        "model": {"hidden_size": 17, "num_layers": 2},
        "data": {"dataset": "csv", "features": ["f0", "f1", "f2", "f3", "f4"], "target": "y"},
        "clipping": {"max_norm": 0.3},
        "plateau": {"enabled": False},
    },
}

# float32 runs, compared step by step over the first 50 steps (compare.FLOAT32_STEPS).
FLOAT32_CASES = {
    "sine-2layer": {
        "training": {"epochs": 3, "batch_size": 16},
        "model": {"hidden_size": 17, "num_layers": 2},
        "data": {"num_samples": 500},
        "clipping": {"max_norm": 0.5},
    },
    "digits-1layer": {
        "training": {"epochs": 3, "batch_size": 64},
        "model": {"hidden_size": 17},
        "data": {"dataset": "digits"},
    },
}


def single_bias_param(module, name: str, *args, **kwargs):
    """A wrong variant of flax's `Module.param` for LSTMStack: a port with one bias b = b_ih + b_hh per layer.

    The cell still sees the sum, but only one vector is trained (Adam moves the sum once, not twice), which is
    what stopping the gradient into bias_hh does, on either backward path of the recurrence.
    """
    value = nn.Module.param(module, name, *args, **kwargs)
    return jax.lax.stop_gradient(value) if name.startswith("bias_hh") else value


def make_config(sections: dict, *, device: str = "cpu", csv: Path | None = None, **training) -> Config:
    """A validated Config from nested sections; `training` entries and the device override the case's."""
    sections = copy.deepcopy(sections)
    sections.setdefault("training", {}).update(device=device, **training)
    if sections.get("data", {}).get("dataset") == "csv":
        sections["data"]["csv"] = str(csv)
    return from_dict(sections)


def write_five_feature_csv(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """Five seeded noisy sines of different periods (columns f0..f4) and a target y mixing them."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)[:, None]
    features = np.sin(2 * np.pi * t / np.array([13, 29, 37, 41, 53])) + 0.1 * rng.standard_normal((rows, 5))
    target = features @ np.array([0.5, -0.3, 0.2, 0.1, -0.4]) + 0.05 * rng.standard_normal(rows)
    header = "f0,f1,f2,f3,f4,y"
    np.savetxt(path, np.column_stack([features, target]), delimiter=",", header=header, comments="")
    return path


def run_and_compare(config: Config, **run_options) -> tuple[compare.Report, dict[str, engine.Trace]]:
    traces = engine.run(config, **run_options)
    return compare.compare(traces, config.training.dtype, config.training.device, jax_rnn=config.training.rnn), traces


def quantity(report: compare.Report, name: str) -> compare.QuantityResult:
    return next(q for q in report.quantities if q.name == name)
