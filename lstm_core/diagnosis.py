"""Why is my LSTM's loss not decreasing? Name the cause from a run directory's records.

`diagnose(records)` runs one pure rule per cause on what `run_records.load_run(run_dir)` read, and applies
their precedence; `diagnosis_report` presents the result. numpy, the standard library and
lstm_core (no torch, no jax).

Each rule returns a `Finding` with status `ok`, `suspect` (a weaker signature; never listed as a cause)
or `found`. Quantities the rules share:

* loss curve: the finite per-step training losses cut into up to `CURVE_POINTS` consecutive chunks, each
  summarised by its median (robust to single noisy minibatches); "final loss" is the last chunk's median.
* baseline: the loss of a trivial predictor. Regression with scaled targets: 1.0 (MSE of predicting the
  mean of standardised targets); unscaled: the mean raw target variance from data_stats.json;
  classification: ln(num_classes) (cross-entropy of a uniform guess). Unknown -> the first chunk's loss.
* spike ratio: a step's grad norm (before clipping) over the median of the `SPIKE_WINDOW` steps before it.
* travel: Adam moves each weight by at most about lr per step, so Σ lr over the run, divided by the
  initial weight scale 1/√H, bounds how far (in units of their own size) the weights could have moved.

| cause | found when | suspect when |
|---|---|---|
| unscaled_data | `--no-scale` and a raw input/target column has max(\\|mean\\|, std) > 10 (`UNSCALED_FOUND`) or 0 < std < 0.01 (`UNSCALED_TINY_STD`) | `--no-scale` and max(\\|mean\\|, std) > 3 (`UNSCALED_SUSPECT`) or std < 0.1 |
| exploding_gradients | grad norm non-finite while the loss was finite; or spike ratio ≥ 100 (`SPIKE_FOUND`) followed by a non-finite loss, or by the 20-step median loss doubling (`EXPLODE_DAMAGE_WINDOW`, `EXPLODE_DAMAGE_RISE`) by ≥ 0.1× the baseline (`EXPLODE_MIN_CLIMB`) without recovering, or (clipping off) by a final loss ≥ 0.5× baseline (`HIGH_LOSS_RATIO`: Adam stalled); or clip factor < 0.01 (`CLIP_TINY`) on ≥ 50 % of steps (`CLIP_TINY_FRACTION`); or ‖dL/dh_0‖ / ‖dL/dh_{T-1}‖ ≥ 1e3 (`EXPLODE_FLOW_GROWTH`) with a final loss ≥ 0.25× baseline (`UNDERFIT_SUSPECT_RATIO`) | spike ratio ≥ 20 (`SPIKE_SUSPECT`), a ≥ 100× spike the loss did not suffer from or recovered from, growth ≥ 1e3 with a lower loss, or clip factor < 0.01 on ≥ 10 % of steps |
| lr_too_high | no ≥ 100× spike, and: the loss turned non-finite after step 1; or a loss-curve point is ≥ 2× the lowest point before it (`LR_HIGH_REBOUND`) and ≥ 0.1× the baseline above it (`LR_HIGH_MIN_CLIMB`); or the final loss is ≥ 1.5× the baseline (`LR_HIGH_ABOVE_BASELINE`) and either above the loss at step 1 or not 10 % lower than mid-run (`LR_HIGH_STALL`) | the same signatures after a ≥ 100× spike; a material rebound ≥ 1.3× |
| lr_too_low | travel < 1 (`LR_LOW_TRAVEL`) and final loss ≥ 0.5× baseline (`HIGH_LOSS_RATIO`), over ≥ 100 optimizer steps (`MIN_JUDGED_STEPS`) | travel < 3 (`LR_LOW_TRAVEL_SUSPECT`) with a high loss, or travel < 1 with a low one; the found signature in a shorter run |
| vanishing_gradients | median over recorded steps of ‖dL/dh_0‖ / ‖dL/dh_{T-1}‖ < 1e-6 (`VANISH_RATIO`) in some layer and final loss ≥ 0.5× baseline | that ratio < 1e-3 (`VANISH_SUSPECT_RATIO`) with a high loss |
| underfitting | final loss ≥ 0.5× baseline (`HIGH_LOSS_RATIO`), finite, over ≥ 100 optimizer steps (`MIN_JUDGED_STEPS`), and no other cause found | final loss ≥ 0.25× baseline (`UNDERFIT_SUSPECT_RATIO`), or the found signature in a shorter run or explained by another cause |
| overfitting | 3-epoch mean val loss ends ≥ 1.2× its minimum (`OVERFIT_RISE`), by ≥ 0.01× the baseline (`OVERFIT_MIN_CLIMB`), and above the 3-epoch mean train loss (`OVERFIT_GAP`), while that train loss fell to ≤ 0.9× its value at the val minimum (`OVERFIT_TRAIN_FALL`); needs ≥ 4 epochs | val rise ≥ 1.1× with train falling, ≥ 1.2× with train flat, or ≥ 1.2× with val below train |

Remedies are lstm-train flags with values: exploding → `--clip-norm 1.0` (or, with clipping on, lr / 10; for
growth through time, `--window` cut to the steps over which it stays under 10×, `EXPLODE_WINDOW_GROWTH`, where
the dataset reads `--window`: the digits' 8 steps are fixed); lr_too_high → lr / 10; lr_too_low → the larger of
10× the lr and the lr that gives travel 10 (`LR_LOW_TARGET_TRAVEL`); in a run shorter than `MIN_JUDGED_STEPS`
(lr_too_low and underfitting) → `--epochs` enough for that many steps; vanishing → `--window` cut to the steps
whose share stays above 1e-6 (lr / 10 when not even one step back keeps it, or when the dataset fixes the
sequence, as the digits do: saturated gates), and one layer fewer for a stacked model (`--dropout 0` too when one
is left); unscaled → drop `--no-scale`; underfitting → twice the hidden size, at least 32 (`UNDERFIT_MIN_HIDDEN`);
overfitting → a larger training split when it is under half the data (`OVERFIT_SMALL_SPLIT`), else stop at the
best epoch with dropout for a stacked model, else weight decay or a smaller model (`--rnn cudnn` has no dropout).
An lr cut below the run's `--min-lr` cuts that too; a new hidden size or layer count, or dropping `--no-scale`,
drops `--init-from` (a run's weights fix the shape and the scaling of the model they start). Every remedy is a
command line lstm-train accepts for the run's dataset and backend (`tests/test_diagnosis_remedies.py`).

Precedence. Unscaled data is a root cause: large raw inputs saturate the gates (vanishing gradients), large
raw targets inflate the loss and the gradient (exploding gradients, clip factor tiny) and make any lr wrong
for the scale. When `unscaled_data` is found, those other causes are demoted to suspect, carrying
`consequence_of = ("unscaled_data",)` and a note: `causes` lists root causes only, the ones to fix first.
Likewise vanishing gradients next to lr_too_high (huge weights saturate the gates). Exploding gradients and
lr_too_high exclude each other in the rules themselves: a divergence or rising loss preceded by a ≥ 100×
gradient spike is `exploding_gradients`; one without a spike is `lr_too_high`. lr_too_high and lr_too_low
prescribe opposite fixes, so only one is found: lr_too_high when its evidence is a divergence or a rebound
(the weights moved, too far), else lr_too_low (a loss that only stays above the baseline is also what steps
too small to move it give); the other is demoted to suspect, "(contradicts ...; fix that first)".
Underfitting means "loss high although training is otherwise healthy", so it is demoted to suspect when any
other cause except overfitting is found. A loss that is non-finite at step 1, before any update, is no
training dynamic at all: it is reported as a note (check the data for nan/inf), and the run is not healthy.
So is a run shorter than `MIN_JUDGED_STEPS` that ends with a high loss and no cause found: a note says to
train longer.

Calibration. The thresholds were set on synthetic records, then checked against real runs of both backends:
lstm-train's defaults on sine, adding and digits (seeds 0-2: no alarm) and the scenarios of `lstm-zoo`
(each diagnosed as its own cause). Where real runs disagreed, the constant's comment says what they showed.
"""  # noqa: E501 (the markdown table's rows cannot wrap)

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from lstm_core import reductions, run_records
from lstm_core.config import DATASET_SETTINGS
from lstm_core.number_text import flag_value, num, times
from lstm_core.run_records import RunRecords, Settings

