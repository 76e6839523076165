"""Shared fixtures: small configs that train in a second or two."""

from __future__ import annotations

import dataclasses

import pytest

from lstm_core.config import Config, DataConfig, ModelConfig, TrainingConfig


@pytest.fixture
def tiny_config() -> Config:
    """sine, 300 points, window 10, hidden 8, 2 epochs: enough to exercise every path quickly."""
    return Config(
        model=ModelConfig(hidden_size=8),
        training=TrainingConfig(epochs=2, batch_size=16, grad_flow_every=5),
        data=DataConfig(num_samples=300, window=10),
    )


def replace(config: Config, **sections) -> Config:
    """Config with fields of sections replaced: replace(cfg, training={"dtype": "float64"})."""
    changes = {name: dataclasses.replace(getattr(config, name), **values) for name, values in sections.items()}
    return dataclasses.replace(config, **changes)
