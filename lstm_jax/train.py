"""Pure training functions (step, epoch, predict) and the thin driver the shared loop calls.

One jit boundary per epoch: `train_epoch` scans `train_step` over all batches with the data resident on the
device, and returns every step's statistics stacked, fetched once per epoch (no host sync per step). Every
step computes ‖dL/dh_t‖ with its gradient (the scan path's recurrence gives it at no extra cost); the host
keeps the probed steps'. The cuDNN path runs one program per step instead (`Trainer._stepwise_epoch`).
"""

from __future__ import annotations

import math
import time
from functools import partial
from importlib import metadata
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lstm_core.config import Config, ConfigError
from lstm_core.data import Prepared, Split
from lstm_core.flops import lstm_step_flops
from lstm_jax import cudnn, optim
from lstm_jax.model import LSTMModel, from_torch_names, to_torch_names, zero_perturbation


def versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in ("jax", "jaxlib", "flax", "optax")}


class TrainState(NamedTuple):
    params: dict
    opt_state: tuple
    key: jax.Array  # dropout


BATCH = "batch"  # the mesh axis a batch is split over


# When auto splits a batch (measured on 2 cores, two shards against one, jax-epoch):
# - each shard must keep this much matmul work per step: a split costs ~0.4 ms of synchronisation a step
#   ((32,20,1,32,1) ran 0.78x as fast in two shards, (32,50,1,32,1) 1.33x, (32,20,1,64,1) 1.19x);
MIN_SHARD_FLOPS = 20e6
# - no layer may have more weights than this (elements of W_ih and W_hh): beyond it one device's matmuls
#   already use both cores and two devices only add work ((32,100,8,384,1) 1.12x; (32,100,8,512,1) 0.81x,
#   (64,100,8,512,1) 0.95x, (128,100,8,512,1) 0.92x, (32,100,8,1024,1) 0.74x).
MAX_SPLIT_WEIGHTS = 750_000


def batch_mesh(name: str, shards: int, batch_size: int, step_flops: float, layer_weights: int) -> Mesh:
    """The devices of kind `name` (cpu | gpu) that a batch of `batch_size` is split over: `shards` of them, or
    with 0 (auto) the most that divide the batch into equal parts worth splitting, given the step's matmul work
    `step_flops` and the largest layer's weight count (on CPU one device per core, see `lstm_jax`; one GPU)."""
    try:
        devices = jax.devices(name)
    except RuntimeError:
        raise ConfigError(f"device {name!r} is not visible to jax (it has {jax.devices()}); use --device cpu") from None
    if name == "gpu":
        devices = devices[:1]  # the first GPU, as torch's cuda:0
    if shards == 0:
        splits = [n for n in range(2, len(devices) + 1) if batch_size % n == 0 and step_flops / n >= MIN_SHARD_FLOPS]
        shards = max(splits) if splits and layer_weights <= MAX_SPLIT_WEIGHTS else 1
    if shards > len(devices):
        where = (
            "one per CPU core unless jax computed something before lstm_jax was imported"
            if name == "cpu"
            else "the trainer runs on the first GPU"
        )
        raise ConfigError(
            f"shards {shards} needs {shards} {name} devices; jax has {len(devices)} here ({where}); "
            "use --shards 0 (auto)"
        )
    return Mesh(np.array(devices[:shards]), (BATCH,))


def task_loss(outputs: jax.Array, y: jax.Array, task: str) -> jax.Array:
    """Mean MSE (regression, y (B, 1)) or cross-entropy (classification, y (B,) int labels) of outputs (B, O)."""
    if task == "classification":
        return optax.softmax_cross_entropy_with_integer_labels(outputs, y).mean()
    return jnp.mean((outputs - y) ** 2)


def loss_fn(params, x, y, h_perturb, key, *, model: LSTMModel, task: str) -> jax.Array:
    outputs = model.apply({"params": params}, x, h_perturb, train=True, rngs={"dropout": key})  # (B, O)
    return task_loss(outputs, y, task)


def param_norms(tree: dict, names: tuple[str, ...]) -> jax.Array:
    """Per-tensor L2 norms (P,) in the order of `names` (torch names; pytrees sort dict keys, so the order
    must be given)."""
    return jnp.stack(
        [jnp.linalg.norm(tree[module][leaf].ravel()) for module, leaf in (name.split(".", 1) for name in names)]
    )


