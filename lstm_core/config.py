"""Typed training configuration, shared by both backends.

A `Config` is built from defaults, then a TOML/YAML/JSON file (`--config`), then command-line flags, and is
validated once, here, so that neither backend ever sees an impossible value. Plateau fields carry torch's
`ReduceLROnPlateau` names and defaults; the JAX backend maps them onto optax (see `lstm_jax/optim.py`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lstm_core.textfile import DuplicateKeyError, FileContentError, parse_json, read_mapping

BACKENDS = ("torch", "jax")  # lstm_torch and lstm_jax; the torch reference first, the order every listing follows
# The DataConfig fields each dataset reads beyond dataset, splits and scale, which every one reads (the loaders in
# lstm_core/data.py; tests/test_data.py checks each loader against its row). `validate` refuses a field that is
# not in the chosen dataset's row, set away from its default: that dataset would ignore it.
DATASET_SETTINGS = {
    "sine": ("window", "horizon", "num_samples", "noise"),
    "adding": ("window", "num_samples"),  # window: the sequence length T
    "digits": (),  # 8 rows of 8 pixels, 1797 images
    "csv": ("csv", "features", "target", "window", "horizon"),
}
DATASETS = tuple(DATASET_SETTINGS)
CLASSIFICATION_DATASETS = ("digits",)


# optax.contrib.reduce_on_plateau counts epochs in jax's int32: a larger patience or cooldown overflows there.
EPOCH_COUNT_MAX = 2**31 - 1


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field, the value and the fix."""


@dataclass(frozen=True)
class ModelConfig:
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0  # between LSTM layers, as nn.LSTM's `dropout`
    head: str = "auto"  # auto | regression | classification; auto follows the dataset


@dataclass(frozen=True)
class OptimizerConfig:
    """torch.optim.Adam; weight decay is torch's coupled L2 (not AdamW)."""

    lr: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0


TORCH_CLIP_EPS = 1e-6  # clip_grad_norm_ multiplies by min(1, max_norm / (norm + 1e-6))


@dataclass(frozen=True)
class ClippingConfig:
    """Global-norm gradient clipping.

    `style = "torch"` multiplies by min(1, max_norm / (norm + 1e-6)) as `clip_grad_norm_` does (the default,
    so that both backends agree); `style = "optax"` is `optax.clip_by_global_norm` (JAX backend only).
    """

    enabled: bool = True
    max_norm: float = 1.0
    style: str = "torch"


@dataclass(frozen=True)
class PlateauConfig:
    """torch.optim.lr_scheduler.ReduceLROnPlateau on the mean validation loss, stepped once per epoch."""

    enabled: bool = True
    factor: float = 0.1
    patience: int = 10
    threshold: float = 1e-4
    threshold_mode: str = "rel"
    cooldown: int = 0
    min_lr: float = 0.0
    eps: float = 1e-8


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 20
    batch_size: int = 32
    seed: int = 0
    dtype: str = "float32"
    grad_flow_every: int = 10  # record ‖dL/dh_t‖ every N optimizer steps (0: never)
    unroll: int = 1  # lax.scan unroll of the JAX recurrence
    backward: str = "custom"  # JAX backward pass of the recurrence: custom (hand-written, faster) | autodiff
    remat: bool = False  # JAX: recompute the recurrence's activations in the backward pass (memory for time)
    device: str = "cpu"  # cpu | gpu (the first CUDA GPU)
    rnn: str = "scan"  # JAX recurrence: scan (lax.scan, any device) | cudnn (NVIDIA's kernel, GPU, float32)
    shards: int = 0  # JAX: split each batch over this many CPU devices, one per core (0: auto, by the work per step)
    init_from: str | None = None  # a run directory: start from its weights and its fitted scaler


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "sine"
    csv: str | None = None
    features: tuple[str, ...] = ()
    target: str | None = None
    window: int = 20  # forecasting window, or T of the adding problem
    horizon: int = 1  # steps ahead of the window's last step that the target lies
    num_samples: int = 2000  # sine: length of the series; adding: number of sequences
    noise: float = 0.1  # sine: std of the additive noise
    splits: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train, val, test
    scale: bool = True


@dataclass(frozen=True)
class Config:
    backend: str = "jax"  # the product; "torch" is the reference it mirrors
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    clipping: ClippingConfig = field(default_factory=ClippingConfig)
    plateau: PlateauConfig = field(default_factory=PlateauConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)

    @property
    def task(self) -> str:
        """'classification' or 'regression', from the head or, when it is 'auto', the dataset."""
        if self.model.head != "auto":
            return self.model.head
        return "classification" if self.data.dataset in CLASSIFICATION_DATASETS else "regression"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The JAX trainer's own settings, by section: `validate` refuses them, changed, with backend "torch"
