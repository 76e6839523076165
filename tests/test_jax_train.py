from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lstm_core import data, weights
from lstm_core.config import Config, ConfigError
from lstm_core.loop import prepare
from lstm_core.machine import cpu_cores
from lstm_jax import model as jax_model
from lstm_jax import train as jax_train
from tests import conftest
from tests.conftest import replace


def make_trainer(config: Config):
    return conftest.make_trainer(config, jax_train.Trainer)


def test_param_layout_round_trips_torch_names(tiny_config):
    initial = weights.initial_weights(5, 17, 2, 3, np.random.default_rng(0))
    params = jax_model.from_torch_names(initial, jnp.float32)
    assert params["lstm"]["weight_ih_l1"].shape == (68, 17) and params["head"]["weight"].shape == (3, 17)
    back = jax_model.to_torch_names(params)
    assert set(back) == set(initial)
    for name in initial:
        np.testing.assert_array_equal(back[name], initial[name].astype(np.float32))


def test_flax_init_has_the_same_tree_as_torch_weights():
    module = jax_model.LSTMModel(hidden_size=17, num_layers=2, num_outputs=3)
    variables = module.init(jax.random.key(0), jnp.zeros((2, 4, 5)))
    shapes = jax.tree.map(jnp.shape, variables["params"])
    flat = {f"{module}.{leaf}": shape for module, leaves in shapes.items() for leaf, shape in leaves.items()}
    assert flat == weights.parameter_shapes(5, 17, 2, 3)


