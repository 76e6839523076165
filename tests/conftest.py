"""Shared fixtures: small configs that train in a second or two."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lstm_core import data
from lstm_core.config import Config, DataConfig, ModelConfig, TrainingConfig
from lstm_core.loop import prepare


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator for synthetic records: the same numbers in every run."""
    return np.random.default_rng(0)


@pytest.fixture
def tiny_config() -> Config:
    """sine, 300 points, window 10, hidden 8, 2 epochs: enough to exercise every path quickly."""
    return Config(
        model=ModelConfig(hidden_size=8),
        training=TrainingConfig(epochs=2, batch_size=16, grad_flow_every=5),
        data=DataConfig(num_samples=300, window=10),
    )


def make_trainer(config: Config, trainer_class):
    """A backend's Trainer on the config's data and seeded initial weights, with what a test needs beside it."""
    prepared, initial, generators = prepare(config)
    return trainer_class(config, prepared, initial), prepared, generators, initial


def train_epochs(trainer, prepared, generators, epochs: int) -> dict:
    """Run `epochs` epochs of the shared batch order; return the last epoch's per-step statistics."""
    step = 1
    for _ in range(epochs):
        batches = data.epoch_batches(len(prepared.train), trainer.config.training.batch_size, generators["batches"])
        stats = trainer.train_epoch(batches, step)
        step += len(batches)
    return stats


def replace(config: Config, **sections) -> Config:
    """Config with fields of sections replaced: replace(cfg, training={"dtype": "float64"})."""
    changes = {name: dataclasses.replace(getattr(config, name), **values) for name, values in sections.items()}
    return dataclasses.replace(config, **changes)
