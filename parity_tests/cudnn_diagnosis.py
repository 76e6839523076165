"""Where the JAX trainer's cuDNN path departs from its scan path, on a GPU: `python -m parity_tests.cudnn_diagnosis`.

On an H100 (jax 0.11.2) the cuDNN kernel computed the scan path's loss and gradient in a program of its own,
also inside `lax.scan`, but not in a loop body that also ran the scan path's gradient, as the trainer's first
fused epoch (with its ‖dL/dh_t‖ probe) and start-up check did; the cuDNN trainer now runs one program per step.
This takes the next steps in one short run: for loop bodies that hold one or both paths (the scan path with
its hand-written backward pass, or with autodiff's), each path's loss and gradient against the same path in a
program per batch, so the wrong side shows; the same with cuDNN's weight vector padded at its end (cuDNN sizes
its weight space itself: a larger one than jax's packed vector would be read and written past that vector's
end); and the trainer's step fused into an epoch (cuDNN alone in the loop body) against the scan path's, which
says whether the cuDNN path could be fused again. What it found there is in
parity_tests/results/gpu/cudnn-diagnosis.txt and README's cuDNN section: the cuDNN side goes wrong beside the
hand-written backward pass only, padding changes nothing, and the fused epoch is right.

Every line is a largest relative difference over 3 batches of the parity suite's float32 cases; agreement
is ~1e-7. `--cpu` runs the same on CPU with jax's reference LSTM standing in for the kernel (all ~0: a check
of this script, used by the tests).
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import rnn

from lstm_core import loop
from lstm_jax import cudnn
from lstm_jax import train as jax_train
from parity_tests import cases

# Zeros appended to the packed weight vector in the padded variant: 64 KiB, far more than any alignment.
WEIGHT_PADDING = 16384
BATCHES = 3


def relative(a, b) -> float:
    """‖a - b‖ / ‖b‖ over all leaves of two pytrees."""
    diff = optax.tree.norm(jax.tree.map(jnp.subtract, a, b))
    return float(diff / optax.tree.norm(b))


def padded(pack):
    """`cudnn.pack` with WEIGHT_PADDING zeros after the vector (their gradient is dropped by the slice)."""
    return lambda layers: jnp.concatenate([pack(layers), jnp.zeros(WEIGHT_PADDING, jnp.float32)])


def diagnose(case: str, device: str) -> dict[str, dict[str, float]]:
    """{setting: {"cudnn loss": difference, "cudnn grad": ..., "scan loss": ..., ...}} for one float32 case."""
    config = cases.make_config(cases.FLOAT32_CASES[case], device=device, grad_flow_every=0, rnn="scan")
    prepared, initial, _ = loop.prepare(config)
    trainer = jax_train.Trainer(config, prepared, initial)
    size = config.training.batch_size
    xs, ys = (a[: BATCHES * size].reshape(BATCHES, size, *a.shape[1:]) for a in (trainer.x_train, trainer.y_train))
    params, key, model = trainer.state.params, trainer.state.key, trainer.model
    probe = jax_train.zero_perturbation(model.num_layers, xs.shape[2], size, model.hidden_size, xs.dtype)
    models = {"cudnn": model.clone(rnn="cudnn"), "scan": model, "autodiff": model.clone(backward="autodiff")}
    gradient = {
        name: jax.value_and_grad(partial(jax_train.loss_fn, model=m, task=trainer.task)) for name, m in models.items()
    }

    def alone(name):
        """Per batch, the path in a program of its own: [(loss, grads)] * BATCHES."""
        return [jax.jit(gradient[name])(params, xs[i], ys[i], probe, key) for i in range(BATCHES)]

    def looped(names):
        """One lax.scan over the batches whose body runs every path of `names`."""
        body = lambda carry, batch: (carry, [gradient[n](params, *batch, probe, key) for n in names])  # noqa: E731
        return jax.jit(lambda: jax.lax.scan(body, 0, (xs, ys))[1])()

    found = {}

    def report(label, names, results, references):
        found[label] = {}
        for name, (losses, grads) in zip(names, results, strict=True):
            loss_diff = max(abs(float(losses[i]) / float(references[name][i][0]) - 1) for i in range(BATCHES))
            grad_diff = max(
                relative(jax.tree.map(partial(jnp.take, indices=i, axis=0), grads), references[name][i][1])
                for i in range(BATCHES)
            )
            found[label] |= {f"{name} loss": loss_diff, f"{name} grad": grad_diff}

    references = {name: alone(name) for name in models}
    for names in (("cudnn",), ("cudnn", "scan"), ("scan", "cudnn"), ("cudnn", "autodiff")):
        report("loop body " + " + ".join(names), names, looped(names), references)

    pack = cudnn.pack
    cudnn.pack = padded(pack)
    try:
        references["cudnn"] = alone("cudnn")
        names = ("cudnn", "scan")
        report(f"padded weights, body {' + '.join(names)}", names, looped(names), references)
    finally:
        cudnn.pack = pack

    losses = {}
    batches = jnp.arange(BATCHES * size).reshape(BATCHES, size)
    for name in ("scan", "cudnn"):
        epoch = jax.jit(partial(jax_train.train_epoch, **{**trainer.static, "model": models[name]}))
        _, stats = epoch(trainer.state, trainer.x_train, trainer.y_train, batches)
        losses[name] = np.asarray(stats["loss"])
    steps = np.abs(losses["cudnn"] / losses["scan"] - 1)
    found["fused epoch, cudnn alone in the body"] = {f"cudnn step {i + 1} loss": float(d) for i, d in enumerate(steps)}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity_tests.cudnn_diagnosis", description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="jax's reference LSTM in place of the kernel, on CPU")
    args = parser.parse_args(argv)
    jax.config.update("jax_default_matmul_precision", "highest")
    device = "cpu" if args.cpu else "gpu"
    if not args.cpu and jax.devices()[0].platform != "gpu":
        parser.error("jax sees no CUDA GPU here; run on a GPU machine, or --cpu for the stand-in kernel")
    if args.cpu:
        from tests.test_cudnn import reference_lstm

        rnn.lstm = reference_lstm
    print(f"jax {jax.__version__}, {jax.devices(device)[0].device_kind}")
    for case in cases.FLOAT32_CASES:
        for label, diffs in diagnose(case, device).items():
            print(f"{case:14s} {label:38s} " + ", ".join(f"{name} {d:.1e}" for name, d in diffs.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