def batch_gradients(params, x, y, key, *, model: LSTMModel, task: str, mesh: Mesh):
    """Loss, gradients (a params tree) and dL/dh_t (L, T, B, H) of the mean loss over the batch x (B, T, In), y.

    With more than one device in `mesh`, the batch splits into equal parts, one per device, under `shard_map`:
    each device runs the recurrence on its rows (on CPU, one core each), and the mean of their losses and
    gradients is the whole batch's (equal parts). Dropout masks are the whole batch's (`LSTMStack.drop`).

    The scan path gets dL/dh_t with the gradient at no extra cost (as the gradient of a zero perturbation of
    every h_t). The cuDNN path reports zeros: its trainer reads dL/dh_t in a program of its own (`grad_flow`).
    """

    def gradients(params, x, y, key, model):
        h_perturb = zero_perturbation(model.num_layers, x.shape[1], x.shape[0], model.hidden_size, x.dtype)
        inputs = (params, x, y, h_perturb, key)
        if model.rnn == "scan":
            loss, (grads, dh) = jax.value_and_grad(partial(loss_fn, model=model, task=task), argnums=(0, 3))(*inputs)
        else:
            loss, grads = jax.value_and_grad(partial(loss_fn, model=model, task=task))(*inputs)
            dh = h_perturb
        return loss, grads, dh

    if mesh.size == 1:
        return gradients(params, x, y, key, model)

    def shard(params, x, y, key):
        loss, grads, dh = gradients(params, x, y, key, model.clone(batch_axis=BATCH))
        return jax.lax.pmean(loss, BATCH), jax.lax.pmean(grads, BATCH), dh / mesh.size  # dh: of the mean over B

    whole, rows = PartitionSpec(), PartitionSpec(BATCH)
    split = jax.shard_map(
        shard,
        mesh=mesh,
        in_specs=(whole, rows, rows, whole),
        out_specs=(whole, whole, PartitionSpec(None, None, BATCH)),
        check_vma=False,  # the recurrences' zero initial states are not marked as varying over the shards
    )
    return split(params, x, y, key)


def train_step(
    state: TrainState,
    batch,
    *,
    model: LSTMModel,
    tx: optax.GradientTransformation,
    config: Config,
    task: str,
    param_names: tuple[str, ...],
    mesh: Mesh,
):
    """One optimizer step on batch (x (B, T, In), y). Returns the new state and this step's statistics."""
    x, y = batch
    key, dropout_key = jax.random.split(state.key)
    loss, grads, dh = batch_gradients(state.params, x, y, dropout_key, model=model, task=task, mesh=mesh)
    grad_norm = optax.tree.norm(grads)
    stats = {
        "loss": loss,
        "grad_norm": grad_norm,
        "clip_factor": optim.clip_factor(grad_norm, config.clipping),
        "lr": optim.learning_rate(state.opt_state),
        "grad_norms": param_norms(grads, param_names),
        "grad_flow": flow_norms(dh),
    }
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return TrainState(params, opt_state, key), stats


def guarded_step(carry, index, x_train, y_train, **static):
    """One step of an epoch: carry (state, finite so far), index (B,) into x_train (N, T, In) and y_train.
    From the first step whose loss or gradient norm is non-finite on, no update is applied, so
    the state keeps the last finite weights; the shared loop stops after that step (as torch's twin does)."""
    state, finite_so_far = carry
    new_state, stats = train_step(state, (x_train[index], y_train[index]), **static)
    finite_so_far = finite_so_far & jnp.isfinite(stats["loss"]) & jnp.isfinite(stats["grad_norm"])
    kept = jax.tree.map(
        partial(jnp.where, finite_so_far), (new_state.params, new_state.opt_state), (state.params, state.opt_state)
    )
    return (TrainState(*kept, new_state.key), finite_so_far), stats


def train_epoch(state: TrainState, x_train, y_train, batches, **static):
    """All steps of one epoch in one `lax.scan`: batches (num_batches, B) index into x_train and y_train."""
    body = partial(guarded_step, x_train=x_train, y_train=y_train, **static)
    (state, _), stats = jax.lax.scan(body, (state, jnp.asarray(True)), batches)
    return state, stats


def flow_norms(dh: jax.Array) -> jax.Array:
    """dL/dh_t (L, T, B, H) -> ‖dL/dh_t‖ (L, T) over batch and hidden units: what steps.csv's probe records."""
    return jnp.sqrt(jnp.sum(dh**2, axis=(2, 3)))


