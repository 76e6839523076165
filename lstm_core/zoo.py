"""`lstm-zoo`: the usual reasons an LSTM's loss does not decrease, each reproduced on the bundled data next
to its remedy, diagnosed by the doctor, and drawn.

A `Scenario` is a list of `lstm-train` flags that breaks training in one way (`broken`) and the flags the
doctor prescribes for it (`remedy`, added to the broken ones; `drop` names broken flags the remedy removes).
`run_zoo` trains both on every backend asked for, diagnoses both, checks that the broken run is diagnosed as
the scenario's cause and only that cause, and that the remedy lowers the final validation loss by at least
the scenario's `factor`, then writes one PNG per scenario and `report.md`.

Validation losses are compared in units of the trivial baseline (the doctor's: 1 for scaled regression
targets, the raw target variance without scaling, ln(classes) for classification), so that a broken run in
raw units and its remedy in scaled units are measured on one scale.

Everything heavy is imported inside functions: the trainers by `lstm_core.loop` when a run starts, and
matplotlib when a figure is drawn, so importing this module imports neither torch, jax nor matplotlib.
"""

from __future__ import annotations

import argparse
import math
import sys
import textwrap
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lstm_core import data as datasets
from lstm_core import diagnosis, run_records
from lstm_core import weights as weights_io
from lstm_core.cli import EXIT_INTERRUPTED
from lstm_core.config import BACKENDS, DATASET_SETTINGS, Config, comma_separated
from lstm_core.convert import scaler_record
from lstm_core.machine import cpu_cores
from lstm_core.records import RunDirError, make_dir, write_json

GALLERY = "docs/zoo"  # the committed gallery, which README links
# Every scenario trains for 10 epochs, a generated dataset on 1000 samples (about 200 steps of 32), and records
# ‖dL/dh_t‖ every 10 steps: enough for each failure to show and for its remedy to work, small enough that the
# whole zoo runs on two CPU cores in minutes.
COMMON = ("--epochs", "10", "--grad-flow-every", "10")
# Data settings (DataConfig fields) given to the scenarios whose dataset reads them, as the others refuse them:
# the digits have their 1797 images, the unscaled CSV its 1000 rows.
COMMON_DATA = {"num_samples": ("--num-samples", "1000")}
UNSCALED_CSV = "sine_1000_around_5000.csv"
OVERSCALED_INIT = "recurrent_weights_x16"
RECURRENT_INIT_GAIN = 16.0  # the exploding scenario's recurrent weights: 16 x torch's U(±1/√H)
EXPLODING_DATA = ("--window", "100")
# Long windows: probe ‖dL/dh_t‖ every 20 steps, not 10 (torch's probe steps through time one step at a time)
LONG_WINDOW_FLOW = ("--grad-flow-every", "20")
TINY_SPLIT_CONFIG = "tiny_training_split.toml"
DEFAULT_SPLIT_CONFIG = "default_training_split.toml"


@dataclass(frozen=True)
class Scenario:
    name: str
    cause: str | None  # the doctor's vocabulary; None: healthy, no remedy
    story: str  # one sentence: what is broken and why it breaks training
    broken: tuple[str, ...]  # lstm-train flags; "{work}" is replaced by the zoo's work directory
    remedy: tuple[str, ...] = ()  # flags added to the broken ones (the last value of a flag wins)
    drop: tuple[str, ...] = ()  # broken flags the remedy removes (switches such as --no-scale)
    factor: float = 1.0  # the remedy's final val loss is at most the broken one's / factor
    prepare: Callable[[Path], None] | None = field(default=None, compare=False)  # writes files into work

    def flags(self, which: str, work: Path) -> list[str]:
        """The full lstm-train flags of the 'broken' or 'remedied' run."""
        flags = list(self.broken)
        if which == "remedied":
            flags = [f for f in flags if f not in self.drop] + list(self.remedy)
        return [f.replace("{work}", str(work)) for f in with_common(flags)]


def with_common(flags: Sequence[str]) -> list[str]:
    """The COMMON_DATA settings that the dataset of `flags` (its --dataset, or lstm-train's default) reads, COMMON,
    then `flags`, whose values win (argparse keeps a flag's last value)."""
    from lstm_core.cli import build_parser  # lstm-train's; this module's own is lstm-zoo's

    dataset = build_parser().parse_args(list(flags)).dataset or Config().data.dataset
    shared = [flag for name, pair in COMMON_DATA.items() if name in DATASET_SETTINGS[dataset] for flag in pair]
    return [*shared, *COMMON, *flags]


