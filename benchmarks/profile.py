"""Where the JAX trainer's training step spends its time (`lstm-bench --profile`): the measurements behind
README's account of the speed goals it misses.

For each shape, in float32, on the trainer's own devices (auto shards), all in one run:
- the whole step (`jax-epoch`: the fused epoch, per batch) and torch-eager's step;
- its parts: the forward pass (`predict`), forward and backward (`batch_gradients`: backward = the
  difference), and the rest of the step (clipping, Adam, statistics: the step less the gradients);
- the same matmuls alone, in `lax.scan` loops of the same length on the same shards (forward
  [x_t, 1, h_{t-1}] @ W per step; backward dG_t @ [W_ih | W_hh] per step, then dW as one (T·B)-row matmul, as
  `lstm_jax.fused` runs them): what the recurrence would cost if its element-wise work were free;
- the kernels XLA runs per time step in each loop of the gradient program, counted in its compiled HLO;
- one shard's rows on one device with no other device running: the recurrence and its matmuls without the
  other shards' kernels competing for the cores (devices running at once slow each other down on this CPU).
"""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from functools import partial

from benchmarks import impls
from benchmarks.impls import NUM_BATCHES, Shape
from benchmarks.measure import time_calls
from benchmarks.peak import matmul_peak_gflops
from lstm_core.flops import lstm_step_flops
from lstm_core.machine import cpu_cores

# HLO instructions that name, pack or unpack values without running a kernel.
NOT_KERNELS = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast"}
_COMPUTATION = re.compile(r"^(?:ENTRY )?%(\S+) .*\{$")
_INSTRUCTION = re.compile(r"^(?:ROOT )?%\S+ = (?:\([^)]*\)|\S+) ([\w-]+)\(")
_WHILE = re.compile(r"body=%([^,\s]+).*op_name=\"([^\"]*)\"")


def loop_kernels(hlo_text: str) -> dict[str, list[int]]:
    """Kernels per iteration of each `while` loop of a compiled HLO module, by direction: {"forward": [...],
    "backward": [...]} (a loop is backward where JAX's op name says it was transposed), in program order."""
    bodies: dict[str, list[str]] = {}
    current = None
    for line in hlo_text.splitlines():
        if match := _COMPUTATION.match(line):
            current = bodies.setdefault(match.group(1), [])
        elif line.startswith("}"):
            current = None
        elif current is not None:
            current.append(line.strip())
    loops: dict[str, list[int]] = {"forward": [], "backward": []}
    for lines in bodies.values():
        for line in lines:
            if " while(" in line and (match := _WHILE.search(line)):
                body, op_name = match.groups()
                opcodes = [m.group(1) for m in map(_INSTRUCTION.match, bodies[body]) if m]
                kernels = sum(opcode not in NOT_KERNELS for opcode in opcodes)
                loops["backward" if "transpose(" in op_name else "forward"].append(kernels)
    return loops


def layer_widths(shape: Shape) -> list[int]:
    """Each layer's input width In_k: the data's, then H."""
    return [shape.input_size] + [shape.hidden_size] * (shape.num_layers - 1)


def over_batches(part):
    """A jitted program that runs `part(one_batch, *fixed)` for each batch along `batched`'s leading axis in one
    `lax.scan`, as `jax-epoch` runs its steps: program(batched, fixed)."""
    import jax

    def program(batched, fixed):
        return jax.lax.scan(lambda _, one: (None, part(one, *fixed)), None, batched)[1]

    return jax.jit(program)