# ------------------------------------------------------------------------------------------------- thresholds
# Loss curve: 10 points resolve "falls, flattens, rises" while each median still pools several minibatches.
CURVE_POINTS = 10
# A curve point pools at least 3 steps so that its median is not a single minibatch's loss.
CURVE_MIN_CHUNK = 3

# "High loss": at least half the trivial baseline, i.e. the model explains less than half of the target
# variance (regression) or is still far from confident (classification, e.g. CE 1.15 for 10 classes).
HIGH_LOSS_RATIO = 0.5

# Exploding gradients.
# The trailing median covers 50 steps: long enough to be a stable reference, short enough to follow the
# healthy decline of grad norms as the loss falls (which can be 10-30x over a run, not per 50 steps).
SPIKE_WINDOW = 50
# A spike is only measured once 5 earlier finite grad norms exist; the first steps have no reference.
SPIKE_MIN_HISTORY = 5
# Minibatch noise moves a healthy grad norm by a few x around its recent median; 100x is an explosion
# (Adam's second moment then stays inflated for ~1/(1-beta2) = 1000 steps, stalling training).
SPIKE_FOUND = 100.0
# 20x is already unusual for minibatch noise but can be one hard batch: suspect only.
SPIKE_SUSPECT = 20.0
# A clip factor below 0.01 means the gradient was 100x larger than max_norm.
CLIP_TINY = 0.01
# ... on most steps: the gradient scale is persistently far beyond the clipping threshold.
CLIP_TINY_FRACTION = 0.5
CLIP_TINY_SUSPECT_FRACTION = 0.1
# A spike is an explosion (found) when the loss suffers: it turns non-finite afterwards, or the median loss of
# the 20 steps after it is >= 2x that of the 20 before. A 20-step median of minibatch losses moves by ~10-15 %
# from noise, so doubling is far outside it; a spike that left the loss alone is only suspect.
EXPLODE_DAMAGE_WINDOW = 20
EXPLODE_DAMAGE_RISE = 2.0
# ... and rises by at least a tenth of the baseline. Real runs near convergence: a digits run at 0.1 % of
# ln(10), grad norms ~0.005, met one hard batch (grad 1.9, 395x the median) and its loss "jumped" 2.7x, from
# 0.001 to 0.003; a harmless blip. The zoo's explosions move the loss by most of the baseline.
EXPLODE_MIN_CLIMB = 0.1
# The mirror of VANISH_SUSPECT_RATIO: ‖dL/dh_0‖ at 1000x ‖dL/dh_{T-1}‖ means the recurrence amplifies what
# flows back instead of carrying it. Healthy real runs stay below 1 (0.03-0.7 on sine, adding, digits);
# runs that blew up at a high lr measured 4e3-1e16.
EXPLODE_FLOW_GROWTH = 1e3
# Growth is found with a final loss of a quarter of the baseline or more (UNDERFIT_SUSPECT_RATIO, a weak fit),
# not only half: where the gradient grows 1e13x back through time, runs end anywhere between 0.6 and 1.0x the
# baseline, depending on rounding (the zoo's scenario gave 0.59 on the fused JAX backend, 1.0 on torch).
# The remedy's window keeps the growth under 10x, so that no early step outweighs the last ones by more
# than an order of magnitude (a window that keeps it under 1e3 still left the zoo's run stuck at 0.86).
EXPLODE_WINDOW_GROWTH = 10.0

# Learning rate too high.
# Rebound: some curve point at >= 2x the lowest point before it. Each point is a median over >= 3 (usually
# dozens of) minibatches, whose noise moves it by 10-20 %; a healthy curve never climbs back to twice an
# earlier low, an overshooting optimizer (undoing its progress, or bouncing) does.
LR_HIGH_REBOUND = 2.0
LR_HIGH_REBOUND_SUSPECT = 1.3
# ... and the climb from that low must be at least a tenth of the baseline. Calibrated on real runs: healthy
# adding-problem runs (lstm-train defaults, seeds 0-2, both backends) end at 0.2-0.7 % of the baseline, where
# their curve points move 2-5x from chunk to chunk (0.0026 -> 0.0119), a climb of at most 0.005x the
# baseline; the zoo's lr 1.0 run climbs 0.85x the baseline.
LR_HIGH_MIN_CLIMB = 0.1
# 1.5x worse than the trivial predictor: the model starts near the baseline (small initial output), and
# the output bias alone reaches it, so staying well above it means the updates keep overshooting.
LR_HIGH_ABOVE_BASELINE = 1.5
# ... and either above the loss before the first update (the updates made the model worse: seen at lr 1.0,
# where the loss rose from 1.0 to 15 in a few steps, then crept down to 9.8), or not improving by 10 % over
# the second half (a slow descent from a bad start is not overshooting).
LR_HIGH_STALL = 0.9

# Learning rate too low: travel = sum(lr) * sqrt(H). Below 1 the weights could not have moved by even
# their own initial size (1/sqrt(H)) over the whole run, so nothing can have been learned.
LR_LOW_TRAVEL = 1.0
LR_LOW_TRAVEL_SUSPECT = 3.0
# Suggested lr makes travel >= 10: ten times the initial weight scale is ample to fit the small tasks here.
LR_LOW_TARGET_TRAVEL = 10.0
# A run of fewer optimizer steps is too short to judge the lr (or the model's capacity) from a high loss: at
# lstm-train's defaults (lr 0.01, H = 32: travel 0.057 a step) any run under 53 steps has travel < 3
# (LR_LOW_TRAVEL_SUSPECT), so lr_too_low would blame a healthy lr for a short run, and the travel target asks
# 10 / (steps·√H): lr 1.8 for a 1-step run, which diverges. 100 steps is twice that, leaves the default lr
# travel 5.7, and stays below the runs the doctor is calibrated on: the zoo's lr_too_low scenario runs 210
# steps, lstm-train's default job ~420 (20 epochs of ~21).
MIN_JUDGED_STEPS = 100

# Vanishing gradients: ||dL/dh_0|| / ||dL/dh_{T-1}||. Below 1e-6, about 10 float32 ulps (eps 1.2e-7), the
# first steps' share of a weight gradient is lost in rounding: the model cannot learn from them.
VANISH_RATIO = 1e-6
# Below 1e-3 the first steps contribute under 0.1 % each: weak long-range learning, suspect.
VANISH_SUSPECT_RATIO = 1e-3

# Underfitting: a quarter of the baseline is a weak fit, worth a look but not a verdict.
UNDERFIT_SUSPECT_RATIO = 0.25
# The loss is "still falling" when the last quarter of the curve dropped by 10 % or more: train longer.
UNDERFIT_STILL_FALLING = 0.10
# The remedy widens the model to at least lstm-train's default hidden size: doubling a width of 1 or 2 is
# rarely enough: digits with H = 1 ends at 0.8x the baseline, with H = 32 at 0.06x (the zoo's remedy).
UNDERFIT_MIN_HIDDEN = 32