def _common_text() -> str:
    """What every run passes beside its own flags, as report.md says it."""
    shared = [
        f"`{' '.join(pair)}` where its dataset reads it "
        f"({', '.join(dataset for dataset, reads in DATASET_SETTINGS.items() if name in reads)})"
        for name, pair in COMMON_DATA.items()
    ]
    return ", and ".join([f"`{' '.join(COMMON)}`", *shared])  # COMMON first: every run passes it


def write_unscaled_csv(work: Path) -> None:
    """A sine of amplitude 1000 around 5000 with noise of 100 (the bundled sine, in raw units), as a CSV."""
    rng = np.random.default_rng(0)
    t = np.arange(1000)
    value = 5000 + 1000 * np.sin(2 * np.pi * t / datasets.SINE_PERIOD) + 100 * rng.standard_normal(len(t))
    (work / UNSCALED_CSV).write_text("value\n" + "\n".join(f"{v:.3f}" for v in value) + "\n")


def write_overscaled_init(work: Path) -> None:
    """A run directory to start from (--init-from): torch's initial weights for the exploding scenario's data
    and seed, with every recurrent matrix weight_hh RECURRENT_INIT_GAIN times larger, and the fitted scaler."""
    from lstm_core.cli import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(with_common(EXPLODING_DATA)))
    prepared = datasets.load(config)
    generator = datasets.seeded_generators(config.training.seed)["init"]
    m = config.model
    weights = weights_io.initial_weights(
        prepared.input_size, m.hidden_size, m.num_layers, prepared.num_outputs, generator
    )
    out = work / OVERSCALED_INIT
    out.mkdir(parents=True, exist_ok=True)
    weights_io.save(
        {name: (value * RECURRENT_INIT_GAIN if "weight_hh" in name else value) for name, value in weights.items()},
        out / weights_io.WEIGHTS_FILE,
    )
    write_json(out / "scaler.json", scaler_record(prepared))


def write_split_configs(work: Path) -> None:
    """Config files with a 5 % and with the default 70 % training split, the remedy the doctor names as
    --splits 0.7,0.15,0.15. That flag parses three numbers too; the files keep the scenario's flags as the
    committed gallery (docs/zoo/report.md) shows them."""
    (work / TINY_SPLIT_CONFIG).write_text("[data]\nsplits = [0.05, 0.475, 0.475]\n")
    (work / DEFAULT_SPLIT_CONFIG).write_text("[data]\nsplits = [0.7, 0.15, 0.15]\n")