# (`_changed_jax_only_settings` names them), and `torch_side` puts them back to their defaults.
JAX_ONLY_FIELDS = {"training": ("unroll", "backward", "remat", "rnn", "shards"), "clipping": ("style",)}


def torch_side(config: Config) -> Config:
    """`config` as the torch trainer runs it when both backends train from one config (lstm-parity): backend
    "torch", the JAX trainer's own settings at their defaults (the torch trainer has none of them), so that the
    torch side's config.json says what ran and loads again (with `--rnn cudnn` it said rnn 'cudnn', which
    `validate` refuses for torch)."""
    defaults = Config()
    sections = {
        section: dataclasses.replace(
            getattr(config, section), **{name: getattr(getattr(defaults, section), name) for name in names}
        )
        for section, names in JAX_ONLY_FIELDS.items()
    }
    return dataclasses.replace(config, backend="torch", **sections)


def _changed_jax_only_settings(config: Config) -> list[str]:
    """The JAX_ONLY_FIELDS that `config` changes from their defaults, as a refusal names them: a switch by its name
    ("remat"), another field with its value ("unroll 2", "backward 'autodiff'"), a field outside `training` after
    its section ("clipping style 'optax'")."""
    defaults = Config()
    changed = []
    for section, names in JAX_ONLY_FIELDS.items():
        for name in names:
            value = getattr(getattr(config, section), name)
            if value != getattr(getattr(defaults, section), name):
                label = name if section == "training" else f"{section} {name}"
                changed.append(label if isinstance(value, bool) else f"{label} {value!r}")
    return changed


_SECTION_CLASSES = {
    "model": ModelConfig,
    "optimizer": OptimizerConfig,
    "clipping": ClippingConfig,
    "plateau": PlateauConfig,
    "training": TrainingConfig,
    "data": DataConfig,
}