# Overfitting: val and train are smoothed over 3 epochs so one noisy validation does not decide.
OVERFIT_SMOOTH = 3
# Fewer than 4 epochs give too short a val curve to tell a minimum from noise.
OVERFIT_MIN_EPOCHS = 4
# Val loss 20 % above its minimum is beyond epoch-to-epoch noise of a mean over a validation split.
OVERFIT_RISE = 1.2
OVERFIT_RISE_SUSPECT = 1.1
# "Train keeps falling": it ends at <= 90 % of its value at the val minimum.
OVERFIT_TRAIN_FALL = 0.9
# ... and val ends above train: the model fits its training data better than unseen data. Calibrated on real
# runs: at 1-2 % of the baseline a healthy adding-problem run's val and train curves jitter together (val
# 0.0134 -> 0.018 while train jumped and fell back), val staying below train; that is noise, not memorising.
OVERFIT_GAP = 1.0
# ... and the val loss climbed by at least 1 % of the baseline. Real healthy adding-problem runs end at
# 0.1-0.5 % of the baseline, where their val loss moves 0.0012 <-> 0.0053 from epoch to epoch (150 samples):
# a 1.8x "rise" of 0.2 % of the baseline. The zoo's overfitting run climbs by 10 % of it.
OVERFIT_MIN_CLIMB = 0.01
# A training split under half the data is the first thing to change: on the zoo's 5 % split of the digits
# (90 images) stopping at the best epoch recovered 1.3x of the final val loss, weight decay 1e-3 anything
# from 1.5x better to 1.2x worse (coupled L2 destabilises Adam near zero loss), the default 70 % split 17-22x.
OVERFIT_SMALL_SPLIT = 0.5

# Unscaled data: with initial weights of 1/sqrt(H) (~0.18 for H = 32) an input of size 10 already adds
# pre-activations of ~2 per feature (gates saturate), and a target of size 10 makes the MSE ~100x the
# scaled one (gradients 10x+). 3 is noticeably off O(1); 0.01 std leaves a feature almost invisible.
UNSCALED_FOUND = 10.0
UNSCALED_SUSPECT = 3.0
UNSCALED_TINY_STD = 0.01
UNSCALED_SMALL_STD = 0.1

# ------------------------------------------------------------------------------------------------------- API
CAUSES = (
    "exploding_gradients",
    "vanishing_gradients",
    "lr_too_high",
    "lr_too_low",
    "unscaled_data",
    "underfitting",
    "overfitting",
)
STATUSES = ("ok", "suspect", "found")
# Root causes whose found consequences are demoted to suspect and annotated (see Precedence).
CONSEQUENCES = {
    "unscaled_data": ("exploding_gradients", "vanishing_gradients", "lr_too_high", "lr_too_low"),
    "lr_too_high": ("vanishing_gradients",),
}


@dataclass(frozen=True)
class Finding:
    cause: str
    status: str  # ok | suspect | found
    evidence: str
    remedy: str  # lstm-train flags with values; "" when nothing needs changing
    numbers: dict[str, Any] = field(default_factory=dict)
    consequence_of: tuple[str, ...] = ()  # found causes that outrank it: its roots, or the one it contradicts

    def __post_init__(self):
        if self.cause not in CAUSES:
            raise ValueError(f"unknown cause {self.cause!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")


@dataclass(frozen=True)
class Diagnosis:
    run_dir: str
    findings: tuple[Finding, ...]
    causes: tuple[str, ...]  # found causes, root causes first
    notes: tuple[str, ...] = ()  # problems no cause covers (e.g. a non-finite loss before any update)
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def healthy(self) -> bool:
        return not self.causes and not self.notes

    def finding(self, cause: str) -> Finding:
        return next(f for f in self.findings if f.cause == cause)