# The scenarios, in the doctor's vocabulary. Flags sit on top of COMMON (sine, hidden 32, lr 0.01, clipping
# at 1, plateau schedule, scaling on: lstm-train's defaults).
SCENARIOS = (
    Scenario(
        name="healthy",
        cause=None,
        story="lstm-train's defaults on the noisy sine (at the zoo's 1000 samples, 10 epochs): the loss falls "
        "to the noise floor.",
        broken=(),
    ),
    # Why not simply a high lr without clipping on long windows? With Adam, whether such a run explodes,
    # saturates its gates (vanishing gradients) or learns is decided by rounding: runs of the adding problem
    # at T = 50-100 and lr 0.1-0.3 did each of the three across seeds, and even for one seed across backends
    # or across compiled programs that differ only in unrelated flags. Recurrent weights 16x too large explode
    # from the first step on, on every seed and backend, so the specimen is reproducible.
    Scenario(
        name="exploding_gradients",
        cause="exploding_gradients",
        story=(
            "Windows of 100 steps, no clipping, and recurrent weights started at 16x torch's scale (a careless "
            "custom init, or weights from a diverged run): the gradient grows ~1e13x from the last step back "
            "to the first, so every update is dominated by noise from the far past. The remedy clips and cuts "
            "the window to the 8 steps over which the gradient grows less than 10x."
        ),
        broken=(*EXPLODING_DATA, *LONG_WINDOW_FLOW, "--clip-norm", "0", "--init-from", f"{{work}}/{OVERSCALED_INIT}"),
        remedy=("--window", "8", "--clip-norm", "1"),
        factor=5.0,
        prepare=write_overscaled_init,
    ),
    Scenario(
        name="vanishing_gradients",
        cause="vanishing_gradients",
        story=(
            "The adding problem at T = 200: the two marked numbers lie ~100 steps apart, but the gradient reaching "
            "the first step is ~1e-14 of that at the last, and above float32's rounding floor (1e-6) over the "
            "last ~50 steps only, so the model never learns to keep the first number."
        ),
        broken=("--dataset", "adding", "--window", "200", *LONG_WINDOW_FLOW),
        remedy=("--window", "50"),
        factor=5.0,
    ),
    Scenario(
        name="lr_too_high",
        cause="lr_too_high",
        story="Adam at lr 1.0: every step moves each weight by ~1, far past any minimum; the loss bounces.",
        broken=("--lr", "1.0"),
        remedy=("--lr", "0.1"),
        factor=5.0,
    ),
    Scenario(
        name="lr_too_low",
        cause="lr_too_low",
        story="Adam at lr 1e-5: in 200 steps no weight can move by even 1 % of its initial size.",
        broken=("--lr", "1e-5"),
        remedy=("--lr", "0.0084"),
        factor=5.0,
    ),
    Scenario(
        name="unscaled_data",
        cause="unscaled_data",
        story=(
            "A sine of amplitude 1000 around 5000 fed raw (--no-scale): inputs saturate the gates and the "
            "targets are far beyond what the output layer reaches in 200 small steps."
        ),
        broken=("--dataset", "csv", "--csv", f"{{work}}/{UNSCALED_CSV}", "--target", "value", "--no-scale"),
        drop=("--no-scale",),
        factor=5.0,
        prepare=write_unscaled_csv,
    ),
    Scenario(
        name="underfitting",
        cause="underfitting",
        story="Hidden size 1 on the digits: one number cannot carry 8 rows of pixels to 10 classes.",
        broken=("--dataset", "digits", "--hidden-size", "1"),
        remedy=("--hidden-size", "32"),
        factor=3.0,
    ),
    Scenario(
        name="overfitting",
        cause="overfitting",
        story=(
            "Hidden size 128 on a 5 % training split of the digits (90 images) for 100 epochs at a fixed lr: "
            "the training loss falls to ~1e-4 while the validation loss climbs from its minimum."
        ),
        broken=(
            "--dataset",
            "digits",
            "--config",
            f"{{work}}/{TINY_SPLIT_CONFIG}",
            "--hidden-size",
            "128",
            "--batch-size",
            "16",
            "--epochs",
            "100",
            "--no-plateau",
        ),
        remedy=("--config", f"{{work}}/{DEFAULT_SPLIT_CONFIG}", "--epochs", "10"),
        factor=3.0,
        prepare=write_split_configs,
    ),
)


@dataclass
class RunResult:
    flags: list[str]
    run_dir: Path
    diagnosis: diagnosis.Diagnosis
    summary: dict
    seconds: float

    @property
    def relative_val(self) -> float:
        """The final validation loss over the trivial baseline (see the module docstring)."""
        baseline = self.diagnosis.context.get("baseline", math.nan)
        val = float(self.summary.get("final_val_loss", math.nan))
        return val / baseline if baseline and baseline > 0 else math.nan


@dataclass
class ScenarioResult:
    scenario: Scenario
    backend: str
    broken: RunResult
    remedied: RunResult | None = None

    @property
    def improvement(self) -> float:
        """How many times lower the remedied run's final val loss is (relative to the baseline)."""
        if self.remedied is None:
            return math.nan
        return self.broken.relative_val / self.remedied.relative_val

    def problems(self) -> list[str]:
        """What this scenario promised and did not show; empty when it behaved as described."""
        s, out = self.scenario, []
        expected = () if s.cause is None else (s.cause,)
        if self.broken.diagnosis.causes != expected:
            out.append(
                f"{s.name} ({self.backend}): the broken run was diagnosed as "
                f"{list(self.broken.diagnosis.causes) or 'healthy'}, expected {list(expected) or 'healthy'}"
            )
        if self.remedied is not None and not self.improvement >= s.factor:
            out.append(
                f"{s.name} ({self.backend}): the remedy lowered the final val loss {self.improvement:.3g}×, "
                f"expected at least {s.factor:g}×"
            )
        return out


