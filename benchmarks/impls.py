"""The implementations `lstm-bench` times, each built for one shape on the same synthetic data.

Every builder returns an `Impl`: `compile_s` (compile or first-call overhead, measured separately) and `step`,
which runs one training step (forward, backward, clipping, Adam update) and blocks until it is done.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from lstm_core import weights as weights_io
from lstm_core.config import Config, DataConfig, ModelConfig, PlateauConfig, TrainingConfig
from lstm_core.data import Prepared, Split

NUM_BATCHES = 8  # batches per epoch in the benchmark data: jax-epoch's time is divided by this


@dataclass(frozen=True)
class Shape:
    batch: int
    seq_len: int
    input_size: int
    hidden_size: int
    num_layers: int

    def __str__(self) -> str:
        return f"({self.batch},{self.seq_len},{self.input_size},{self.hidden_size},{self.num_layers})"


@dataclass
class Impl:
    compile_s: float
    step: Callable[[], object]
    xla_memory_mb: float | None = None  # XLA's own account of one call's buffers (JAX rows only)
    shards: int | None = None  # devices our JAX trainer splits the batch over (its rows only)


def xla_memory_mb(compiled) -> float | None:
    """Arguments, outputs and temporaries of a compiled XLA call, less donated (aliased) buffers, in MiB."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        return None
    total = (
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )
    return total / 2**20


def synthetic_data(shape: Shape, seed: int = 0) -> Prepared:
    """NUM_BATCHES batches of standard-normal inputs and regression targets."""
    rng = np.random.default_rng(seed)
    n = shape.batch * NUM_BATCHES
    split = Split(x=rng.standard_normal((n, shape.seq_len, shape.input_size)), y=rng.standard_normal((n, 1)))
    stats = {"inputs": None, "targets": None}
    return Prepared(split, split, split, "regression", 1, None, None, stats)


def bench_config(shape: Shape, backend: str, device: str = "cpu", **training) -> Config:
    """float32, clipping on (torch style), no plateau (it acts per epoch, not per step), no ‖dL/dh_t‖ probe."""
    fields = {"dtype": "float32", "batch_size": shape.batch, "grad_flow_every": 0, "device": device, **training}
    return Config(
        backend=backend,
        model=ModelConfig(hidden_size=shape.hidden_size, num_layers=shape.num_layers),
        plateau=PlateauConfig(enabled=False),
        training=TrainingConfig(**{k: v for k, v in fields.items() if k in _TRAINING_FIELDS}),
        data=DataConfig(window=shape.seq_len),
    )


_TRAINING_FIELDS = {f.name for f in dataclasses.fields(TrainingConfig)}


def initial(shape: Shape) -> dict[str, np.ndarray]:
    return weights_io.initial_weights(
        shape.input_size, shape.hidden_size, shape.num_layers, 1, np.random.default_rng(0)
    )


def batch_rows(num_batches: int, batch: int) -> np.ndarray:
    return np.arange(num_batches * batch).reshape(num_batches, batch)


def torch_trainer(shape: Shape, device: str, compile_model: bool) -> Impl:
    import torch

    from lstm_torch.train import Trainer

    trainer = Trainer(bench_config(shape, "torch", device), synthetic_data(shape), initial(shape))
    if compile_model:
        trainer.model = torch.compile(trainer.model)
    rows = batch_rows(NUM_BATCHES, shape.batch)
    counter = iter(range(10**9))
    sync = torch.cuda.synchronize if device == "gpu" else (lambda: None)

    def step():
        i = next(counter)
        trainer.train_epoch(rows[i % NUM_BATCHES : i % NUM_BATCHES + 1], i + 1)  # returns numpy: synchronised
        sync()

    started = time.perf_counter()
    step()  # first call: torch.compile compiles here; eager pays one-off kernel set-up
    return Impl(time.perf_counter() - started, step)


def our_jax_trainer(shape: Shape, device: str, **training):
    """Our JAX trainer on `shape`'s synthetic data and initial weights, with `training` settings: as the jax-* rows
    and lstm-bench --profile set it up."""
    from lstm_jax.train import Trainer

    return Trainer(bench_config(shape, "jax", device, **training), synthetic_data(shape), initial(shape))


