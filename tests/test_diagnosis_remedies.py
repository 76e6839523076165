"""Every remedy lstm-doctor prescribes is a command line lstm-train accepts: on synthetic runs of every dataset,
both backends and the settings a remedy must respect (two layers with dropout, clipping off, a plateau floor at
the lr, a start from another run's weights, the JAX trainer's cuDNN recurrence), each rule's prescription, its
flags after the run's own, passes lstm-train's parser and `config.validate` (`cli.config_from_args`, as lstm-train
reads its command line), and changes no model shape or scaling that --init-from's weights fix."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from test_diagnosis import healthy_grads, healthy_loss, run, write_run

from lstm_core import cli
from lstm_core.config import ConfigError
from lstm_core.diagnosis_report import format_report
from lstm_core.records import write_json

DATASET_FLAGS = {
    "sine": (),
    "adding": ("--dataset", "adding"),
    "digits": ("--dataset", "digits"),
    "csv": ("--dataset", "csv", "--csv", "prices.csv", "--target", "close"),  # read only when training starts
}
LR = "0.01"  # lstm-train's default; scenarios that need another pass their own
# (backend, name, flags): the run settings that constrain a remedy, on each backend that has them
RUN_SETTINGS = [
    *(
        (backend, name, flags)
        for backend in ("torch", "jax")
        for name, flags in (
            ("defaults", ()),
            ("two layers with dropout", ("--num-layers", "2", "--dropout", "0.2")),
            ("clipping off", ("--clip-norm", "0")),
            ("plateau floor at the lr", ("--min-lr", "{lr}")),
            ("two layers, from another run's weights", ("--num-layers", "2", "--init-from", "runs/base")),
        )
    ),
    ("jax", "cudnn, two layers", ("--rnn", "cudnn", "--num-layers", "2")),
]


def spike_then_divergence(baseline, rng):
    n = 250
    loss, grads = baseline * healthy_loss(n, rng), rng.lognormal(0.0, 0.2, n)
    grads[211] = 3.1e4
    loss[214:], grads[214:] = np.inf, np.nan
    return loss, grads, {}


def flat(level):
    def records(baseline, rng):
        n = 500
        return level * baseline * rng.lognormal(0.0, 0.05, n), healthy_grads(n, rng), {}

    return records


def divergence_without_spike(baseline, rng):
    n = 75
    loss = baseline * np.geomspace(1.0, 50.0, n) * rng.lognormal(0.0, 0.05, n)
    grads = np.linspace(1.0, 5.0, n) * rng.lognormal(0.0, 0.05, n)
    loss[60:], grads[60:] = np.nan, np.nan
    return loss, grads, {}


def unscaled(baseline, rng):
    n = 300
    inputs = {"mean": [1500.0], "std": [300.0], "min": [900.0], "max": [2100.0]}
    return baseline * healthy_loss(n, rng, start=0.7, floor=0.05), healthy_grads(n, rng), {"inputs": inputs}


def overfitting(baseline, rng):
    n = 500
    val = baseline * np.concatenate([np.linspace(1.0, 0.2, 8), np.linspace(0.22, 0.4, 12)])
    return baseline * healthy_loss(n, rng, floor=0.01), healthy_grads(n, rng), {"val": val}


def too_short(baseline, rng):
    return 0.75 * baseline * rng.lognormal(0.0, 0.05, 10), healthy_grads(10, rng), {}


# (name, the cause whose remedy it draws, the run's own flags, its records (loss, grads, write_run's kwargs) for a
# baseline and a generator, its grad-flow profile ‖dL/dh_0‖ / ‖dL/dh_{T-1}‖)
SCENARIOS = [
    ("spike then divergence", "exploding_gradients", (), spike_then_divergence, 1e-2),
    ("gradient growing back through time", "exploding_gradients", (), flat(0.95), 1e9),
    ("divergence without a spike", "lr_too_high", ("--lr", "1.0"), divergence_without_spike, 1e-2),
    ("lr too low", "lr_too_low", ("--lr", "1e-05"), flat(1.0), 1e-2),
    ("vanishing gradients", "vanishing_gradients", (), flat(0.97), 1e-8),
    ("saturated gates", "vanishing_gradients", (), flat(0.97), 0.0),
    ("unscaled data", "unscaled_data", ("--no-scale",), unscaled, 1e-2),
    ("underfitting", "underfitting", (), flat(0.8), 1e-2),
    ("overfitting", "overfitting", (), overfitting, 1e-2),
    ("overfitting a small training split", "overfitting", ("--splits", "0.3,0.35,0.35"), overfitting, 1e-2),
    ("too short to judge", "lr_too_low", (), too_short, 1e-2),
]

# A flag as a remedy names it, with its value where it has one ("--lr 0.001", "--splits 0.7,0.15,0.15", "1e-05"),
# or after "drop" (a flag of the run's to leave out).
PRESCRIBED = re.compile(r"(drop )?(--[a-z][a-z-]*)(?: (\d[\d.e+-]*(?:,\d[\d.e+-]*)*))?")


def prescribed(remedy: str) -> tuple[list[str], set[str]]:
    """The flags `remedy` adds (as argv) and those it drops, e.g. "--epochs 4, then --hidden-size 64 or
    --num-layers 2" -> ["--epochs", "4", "--hidden-size", "64", "--num-layers", "2"]: alternatives ("or",
    "else") taken together, which lstm-train accepts only if it accepts each."""
    added, dropped = [], set()
    for drop, flag, value in PRESCRIBED.findall(remedy):
        if drop:
            dropped.add(flag)
        else:
            added += [flag, value] if value else [flag]
    return added, dropped


def without(argv: list[str], dropped: set[str]) -> list[str]:
    """`argv` less the `dropped` flags, each with the value that follows it, if any ("--init-from RUN_DIR")."""
    kept: list[str] = []
    after_dropped = False
    for token in argv:
        if token in dropped or (after_dropped and not token.startswith("--")):
            after_dropped = token in dropped
            continue
        after_dropped = False
        kept.append(token)
    return kept


def made_for(config):
    """What --init-from's weights fix of a run: the model's shape and whether its data are scaled."""
    return config.model.hidden_size, config.model.num_layers, config.data.scale


def write_scenario(path, dataset, argv, records, flow_ratio, rng):
    """The scenario's records for the run lstm-train would make of `argv`, with that run's own config.json."""
    config = cli.config_from_args(cli.build_parser().parse_args(argv))
    classes = config.task == "classification"
    baseline = math.log(10) if classes else 1.0  # digits: ln(10 classes); scaled regression: 1.0
    loss, grads, kwargs = records(baseline, rng)
    path = write_run(
        path,
        loss,
        grads,
        lr=config.optimizer.lr,
        clip=config.clipping.enabled,
        scaled=config.data.scale,
        num_layers=config.model.num_layers,
        dataset=dataset,
        task=config.task,
        num_classes=10 if classes else None,
        T=8 if dataset == "digits" else config.data.window,
        flow_ratio=flow_ratio,
        **kwargs,
    )
    write_json(path / "config.json", config.to_dict())
    return path


@pytest.mark.parametrize(
    ("backend", "setting", "setting_flags"),
    RUN_SETTINGS,
    ids=[f"{backend}, {name}" for backend, name, _ in RUN_SETTINGS],
)
@pytest.mark.parametrize("dataset", DATASET_FLAGS)
def test_every_prescription_is_a_command_line_lstm_train_accepts(
    tmp_path, rng, dataset, backend, setting, setting_flags
):
    for name, cause, scenario_flags, records, flow_ratio in SCENARIOS:
        lr = scenario_flags[1] if scenario_flags[:1] == ("--lr",) else LR
        argv = [
            *DATASET_FLAGS[dataset],
            "--backend",
            backend,
            *(flag.format(lr=lr) for flag in setting_flags),
            *scenario_flags,
        ]
        original = cli.config_from_args(cli.build_parser().parse_args(argv))
        d = run(write_scenario(tmp_path / name, dataset, argv, records, flow_ratio, rng))
        # the scenario draws its cause's remedy (a test that checked no prescription could not fail)
        assert any(prescribed(d.finding(cause).remedy)), (name, format_report(d))
        for finding in d.findings:
            if not finding.remedy:
                continue
            added, dropped = prescribed(finding.remedy)
            remedied = without(argv, dropped) + added
            try:
                config = cli.config_from_args(cli.build_parser().parse_args(remedied))
            except (ConfigError, SystemExit) as error:  # SystemExit: argparse refused a flag or its value
                pytest.fail(f"{name}: {finding.cause}'s remedy {finding.remedy!r} makes {remedied} refused: {error}")
            # lstm-train refuses, when it starts (not in `validate`), a start from weights made for another model
            # shape or scaling than the run's
            if config.training.init_from:
                assert made_for(config) == made_for(original), (name, finding.remedy)