def train_run(flags: Sequence[str], backend: str, run_dir: Path) -> RunResult:
    """Train one run with lstm-train's flags into run_dir and diagnose it."""
    from lstm_core.cli import build_parser, config_from_args
    from lstm_core.loop import train

    args = build_parser().parse_args([*flags, "--backend", backend, "--out", str(run_dir)])
    started = time.perf_counter()
    # Ctrl-C stops the zoo at once: lstm-train's way (end the run after its epoch) would leave a shorter run to judge
    summary = train(config_from_args(args), run_dir, progress=False, finish_epoch_on_ctrl_c=False)
    seconds = time.perf_counter() - started
    return RunResult(list(flags), run_dir, diagnosis.diagnose(run_records.load_run(run_dir)), summary, seconds)


def run_scenario(scenario: Scenario, backend: str, work: Path) -> ScenarioResult:
    """Train the scenario's broken run (and its remedy) on one backend, under work/<name>/<backend>/."""
    work.mkdir(parents=True, exist_ok=True)
    if scenario.prepare is not None:
        scenario.prepare(work)
    where = work / scenario.name / backend
    broken = train_run(scenario.flags("broken", work), backend, where / "broken")
    remedied = None
    if scenario.cause is not None:
        remedied = train_run(scenario.flags("remedied", work), backend, where / "remedied")
    return ScenarioResult(scenario, backend, broken, remedied)


# ------------------------------------------------------------------------------------------------- gallery
COLOURS = {"broken": "tab:red", "remedied": "tab:blue"}


def _clip_level(records: run_records.RunRecords) -> float | None:
    clipping = (records.config or {}).get("clipping") or {}
    return float(clipping["max_norm"]) if clipping.get("enabled") else None


def _positive(values: np.ndarray) -> np.ndarray:
    """Non-finite or non-positive values -> nan, so that a log axis skips them."""
    return np.where(np.isfinite(values) & (values > 0), values, np.nan)


def plot_scenario(results: Sequence[ScenarioResult], path: Path) -> None:
    """One PNG: a row per backend with the loss curves (broken vs remedied), the gradient norm with the clip
    level, and ‖dL/dh_t‖ over time steps as a heat map for each run."""
    from matplotlib.colors import LogNorm
    from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

    scenario = results[0].scenario
    fig = Figure(figsize=(18, 4.2 * len(results)), layout="constrained")
    axes = fig.subplots(len(results), 4, squeeze=False)
    for row, result in zip(axes, results, strict=True):
        runs = {"broken": result.broken, "remedied": result.remedied}
        runs = {k: v for k, v in runs.items() if v is not None}
        records_of = {which: run_records.load_run(run.run_dir) for which, run in runs.items()}  # read once
        loss_ax, grad_ax, *heat_axes = row
        for which, run in runs.items():
            records = records_of[which]
            label = which if scenario.cause else "run"
            verdict = ", ".join(run.diagnosis.causes) or "healthy"
            loss_ax.plot(records.step, _positive(records.loss), color=COLOURS[which], alpha=0.35, lw=0.8)
            ends = np.array([records.step[records.epoch == e].max() for e in records.epochs["epoch"]])
            loss_ax.plot(
                ends,
                _positive(records.epochs["val_loss"]),
                "o-",
                color=COLOURS[which],
                ms=3,
                label=f"{label}: val ({verdict})",
            )
            grad_ax.plot(records.step, _positive(records.grad_norm), color=COLOURS[which], lw=0.8, label=label)
            level = _clip_level(records)
            if level is not None:
                grad_ax.axhline(level, color=COLOURS[which], ls="--", lw=1, label=f"{label}: clip at {level:g}")
        loss_ax.set(yscale="log", xlabel="step", ylabel="loss (train per step, val per epoch)")
        loss_ax.set_title(f"{result.backend}: loss", loc="left")
        loss_ax.legend(fontsize=8)
        grad_ax.set(yscale="log", xlabel="step", ylabel="global grad norm before clipping")
        grad_ax.set_title(f"{result.backend}: gradient norm", loc="left")
        grad_ax.legend(fontsize=8)
        for ax, (which, run) in zip(heat_axes, [*runs.items(), (None, None)], strict=False):
            if run is None:
                ax.axis("off")
                continue
            flow = records_of[which].grad_flow
            if flow is None:
                ax.axis("off")
                continue
            norms = _positive(flow.norms[flow.layer == 0])  # (recorded steps, T), the first layer
            steps = flow.step[flow.layer == 0]
            finite = norms[np.isfinite(norms)]
            if not finite.size:
                ax.axis("off")
                continue
            image = ax.imshow(
                norms,
                aspect="auto",
                origin="lower",
                cmap="viridis",
                norm=LogNorm(vmin=finite.min(), vmax=finite.max()),
                extent=(-0.5, norms.shape[1] - 0.5, steps[0], steps[-1]),
                interpolation="nearest",
            )
            fig.colorbar(image, ax=ax, label="‖dL/dh_t‖")
            ax.set(xlabel="time step t", ylabel="optimizer step")
            ax.set_title(f"{result.backend}: ‖dL/dh_t‖, {which if scenario.cause else 'run'}", loc="left")
    fig.suptitle(textwrap.fill(f"{scenario.name}: {scenario.story}", 160), fontsize=11)
    fig.savefig(path, dpi=80)