def comma_separated(text: str) -> list[str]:
    """ "a, b,,c" -> ["a", "b", "c"]: the items of a comma-separated flag or field, stripped, empty ones dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def _coerce(section: str, name: str, value: Any, default: Any) -> Any:
    """Coerce a value read from a file to the type of the field's default, or raise ConfigError."""
    where = f"{section}.{name}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int) and not isinstance(default, bool):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            hint = ""
            if isinstance(value, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", value):  # 1e-3: text to YAML 1.1
                hint = f" (YAML reads {value} as text: write it with a dot, e.g. {float(value)!r})"
            raise ConfigError(f"{where} must be a number, got {value!r}{hint}")
        if isinstance(value, int) and abs(value) > sys.float_info.max:  # float() would raise OverflowError
            raise ConfigError(f"{where} must be a number float64 holds (at most about 1.8e308), got a larger integer")
        return float(value)
    if isinstance(default, tuple):
        if isinstance(value, str):  # a flag's text: "" is a shell variable left unset (`--features "$COLUMNS"`)
            items = comma_separated(value)
            if not items:
                raise ConfigError(f"{where} is empty ({value!r}); give its items comma-separated, or leave it out")
            value = items
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if default and isinstance(default[0], float):
            try:
                return tuple(float(v) if isinstance(v, str) else _coerce(section, name, v, 0.0) for v in value)
            except ValueError:
                raise ConfigError(f"{where} must be a list of numbers, got {value!r}") from None
        names = [v for v in value if isinstance(v, str | int | float) and not isinstance(v, bool)]
        if len(names) != len(value):  # str() would make column names of [1], None or True (YAML's `yes`)
            raise ConfigError(f"{where} must be a list of names (text or numbers), got {value!r}")
        return tuple(str(v) for v in value)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, got {value!r}")
    return value


def _home(name: str) -> str:
    """Where the key `name`, found where it does not belong, goes (end of an error message); "" when it goes nowhere.
    In TOML every key after a [section] line is that section's, so a top-level key written last lands in one."""
    if name == "backend":
        return (
            "backend is a top-level key: write it before the first section (in TOML, every key after a [section] "
            "line is in that section)"
        )
    homes = [f"[{key}]" for key, cls in _SECTION_CLASSES.items() if name in {f.name for f in dataclasses.fields(cls)}]
    if not homes:
        return ""
    return f"{name} is a field of {' and '.join(homes)}: move it {'there' if len(homes) == 1 else 'under one of them'}"


def from_dict(raw: dict[str, Any], base: Config | None = None) -> Config:
    """Build a Config from nested sections ({"model": {"hidden_size": 64}, ...}) over `base` (defaults)."""
    config = base or Config()
    updates: dict[str, Any] = {}
    for key, values in raw.items():
        if key == "backend":
            updates["backend"] = _coerce("", "backend", values, "")
            continue
        if key not in _SECTION_CLASSES:
            known = f"known sections: {', '.join(['backend', *_SECTION_CLASSES])}"
            raise ConfigError(f"unknown config section {key!r}; {_home(key) or known}")
        if not isinstance(values, dict):
            raise ConfigError(f"config section {key!r} must be a mapping, got {values!r}")
        current = getattr(config, key)
        known_fields = {f.name: getattr(current, f.name) for f in dataclasses.fields(current)}
        changes = {}
        for name, value in values.items():
            if name not in known_fields:
                known = f"known fields: {', '.join(known_fields)}"
                raise ConfigError(f"unknown field {key}.{name}; {_home(name) or known}")
            default = known_fields[name]
            if default is None:  # optional string fields (csv, target)
                changes[name] = _coerce(key, name, value, "")
            else:
                changes[name] = _coerce(key, name, value, default)
        updates[key] = dataclasses.replace(current, **changes)
    return validate(dataclasses.replace(config, **updates))


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load's loader, refusing a key given twice in one mapping (merge keys `<<` may still be overridden)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first_line:
                    raise DuplicateKeyError(key, f"on lines {first_line[key]} and {line}")
                first_line[key] = line
            except TypeError:  # an unhashable key: the base class refuses it with its own message
                pass
        return super().construct_mapping(node, deep)


def _load_toml(text: str) -> dict:
    """tomllib.loads, its syntax errors (a key given twice among them) as FileContentError."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:  # its message ends "(at line L, column C)"
        raise FileContentError(f"is not valid TOML: {error}") from None


def _load_yaml(text: str) -> Any:
    """The YAML value in `text` ({} for an empty file, which YAML reads as null), its syntax errors as
    FileContentError."""
    try:
        value = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: builds no Python objects
        return {} if value is None else value
    except yaml.YAMLError as error:
        problem = str(error).splitlines()[0]
        if isinstance(error, yaml.MarkedYAMLError) and error.problem and error.problem_mark:
            # its first line is often only the context ("while scanning for the next token"), not what is wrong
            mark = error.problem_mark
            problem = f"{error.problem} (at line {mark.line + 1}, column {mark.column + 1})"
        raise FileContentError(f"is not valid YAML: {problem}") from None


# A config file's parser by its suffix; none executes anything in the file.
PARSERS = {
    ".toml": _load_toml,
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".json": parse_json,
}


def load_file(path: str | Path, base: Config | None = None) -> Config:
    """Load a TOML (.toml), YAML (.yaml/.yml) or JSON (.json) config; nothing in the file is executed."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config file {str(path)!r} is a directory; pass a .toml/.yaml/.json file")
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist; pass an existing .toml/.yaml/.json file")
    if path.suffix not in PARSERS:
        raise ConfigError(f"config file {str(path)!r} must end in .toml, .yaml, .yml or .json")
    raw = read_mapping(path, PARSERS[path.suffix], "config file", ConfigError, "correct the config file")
    return from_dict(raw, base)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _countable(name: str, value: int) -> None:
    """A count beyond sys.maxsize (2**63 - 1) is refused: Python cannot take the length of a range that long (tqdm
    over --epochs raised OverflowError), and sizes that large overflow the float arithmetic of the memory check."""
    _require(value <= sys.maxsize, f"{name} must be at most {sys.maxsize} (2**63 - 1), got {value!r}")


def _positive_int(name: str, value: int) -> None:
    _require(isinstance(value, int) and value > 0, f"{name} must be a positive integer, got {value!r}")
    _countable(name, value)


def _finite(name: str, value: float) -> None:
    _require(math.isfinite(value), f"{name} must be a finite number, got {value!r}")