def matmul_parts(shape: Shape, mesh):
    """The recurrence's matmuls alone, each batch's rows split over `mesh` as the trainer splits them, a loop of
    T steps per layer as `lstm_jax.fused` runs them: (forward(), backward()), each running NUM_BATCHES batches
    and blocking until done."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import NamedSharding, PartitionSpec

    from lstm_jax.train import BATCH

    hidden, steps, batch = shape.hidden_size, shape.seq_len, shape.batch
    widths = layer_widths(shape)
    keys = iter(jax.random.split(jax.random.key(0), 4 * len(widths)))

    def draw(*dims):
        return jax.random.normal(next(keys), dims, jnp.float32)

    xs = [draw(NUM_BATCHES, steps, batch, n + 1 + hidden) for n in widths]  # [x_t, 1, h_{t-1}] per batch
    gates = [draw(NUM_BATCHES, steps, batch, 4 * hidden) for _ in widths]  # dG_t per batch
    forward_weights = [draw(n + 1 + hidden, 4 * hidden) for n in widths]
    # layer 0 forms no input gradient (`fused`): dG_t @ W_hh only; deeper layers dG_t @ [W_ih | W_hh]
    backward_weights = [draw(4 * hidden, (n if k else 0) + hidden) for k, n in enumerate(widths)]

    def forward(xs, weights):  # xs: each layer's (T, B, In_k + 1 + H)
        return [jax.lax.scan(lambda _, x, w=w: (None, x @ w), None, x)[1] for x, w in zip(xs, weights, strict=True)]

    def backward(inputs, weights):  # inputs: each layer's (T, B, In_k + 1 + H) and dG (T, B, 4H)
        def layer(x, g, w):
            d_inputs = jax.lax.scan(lambda _, g_t: (None, g_t @ w), None, g, reverse=True)[1]
            d_weights = x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1])  # after the loop, one matmul
            return d_weights, d_inputs

        d_weights, d_inputs = zip(*map(layer, *inputs, weights), strict=True)
        return list(d_weights), list(d_inputs)

    rows, whole = PartitionSpec(None, BATCH), PartitionSpec()
    split = partial(jax.shard_map, mesh=mesh, check_vma=False)
    # each shard's dW is its own sum (the trainer's pmean over the shards is not part of the loop)
    forward = over_batches(split(forward, in_specs=(rows, whole), out_specs=rows))
    backward = over_batches(split(backward, in_specs=((rows, rows), whole), out_specs=(PartitionSpec(BATCH), rows)))
    xs, gates = jax.device_put((xs, gates), NamedSharding(mesh, whole))  # as the trainer holds its data
    return (
        lambda: jax.block_until_ready(forward(xs, (forward_weights,))),
        lambda: jax.block_until_ready(backward((xs, gates), (backward_weights,))),
    )


def recurrence_ms(trainer, shape: Shape, budget_s: float) -> dict[str, float]:
    """The trainer's forward pass, its forward and backward passes ("gradients"), and the same matmuls alone,
    each over NUM_BATCHES batches of `shape` in one jitted call as `jax-epoch` runs them, in ms per batch."""
    import jax

    from lstm_jax.train import batch_gradients, flow_norms, predict

    model, task, mesh = trainer.model, trainer.task, trainer.mesh
    batches = jax.device_put(impls.batch_rows(NUM_BATCHES, shape.batch), trainer.placement)
    data = (trainer.state.params, trainer.x_train, trainer.y_train, trainer.state.key)

    def forward(index, params, x_train, y_train, key):
        return predict(params, x_train[index], model=model, mesh=mesh)

    def gradients(index, params, x_train, y_train, key):
        loss, grads, dh = batch_gradients(
            params, x_train[index], y_train[index], key, model=model, task=task, mesh=mesh
        )
        return loss, grads, flow_norms(dh)  # as the step keeps them

    forward, gradients = over_batches(forward), over_batches(gradients)
    matmul_forward, matmul_backward = matmul_parts(shape, mesh)
    calls = {
        "forward": lambda: jax.block_until_ready(forward(batches, data)),
        "gradients": lambda: jax.block_until_ready(gradients(batches, data)),
        "matmul_forward": matmul_forward,
        "matmul_backward": matmul_backward,
    }
    return {part: time_calls(call, budget_s=budget_s).median_ms / NUM_BATCHES for part, call in calls.items()}


def profile_shape(shape: Shape, budget_s: float, peak_gflops: float, shards: int = 0) -> dict:
    """One shape's profile row (times in ms per training step of one batch; rates against `peak_gflops`). Every
    part runs as `jax-epoch` runs the step: the epoch's batches in one jitted call.

    Beside the trainer's own run (`shards` devices, 0: auto), one shard's rows run on one device with no other
    device running (`one_device_*`): the recurrence and its matmuls without the other shards' kernels competing
    for the cores (a device's larger matmuls use every core; its small ones, one)."""
    import jax

    from lstm_jax.train import batch_gradients

    trainer = impls.our_jax_trainer(shape, "cpu", shards=shards)
    rows = impls.batch_rows(NUM_BATCHES, shape.batch)
    step_ms = time_calls(lambda: trainer.train_epoch(rows, 1), budget_s=budget_s).median_ms / NUM_BATCHES
    parts = recurrence_ms(trainer, shape, budget_s)
    shard_shape = replace(shape, batch=shape.batch // trainer.mesh.size)
    one_device = recurrence_ms(impls.our_jax_trainer(shard_shape, "cpu", shards=1), shard_shape, budget_s)
    model, task, mesh = trainer.model, trainer.task, trainer.mesh
    one_batch = jax.jit(partial(batch_gradients, model=model, task=task, mesh=mesh))
    x, y = trainer.x_train[rows[0]], trainer.y_train[rows[0]]
    kernels = loop_kernels(one_batch.lower(trainer.state.params, x, y, trainer.state.key).compile().as_text())
    torch_ms = time_calls(impls.BUILDERS["torch-eager"](shape, "cpu").step, budget_s=budget_s).median_ms

    flops = lstm_step_flops(shape.batch, shape.seq_len, shape.input_size, shape.hidden_size, shape.num_layers)
    layer_steps = shape.seq_len * shape.num_layers

    def us_per_layer_time_step(ms: float) -> float:
        return 1e3 * ms / layer_steps

    matmul_ms = parts["matmul_forward"] + parts["matmul_backward"]
    one_device_matmul_ms = one_device["matmul_forward"] + one_device["matmul_backward"]
    gflops, matmul_gflops = flops / step_ms / 1e6, flops / matmul_ms / 1e6
    return {
        "batch": shape.batch,
        "seq_len": shape.seq_len,
        "input_size": shape.input_size,
        "hidden_size": shape.hidden_size,
        "num_layers": shape.num_layers,
        "shards": mesh.size,
        "torch_eager_ms": torch_ms,
        "step_ms": step_ms,
        "ratio_vs_torch_eager": torch_ms / step_ms,
        "forward_ms": parts["forward"],
        "backward_ms": parts["gradients"] - parts["forward"],
        "rest_ms": step_ms - parts["gradients"],
        "matmul_forward_ms": parts["matmul_forward"],
        "matmul_backward_ms": parts["matmul_backward"],
        "kernels_forward": kernels["forward"],
        "kernels_backward": kernels["backward"],
        # forward and backward; the head is negligible
        "us_per_layer_time_step": us_per_layer_time_step(parts["gradients"]),
        "matmul_us_per_layer_time_step": us_per_layer_time_step(matmul_ms),
        "one_device_rows": shard_shape.batch,
        "one_device_us_per_layer_time_step": us_per_layer_time_step(one_device["gradients"]),
        "one_device_matmul_us_per_layer_time_step": us_per_layer_time_step(one_device_matmul_ms),
        "gflops": gflops,
        "matmul_gflops": matmul_gflops,
        "peak_fraction": gflops / peak_gflops,
        "matmul_peak_fraction": matmul_gflops / peak_gflops,
    }


def run(shapes: list[Shape], budget_s: float) -> dict:
    """Every shape's profile row, with the float32 matmul peak measured in the same run."""
    import torch

    torch.set_num_threads(cpu_cores())  # as the benchmark grid runs torch-eager
    peak = matmul_peak_gflops("cpu")
    rows = []
    for shape in shapes:
        print(f"  profile {shape}", file=sys.stderr, flush=True)
        rows.append(profile_shape(shape, budget_s, peak["peak"]))
    return {"matmul_peak_gflops": peak, "rows": rows}