def _flags_text(flags: Sequence[str]) -> str:
    return " ".join(flags) if flags else "(defaults)"


def _found_evidence(run: RunResult) -> list[str]:
    return [
        f"**{f.cause}**: {f.evidence}. Fix: `{f.remedy}`"
        for f in run.diagnosis.findings
        if f.cause in run.diagnosis.causes
    ]


def write_report(results: Sequence[ScenarioResult], out: Path, seconds: float, images: dict) -> Path:
    """report.md: a table of every scenario and backend, then a section per scenario with its figure."""
    by_scenario: dict[str, list[ScenarioResult]] = {}
    for result in results:
        by_scenario.setdefault(result.scenario.name, []).append(result)
    backends = sorted({r.backend for r in results}, key=BACKENDS.index)
    train_seconds = {
        b: sum(r.broken.seconds + (r.remedied.seconds if r.remedied else 0) for r in results if r.backend == b)
        for b in backends
    }
    lines = [
        "# The zoo: why is my loss not decreasing?",
        "",
        "Each scenario breaks `lstm-train` in one of the usual ways, on the bundled data; `lstm-doctor` names "
        "the cause from the run's records, and the remedy (the doctor's prescription as one command line for both "
        "backends; each run's own, quoted below, may differ by a step) is trained next to it. "
        "Regenerate with `lstm-zoo` (this page: "
        f"`lstm-zoo --out {out.as_posix()}`). Every run also passes {_common_text()}; WORK is the "
        "`--work` directory, where the zoo writes the data and starting weights some scenarios need.",
        "",
        "Validation losses are given relative to the trivial predictor (1 = predicting the mean, or a uniform "
        "guess over the classes), so that runs in raw and in scaled units compare.",
        "",
        f"Run time: {seconds:.0f} s in all ("
        + ", ".join(f"{b} training {train_seconds[b]:.0f} s" for b in backends)
        + f") on {cpu_cores()} CPU cores (longer when other work shares them).",
        "",
        "| scenario | broken (flags) | remedy | "
        + " | ".join(f"{b}: diagnosis; val broken → remedied" for b in backends)
        + " |",
        "|---|---|---|" + "---|" * len(backends),
    ]
    problems = []
    for name, group in by_scenario.items():
        s = group[0].scenario
        cells = []
        for backend in backends:
            r = next((g for g in group if g.backend == backend), None)
            if r is None:
                cells.append("")
                continue
            verdict = ", ".join(r.broken.diagnosis.causes) or "healthy"
            if r.remedied is None:
                cells.append(f"{verdict}; val {r.broken.relative_val:.3g}")
            else:
                cells.append(
                    f"{verdict}; {r.broken.relative_val:.3g} → {r.remedied.relative_val:.3g} "
                    f"({r.improvement:.3g}×, ≥ {s.factor:g}× promised)"
                )
            problems += r.problems()
        remedy = " ".join([*(f"drop {f}" for f in s.drop), *s.remedy]).replace("{work}", "WORK") or "—"
        broken = _flags_text(s.broken).replace("{work}", "WORK")
        lines.append(f"| [{name}](#{name.replace('_', '-')}) | `{broken}` | `{remedy}` | " + " | ".join(cells) + " |")
    lines += ["", "All scenarios behaved as described." if not problems else "Not as described:", ""]
    lines += [f"- {p}" for p in problems]
    for name, group in by_scenario.items():
        s = group[0].scenario
        lines += ["", f"## {name.replace('_', '-')}", "", s.story, ""]
        for r in group:
            verdict = ", ".join(r.broken.diagnosis.causes) or "healthy"
            lines.append(f"- {r.backend}: diagnosed **{verdict}** in {r.broken.seconds:.1f} s of training")
            lines += [f"  - {e}" for e in _found_evidence(r.broken)]
            if r.remedied is not None:
                after = ", ".join(r.remedied.diagnosis.causes) or "healthy"
                lines.append(
                    f"  - remedied: val loss {r.broken.relative_val:.3g} → {r.remedied.relative_val:.3g} of the "
                    f"baseline ({r.improvement:.3g}× lower); the doctor then says: {after}"
                )
        lines += ["", f"![{name}]({images[name].name})"]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_zoo(
    out: Path, work: Path, backends: Sequence[str] = BACKENDS, names: Sequence[str] | None = None, log=print
) -> tuple[list[ScenarioResult], list[str]]:
    """Train every scenario on every backend, draw the gallery into `out`, and return the results and the
    problems (scenarios not diagnosed as their cause, remedies short of their factor)."""
    chosen = [s for s in SCENARIOS if names is None or s.name in names]
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results, images = [], {}
    for scenario in chosen:
        group = []
        for backend in backends:
            result = run_scenario(scenario, backend, work)
            group.append(result)
            verdict = ", ".join(result.broken.diagnosis.causes) or "healthy"
            extra = "" if result.remedied is None else f"; remedy {result.improvement:.3g}× lower val loss"
            log(f"{scenario.name:22s} {backend:5s} diagnosed {verdict}{extra}")
        images[scenario.name] = out / f"{scenario.name}.png"
        plot_scenario(group, images[scenario.name])
        results += group
    seconds = time.perf_counter() - started
    write_report(results, out, seconds, images)
    problems = [p for r in results for p in r.problems()]
    log(f"{len(results)} scenario runs in {seconds:.0f} s; gallery in {out}")
    return results, problems


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-zoo",
        description=(
            "Train each failure scenario (one per cause the doctor knows, and a healthy run) with its remedy "
            "on each backend, diagnose them, and write a gallery: one PNG per scenario and report.md. "
            "Exit status 1 when a scenario is not diagnosed as its cause or its remedy falls short."
        ),
    )
    parser.add_argument(
        "--out",
        help=f"where the PNGs and report.md go (default: {GALLERY} for the whole zoo, WORK/gallery for a subset, so "
        "that a subset does not replace the committed gallery)",
    )
    parser.add_argument(
        "--work", default="runs/zoo", help="where the run directories (and generated data) go (default: %(default)s)"
    )
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help=f"comma-separated: {','.join(BACKENDS)} (default: %(default)s)"
    )
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset of: {', '.join(s.name for s in SCENARIOS)} (default: all)"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    backends = list(dict.fromkeys(comma_separated(args.backends)))  # a backend named twice would train twice
    known = [s.name for s in SCENARIOS]
    names = None if args.scenarios is None else comma_separated(args.scenarios)
    if not backends or names == []:
        parser.error("--backends and --scenarios need at least one name each")
    if [b for b in backends if b not in BACKENDS]:
        parser.error(f"unknown backend(s) in {args.backends!r}; choose from {', '.join(BACKENDS)}")
    if [n for n in names or [] if n not in known]:
        parser.error(f"unknown scenario(s) in {args.scenarios!r}; choose from {', '.join(known)}")
    whole = names is None and set(backends) == set(BACKENDS)
    default_out = GALLERY if whole else Path(args.work) / "gallery"
    try:  # an empty flag is refused, not taken for its default or for the current directory
        gallery = ("report.md", *(f"{name}.png" for name in names or known))
        work = make_dir(args.work, "--work")  # first: a subset's default --out is inside it
        out = make_dir(default_out if args.out is None else args.out, "--out", writes=gallery)
    except RunDirError as error:
        parser.error(str(error))
    try:
        _, problems = run_zoo(out, work, backends, names)
    except KeyboardInterrupt:
        print(
            f"{parser.prog}: stopped by Ctrl-C; {out / 'report.md'} was not rewritten (the scenarios' runs so far "
            f"are in {args.work})",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    for problem in problems:
        print(f"{parser.prog}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