def grad_flow(params, x_train, y_train, index, key, *, model: LSTMModel, task: str, mesh: Mesh) -> jax.Array:
    """‖dL/dh_t‖ (L, T) over the batch `index` (B,) by the scan path, with the dropout key of the step whose
    state key is `key`: the cuDNN trainer's probe (cuDNN does not expose h_t inside its recurrence)."""
    _, dropout_key = jax.random.split(key)
    scan = model.clone(rnn="scan")
    _, _, dh = batch_gradients(params, x_train[index], y_train[index], dropout_key, model=scan, task=task, mesh=mesh)
    return flow_norms(dh)


def predict(params, x, *, model: LSTMModel, mesh: Mesh) -> jax.Array:
    """Outputs (N, O) of x (N, T, In); with more than one device in `mesh`, each runs an equal part of the rows
    (x padded with zero rows to a multiple of the device count)."""
    if mesh.size == 1:
        return model.apply({"params": params}, x, train=False)
    padding = -len(x) % mesh.size
    rows = PartitionSpec(BATCH)
    split = jax.shard_map(
        lambda params, x: model.apply({"params": params}, x, train=False),
        mesh=mesh,
        in_specs=(PartitionSpec(), rows),
        out_specs=rows,
        check_vma=False,  # as in batch_gradients
    )
    return split(params, jnp.pad(x, ((0, padding), (0, 0), (0, 0))))[: len(x)]


def step_details(params, x_train, y_train, index, key, *, model: LSTMModel, task: str) -> dict:
    """Outputs (B, O), loss and gradients (a params tree) on the samples `index` (B,), with no update; `key` is
    the state's key, split as `train_step` splits it."""
    _, key = jax.random.split(key)

    def loss_and_outputs(params):
        outputs = model.apply({"params": params}, x_train[index], train=True, rngs={"dropout": key})  # (B, O)
        return task_loss(outputs, y_train[index], task), outputs

    (loss, outputs), grads = jax.value_and_grad(loss_and_outputs, has_aux=True)(params)
    return {"loss": loss, "outputs": outputs, "grads": grads}


def path_differences(loss, grads, scan_loss, scan_grads) -> tuple[float, float]:
    """How far the cuDNN path's loss and gradient (a params tree) lie from the scan path's, relative to the scan
    path's. Never NaN, so that a running max and a `<=` check cannot let a broken kernel through (Python's max
    drops a NaN that comes second): a loss or gradient that is non-finite on one path only is infinitely far; on
    both, no distance at all (both runs stop on it at their first step, as `guarded_step` has them)."""
    finite, scan_finite = (
        bool(jnp.isfinite(value) & jnp.isfinite(optax.tree.norm(tree)))
        for value, tree in ((loss, grads), (scan_loss, scan_grads))
    )
    if not (finite and scan_finite):
        return (0.0, 0.0) if finite == scan_finite else (math.inf, math.inf)
    difference = jax.tree.map(jnp.subtract, grads, scan_grads)
    return abs(float(loss) / float(scan_loss) - 1), float(optax.tree.norm(difference) / optax.tree.norm(scan_grads))


