"""Train the torch reference and the JAX trainer side by side, one optimizer step at a time.

Both trainers start from the same weights (`lstm_core.loop.prepare`: drawn from the seed, or a run's with
`--init-from`), see the same data and the same batches in the same order, and are driven through their public
methods only: `train_epoch` on one-batch epochs (so the per-step statistics are exactly the ones `steps.csv`
records), `step_details` before each step (forward outputs and every gradient), `weights()` after it, and
`evaluate` / `end_epoch` at the end of each epoch as `lstm_core.loop.train` does. Before each step the JAX
trainer also differentiates at the torch trainer's current weights, which separates the gradient maths
(same weights, same batch) from the drift of two runs that each follow their own weights.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from lstm_core import data as datasets
from lstm_core import loop
from lstm_core.config import BACKENDS, Config, torch_side
from lstm_core.records import RecordsWriter, clear_run_dir

STEP_STATS = ("loss", "grad_norm", "clip_factor", "lr", "grad_norms")


@dataclass
class Trace:
    """One backend's run, step by step: S steps, E epochs, P parameter tensors (torch names)."""

    backend: str
    param_names: list[str]
    stats: dict[str, np.ndarray]  # the steps.csv statistics: loss, grad_norm, clip_factor, lr (S,), grad_norms (S, P)
    grad_flow_steps: np.ndarray  # (S',) the steps whose ‖dL/dh_t‖ was probed (training.grad_flow_every)
    grad_flow: np.ndarray  # (S', L, T)
    outputs: np.ndarray  # (S, B, O) forward outputs on each step's batch, before its update
    grads: dict[str, np.ndarray]  # name -> (S, *shape): gradients before clipping, along this backend's run
    params: dict[str, np.ndarray]  # name -> (S, *shape): the weights after each step's update
    val_loss: np.ndarray  # (E,) after each epoch
    epoch_last_step: np.ndarray  # (E,) the step that ended each epoch
    lr_reductions: list[int]  # epochs after which the plateau schedule lowered the lr
    grads_at_reference: dict[str, np.ndarray] | None = None  # (S, *shape): at the torch run's weights (JAX only)

    @property
    def steps(self) -> int:
        return len(self.stats["loss"])


@dataclass
class _Recorder:
    """Collects one backend's per-step values as lists; `trace` stacks them."""

    backend: str
    param_names: list[str]
    stats: dict = dataclasses.field(default_factory=lambda: {name: [] for name in STEP_STATS})
    grad_flow_steps: list = dataclasses.field(default_factory=list)
    grad_flow: list = dataclasses.field(default_factory=list)
    outputs: list = dataclasses.field(default_factory=list)
    grads: list = dataclasses.field(default_factory=list)
    params: list = dataclasses.field(default_factory=list)
    grads_at_reference: list = dataclasses.field(default_factory=list)
    val_loss: list = dataclasses.field(default_factory=list)
    epoch_last_step: list = dataclasses.field(default_factory=list)
    lr_reductions: list = dataclasses.field(default_factory=list)

    def trace(self) -> Trace:
        def stacked(dicts):
            return {name: np.stack([d[name] for d in dicts]) for name in self.param_names} if dicts else None

        flow = np.stack(self.grad_flow) if self.grad_flow else np.zeros((0, 0, 0))
        return Trace(
            backend=self.backend,
            param_names=self.param_names,
            stats={name: np.concatenate(values) for name, values in self.stats.items()},
            grad_flow_steps=np.asarray(self.grad_flow_steps, dtype=np.int64),
            grad_flow=flow,
            outputs=np.stack(self.outputs),
            grads=stacked(self.grads),
            params=stacked(self.params),
            val_loss=np.asarray(self.val_loss),
            epoch_last_step=np.asarray(self.epoch_last_step, dtype=np.int64),
            lr_reductions=self.lr_reductions,
            grads_at_reference=stacked(self.grads_at_reference),
        )


def backend_configs(config: Config, jax_config: Config | None = None) -> dict[str, Config]:
    """The config each backend trains with: `config` for both (torch's without the JAX trainer's own settings,
    which it does not run), or `jax_config` (a deliberate variant) for JAX."""
    return {
        "torch": torch_side(config),
        "jax": dataclasses.replace(jax_config or config, backend="jax"),
    }


def gpu_available() -> bool:
    """A CUDA GPU that both torch and jax can use."""
    import jax
    import torch

    try:
        jax_gpus = jax.devices("gpu")
    except RuntimeError:
        jax_gpus = []
    return torch.cuda.is_available() and bool(jax_gpus)