def jax_trainer(shape: Shape, device: str, whole_epoch: bool, **training) -> Impl:
    trainer = our_jax_trainer(shape, device, **training)
    rows = batch_rows(NUM_BATCHES, shape.batch)
    compile_s = trainer.compile_seconds
    if whole_epoch:
        compiled = trainer.compiled_program(NUM_BATCHES)
        epoch = lambda: trainer.train_epoch(rows, 1)  # noqa: E731 (returns numpy: synchronised)
        return Impl(compile_s, epoch, xla_memory_mb(compiled), trainer.mesh.size)
    started = time.perf_counter()
    compiled = trainer.compiled_program(1)
    compile_s += time.perf_counter() - started
    counter = iter(range(10**9))

    def step():
        i = next(counter) % NUM_BATCHES
        trainer.train_epoch(rows[i : i + 1], i + 1)

    return Impl(compile_s, step, xla_memory_mb(compiled), trainer.mesh.size)


def jax_stock(shape: Shape, device: str, params: dict, apply: Callable) -> Impl:
    """A jitted training step around `apply(params, x (B, T, In)) -> (B, 1)`, with the same optax chain as our
    trainer and donated buffers, the way a JAX user writes one: the frame of the stock peers below."""
    import jax
    import jax.numpy as jnp
    import optax

    from lstm_jax import optim

    data = synthetic_data(shape)
    target = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    x = jax.device_put(jnp.asarray(data.train.x, jnp.float32), target)
    y = jax.device_put(jnp.asarray(data.train.y, jnp.float32), target)
    tx = optim.build_optimizer(bench_config(shape, "jax", device))

    @partial(jax.jit, donate_argnums=(0, 1))
    def step_fn(params, opt_state, index):
        def loss_fn(params):
            return jnp.mean((apply(params, x[index]) - y[index]) ** 2)

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    rows = jax.device_put(jnp.asarray(batch_rows(NUM_BATCHES, shape.batch)), target)
    params = jax.device_put(params, target)
    state = {"params": params, "opt_state": tx.init(params)}
    started = time.perf_counter()
    compiled = step_fn.lower(state["params"], state["opt_state"], rows[0]).compile()
    compile_s = time.perf_counter() - started
    counter = iter(range(10**9))

    def step():
        i = next(counter) % NUM_BATCHES
        state["params"], state["opt_state"], loss = compiled(state["params"], state["opt_state"], rows[i])
        loss.block_until_ready()

    return Impl(compile_s, step, xla_memory_mb(compiled))


def flax_stock(shape: Shape, device: str) -> Impl:
    """flax.linen.RNN(OptimizedLSTMCell) layers and a Dense head (Flax's own parameter layout and
    initialisation)."""
    import jax
    import jax.numpy as jnp
    from flax import linen as nn

    class StockLSTM(nn.Module):
        hidden_size: int
        num_layers: int

        @nn.compact
        def __call__(self, x):  # (B, T, In)
            for _ in range(self.num_layers):
                x = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size))(x)  # (B, T, H)
            return nn.Dense(1)(x[:, -1])  # (B, 1)

    model = StockLSTM(shape.hidden_size, shape.num_layers)
    params = model.init(jax.random.key(0), jnp.zeros((shape.batch, shape.seq_len, shape.input_size), jnp.float32))[
        "params"
    ]
    return jax_stock(shape, device, params, lambda params, x: model.apply({"params": params}, x))