def validate(config: Config) -> Config:
    """Check every field once; return the config unchanged or raise ConfigError naming the field and fix."""
    _require(
        config.backend in BACKENDS,
        f"backend must be {' or '.join(map(repr, BACKENDS))}, got {config.backend!r}",
    )
    m, o, c, p, t, d = (
        config.model,
        config.optimizer,
        config.clipping,
        config.plateau,
        config.training,
        config.data,
    )
    _positive_int("hidden_size", m.hidden_size)
    _positive_int("num_layers", m.num_layers)
    _finite("dropout", m.dropout)
    _require(0.0 <= m.dropout < 1.0, f"dropout must be in [0, 1), got {m.dropout}")
    _require(
        m.dropout == 0 or m.num_layers > 1,
        f"dropout {m.dropout} acts between LSTM layers and needs num_layers >= 2, got {m.num_layers}",
    )
    _require(
        m.head in ("auto", "regression", "classification"),
        f"head must be 'auto', 'regression' or 'classification', got {m.head!r}",
    )
    natural = "classification" if d.dataset in CLASSIFICATION_DATASETS else "regression"
    _require(
        m.head in ("auto", natural),
        f"head {m.head!r} does not fit dataset {d.dataset!r}, which is a {natural} task; use head 'auto'",
    )

    for name in ("lr", "eps", "weight_decay"):
        _finite(name, getattr(o, name))
    _require(o.lr > 0, f"lr must be > 0, got {o.lr}")
    _require(o.eps > 0, f"eps must be > 0, got {o.eps}")
    _require(o.weight_decay >= 0, f"weight_decay must be >= 0, got {o.weight_decay}")
    _require(
        len(o.betas) == 2 and all(0.0 <= b < 1.0 for b in o.betas),
        f"betas must be two numbers in [0, 1), got {o.betas}",
    )

    _finite("clip max_norm", c.max_norm)
    _require(
        not c.enabled or c.max_norm > 0,
        f"clip max_norm must be > 0 when clipping is on, got {c.max_norm}; to turn clipping off, pass --clip-norm 0 "
        "or set enabled = false under [clipping] in a config file",
    )
    _require(c.style in ("torch", "optax"), f"clipping style must be 'torch' or 'optax', got {c.style!r}")

    for name in ("factor", "threshold", "min_lr", "eps"):
        _finite(f"plateau {name}", getattr(p, name))
    _require(0.0 < p.factor < 1.0, f"plateau factor must be in (0, 1), got {p.factor}")
    _require(
        isinstance(p.patience, int) and p.patience >= 0,
        f"plateau patience must be an integer >= 0, got {p.patience!r}",
    )
    # optax.contrib.reduce_on_plateau rejects a zero tolerance, so neither backend accepts it.
    _require(p.threshold > 0, f"plateau threshold must be > 0, got {p.threshold} (optax rejects 0; use e.g. 1e-8)")
    _require(
        p.threshold_mode != "rel" or p.threshold <= 1.0,
        f"plateau threshold must be <= 1 in 'rel' mode, got {p.threshold}",
    )
    _require(
        p.threshold_mode in ("rel", "abs"),
        f"plateau threshold_mode must be 'rel' or 'abs', got {p.threshold_mode!r}",
    )
    _require(
        isinstance(p.cooldown, int) and p.cooldown >= 0,
        f"plateau cooldown must be an integer >= 0, got {p.cooldown!r}",
    )
    for name, limit in (("patience", EPOCH_COUNT_MAX - 1), ("cooldown", EPOCH_COUNT_MAX)):  # optax gets patience + 1
        _require(
            getattr(p, name) <= limit,
            f"plateau {name} must be at most {limit}, got {getattr(p, name)} (the JAX trainer's optax counts epochs "
            "in int32); to never reduce the learning rate, pass --no-plateau",
        )
    _require(p.min_lr >= 0, f"min_lr must be >= 0, got {p.min_lr}")
    _require(p.min_lr <= o.lr, f"min_lr ({p.min_lr}) must not exceed lr ({o.lr})")
    _require(p.eps >= 0, f"plateau eps must be >= 0, got {p.eps}")

    _require(
        t.init_from is None or bool(t.init_from.strip()),  # an unset shell variable, `--init-from "$RUN"`
        f"init_from is empty ({t.init_from!r}); pass the run directory to start from, or leave it out",
    )
    if t.init_from:
        _require(
            isinstance(t.epochs, int) and t.epochs >= 0,
            f"epochs must be an integer >= 0 with init_from (0 evaluates the run's weights), got {t.epochs!r}",
        )
        _countable("epochs", t.epochs)
    else:
        _positive_int("epochs", t.epochs)
    _positive_int("batch_size", t.batch_size)
    _require(
        isinstance(t.seed, int) and 0 <= t.seed < 2**32,  # what numpy, torch and jax all take as a seed
        f"seed must be an integer in [0, 2**32), got {t.seed!r}",
    )
    _require(t.dtype in ("float32", "float64"), f"dtype must be 'float32' or 'float64', got {t.dtype!r}")
    _require(
        isinstance(t.grad_flow_every, int) and t.grad_flow_every >= 0,
        f"grad_flow_every must be an integer >= 0, got {t.grad_flow_every!r}",
    )
    _countable("grad_flow_every", t.grad_flow_every)  # the step numbers it divides are int64
    set_for_torch = _changed_jax_only_settings(config) if config.backend == "torch" else []
    _require(
        not set_for_torch,
        f"{', '.join(set_for_torch)}: "
        + (
            "a setting of the JAX trainer only; drop it, or use --backend jax"
            if len(set_for_torch) == 1
            else "settings of the JAX trainer only; drop them, or use --backend jax"
        ),
    )
    _positive_int("unroll", t.unroll)
    _require(t.backward in ("custom", "autodiff"), f"backward must be 'custom' or 'autodiff', got {t.backward!r}")
    _require(t.device in ("cpu", "gpu"), f"device must be 'cpu' or 'gpu', got {t.device!r}")
    _require(t.rnn in ("scan", "cudnn"), f"rnn must be 'scan' or 'cudnn', got {t.rnn!r}")
    _require(isinstance(t.shards, int) and t.shards >= 0, f"shards must be an integer >= 0, got {t.shards!r}")
    _require(
        t.shards == 0 or t.batch_size % t.shards == 0,
        f"shards ({t.shards}) must divide batch_size ({t.batch_size}) into equal parts; use --shards 0 (auto)",
    )
    if t.rnn == "cudnn":  # jax.experimental.rnn's cuDNN binding builds float32 descriptors only
        _require(t.dtype == "float32", "rnn 'cudnn' runs float32 only; use --dtype float32 or --rnn scan")
        _require(not t.remat, "remat applies to the scan recurrence; cuDNN keeps its own reserve space (drop --remat)")
        _require(
            t.unroll == 1,
            "unroll applies to the scan recurrence; cuDNN runs all time steps in its own kernel (drop --unroll)",
        )
        _require(
            t.backward == "custom",
            "backward applies to the scan recurrence; cuDNN's kernel computes the gradient (drop --backward)",
        )
        _require(
            m.dropout == 0,
            "rnn 'cudnn' runs all layers in one cuDNN call, no dropout between them; use --dropout 0 or --rnn scan",
        )

    _require(d.dataset in DATASETS, f"dataset must be one of {', '.join(DATASETS)}, got {d.dataset!r}")
    _positive_int("window", d.window)
    _positive_int("horizon", d.horizon)
    _positive_int("num_samples", d.num_samples)
    _finite("noise", d.noise)
    _require(d.noise >= 0, f"noise must be >= 0, got {d.noise}")
    _require(
        len(d.splits) == 3 and all(s > 0 for s in d.splits) and abs(sum(d.splits) - 1.0) < 1e-9,
        f"splits must be three positive fractions (train, val, test) summing to 1, got {d.splits}",
    )
    if d.dataset == "csv":
        _require(bool(d.csv), "dataset 'csv' needs a file: pass --csv PATH")
        _require(bool(d.target), "dataset 'csv' needs a target column: pass --target COL")
        repeated = sorted({name for name in d.features if d.features.count(name) > 1})
        _require(
            not repeated,
            f"features name {', '.join(map(repr, repeated))} more than once, in {','.join(d.features)!r}; "
            "list each column once",
        )
    _refuse_unread_settings(d)
    return config