def pin_gpu_precision() -> None:
    """Full float32 matmuls on a GPU: JAX 'highest', and no TF32 in torch's matmuls or cuDNN."""
    import jax
    import torch

    jax.config.update("jax_default_matmul_precision", "highest")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def run(
    config: Config,
    *,
    jax_config: Config | None = None,
    out_dir: str | Path | None = None,
    earlier_files: tuple[str, ...] = (),
    progress: bool = False,
) -> dict[str, Trace]:
    """Train both backends in lockstep for `config.training.epochs` epochs and return their traces.

    `jax_config` replaces the JAX side's config (the suite's deliberately wrong variants). With `out_dir`, each
    backend's records (steps.csv, epochs.csv, grad_flow.csv, config.json) go to `out_dir/<backend>/`, and
    `earlier_files` (names in `out_dir`: an earlier comparison's report) are removed with those directories'
    earlier records, once both trainers are built, so that a run refused by a trainer keeps them.
    """
    configs = backend_configs(config, jax_config)
    prepared, initial, generators = loop.prepare(config)
    trainers = {name: loop.backend_module(name).Trainer(configs[name], prepared, initial) for name in BACKENDS}
    recorders = {name: _Recorder(name, list(trainer.param_names)) for name, trainer in trainers.items()}
    writers = {}
    if out_dir is not None:
        for earlier in earlier_files:
            (Path(out_dir) / earlier).unlink(missing_ok=True)
        for name, trainer in trainers.items():
            run_dir = Path(out_dir) / name
            clear_run_dir(run_dir)  # an earlier run's weights and summary never sit beside these records
            writers[name] = RecordsWriter(run_dir, trainer.param_names)
            writers[name].write_json("config.json", configs[name].to_dict())

    num_batches = len(prepared.train) // config.training.batch_size
    bar = tqdm(total=config.training.epochs * num_batches, desc="parity", unit="step", disable=not progress)
    step = 1
    for epoch in range(1, config.training.epochs + 1):
        epoch_started = time.perf_counter()
        batches = datasets.epoch_batches(len(prepared.train), config.training.batch_size, generators["batches"])
        epoch_stats = {name: [] for name in BACKENDS}
        for batch in batches:
            reference = trainers["torch"].weights()
            at_reference = trainers["jax"].step_details(batch, reference)["grads"]
            recorders["jax"].grads_at_reference.append(at_reference)
            for name, trainer in trainers.items():
                details = trainer.step_details(batch)
                stats = trainer.train_epoch(batch[None], step)
                recorder = recorders[name]
                recorder.outputs.append(details["outputs"])
                recorder.grads.append(details["grads"])
                recorder.params.append(trainer.weights())
                for stat in STEP_STATS:
                    recorder.stats[stat].append(stats[stat])
                recorder.grad_flow_steps.extend(stats["grad_flow_steps"].tolist())
                recorder.grad_flow.extend(stats["grad_flow"])
                epoch_stats[name].append(stats)
            step += 1
            bar.update()
        finite = True
        for name, trainer in trainers.items():
            lr = trainer.lr
            val_loss, _ = trainer.evaluate(prepared.val)
            recorder = recorders[name]
            train_loss = float(np.mean(np.concatenate([s["loss"] for s in epoch_stats[name]])))
            epoch_finite = math.isfinite(val_loss) and math.isfinite(train_loss)
            if epoch_finite:
                trainer.end_epoch(val_loss)
            finite = finite and epoch_finite
            if trainer.lr < lr:
                recorder.lr_reductions.append(epoch)
            recorder.val_loss.append(val_loss)
            recorder.epoch_last_step.append(step - 1)
            if name in writers:  # seconds: the lockstep epoch of both backends, with every probe
                seconds = time.perf_counter() - epoch_started
                _write_steps(writers[name], epoch_stats[name], step - len(batches), epoch, trainer.param_names)
                writers[name].write_epoch(epoch=epoch, train_loss=train_loss, val_loss=val_loss, lr=lr, seconds=seconds)
        if not finite:  # as lstm_core.loop.train: a non-finite loss ends the run
            break
    bar.close()
    return {name: recorder.trace() for name, recorder in recorders.items()}


def _write_steps(writer: RecordsWriter, per_step: list[dict], first_step: int, epoch: int, param_names) -> None:
    """One epoch's one-batch statistics, joined, written as `lstm_core.loop.train` writes them."""
    joined = {key: np.concatenate([s[key] for s in per_step]) for key in (*STEP_STATS, "grad_flow_steps")}
    flows = [s["grad_flow"] for s in per_step if len(s["grad_flow"])]
    joined["grad_flow"] = np.concatenate(flows) if flows else np.zeros((0, 0, 0))
    writer.write_steps(loop.step_records(joined, first_step, epoch, param_names))
    writer.write_grad_flow(joined["grad_flow_steps"], joined["grad_flow"])