def jax_rnn_stock(shape: Shape, device: str) -> Impl:
    """`jax.experimental.rnn.lstm` (cuDNN from JAX; CUDA only) on its own flat weight vector, and a linear
    head, as its documentation shows it."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn

    _require_gpu("jax-rnn-stock", device)
    b, _, inputs, hidden, layers = shape.batch, shape.seq_len, shape.input_size, shape.hidden_size, shape.num_layers
    keys = jax.random.split(jax.random.key(0), 2)
    params = {
        "lstm": rnn.init_lstm_weight(keys[0], inputs, hidden, layers, False),
        "head": jax.random.uniform(keys[1], (hidden, 1), jnp.float32, -(hidden**-0.5), hidden**-0.5),
    }
    zeros = jnp.zeros((layers, b, hidden), jnp.float32)
    lengths = jnp.full((b,), shape.seq_len, jnp.int32)

    def apply(params, x):
        ys, _, _ = rnn.lstm(x, zeros, zeros, params["lstm"], lengths, inputs, hidden, layers, 0.0, False)
        return ys[:, -1] @ params["head"]  # (B, 1)

    return jax_stock(shape, device, params, apply)


def torch_cudnn(shape: Shape, device: str) -> Impl:
    """A bare nn.LSTM + nn.Linear training step (MSE, clip_grad_norm_, Adam) on cuDNN, as a PyTorch user writes
    it: torch's peer of jax-rnn-stock, without our reference trainer's per-step statistics."""
    import torch

    _require_gpu("torch-cudnn", device)
    config = bench_config(shape, "torch", device)
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(shape.input_size, shape.hidden_size, shape.num_layers, batch_first=True).cuda()
    head = torch.nn.Linear(shape.hidden_size, 1).cuda()
    parameters = [*lstm.parameters(), *head.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=config.optimizer.lr)
    data = synthetic_data(shape)
    x = torch.as_tensor(data.train.x, dtype=torch.float32, device="cuda")
    y = torch.as_tensor(data.train.y, dtype=torch.float32, device="cuda")
    rows = torch.as_tensor(batch_rows(NUM_BATCHES, shape.batch), device="cuda")
    counter = iter(range(10**9))

    def step():
        index = rows[next(counter) % NUM_BATCHES]
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((head(lstm(x[index])[0][:, -1]) - y[index]) ** 2)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, config.clipping.max_norm)
        optimizer.step()
        torch.cuda.synchronize()

    started = time.perf_counter()
    step()  # cuDNN picks its algorithms and allocates its workspace on the first call
    return Impl(time.perf_counter() - started, step)


def _require_gpu(impl: str, device: str) -> None:
    if device != "gpu":
        raise ValueError(f"{impl} runs cuDNN, on a CUDA GPU only (--device gpu)")


BUILDERS = {
    "torch-eager": partial(torch_trainer, compile_model=False),
    "torch-compile": partial(torch_trainer, compile_model=True),
    "jax-step": partial(jax_trainer, whole_epoch=False),
    "jax-epoch": partial(jax_trainer, whole_epoch=True),
    "jax-epoch-1shard": partial(jax_trainer, whole_epoch=True, shards=1),  # what splitting the batch adds
    "jax-epoch-autodiff": partial(jax_trainer, whole_epoch=True, backward="autodiff"),
    "flax-stock": flax_stock,
    # cuDNN rows (--device gpu): our trainer's cuDNN path, and the stock cuDNN steps of both frameworks
    "jax-cudnn": partial(jax_trainer, whole_epoch=True, rnn="cudnn"),
    "jax-rnn-stock": jax_rnn_stock,
    "torch-cudnn": torch_cudnn,
}
GPU_ONLY = ("jax-cudnn", "jax-rnn-stock", "torch-cudnn")
# The rows of our JAX trainer: the only ones that lstm-bench's --unroll and --shards set.
TRAINER_ROWS = tuple(name for name, b in BUILDERS.items() if isinstance(b, partial) and b.func is jax_trainer)


def rows_taking(setting: str) -> list[str]:
    """TRAINER_ROWS that `setting` (a TrainingConfig field: "unroll", "shards") changes, leaving out those that fix
    it themselves (jax-epoch-1shard's shards)."""
    return [name for name in TRAINER_ROWS if setting not in BUILDERS[name].keywords]


def build(impl: str, shape: Shape, device: str, **training) -> Impl:
    """The row `impl` built for `shape`. `training` (--unroll, --shards) goes to TRAINER_ROWS only, under each row's
    own settings (jax-epoch-1shard stays on one shard); the other builders take no such settings."""
    builder = BUILDERS[impl]
    if impl not in TRAINER_ROWS:
        return builder(shape, device)
    return builder(shape, device, **{**training, **builder.keywords})


# A jax-epoch call runs every batch of the epoch; the others run one.
PER_CALL_BATCHES = {name: NUM_BATCHES for name in ("jax-epoch", "jax-epoch-1shard", "jax-epoch-autodiff", "jax-cudnn")}