def test_lstm_layer_matches_the_cell_equations():
    rng = np.random.default_rng(1)
    hidden, inputs = 3, 2
    w_ih, w_hh = rng.normal(size=(4 * hidden, inputs)), rng.normal(size=(4 * hidden, hidden))
    b_ih, b_hh = rng.normal(size=4 * hidden), rng.normal(size=4 * hidden)
    xs = rng.normal(size=(4, 1, inputs))  # (T, B, In)
    jax.config.update("jax_enable_x64", True)
    hs = jax_model.lstm_layer(jnp.asarray(xs), w_ih, w_hh, b_ih, b_hh, jnp.zeros((4, 1, hidden)))
    h = c = np.zeros((1, hidden))
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(4):
        i, f, g, o = np.split(xs[t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh, 4, axis=-1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        # float64 over 4 steps: rounding only
        np.testing.assert_allclose(np.asarray(hs[t]), h, rtol=1e-13)


def test_epoch_compiles_once_and_statistics_have_their_shapes(tiny_config, monkeypatch):
    traces = {"train_step": 0}
    original = jax_train.train_step

    def counting(*args, **kwargs):
        traces["train_step"] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(jax_train, "train_step", counting)
    trainer, prepared, generators, _ = make_trainer(tiny_config)
    compiled_after_init = traces["train_step"]
    step = 1
    for _ in range(3):
        batches = data.epoch_batches(len(prepared.train), 16, generators["batches"])
        stats = trainer.train_epoch(batches, step)
        trainer.end_epoch(trainer.evaluate(prepared.val)[0])
        step += len(batches)
    assert compiled_after_init == 1 and traces["train_step"] == 1  # traced once, at construction
    num_steps = len(batches)
    assert stats["loss"].shape == (num_steps,) and stats["grad_norms"].shape == (num_steps, 6)
    probed = [s for s in range(step - num_steps, step) if s % 5 == 0]
    np.testing.assert_array_equal(stats["grad_flow_steps"], probed)
    assert stats["grad_flow"].shape == (len(probed), 1, 10)
    # Per-tensor norms compose the global norm: sqrt(sum of squares), float32 rounding (~1e-7)
    np.testing.assert_allclose(np.sqrt((stats["grad_norms"] ** 2).sum(axis=1)), stats["grad_norm"], rtol=1e-5)


def test_training_lowers_the_loss_and_clip_factor_follows_torch_rule(tiny_config):
    config = replace(tiny_config, clipping={"max_norm": 0.1}, training={"epochs": 2})
    trainer, prepared, generators, _ = make_trainer(config)
    before, _ = trainer.evaluate(prepared.val)
    stats = conftest.train_epochs(trainer, prepared, generators, 4)
    after, _ = trainer.evaluate(prepared.val)
    # 48 clipped steps on a clean sine: the val MSE falls from ~0.5 to ~0.05 (measured 0.518 -> 0.052)
    assert after < 0.3 * before
    expected = np.minimum(1.0, 0.1 / (stats["grad_norm"] + 1e-6))
    np.testing.assert_allclose(stats["clip_factor"], expected, rtol=1e-6)  # float32 division
    assert (stats["clip_factor"] < 1).mean() > 0.5  # max_norm 0.1 clips most steps of this run


CORES = cpu_cores()


def test_one_cpu_device_per_core_and_auto_shards_divide_the_batch_into_large_enough_parts():
    assert len(jax.devices("cpu")) == CORES  # importing lstm_jax set it, before any jax computation
    mesh = partial(jax_train.batch_mesh, "cpu")
    work, weights = CORES * jax_train.MIN_SHARD_FLOPS, jax_train.MAX_SPLIT_WEIGHTS
    assert mesh(0, 32, work, weights).size == max(n for n in range(1, CORES + 1) if 32 % n == 0)
    assert mesh(0, 1, work, weights).size == 1  # one row: nothing to split
    assert mesh(0, 32, jax_train.MIN_SHARD_FLOPS * 1.5, weights).size == 1  # too little work to split
    assert mesh(0, 32, work, weights + 1).size == 1  # weights too large to gain from a split
    assert mesh(1, 32, work, weights).size == 1
    assert mesh(CORES, 32 * CORES, 1.0, 10**9).size == CORES  # asked for: split, worth it or not
    with pytest.raises(ConfigError, match=f"shards {CORES + 1} needs {CORES + 1} cpu devices; jax has {CORES} here"):
        mesh(CORES + 1, 32 * (CORES + 1), work, weights)


@pytest.mark.skipif(CORES < 2, reason="splitting a batch needs two CPU cores (one jax device each)")
def test_a_batch_split_over_two_devices_trains_as_one(tiny_config):
    """Two shards, float64, 2 layers with dropout: the same run as one device (masks drawn for the whole batch),
    up to the order of the batch sum. Measured 2e-15 on losses, 3e-12 on the smallest per-tensor norms."""
    config = replace(tiny_config, model={"num_layers": 2, "dropout": 0.3}, training={"dtype": "float64"})
    runs = []
    for shards in (1, 2):
        trainer, prepared, generators, _ = make_trainer(replace(config, training={"shards": shards}))
        assert trainer.mesh.size == shards
        odd = data.Split(prepared.val.x[:7], prepared.val.y[:7])  # predict pads 7 rows to 8 over two devices
        runs.append((conftest.train_epochs(trainer, prepared, generators, 2), trainer.evaluate(odd)[1]))
    (one, val_one), (two, val_two) = runs
    assert val_two.shape == (7, 1)
    for name in ("loss", "grad_norm", "clip_factor", "grad_norms", "grad_flow"):
        # float64 (eps 2.2e-16) rounding of a reordered sum, grown over 30 dependent Adam steps: 1e-10 is far from
        # the O(1e-3) a wrong mask, a missing 1/shards or one shard's rows only would give
        np.testing.assert_allclose(two[name], one[name], rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(val_two, val_one, rtol=1e-10)


def test_from_a_non_finite_step_on_the_fused_epoch_applies_no_update(tiny_config):
    """The fused epoch cannot stop at a bad step (it is one call), so `guarded_step` keeps the last finite
    weights from that step on, through the epoch's later, finite steps; the shared loop then stops the run."""
    trainer, prepared, generators, _ = make_trainer(tiny_config)
    batches = data.epoch_batches(len(prepared.train), 16, generators["batches"])  # (12, 16), each sample once
    bad = 3  # the fourth step's samples get a NaN input
    poisoned = jax.device_put(trainer.x_train.at[batches[bad]].set(jnp.nan), trainer.placement)
    reference = make_trainer(tiny_config)[0]
    trainer.x_train = reference.x_train = poisoned
    reference.train_epoch(batches[:bad], 1)  # the three finite steps alone
    stats = trainer.train_epoch(batches, 1)
    assert np.isfinite(stats["loss"][:bad]).all() and np.isnan(stats["loss"][bad])
    assert np.isfinite(stats["loss"][bad + 1 :]).all()  # later steps were finite, and still not applied:
    expected = reference.weights()
    for name, value in trainer.weights().items():
        np.testing.assert_array_equal(value, expected[name])


def test_dropout_acts_between_layers_only_and_keeps_the_expected_value():
    """nn.LSTM's dropout: on every layer's output but the last, each element zeroed with probability p or divided by
    1 - p (so that the layer above sees inputs of the same expected size in training and in evaluation)."""
    jax.config.update("jax_enable_x64", True)
    x = jnp.asarray(np.random.default_rng(1).standard_normal((8, 7, 3)))  # (B, T, In)
    initial = weights.initial_weights(3, 6, 2, 1, np.random.default_rng(0))
    params = jax_model.from_torch_names(initial, jnp.float64)
    one_layer = {"lstm": {name: value for name, value in params["lstm"].items() if name.endswith("l0")}}
    one_layer["head"] = params["head"]
    rngs = {"dropout": jax.random.key(0)}

    @jax.jit
    def run(params, one_layer):
        model = jax_model.LSTMModel(6, 1, 1, dropout=0.25)
        training = model.apply({"params": one_layer}, x, train=True, rngs=rngs)
        evaluation = model.apply({"params": one_layer}, x)
        model = jax_model.LSTMModel(6, 2, 1, dropout=0.25)
        outputs, state = model.apply({"params": params}, x, train=True, rngs=rngs, capture_intermediates=True)
        dropped = state["intermediates"]["lstm"]["Dropout_0"]["__call__"][0]  # (T, B, H): flax's dropout of layer 0
        lstm = params["lstm"]
        layers = [[lstm[f"{kind}_l{k}"] for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")] for k in (0, 1)]
        zeros = jnp.zeros((7, 8, 6))
        layer_0 = jax_model.lstm_layer(jnp.swapaxes(x, 0, 1), *layers[0], zeros)  # (T, B, H), undropped
        # the stack by hand: layer 1 fed layer 0's outputs, zeroed where flax's mask zeroed them and scaled by 1/(1-p)
        layer_1 = jax_model.lstm_layer(jnp.where(dropped != 0, layer_0 / 0.75, 0.0), *layers[1], zeros)
        by_hand = layer_1[-1] @ params["head"]["weight"].T + params["head"]["bias"]  # (B, 1)
        return training, evaluation, dropped, layer_0, outputs, by_hand

    training, evaluation, dropped, layer_0, outputs, by_hand = map(np.asarray, run(params, one_layer))
    np.testing.assert_array_equal(training, evaluation)  # one layer: nothing to drop
    kept = dropped != 0
    # float64: the model's fused layers against the plain scan, the same maths in another order (measured 5.4e-15
    # on the dropped inputs, 1e-15 on the outputs)
    np.testing.assert_allclose(dropped[kept], layer_0[kept] / 0.75, rtol=1e-13)
    np.testing.assert_allclose(outputs, by_hand, rtol=1e-13)  # what layer 1 saw: that input, as it is
    # 336 elements, each kept with probability 0.75: the share kept lies in 0.75 ± 0.1 (4.3 sd; measured 0.726)
    assert abs(kept.mean() - 0.75) < 0.1


def scan_unrolls(jaxpr) -> list[int]:
    """The unroll of every lax.scan in a jaxpr, nested ones (in custom_vjp calls, loop bodies) included."""
    unrolls = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "scan":
            unrolls.append(eqn.params["unroll"])
        for value in eqn.params.values():
            inner = getattr(value, "jaxpr", value)  # a ClosedJaxpr's jaxpr, or a Jaxpr itself
            if hasattr(inner, "eqns"):
                unrolls += scan_unrolls(inner)
    return unrolls


@pytest.mark.parametrize("backward", ["custom", "autodiff"])
def test_unroll_reaches_the_recurrence_and_remat_keeps_fewer_activations(backward):
    """unroll and remat change how the recurrence runs, not what it computes (test_fused), so they are checked
    where they act: the scan's unroll, and what the backward pass keeps from the forward pass."""
    steps, batch, hidden = 50, 8, 16
    params = jax_model.from_torch_names(weights.initial_weights(1, hidden, 1, 1, np.random.default_rng(0)), jnp.float32)
    x = jnp.ones((batch, steps, 1))
    unrolled = jax_model.LSTMModel(hidden, 1, 1, unroll=3, backward=backward)
    assert scan_unrolls(jax.make_jaxpr(lambda p: unrolled.apply({"params": p}, x))(params).jaxpr) == [3]

    def kept_for_backward(remat: bool) -> int:
        model = jax_model.LSTMModel(hidden, 1, 1, backward=backward, remat=remat)
        _, vjp = jax.vjp(lambda p: model.apply({"params": p}, x), params)
        return sum(leaf.size for leaf in jax.tree.leaves(vjp))  # residuals, in elements

    saved = kept_for_backward(False) - kept_for_backward(True)
    if backward == "custom":  # the stored gates (T, B, 4H), less the [W_ih | b | W_hh] kept to recompute them
        assert saved == steps * batch * 4 * hidden - (1 + 1 + hidden) * 4 * hidden
    else:  # jax.checkpoint keeps each step's carry and input, not its activations: measured 38400 of 78368
        assert saved >= steps * batch * 4 * hidden


def test_the_trainer_builds_its_model_with_the_configured_recurrence(tiny_config, monkeypatch):
    class Built(Exception):
        pass

    def record(*args):
        raise Built(jax_model.LSTMModel(*args))

    monkeypatch.setattr(jax_train, "LSTMModel", record)  # stops the trainer before it compiles anything
    config = replace(tiny_config, model={"dropout": 0.1}, training={"unroll": 3, "remat": True, "backward": "autodiff"})
    with pytest.raises(Built) as built:
        make_trainer(config)
    model = built.value.args[0]
    assert (model.hidden_size, model.num_layers, model.num_outputs, model.dropout) == (8, 1, 1, 0.1)
    assert (model.unroll, model.remat, model.backward, model.rnn) == (3, True, "autodiff", "scan")


def test_the_seed_draws_the_dropout_masks(tiny_config, monkeypatch):
    """From the same weights and data, training.seed alone decides the masks: the same seed the same outputs in
    training mode (the same mask), another seed other outputs."""
    # Construction compiles the epoch and evaluation programs, which this test does not run: skipped.
    monkeypatch.setattr(jax_train.Trainer, "_compile", lambda self, jitted, *args: None)
    config = replace(tiny_config, model={"num_layers": 2, "dropout": 0.5}, training={"dtype": "float64"})
    prepared, initial, _ = prepare(config)
    trainers = [jax_train.Trainer(replace(config, training={"seed": seed}), prepared, initial) for seed in (1, 2, 1)]
    model, x = trainers[0].model, trainers[0].x_train[:16]

    @jax.jit
    def training_outputs(params, key):  # the forward pass of a step, with the mask that key draws
        return model.apply({"params": params}, x, train=True, rngs={"dropout": key})

    outputs = [np.asarray(training_outputs(trainer.state.params, trainer.state.key)) for trainer in trainers]
    np.testing.assert_array_equal(outputs[2], outputs[0])
    # p = 0.5 between the layers: another mask moves the outputs by several percent (the parity suite's dropout
    # tests measured ~6 %); float64 rounding alone would be ~1e-15
    assert np.linalg.norm(outputs[1] - outputs[0]) / np.linalg.norm(outputs[0]) > 0.01