class Trainer:
    """Holds the device state between jitted epochs; the same methods as `lstm_torch.train.Trainer`."""

    def __init__(self, config: Config, data: Prepared, weights: dict[str, np.ndarray]):
        if config.training.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        self.config = config
        m = config.model
        t = config.training
        _, steps, inputs = data.train.x.shape
        flops = lstm_step_flops(t.batch_size, steps, inputs, m.hidden_size, m.num_layers)
        widest_input = max(inputs, m.hidden_size if m.num_layers > 1 else 0)  # layer 0's, or a deeper layer's H
        layer_weights = 4 * m.hidden_size * (widest_input + m.hidden_size)
        if t.rnn == "cudnn":
            cudnn.require_gpu(t.device)
        self.mesh = batch_mesh(t.device, t.shards, t.batch_size, flops, layer_weights)
        self.placement = NamedSharding(self.mesh, PartitionSpec())  # every device holds the whole array
        self.devices = [f"{d.platform}:{d.id}" for d in self.mesh.devices.flat]  # the batch's shards, in order
        self.dtype = jnp.dtype(config.training.dtype)
        self.task = data.task
        self.param_names = tuple(weights)
        self.model = LSTMModel(
            m.hidden_size, m.num_layers, data.num_outputs, m.dropout, t.unroll, t.backward, t.remat, t.rnn
        )
        self.tx = optim.build_optimizer(config)
        params = from_torch_names(weights, self.dtype)
        state = TrainState(params, self.tx.init(params), jax.random.key(config.training.seed))
        self.state = jax.device_put(state, self.placement)
        self.plateau = optim.build_plateau(config.plateau, config.optimizer.lr) if config.plateau.enabled else None
        self.plateau_state = optim.plateau_init(self.plateau, self.dtype) if self.plateau else None
        # jitted: called eagerly, reduce_on_plateau's lax.cond compiles anew every epoch (0.25 s each)
        self._plateau_step = jax.jit(partial(optim.plateau_step, self.plateau)) if self.plateau else None
        self.x_train, self.y_train = self._arrays(data.train)

        self.compile_seconds = 0.0
        self.static = {  # train_step's static arguments
            "model": self.model,
            "tx": self.tx,
            "config": config,
            "task": self.task,
            "param_names": self.param_names,
            "mesh": self.mesh,
        }
        if t.rnn == "cudnn":  # one program per step, see `_stepwise_epoch`
            self._check_cudnn()  # before the compiles it would otherwise waste
            self._jit_program = jax.jit(partial(guarded_step, **self.static), donate_argnums=0)
            self._grad_flow = self._compile(
                jax.jit(partial(grad_flow, model=self.model, task=self.task, mesh=self.mesh)),
                self.state.params,
                self.x_train,
                self.y_train,
                self._index_struct(),
                self.state.key,
            )
        else:
            self._jit_program = jax.jit(partial(train_epoch, **self.static), donate_argnums=0)
        self._compiled_programs = {}
        self.compiled_program(len(data.train) // config.training.batch_size)
        self._predict = jax.jit(partial(predict, model=self.model, mesh=self.mesh))
        for split in (data.val, data.test):  # compile evaluation now, so compile time is counted once
            self._compile(self._predict, self.state.params, self._arrays(split)[0])
        self._step_details = jax.jit(partial(step_details, model=self.model, task=self.task))

    # float32 rounding puts the two paths ~1e-7 apart (measured on an H100); a broken kernel call, O(1).
    CUDNN_AGREEMENT = 1e-3

    def _check_cudnn(self) -> None:
        """Refuse the cuDNN path where it does not compute what the scan path computes: loss and gradients on the
        first two training batches, each path in a program of its own, as the trainer runs the cuDNN path.
        (Measured on an H100 with jax 0.11.2: right that way; wrong in a loop body that also held the scan path,
        the first design of the fused epoch and of this check.)"""
        started = time.perf_counter()
        paths = [
            jax.jit(partial(batch_gradients, model=model, task=self.task, mesh=self.mesh))
            for model in (self.model, self.model.clone(rnn="scan"))
        ]
        size = self.config.training.batch_size
        loss_diff = grad_diff = 0.0
        for start in range(0, min(2, len(self.x_train) // size) * size, size):
            x, y = self.x_train[start : start + size], self.y_train[start : start + size]
            (loss, grads, _), (scan_loss, scan_grads, _) = (
                path(self.state.params, x, y, self.state.key) for path in paths
            )
            batch_loss_diff, batch_grad_diff = path_differences(loss, grads, scan_loss, scan_grads)
            loss_diff, grad_diff = max(loss_diff, batch_loss_diff), max(grad_diff, batch_grad_diff)
        self.compile_seconds += time.perf_counter() - started
        if not max(loss_diff, grad_diff) <= self.CUDNN_AGREEMENT:
            raise ConfigError(
                f"rnn 'cudnn' disagrees with the scan path on this machine (loss {loss_diff:.2g}, gradient "
                f"{grad_diff:.2g} relative; float32 allows {self.CUDNN_AGREEMENT:g}); use --rnn scan"
            )

    def _compile(self, jitted, *args):
        """jitted.lower(*args).compile(), its time added to compile_seconds."""
        started = time.perf_counter()
        compiled = jitted.lower(*args).compile()
        self.compile_seconds += time.perf_counter() - started
        return compiled

    def _index_struct(self, *leading: int) -> jax.ShapeDtypeStruct:
        """The shape of the sample indices of `leading` batches, placed as the data is."""
        size = self.config.training.batch_size
        return jax.ShapeDtypeStruct((*leading, size), jnp.int32, sharding=self.placement)

    def compiled_program(self, num_batches: int):
        """The compiled program an epoch of `num_batches` batches runs: the fused epoch for that count (a full
        epoch's at construction, any other, like the parity suite's one-batch epochs, when first asked for);
        on the cuDNN path, the one step it runs once per batch."""
        key = 1 if self.model.rnn == "cudnn" else num_batches
        if key not in self._compiled_programs:
            if self.model.rnn == "cudnn":  # guarded_step((state, finite so far), index, x_train, y_train)
                finite = jax.ShapeDtypeStruct((), jnp.bool_, sharding=self.placement)
                args = ((self.state, finite), self._index_struct(), self.x_train, self.y_train)
            else:  # train_epoch(state, x_train, y_train, batches)
                args = (self.state, self.x_train, self.y_train, self._index_struct(key))
            self._compiled_programs[key] = self._compile(self._jit_program, *args)
        return self._compiled_programs[key]

    def _stepwise_epoch(self, batches: np.ndarray, probed: np.ndarray) -> tuple[TrainState, dict]:
        """The cuDNN path's epoch: one program per step, and ‖dL/dh_t‖ from `grad_flow` before each probed step.
        On an H100 (jax 0.11.2) the cuDNN kernel computed wrong losses and gradients in a loop body that also
        held the scan path's gradient (the fused epoch's probe), and right ones in programs of their own
        (parity_tests/results/gpu/cudnn-diagnosis.txt)."""
        step = self.compiled_program(1)
        carry = (self.state, jax.device_put(True, self.placement))
        stats = []
        for index, probe in zip(jax.device_put(list(batches), self.placement), probed, strict=True):
            flow = self._grad_flow(carry[0].params, self.x_train, self.y_train, index, carry[0].key) if probe else None
            carry, step_stats = step(carry, index, self.x_train, self.y_train)
            stats.append(step_stats if flow is None else {**step_stats, "grad_flow": flow})
        return carry[0], jax.tree.map(lambda *steps: jnp.stack(steps), *stats)

    def _arrays(self, split: Split) -> tuple[jax.Array, jax.Array]:
        """Inputs in the training dtype; class labels as they are, regression targets in the training dtype."""
        y = split.y if split.y.dtype.kind == "i" else split.y.astype(self.dtype)
        return jax.device_put((jnp.asarray(split.x, self.dtype), jnp.asarray(y)), self.placement)

    @property
    def lr(self) -> float:
        return float(optim.learning_rate(self.state.opt_state))

    def train_epoch(self, batches: np.ndarray, first_step: int) -> dict[str, np.ndarray]:
        """One jitted call for the whole epoch (the cuDNN path: one a step); statistics come back in one transfer
        (see lstm_torch's twin)."""
        every = self.config.training.grad_flow_every
        steps = first_step + np.arange(len(batches))
        probed = (steps % every == 0) if every else np.zeros(len(batches), bool)
        if self.model.rnn == "cudnn":
            self.state, stats = self._stepwise_epoch(np.asarray(batches, np.int32), probed)
        else:
            indices = jax.device_put(jnp.asarray(batches, jnp.int32), self.placement)
            self.state, stats = self.compiled_program(len(batches))(self.state, self.x_train, self.y_train, indices)
        stats = jax.device_get(stats)
        stats["grad_flow"] = stats["grad_flow"][probed]
        stats["grad_flow_steps"] = steps[probed]
        return stats

    def evaluate(self, split: Split) -> tuple[float, np.ndarray]:
        """Mean loss over the split and the outputs (N, O)."""
        x, y = self._arrays(split)
        outputs = self._predict(self.state.params, x)
        return float(task_loss(outputs, y, self.task)), np.asarray(outputs)  # inf if diverged

    def end_epoch(self, val_loss: float) -> None:
        """Step reduce_on_plateau once on the validation loss and hand its lr to Adam for the next epoch."""
        if self.plateau is None:
            return
        self.plateau_state, lr = self._plateau_step(self.plateau_state, val_loss)
        opt_state = jax.device_put(optim.with_learning_rate(self.state.opt_state, lr), self.placement)
        self.state = self.state._replace(opt_state=opt_state)

    def weights(self) -> dict[str, np.ndarray]:
        weights = to_torch_names(jax.device_get(self.state.params))
        return {name: weights[name] for name in self.param_names}

    def step_details(self, batch: np.ndarray, weights: dict[str, np.ndarray] | None = None) -> dict:
        """For the parity suite: outputs (B, O), loss and every gradient before clipping {torch name: array} on
        the samples `batch` (B,), at the current weights or at `weights` (torch names), with the dropout key
        the next step will use. Nothing is updated."""
        params = self.state.params
        if weights is not None:
            params = jax.device_put(from_torch_names(weights, self.dtype), self.placement)
        index = jax.device_put(jnp.asarray(batch, jnp.int32), self.placement)
        details = jax.device_get(self._step_details(params, self.x_train, self.y_train, index, self.state.key))
        grads = to_torch_names(details["grads"])
        return {
            "loss": float(details["loss"]),
            "outputs": details["outputs"],
            "grads": {name: grads[name] for name in self.param_names},
        }