# ------------------------------------------------------------------------------------------------- helpers
def _ratio(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator (scalars or arrays) where a quotient beyond float64's max is inf, quietly: a
    loss near 1e308 over one near 1 is a ratio the rules judge as the huge one it is (`times` words it "more
    than 1e308×"), not a RuntimeWarning on the doctor's stderr."""
    with np.errstate(over="ignore"):
        return np.divide(numerator, denominator)


def _curve(records: RunRecords) -> np.ndarray:
    losses = records.loss[np.isfinite(records.loss)]
    points = min(CURVE_POINTS, len(losses) // CURVE_MIN_CHUNK)
    if points < 1:
        return losses.copy()
    return np.array([reductions.median(chunk) for chunk in np.array_split(losses, points)])


def _baseline(records: RunRecords) -> tuple[float, str]:
    """The trivial predictor's loss, and a phrase saying what it is."""
    if run_records.task(records) == "classification":
        classes = records.num_classes
        if classes is not None and classes >= 2:
            return math.log(classes), f"ln({classes}) = {num(math.log(classes))}, a uniform guess"
    else:
        scaled = run_records.scaled(records)
        if scaled is None or scaled:
            return 1.0, "1.0, predicting the mean of the scaled targets"
        _, std = records.column_stats["targets"]
        with np.errstate(over="ignore"):  # a std above 1.3e154 squares to inf: no variance to judge by
            variance = float(np.mean(std**2)) if std.size and np.all(np.isfinite(std)) else math.nan
        if math.isfinite(variance) and variance > 0:
            return variance, f"{num(variance)}, predicting the mean of the raw targets"
    curve = _curve(records)
    first = float(curve[0]) if curve.size else math.nan
    return first, f"{num(first)}, the initial loss (the trivial baseline is unknown)"


def first_nonfinite(values: np.ndarray) -> int | None:
    """The index of the first nan or inf in `values` (S,), e.g. where a loss diverged; None when all are finite."""
    bad = np.flatnonzero(~np.isfinite(values))
    return int(bad[0]) if bad.size else None


def _explosion(records: RunRecords) -> dict[str, Any]:
    """Measurements shared by the exploding-gradient and lr-too-high rules."""
    g = np.where(np.isfinite(records.grad_norm) & (records.grad_norm > 0), records.grad_norm, np.nan)
    n = len(g)
    reference = np.full(n, np.nan)
    for i in range(SPIKE_MIN_HISTORY, min(n, SPIKE_WINDOW)):
        history = g[:i][np.isfinite(g[:i])]
        if len(history) >= SPIKE_MIN_HISTORY:
            reference[i] = reductions.median(history)
    if n > SPIKE_WINDOW:
        windows = np.lib.stride_tricks.sliding_window_view(g[:-1], SPIKE_WINDOW)  # windows[k] = g[k:k+W]
        counts = np.sum(np.isfinite(windows), axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan windows -> nan, masked below
            medians = reductions.median(windows, axis=1, skip_nan=True)
        reference[SPIKE_WINDOW:] = np.where(counts >= SPIKE_MIN_HISTORY, medians, np.nan)
    valid = np.isfinite(reference) & np.isfinite(g)
    ratios = np.where(valid, _ratio(g, np.where(valid, reference, 1.0)), 0.0)
    loss_bad = first_nonfinite(records.loss)
    spike_i = int(np.argmax(ratios)) if n else 0
    damage = math.nan
    # every >= SPIKE_FOUND spike before a divergence is a candidate; report the first that hurt the loss
    baseline, _ = _baseline(records)

    def hurt(ratio: float, difference: float) -> bool:
        # doubled, and by a tenth of the baseline: near convergence a hard batch doubles a tiny loss
        return ratio >= EXPLODE_DAMAGE_RISE and difference >= EXPLODE_MIN_CLIMB * baseline

    candidates = [int(i) for i in np.flatnonzero(ratios >= SPIKE_FOUND) if loss_bad is None or i < loss_bad]
    jumped = False
    for i in candidates:
        rise, difference = _loss_jump(records.loss, i)
        if (loss_bad is not None and loss_bad > i) or hurt(rise, difference):
            spike_i, damage, jumped = i, rise, hurt(rise, difference)
            break
    else:
        if candidates:
            damage = _loss_jump(records.loss, spike_i)[0]
    spike_ratio = float(ratios[spike_i]) if n else 0.0
    spike_found = bool(candidates)
    diverged_after_spike = spike_found and loss_bad is not None and loss_bad > spike_i
    curve = _curve(records)
    final = float(curve[-1]) if curve.size else math.nan
    # a jump the run has since recovered from (it ends at or below the loss before the spike) is not why
    # the loss is not decreasing: suspect only
    before = records.loss[max(0, spike_i - EXPLODE_DAMAGE_WINDOW) : spike_i]
    before = before[np.isfinite(before)]
    recovered = bool(jumped and before.size and final <= reductions.median(before))
    high = bool(loss_bad is None and baseline > 0 and final >= HIGH_LOSS_RATIO * baseline)
    weak_fit = bool(loss_bad is None and baseline > 0 and final >= UNDERFIT_SUSPECT_RATIO * baseline)
    # an unclipped spike lands in Adam's second moment and shrinks every later update for ~1/(1 - beta2) =
    # 1000 steps: when the run then ends with a high loss, the spike stalled it
    stalled = spike_found and not records.settings.clipping and high and not diverged_after_spike
    damaged = spike_found and (diverged_after_spike or (jumped and not recovered) or stalled)
    growth, growth_layer, growth_reach = _flow_growth(records)

    grad_bad = first_nonfinite(records.grad_norm)
    # the gradient overflowed on its own: non-finite grad norm at a step whose loss is still finite
    overflow = grad_bad if grad_bad is not None and np.isfinite(records.loss[grad_bad]) else None
    finite_clip = records.clip_factor[np.isfinite(records.clip_factor)]
    tiny_fraction = float(np.mean(finite_clip < CLIP_TINY)) if finite_clip.size else 0.0
    finite_g = g[np.isfinite(g)]
    return {
        "spike_ratio": spike_ratio,
        "spike_step": int(records.step[spike_i]) if n else None,
        "spike_grad_norm": float(records.grad_norm[spike_i]) if n else math.nan,
        "spike_reference": float(reference[spike_i]) if n and valid[spike_i] else math.nan,
        "median_grad_norm": float(reductions.median(finite_g)) if finite_g.size else math.nan,
        "max_grad_norm": float(np.max(finite_g)) if finite_g.size else math.nan,
        "first_nonfinite_loss_step": int(records.step[loss_bad]) if loss_bad is not None else None,
        "first_nonfinite_loss_index": loss_bad,
        "nonfinite_loss_value": float(records.loss[loss_bad]) if loss_bad is not None else None,
        "overflow_step": int(records.step[overflow]) if overflow is not None else None,
        "tiny_clip_fraction": tiny_fraction,
        "clipping": records.settings.clipping,
        "max_norm": records.settings.max_norm,
        "spike_found": spike_found,
        "diverged_after_spike": diverged_after_spike,
        "loss_jump": damage,
        "jumped": jumped,
        "recovered": recovered,
        "stalled": stalled,
        "final_loss": final,
        "baseline": baseline,
        "flow_growth": growth,
        "flow_growth_layer": growth_layer,
        "flow_growth_reach": growth_reach,
        "found": bool(
            overflow is not None
            or damaged
            or tiny_fraction >= CLIP_TINY_FRACTION
            or (growth >= EXPLODE_FLOW_GROWTH and weak_fit)
        ),
    }


def _flow_profiles(records: RunRecords) -> dict[int, np.ndarray]:
    """Per layer, the median over recorded steps of ‖dL/dh_t‖ / ‖dL/dh_{T-1}‖ (T,), from grad_flow.csv."""
    flow = records.grad_flow
    if flow is None or flow.norms.shape[1] < 2:
        return {}
    last = flow.norms[:, -1]
    usable = np.all(np.isfinite(flow.norms), axis=1) & (last > 0)
    profiles = {}
    for layer in np.unique(flow.layer):
        rows = usable & (flow.layer == layer)
        if np.any(rows):
            profiles[int(layer)] = reductions.median(_ratio(flow.norms[rows], last[rows, None]), axis=0)
    return profiles


def _flow_growth(records: RunRecords) -> tuple[float, int | None, int | None]:
    """The largest ‖dL/dh_0‖ / ‖dL/dh_{T-1}‖ over layers (> 1: the gradient grows back through time), its
    layer, and how many of the last steps keep that growth below EXPLODE_WINDOW_GROWTH."""
    profiles = _flow_profiles(records)
    if not profiles:
        return math.nan, None, None
    layer = max(profiles, key=lambda k: profiles[k][0])
    profile = profiles[layer]
    return float(profile[0]), layer, int(np.sum(profile < EXPLODE_WINDOW_GROWTH))


def _loss_jump(loss: np.ndarray, i: int) -> tuple[float, float]:
    """Median finite loss over the EXPLODE_DAMAGE_WINDOW steps after step index i over (and minus) that
    before it: (ratio, difference)."""
    before = loss[max(0, i - EXPLODE_DAMAGE_WINDOW) : i]
    after = loss[i + 1 : i + 1 + EXPLODE_DAMAGE_WINDOW]
    before, after = before[np.isfinite(before)], after[np.isfinite(after)]
    if not before.size or not after.size:
        return math.nan, math.nan
    median_before, median_after = reductions.median(before), reductions.median(after)
    if median_before <= 0:
        return math.nan, math.nan
    return float(_ratio(median_after, median_before)), float(median_after - median_before)


def _too_short(records: RunRecords) -> tuple[str, str] | None:
    """For a run of fewer than MIN_JUDGED_STEPS optimizer steps, the evidence and the remedy (train longer:
    the epochs that give that many steps at the run's steps per epoch); None for a run long enough."""
    steps = records.num_steps
    if steps >= MIN_JUDGED_STEPS:
        return None
    per_epoch = steps / len(np.unique(records.epoch))
    epochs = math.ceil(MIN_JUDGED_STEPS / per_epoch)
    return (
        f"only {steps} optimizer step{'s' if steps > 1 else ''}, fewer than {MIN_JUDGED_STEPS}: too short to judge",
        f"--epochs {epochs} (≥ {MIN_JUDGED_STEPS} optimizer steps), then run the doctor again",
    )


def _fixed_sequence(settings: Settings, steps: int) -> str | None:
    """Why no --window cuts the run's sequence of `steps` (T), as a remedy says it, where its dataset does not read
    the window (config.DATASET_SETTINGS: the digits' 8 rows are their steps); None where --window sets T, or where
    the records name no dataset (a plain loop's: the flag stands for the loop's own window)."""
    if settings.dataset is None or "window" in DATASET_SETTINGS[settings.dataset]:
        return None
    return f"dataset {settings.dataset!r} fixes the sequence at {steps} steps, no window to cut"


def _lower_lr(settings: Settings) -> str:
    """The flags that cut the learning rate tenfold: --lr, and --min-lr cut as much where the run's plateau floor
    would lie above the new lr, which lstm-train refuses (min_lr must not exceed lr)."""
    lr = flag_value(settings.lr / 10)
    if settings.min_lr <= float(lr):
        return f"--lr {lr}"
    # min_lr <= lr in the run, and rounding to 2 significant figures keeps that order
    return f"--lr {lr} and --min-lr {flag_value(settings.min_lr / 10)}"


def _fresh_start(settings: Settings, weights: str) -> str:
    """What a remedy that changes what a run's weights are made for (the model's shape; scaling, which the run's
    scaler fixes) adds for a run started from another's: lstm-train refuses the change with --init-from.
    `weights` says what they are made for ("have the old shape")."""
    return f" (a fresh start: drop --init-from, whose weights {weights})" if settings.init_from else ""


def _finding(cause, status, evidence, remedy="", **numbers) -> Finding:
    return Finding(cause=cause, status=status, evidence=evidence, remedy=remedy, numbers=numbers)


# --------------------------------------------------------------------------------------------------- rules
def check_exploding_gradients(records: RunRecords) -> Finding:
    x = _explosion(records)
    settings = records.settings
    numbers = {
        k: x[k]
        for k in (
            "spike_ratio",
            "loss_jump",
            "spike_step",
            "spike_grad_norm",
            "spike_reference",
            "median_grad_norm",
            "max_grad_norm",
            "first_nonfinite_loss_step",
            "overflow_step",
            "tiny_clip_fraction",
            "clipping",
            "max_norm",
            "flow_growth",
            "flow_growth_reach",
            "stalled",
            "recovered",
        )
    }
    spike = (
        f"grad norm before clipping reached {num(x['spike_grad_norm'])} at step {x['spike_step']}, "
        f"{times(x['spike_ratio'])} the median of the steps before it ({num(x['spike_reference'])})"
    )
    growth = (
        f"‖dL/dh_t‖ of layer {x['flow_growth_layer']} grows back through time: at t0 it is "
        f"{times(x['flow_growth'])} its value at the last step (median over the recorded steps)"
    )
    ratio = x["final_loss"] / x["baseline"] if x["baseline"] > 0 else math.nan  # 0: a run that began at loss 0
    ended = f"the loss ended at {num(x['final_loss'])}, {times(ratio)} the baseline"
    if x["clipping"]:
        remedy = f"{_lower_lr(settings)} (keep --clip-norm {flag_value(settings.max_norm)})"
    else:
        remedy = (
            f"--clip-norm {flag_value(min(settings.max_norm, 1.0))} (clipping is off); if it persists also "
            + _lower_lr(settings)
        )
    flow_grows = x["flow_growth"] >= EXPLODE_FLOW_GROWTH
    fixed = _fixed_sequence(settings, records.grad_flow.norms.shape[1]) if flow_grows else None
    if fixed:  # no window to cut: the remedies for a gradient too large, whatever its cause
        remedy += f"; {fixed}"
    elif flow_grows:
        # truncate what backpropagation crosses to the steps over which the growth stays below the limit
        window = max(2, x["flow_growth_reach"])
        remedy = f"--window {window}" + (
            "" if x["clipping"] else f" and --clip-norm {flag_value(min(settings.max_norm, 1.0))}"
        )
        remedy += f" (the gradient grows less than {num(EXPLODE_WINDOW_GROWTH)}× over the last {window} steps)"
    parts = []
    if x["overflow_step"] is not None:
        parts.append(
            f"the gradient norm became non-finite at step {x['overflow_step']} while the loss was still finite"
        )
    if x["diverged_after_spike"]:
        parts.append(f"{spike}; loss became {num(x['nonfinite_loss_value'])} at step {x['first_nonfinite_loss_step']}")
    elif x["jumped"] and not x["recovered"]:
        parts.append(
            f"{spike}; the median loss of the next {EXPLODE_DAMAGE_WINDOW} steps was "
            f"{times(x['loss_jump'])} that of the {EXPLODE_DAMAGE_WINDOW} before"
            + ("" if x["clipping"] else ", with clipping off")
        )
    elif x["stalled"]:
        parts.append(
            f"{spike}, with clipping off, and {ended}: an unclipped spike inflates Adam's second-moment "
            "estimate, which shrinks every later update for ~1000 steps"
        )
    if x["tiny_clip_fraction"] >= CLIP_TINY_FRACTION:
        parts.append(
            f"clipping scaled the gradient by less than {CLIP_TINY} on "
            f"{x['tiny_clip_fraction']:.0%} of steps (median grad norm {num(x['median_grad_norm'])} "
            f"vs max_norm {num(x['max_norm'])})"
        )
    if x["found"] and flow_grows:
        parts.append(growth if parts else f"{growth}; {ended}")
    if x["found"]:
        return _finding("exploding_gradients", "found", "; ".join(parts), remedy, **numbers)
    if x["spike_found"]:
        if x["recovered"]:
            how = (
                f"the median loss of the next {EXPLODE_DAMAGE_WINDOW} steps was {times(x['loss_jump'])} that "
                "before, but the run recovered and ended at or below its loss before the spike"
            )
        elif x["clipping"]:
            how = f"clipping at {num(x['max_norm'])} contained it"
        else:
            how = "clipping is off, but the loss did not visibly suffer"
        if math.isfinite(x["loss_jump"]) and not x["recovered"]:
            how += f" (median loss over the next {EXPLODE_DAMAGE_WINDOW} steps {times(x['loss_jump'])} that before)"
        return _finding("exploding_gradients", "suspect", f"{spike}; {how}", remedy, **numbers)
    if flow_grows:
        return _finding("exploding_gradients", "suspect", f"{growth}, but the loss fell anyway", remedy, **numbers)
    if x["spike_ratio"] >= SPIKE_SUSPECT:
        return _finding("exploding_gradients", "suspect", spike, remedy, **numbers)
    if x["tiny_clip_fraction"] >= CLIP_TINY_SUSPECT_FRACTION:
        return _finding(
            "exploding_gradients",
            "suspect",
            f"clipping scaled the gradient by less than {CLIP_TINY} on {x['tiny_clip_fraction']:.0%} of steps",
            remedy,
            **numbers,
        )
    return _finding(
        "exploding_gradients",
        "ok",
        f"largest grad norm {num(x['max_grad_norm'])} is {times(x['spike_ratio'])} the median of "
        f"the steps before it (median over the run {num(x['median_grad_norm'])})",
        **numbers,
    )


def check_lr_too_high(records: RunRecords) -> Finding:
    x = _explosion(records)
    settings = records.settings
    curve = _curve(records)
    baseline, baseline_text = _baseline(records)
    numbers: dict[str, Any] = {
        "lr": settings.lr,
        "baseline": baseline,
        "first_nonfinite_loss_step": x["first_nonfinite_loss_step"],
    }
    remedy = _lower_lr(settings)
    signatures, weak = [], []
    overshoot = False  # a divergence or a rebound: the weights moved, and too far (see diagnose)
    bad = x["first_nonfinite_loss_index"]
    if bad == 0:
        return _finding(
            "lr_too_high",
            "ok",
            "the loss was non-finite at step 1, before any parameter update, so no learning rate explains it",
            **numbers,
        )
    if bad is not None and not x["spike_found"]:
        overshoot = True
        signatures.append(
            f"the loss became {num(x['nonfinite_loss_value'])} at step "
            f"{x['first_nonfinite_loss_step']} with no gradient spike before it (grad norm peaked at "
            f"{num(x['max_grad_norm'])} and never exceeded {times(x['spike_ratio'])} its recent "
            f"median) at lr {num(settings.lr)}"
        )
    if curve.size >= 2:
        lows = np.minimum.accumulate(curve)[:-1]  # lows[i-1] = lowest point before point i
        # from a low of 0 any climb is unbounded, and staying at 0 is none (was inf: a flat zero loss "rebounded")
        unbounded = np.where(curve[1:] > lows, np.inf, 1.0)
        rebounds = np.where(lows > 0, _ratio(curve[1:], np.where(lows > 0, lows, 1.0)), unbounded)
        # only climbs worth a tenth of the baseline count: near the noise floor small losses double freely
        material = (curve[1:] - lows) >= LR_HIGH_MIN_CLIMB * baseline
        k = int(np.argmax(np.where(material, rebounds, 0.0))) if np.any(material) else int(np.argmax(rebounds))
        rebound, low = float(rebounds[k]), float(lows[k])
        climb = (float(curve[k + 1]) - low) / baseline if baseline > 0 else math.nan
        mid = float(curve[(len(curve) - 1) // 2])
        numbers.update(
            final_loss=float(curve[-1]),
            rebound=rebound,
            rebound_loss=float(curve[k + 1]),
            earlier_low=low,
            climb_to_baseline=climb,
        )
        where = f"curve point {k + 2} of {len(curve)}" if k + 2 < len(curve) else "the end"
        if rebound >= LR_HIGH_REBOUND and material[k]:
            overshoot = True
            signatures.append(
                f"the training loss climbed back to {num(curve[k + 1])} by {where}, "
                f"{times(rebound)} its earlier low {num(low)} (a climb of {times(climb)} the baseline), "
                "with no gradient spike"
            )
        elif rebound >= LR_HIGH_REBOUND_SUSPECT and material[k]:
            weak.append(
                f"the training loss climbed back to {num(curve[k + 1])}, {times(rebound)} its earlier low {num(low)}"
            )
        known_baseline = "initial loss" not in baseline_text
        finite = records.loss[np.isfinite(records.loss)]
        start = float(finite[0]) if finite.size else math.nan  # the loss before any update
        above = known_baseline and curve[-1] >= LR_HIGH_ABOVE_BASELINE * baseline
        numbers.update(first_loss=start)
        if above and curve[-1] >= start:
            signatures.append(
                f"the training loss ends at {num(curve[-1])}, {times(_ratio(curve[-1], baseline))} the trivial "
                f"baseline {baseline_text}, and above its value before the first update ({num(start)}): "
                "the updates made the model worse"
            )
        elif above and curve[-1] > LR_HIGH_STALL * mid:
            signatures.append(
                f"the training loss stays at {num(curve[-1])}, {times(_ratio(curve[-1], baseline))} "
                f"the trivial baseline {baseline_text}, and did not improve over the second half"
            )
    numbers["overshoot"] = overshoot
    if signatures and (x["found"] or x["spike_found"]):  # a >= 100x gradient spike explains a rebound
        return _finding(
            "lr_too_high",
            "suspect",
            "; ".join(signatures).replace(", with no gradient spike", "")
            + " — but exploding gradients explain this better (see exploding_gradients)",
            remedy,
            **numbers,
        )
    if signatures:
        return _finding("lr_too_high", "found", "; ".join(signatures), remedy, **numbers)
    if weak:
        return _finding("lr_too_high", "suspect", "; ".join(weak), remedy, **numbers)
    evidence = f"no divergence or rebound of the loss at lr {num(settings.lr)}"
    if numbers.get("rebound", 0.0) >= LR_HIGH_REBOUND:
        evidence += (
            f" (the loss went from {num(numbers['earlier_low'])} to {num(numbers['rebound_loss'])}, a climb of "
            f"only {numbers['climb_to_baseline']:.2g}× the baseline: noise near the floor)"
        )
    return _finding("lr_too_high", "ok", evidence, **numbers)


def check_lr_too_low(records: RunRecords) -> Finding:
    settings = records.settings
    curve = _curve(records)
    baseline, baseline_text = _baseline(records)
    lr = records.lr[np.isfinite(records.lr)]
    with np.errstate(over="ignore"):  # learning rates near float64's max sum to inf: travel without bound
        total = float(np.sum(lr))
    travel = total * math.sqrt(settings.hidden_size)
    final = float(curve[-1]) if curve.size else math.nan
    ratio = final / baseline if baseline > 0 else math.nan
    # At least 10x, and as much as travel LR_LOW_TARGET_TRAVEL needs, not capped at 10x the current lr: the
    # zoo's lr_too_low run (lr 1e-5, 210 steps) trains at the 840x this gives (0.0084), while 10x leaves its
    # travel at 0.12, still too low. A 1-step run got lr 1.8 (diverges) from the step count, not the ratio;
    # MIN_JUDGED_STEPS now bounds the target at 10 / (MIN_JUDGED_STEPS·√H), 0.018 at H = 32.
    suggested = max(10 * settings.lr, LR_LOW_TARGET_TRAVEL / (records.num_steps * math.sqrt(settings.hidden_size)))
    numbers = {
        "lr": settings.lr,
        "sum_lr": total,
        "travel": travel,
        "hidden_size": settings.hidden_size,
        "final_loss": final,
        "baseline": baseline,
        "loss_to_baseline": ratio,
        "lr_first": float(lr[0]) if lr.size else math.nan,
        "lr_last": float(lr[-1]) if lr.size else math.nan,
    }
    evidence = (
        f"over {records.num_steps} steps the learning rates sum to {num(total)}, so with Adam (≤ lr per "
        f"step) a weight could move at most {times(travel)} its initial scale 1/√{settings.hidden_size}; "
        f"final training loss {num(final)} is {times(ratio)} the baseline {baseline_text}"
    )
    if lr.size and lr[-1] < lr[0]:
        evidence += f" (the plateau scheduler cut lr from {num(lr[0])} to {num(lr[-1])})"
    remedy = f"--lr {flag_value(suggested)}"
    high = np.isfinite(ratio) and ratio >= HIGH_LOSS_RATIO
    short = _too_short(records)
    numbers["too_short"] = short is not None
    if first_nonfinite(records.loss) is not None:
        return _finding("lr_too_low", "ok", "the loss went non-finite; the learning rate is not too low", **numbers)
    if short and ((travel < LR_LOW_TRAVEL_SUSPECT and high) or travel < LR_LOW_TRAVEL):
        return _finding("lr_too_low", "suspect", f"{short[0]} the learning rate; {evidence}", short[1], **numbers)
    if travel < LR_LOW_TRAVEL and high:
        return _finding("lr_too_low", "found", evidence, remedy, **numbers)
    if (travel < LR_LOW_TRAVEL_SUSPECT and high) or travel < LR_LOW_TRAVEL:
        return _finding("lr_too_low", "suspect", evidence, remedy, **numbers)
    return _finding("lr_too_low", "ok", evidence, **numbers)


def check_vanishing_gradients(records: RunRecords) -> Finding:
    flow = records.grad_flow
    if flow is None or flow.norms.shape[1] < 2:
        return _finding(
            "vanishing_gradients",
            "ok",
            "grad_flow.csv was not recorded (or T < 2); run with --grad-flow-every 10 to measure ‖dL/dh_t‖",
        )
    curve = _curve(records)
    baseline, baseline_text = _baseline(records)
    final = float(curve[-1]) if curve.size else math.nan
    loss_ratio = final / baseline if baseline > 0 else math.nan
    T = flow.norms.shape[1]
    usable = np.all(np.isfinite(flow.norms), axis=1) & (flow.norms[:, -1] > 0)
    profiles = _flow_profiles(records)
    if not profiles:
        return _finding(
            "vanishing_gradients", "ok", "grad_flow.csv holds no finite rows with a non-zero last-step gradient"
        )
    worst = min(profiles, key=lambda k: profiles[k][0])
    profile = profiles[worst]
    ratio = float(profile[0])
    per_step = ratio ** (1 / (T - 1)) if ratio > 0 else 0.0
    reach = int(np.sum(profile >= VANISH_SUSPECT_RATIO))  # steps back (incl. the last) with >= 1e-3 of signal
    usable_reach = int(np.sum(profile >= VANISH_RATIO))  # ... and with a share above the rounding floor
    settings = records.settings
    numbers = {
        "ratio_first_to_last": ratio,
        "layer": worst,
        "T": T,
        "per_step_factor": per_step,
        "steps_above_1e-3": reach,
        "steps_above_1e-6": usable_reach,
        "final_loss": final,
        "baseline": baseline,
        "loss_to_baseline": loss_ratio,
        "ratio_by_layer": {k: float(v[0]) for k, v in profiles.items()},
    }
    share = f"{num(ratio)} of its value at t{T - 1}" if ratio > 0 else f"0: nothing of its value at t{T - 1} reaches it"
    evidence = (
        f"‖dL/dh_t‖ of layer {worst} at t0 is {share} (median over "
        f"{int(np.sum(usable & (flow.layer == worst)))} recorded steps"
        f"{f'; ×{per_step:.2g} per step' if ratio > 0 else ''}; only "
        f"the last {reach} of {T} steps keep ≥ {VANISH_SUSPECT_RATIO:g} of the signal, the last {usable_reach} "
        f"≥ {VANISH_RATIO:g}); final training "
        f"loss {num(final)} is {times(loss_ratio)} the baseline {baseline_text}"
    )
    # Dependencies the model must learn have to fit within the steps whose gradient share is above the
    # rounding floor; a window that long lets them (the adding problem learns at T = 50, not at T = 200). T is
    # the sequence the run recorded (grad_flow.csv's t0 .. t{T-1}), not config.json's window: the digits' 8 rows
    # are their steps whatever the window says (20, the default they ignore).
    saturated = usable_reach < 2  # not even one step back: saturated gates (weights too large), not a long window
    if saturated:
        evidence += "; nothing flows back past the last step: the gates are saturated"
    fixed = None if saturated else _fixed_sequence(settings, T)
    remedy = _lower_lr(settings) if saturated or fixed else f"--window {max(2, min(usable_reach, T - 1))}"
    if settings.num_layers > 1:
        remedy += f" and --num-layers {settings.num_layers - 1}"
        if settings.num_layers == 2 and settings.dropout > 0:  # lstm-train refuses dropout without a layer after
            remedy += " --dropout 0 (one layer has no dropout between layers)"
        remedy += _fresh_start(settings, "have the old shape")
    if fixed:
        remedy += f"; {fixed}: a gradient that fades within so few steps points to saturated gates"
    high = np.isfinite(loss_ratio) and loss_ratio >= HIGH_LOSS_RATIO
    if ratio < VANISH_RATIO and high:
        return _finding("vanishing_gradients", "found", evidence, remedy, **numbers)
    if ratio < VANISH_SUSPECT_RATIO and high:
        return _finding("vanishing_gradients", "suspect", evidence, remedy, **numbers)
    if ratio < VANISH_RATIO:
        evidence += "; the loss fell anyway, so the task does not need the early steps"
    return _finding("vanishing_gradients", "ok", evidence, **numbers)


def check_unscaled_data(records: RunRecords) -> Finding:
    scaled = run_records.scaled(records)
    stats = records.data_stats
    remedy = "drop --no-scale" + _fresh_start(records.settings, "take unscaled data")
    if scaled is None or scaled:
        how = "scaling is on" if scaled else "data_stats.json does not say whether data was scaled"
        return _finding("unscaled_data", "ok", f"{how}; inputs and targets reach the model standardised", scaled=scaled)
    if stats is None:
        return _finding(
            "unscaled_data",
            "suspect",
            "the run used --no-scale but recorded no data_stats.json",
            remedy,
            scaled=False,
        )
    features = records.settings.features
    worst: list[tuple[float, str, float, float]] = []  # (badness, name, mean, std)
    found, suspect = [], []
    for part in ("inputs", "targets"):
        means, stds = records.column_stats[part]
        for j, (mean, std) in enumerate(zip(means, stds, strict=False)):
            if part == "inputs":
                name = f"input {features[j]!r}" if j < len(features) else f"input feature {j}"
            else:
                name = "target" if len(means) == 1 else f"target {j}"
            size = max(abs(mean), std)
            text = f"{name} has mean {num(mean)}, std {num(std)}"
            if size > UNSCALED_FOUND or 0 < std < UNSCALED_TINY_STD:
                found.append(text)
            elif size > UNSCALED_SUSPECT or 0 < std < UNSCALED_SMALL_STD:
                suspect.append(text)
            if not math.isnan(size):  # a nan compares false both ways: max() would keep one that came first
                worst.append((size, name, mean, std))
    largest = max(worst) if worst else (math.nan, "", math.nan, math.nan)
    numbers = {
        "scaled": False,
        "largest_magnitude": largest[0],
        "largest_column": largest[1],
        "off_scale_columns": len(found),
    }
    if found:
        return _finding(
            "unscaled_data",
            "found",
            f"data is unscaled (--no-scale) and {'; '.join(found)} — far from O(1) (limit {num(UNSCALED_FOUND)})",
            remedy,
            **numbers,
        )
    if suspect:
        return _finding(
            "unscaled_data",
            "suspect",
            f"data is unscaled (--no-scale) and {'; '.join(suspect)}",
            remedy,
            **numbers,
        )
    return _finding("unscaled_data", "ok", "data is unscaled (--no-scale) but every column is O(1)", **numbers)


def check_underfitting(records: RunRecords) -> Finding:
    curve = _curve(records)
    baseline, baseline_text = _baseline(records)
    settings = records.settings
    final = float(curve[-1]) if curve.size else math.nan
    ratio = final / baseline if baseline > 0 else math.nan
    quarter = float(curve[(3 * len(curve)) // 4 - 1]) if len(curve) >= 4 else math.nan
    still_falling = bool(np.isfinite(quarter) and quarter > 0 and final <= quarter * (1 - UNDERFIT_STILL_FALLING))
    val = records.epochs["val_loss"]
    final_val = float(val[np.isfinite(val)][-1]) if np.any(np.isfinite(val)) else math.nan
    numbers = {
        "final_loss": final,
        "baseline": baseline,
        "loss_to_baseline": ratio,
        "still_falling": still_falling,
        "final_val_loss": final_val,
        "hidden_size": settings.hidden_size,
        "num_layers": settings.num_layers,
    }
    evidence = (
        f"final training loss {num(final)} is {times(ratio)} the baseline {baseline_text}; "
        f"last val loss {num(final_val)}"
    )
    # double the width, but at least to lstm-train's default of 32, which fits every bundled dataset
    remedy = f"--hidden-size {max(2 * settings.hidden_size, UNDERFIT_MIN_HIDDEN)}"
    if settings.num_layers == 1:
        remedy += " or --num-layers 2"
    remedy += _fresh_start(settings, "have the old shape")
    if still_falling:
        evidence += f"; the loss was still falling (≥ {UNDERFIT_STILL_FALLING:.0%} over the last quarter)"
        remedy = f"--epochs {2 * int(settings.epochs)}, then {remedy}"
    short = _too_short(records)
    numbers["too_short"] = short is not None
    if first_nonfinite(records.loss) is not None:
        return _finding("underfitting", "ok", "the loss went non-finite; capacity is not the question", **numbers)
    if not np.isfinite(ratio):
        return _finding("underfitting", "ok", f"{evidence}: no baseline above 0 to judge the loss by", **numbers)
    if short and ratio >= UNDERFIT_SUSPECT_RATIO:
        return _finding("underfitting", "suspect", f"{short[0]} the model's capacity; {evidence}", short[1], **numbers)
    if ratio >= HIGH_LOSS_RATIO:
        return _finding("underfitting", "found", evidence, remedy, **numbers)
    if ratio >= UNDERFIT_SUSPECT_RATIO:
        return _finding("underfitting", "suspect", evidence, remedy, **numbers)
    return _finding("underfitting", "ok", evidence, **numbers)


def _smooth(values: np.ndarray) -> np.ndarray:
    width = min(OVERFIT_SMOOTH, len(values))
    return np.convolve(values, np.ones(width) / width, mode="valid")


def check_overfitting(records: RunRecords) -> Finding:
    epochs, train, val = (records.epochs[k] for k in ("epoch", "train_loss", "val_loss"))
    keep = np.isfinite(train) & np.isfinite(val)
    epochs, train, val = epochs[keep], train[keep], val[keep]
    if len(val) < OVERFIT_MIN_EPOCHS:
        return _finding(
            "overfitting",
            "ok",
            f"{len(val)} finite epochs are too few to judge the val curve (need {OVERFIT_MIN_EPOCHS})",
            epochs=len(val),
        )
    sval, strain = _smooth(val), _smooth(train)
    best = int(np.argmin(sval))  # decisions use the smoothed curves ...
    best_epoch = int(epochs[int(np.argmin(val))])  # ... the remedy stops at the best single epoch
    rise = float(_ratio(sval[-1], sval[best])) if sval[best] > 0 else math.inf
    train_fall = float(_ratio(strain[-1], strain[best])) if strain[best] > 0 else math.inf
    settings = records.settings
    numbers = {
        "best_epoch": best_epoch,
        "best_val_loss": float(np.min(val)),
        "min_val_loss": float(sval[best]),
        "final_val_loss": float(sval[-1]),
        "val_rise": rise,
        "train_at_best": float(strain[best]),
        "final_train_loss": float(strain[-1]),
        "train_ratio": train_fall,
    }
    evidence = (
        f"val loss was lowest ({num(np.min(val))}) at epoch {best_epoch}; averaged over {OVERFIT_SMOOTH} "
        f"epochs it ends at {num(sval[-1])}, {times(rise)} its best average {num(sval[best])}, while the "
        f"train loss average went {num(strain[best])} → {num(strain[-1])}"
    )
    remedy = f"--epochs {best_epoch}"
    decay = settings.weight_decay * 10 if settings.weight_decay > 0 else 1e-4
    # nn.LSTM's dropout acts between layers only, and cuDNN's kernel (--rnn cudnn, which lstm-train refuses with
    # dropout) runs them all in one call without it: elsewhere, weight decay or a smaller model
    if settings.num_layers > 1 and settings.rnn != "cudnn":
        remedy += f" and --dropout {flag_value(max(0.2, min(0.5, settings.dropout + 0.2)))}"
    else:
        remedy += f" and --weight-decay {flag_value(decay)} or --hidden-size {max(1, settings.hidden_size // 2)}"
    if settings.train_split is not None and settings.train_split < OVERFIT_SMALL_SPLIT:
        # no regulariser replaces data: on the zoo's 5 % digits split they recover little of the gap
        remedy = f"--splits 0.7,0.15,0.15 (only {settings.train_split:.0%} of the samples train); else {remedy}"
    falling = train_fall <= OVERFIT_TRAIN_FALL
    gap = float(_ratio(sval[-1], strain[-1])) if strain[-1] > 0 else math.inf
    baseline, _ = _baseline(records)
    climb = float(sval[-1] - sval[best]) / baseline if baseline > 0 else math.nan
    numbers.update(val_to_train=gap, climb_to_baseline=climb)
    if rise >= OVERFIT_RISE_SUSPECT and not climb >= OVERFIT_MIN_CLIMB:
        evidence += f"; a climb of only {climb:.2g}× the baseline: noise of the val split near the floor"
        return _finding("overfitting", "ok", evidence, **numbers)
    if gap < OVERFIT_GAP:
        evidence += f"; but val ends below train ({times(gap)}), so the model does not fit its training data better"
        status = "suspect" if rise >= OVERFIT_RISE and falling else "ok"
        return _finding("overfitting", status, evidence, remedy if status == "suspect" else "", **numbers)
    if rise >= OVERFIT_RISE and falling:
        return _finding("overfitting", "found", evidence, remedy, **numbers)
    if (rise >= OVERFIT_RISE_SUSPECT and falling) or rise >= OVERFIT_RISE:
        return _finding("overfitting", "suspect", evidence, remedy, **numbers)
    return _finding("overfitting", "ok", evidence, **numbers)


# In precedence order: root causes before the causes they can produce.
RULES = (
    check_unscaled_data,
    check_exploding_gradients,
    check_lr_too_high,
    check_lr_too_low,
    check_vanishing_gradients,
    check_underfitting,
    check_overfitting,
)


def _demote(finding: Finding, by: tuple[str, ...], note: str) -> Finding:
    """A found cause made suspect because the found causes `by` outrank it; `note` is added to its evidence."""
    return replace(
        finding, status="suspect", consequence_of=(*finding.consequence_of, *by), evidence=finding.evidence + note
    )


def diagnose(records: RunRecords) -> Diagnosis:
    """Run every rule, apply precedence (see the module docstring) and list the found causes, roots first."""
    findings = {f.cause: f for f in (rule(records) for rule in RULES)}
    found = {c for c, f in findings.items() if f.status == "found"}
    if {"lr_too_high", "lr_too_low"} <= found:
        # Contradictory fixes (lr / 10 and lr × 10 or more): only one can be found. A divergence or a rebound
        # shows that the weights moved, and too far, which outweighs travel, a bound on how far they could
        # move; a loss that merely stays above the baseline is also what steps too small to move it give.
        winner = "lr_too_high" if findings["lr_too_high"].numbers["overshoot"] else "lr_too_low"
        loser = "lr_too_low" if winner == "lr_too_high" else "lr_too_high"
        findings[loser] = _demote(findings[loser], (winner,), f" (contradicts {winner}; fix that first)")
        found.discard(loser)
    # Roots in precedence order, each demoting only causes still found: a cause demoted by an earlier root
    # (lr_too_high by unscaled_data) no longer outranks its own consequences (vanishing_gradients).
    for root, consequences in CONSEQUENCES.items():
        if root not in found:
            continue
        for cause in consequences:
            if cause in found:
                findings[cause] = _demote(
                    findings[cause], (root,), f" (may be a consequence of {root}; fix that first)"
                )
                found.discard(cause)
    others = [c for c in findings if c in found and c not in ("underfitting", "overfitting")]  # RULES order
    if "underfitting" in found and others:
        findings["underfitting"] = _demote(
            findings["underfitting"], tuple(others), f" — explained by {', '.join(others)}"
        )
        found.discard("underfitting")
    order = list(findings)  # RULES order
    notes = []
    if records.num_steps and not np.isfinite(records.loss[0]):
        notes.append(
            f"the loss was {num(records.loss[0])} at step {int(records.step[0])}, before any parameter "
            "update: no training dynamic explains that; check the data for nan/inf values"
        )
    short = _too_short(records)
    under = findings["underfitting"]
    if short and not found and under.status == "suspect" and under.numbers["loss_to_baseline"] >= HIGH_LOSS_RATIO:
        # a high loss that only the run's length keeps from a verdict: the run is not healthy either
        notes.append(
            f"{short[0]} why the loss is still {times(under.numbers['loss_to_baseline'])} the baseline; "
            f"train longer: {short[1]}"
        )
    curve = _curve(records)
    baseline, baseline_text = _baseline(records)
    summary = records.summary or {}
    context = {
        "backend": summary.get("backend") or (records.config or {}).get("backend"),
        "task": run_records.task(records),
        "steps": records.num_steps,
        "epochs": int(records.epoch.max()),
        "final_train_loss": float(curve[-1]) if curve.size else math.nan,
        "baseline": baseline,
        "baseline_meaning": baseline_text,
        "stopped_nonfinite": summary.get("stopped_nonfinite"),
    }
    return Diagnosis(
        run_dir=str(records.run_dir),
        findings=tuple(findings.values()),
        causes=tuple(c for c in order if c in found),
        notes=tuple(notes),
        context=context,
    )