def _refuse_unread_settings(d: DataConfig) -> None:
    """Refuse the fields of DATASET_SETTINGS that `d.dataset` does not read, set away from their defaults: the
    dataset would ignore them without a word. The message names the datasets that read each."""
    defaults = DataConfig()
    unread: dict[tuple[str, ...], list[str]] = {}  # the datasets that read them -> the fields set
    for name in (f.name for f in dataclasses.fields(DataConfig)):
        readers = tuple(dataset for dataset, reads in DATASET_SETTINGS.items() if name in reads)
        if readers and d.dataset not in readers and getattr(d, name) != getattr(defaults, name):
            unread.setdefault(readers, []).append(name)
    if not unread:
        return
    clauses = []
    for readers, names in unread.items():
        quoted = [repr(dataset) for dataset in readers]
        datasets = f"{', '.join(quoted[:-1])} and {quoted[-1]}" if len(quoted) > 1 else quoted[0]
        verb = "" if clauses else (" applies" if len(names) == 1 else " apply")  # "window applies to ..., noise to ..."
        clauses.append(f"{', '.join(names)}{verb} to dataset{'s' * (len(readers) > 1)} {datasets}")
    them = "it" if sum(map(len, unread.values())) == 1 else "them"
    if len(unread) > 1:
        fix = f"drop {them}, or choose a dataset that reads {them}"
    else:
        [readers] = unread
        fix = (
            f"add --dataset {readers[0]}, or drop {them}"
            if len(readers) == 1
            else f"drop {them}, or choose one of those datasets"
        )
    raise ConfigError(f"{', '.join(clauses)}, not {d.dataset!r}; {fix}")
