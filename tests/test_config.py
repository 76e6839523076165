from __future__ import annotations

import re
from pathlib import Path

import pytest

from lstm_core import config as config_module
from lstm_core.config import (
    DATASET_SETTINGS,
    JAX_ONLY_FIELDS,
    Config,
    ConfigError,
    from_dict,
    load_file,
    torch_side,
    validate,
)


def test_defaults_are_valid_and_follow_torch():
    config = validate(Config())
    # torch.optim.lr_scheduler.ReduceLROnPlateau's defaults
    p = config.plateau
    assert (p.factor, p.patience, p.threshold, p.threshold_mode, p.cooldown, p.min_lr, p.eps) == (
        0.1,
        10,
        1e-4,
        "rel",
        0,
        0.0,
        1e-8,
    )
    # torch.optim.Adam's defaults (lr aside)
    assert config.optimizer.betas == (0.9, 0.999) and config.optimizer.eps == 1e-8
    assert config.task == "regression"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"optimizer": {"lr": -0.1}}, "lr must be > 0, got -0.1"),
        ({"model": {"hidden_size": 0}}, "hidden_size must be a positive integer, got 0"),
        ({"model": {"dropout": 0.5}}, "needs num_layers >= 2"),
        ({"model": {"dropout": 1.5, "num_layers": 2}}, "dropout must be in [0, 1), got 1.5"),
        ({"plateau": {"threshold": 0.0}}, "plateau threshold must be > 0"),
        ({"plateau": {"factor": 1.0}}, "plateau factor must be in (0, 1), got 1.0"),
        ({"plateau": {"threshold_mode": "max"}}, "threshold_mode must be 'rel' or 'abs'"),
        ({"plateau": {"min_lr": 1.0}}, "min_lr (1.0) must not exceed lr (0.01)"),
        ({"training": {"dtype": "float16"}}, "dtype must be 'float32' or 'float64', got 'float16'"),
        ({"training": {"epochs": "ten"}}, "training.epochs must be an integer, got 'ten'"),
        ({"data": {"dataset": "mnist"}}, "dataset must be one of sine, adding, digits, csv, got 'mnist'"),
        ({"data": {"splits": [0.5, 0.5, 0.5]}}, "splits must be three positive fractions"),
        ({"data": {"dataset": "csv"}}, "dataset 'csv' needs a file: pass --csv PATH"),
        (
            {"clipping": {"max_norm": 0.0}},
            "clip max_norm must be > 0 when clipping is on, got 0.0; to turn clipping off, pass --clip-norm 0 or set "
            "enabled = false under [clipping] in a config file",
        ),
        ({"clipping": {"max_norm": -1.0}}, "clip max_norm must be > 0 when clipping is on"),
        (
            {"backend": "torch", "clipping": {"style": "optax"}},
            "clipping style 'optax': a setting of the JAX trainer only; drop it, or use --backend jax",
        ),
        (
            {"backend": "torch", "training": {"shards": 2, "rnn": "cudnn", "remat": False, "unroll": 4}},
            "unroll 4, rnn 'cudnn', shards 2: settings of the JAX trainer only; drop them, or use --backend jax",
        ),
        ({"data": {"csv": "a.csv", "target": "y"}}, "csv, target apply to dataset 'csv', not 'sine'; add --dataset"),
        ({"data": {"dataset": "digits", "features": ["a"]}}, "features applies to dataset 'csv', not 'digits'"),
        (
            {"data": {"dataset": "csv", "csv": "a.csv", "target": "y", "features": "t,y,t"}},
            "features name 't' more than once, in 't,y,t'; list each column once",
        ),
        # str() made column names '[1]', 'None' and 'True' of them (YAML reads a column named yes as true)
        (
            {"data": {"features": [["a"], None, True]}},
            "data.features must be a list of names (text or numbers), got [['a'], None, True]",
        ),
        ({"data": {"features": ["a", 2020, True]}}, "data.features must be a list of names (text or numbers), got"),
        ({"training": {"seed": 2**32}}, "seed must be an integer in [0, 2**32), got 4294967296"),
        # tqdm took len(range(epochs)) (OverflowError past 2**63 - 1); the memory check's GiB overflowed a float
        (
            {"training": {"epochs": 2**63}},
            "epochs must be at most 9223372036854775807 (2**63 - 1), got 9223372036854775808",
        ),
        ({"training": {"epochs": 2**63, "init_from": "run"}}, "epochs must be at most 9223372036854775807 (2**63 - 1)"),
        ({"training": {"grad_flow_every": 2**63}}, "grad_flow_every must be at most 9223372036854775807 (2**63 - 1)"),
        # optax.contrib.reduce_on_plateau (given patience + 1) overflowed its int32 counts after the first epoch
        (
            {"plateau": {"patience": 2**31 - 1}},
            "plateau patience must be at most 2147483646, got 2147483647 (the JAX trainer's optax counts epochs in "
            "int32); to never reduce the learning rate, pass --no-plateau",
        ),
        ({"plateau": {"cooldown": 2**31}}, "plateau cooldown must be at most 2147483647, got 2147483648 (the JAX"),
        ({"model": {"hidden_size": 10**400}}, "hidden_size must be at most 9223372036854775807 (2**63 - 1), got 1000"),
        ({"optimizer": {"lr": float("inf")}}, "lr must be a finite number, got inf"),  # YAML's .inf: not an integer
        ({"optimizer": {"lr": "1e-3"}}, "optimizer.lr must be a number, got '1e-3' (YAML reads 1e-3 as text: write it"),
        ({"model": {"head": "classification"}}, "head 'classification' does not fit dataset 'sine'"),
        ({"modle": {}}, "unknown config section 'modle'"),
        ({"model": {"hiden_size": 3}}, "unknown field model.hiden_size"),
        # A key in the wrong place is told where it goes: TOML puts a top-level key written after [model] in it.
        (
            {"model": {"hidden_size": 3, "backend": "torch"}},
            "unknown field model.backend; backend is a top-level key: write it before the first section (in TOML, "
            "every key after a [section] line is in that section)",
        ),
        ({"lr": 0.003}, "unknown config section 'lr'; lr is a field of [optimizer]: move it there"),
        (
            {"data": {"hidden_size": 8}},
            "unknown field data.hidden_size; hidden_size is a field of [model]: move it there",
        ),
        (
            {"model": {"eps": 1e-6}},
            "unknown field model.eps; eps is a field of [optimizer] and [plateau]: move it under one of them",
        ),
        ({"backend": "tensorflow"}, "backend must be 'torch' or 'jax', got 'tensorflow'"),
        ({"training": {"shards": -1}}, "shards must be an integer >= 0, got -1"),
        ({"training": {"shards": 3}}, "shards (3) must divide batch_size (32) into equal parts"),
        ({"training": {"init_from": ""}}, "init_from is empty (''); pass the run directory to start from, or leave"),
        ({"training": {"init_from": " "}}, "init_from is empty (' '); pass the run directory to start from, or leave"),
    ],
)
def test_bad_values_name_field_value_and_fix(raw, message):
    with pytest.raises(ConfigError) as error:
        from_dict(raw)
    assert message in str(error.value)


def test_counts_up_to_sys_maxsize_are_taken():
    """The limit is sys.maxsize itself (2**63 - 1), not one below it."""
    largest = 2**63 - 1
    config = from_dict({"training": {"epochs": largest, "grad_flow_every": largest}, "model": {"hidden_size": largest}})
    assert (config.training.epochs, config.training.grad_flow_every, config.model.hidden_size) == (largest,) * 3
    assert from_dict({"training": {"epochs": largest, "init_from": "run"}}).training.epochs == largest


def test_feature_names_may_be_text_integers_or_floats():
    """YAML reads a column named 2020 or 1.5 as a number; both stay names, as the CSV header spells them."""
    config = from_dict({"data": {"dataset": "csv", "csv": "a.csv", "target": "y", "features": ["a", 2020, 1.5]}})
    assert config.data.features == ("a", "2020", "1.5")


def test_optax_clip_style_is_allowed_on_jax():
    assert from_dict({"backend": "jax", "clipping": {"style": "optax"}}).clipping.style == "optax"


@pytest.mark.parametrize(
    "jax_settings",
    [
        {"training": {"unroll": 2, "backward": "autodiff", "remat": True, "shards": 2}, "clipping": {"style": "optax"}},
        {"training": {"rnn": "cudnn"}},
    ],
)
def test_the_torch_side_of_a_jax_config_drops_the_jax_only_settings_and_keeps_the_rest(jax_settings):
    """lstm-parity's torch config.json said rnn 'cudnn' (or unroll 2, ...): a config refused for torch."""
    config = from_dict({**jax_settings, "model": {"hidden_size": 9}, "optimizer": {"lr": 0.003}})
    torch = torch_side(config)
    assert validate(torch) is torch and torch.backend == "torch"
    assert (torch.model, torch.optimizer, torch.data) == (config.model, config.optimizer, config.data)
    for section, names in JAX_ONLY_FIELDS.items():
        for name in names:
            assert getattr(getattr(torch, section), name) == getattr(getattr(Config(), section), name)


def test_each_jax_only_field_is_refused_for_torch_by_its_name_and_value():
    """The refusal names each field as `validate` did when it listed them by hand: a switch alone, a field of
    another section than training after its section's name."""
    changed = {
        "unroll": (2, "unroll 2"),
        "backward": ("autodiff", "backward 'autodiff'"),
        "remat": (True, "remat"),
        "rnn": ("cudnn", "rnn 'cudnn'"),
        "shards": (2, "shards 2"),
        "style": ("optax", "clipping style 'optax'"),
    }
    assert sorted(name for names in JAX_ONLY_FIELDS.values() for name in names) == sorted(changed)
    for section, names in JAX_ONLY_FIELDS.items():
        for name in names:
            value, named = changed[name]
            with pytest.raises(ConfigError) as error:
                from_dict({"backend": "torch", section: {name: value}})
            assert str(error.value) == f"{named}: a setting of the JAX trainer only; drop it, or use --backend jax"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"dataset": "digits", "window": 50},
            "window applies to datasets 'sine', 'adding' and 'csv', not 'digits'; drop it, or choose one of those "
            "datasets",
        ),
        (
            {"dataset": "digits", "noise": 0.0},
            "noise applies to dataset 'sine', not 'digits'; add --dataset sine, or drop it",
        ),
        (
            {"dataset": "adding", "horizon": 3},
            "horizon applies to datasets 'sine' and 'csv', not 'adding'; drop it, or choose one of those datasets",
        ),
        (
            {"dataset": "csv", "csv": "a.csv", "target": "y", "num_samples": 400, "noise": 0.2},
            "num_samples applies to datasets 'sine' and 'adding', noise to dataset 'sine', not 'csv'; drop them, or "
            "choose a dataset that reads them",
        ),
        (
            {"dataset": "digits", "csv": "a.csv", "target": "y", "window": 8},
            "csv, target apply to dataset 'csv', window to datasets 'sine', 'adding' and 'csv', not 'digits'; drop "
            "them, or choose a dataset that reads them",
        ),
    ],
)
def test_a_dataset_setting_the_chosen_dataset_ignores_is_refused(data, message):
    """Each of them was taken and ignored: digits is 8 rows of 8 pixels whatever the window, adding has no horizon."""
    with pytest.raises(ConfigError) as error:
        from_dict({"data": data})
    assert str(error.value) == message


@pytest.mark.parametrize("dataset", DATASET_SETTINGS)
def test_a_dataset_setting_at_its_default_is_taken_with_any_dataset(dataset):
    """A config.json that a run of any dataset writes names every setting, at its default where unread."""
    defaults = {"window": 20, "horizon": 1, "num_samples": 2000, "noise": 0.1, "features": []}
    csv = {"csv": "a.csv", "target": "y"} if dataset == "csv" else {}
    assert from_dict({"data": {"dataset": dataset, **defaults, **csv}}).data.dataset == dataset


def test_digits_is_classification():
    assert from_dict({"data": {"dataset": "digits"}}).task == "classification"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("run.toml", "[model]\nhidden_size = 48\nnum_layers = 2\n[optimizer]\nbetas = [0.8, 0.99]\n"),
        ("run.yaml", "model:\n  hidden_size: 48\n  num_layers: 2\noptimizer:\n  betas: [0.8, 0.99]\n"),
        ("run.json", '{"model": {"hidden_size": 48, "num_layers": 2}, "optimizer": {"betas": [0.8, 0.99]}}'),
    ],
)
def test_load_file_formats(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    config = load_file(path)
    assert config.model.hidden_size == 48 and config.model.num_layers == 2
    assert config.optimizer.betas == (0.8, 0.99)
    assert config.optimizer.lr == Config().optimizer.lr  # untouched fields keep their defaults


def test_load_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nhidden_size = 3")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_file(bad)
    tabbed = tmp_path / "tabbed.yaml"
    tabbed.write_text("model:\n\thidden_size: 8\n")
    with pytest.raises(ConfigError) as error:  # PyYAML's first line is its context: "while scanning for the next token"
        load_file(tabbed)
    assert str(error.value) == (
        f"config file {str(tabbed)!r} is not valid YAML: found character '\\t' that cannot start any token "
        "(at line 2, column 1); correct the config file"
    )
    for name in ("run.py", "run.TOML"):  # suffixes as written: an upper-case one is no parser's
        other = tmp_path / name
        other.write_text("import os")
        with pytest.raises(ConfigError, match=r"must end in \.toml, \.yaml, \.yml or \.json"):
            load_file(other)


NESTED, HUGE = "[" * 100_000 + "]" * 100_000, "1" * 5000
DEEP = "is nested too deeply to read (brackets or indents thousands of levels deep)"
LONG = "holds an integer of more than 4300 digits, beyond any value it could set"
NOT_A_MAPPING = "must hold a mapping {name: value, ...}, got"


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        # a key given twice: each parser alone keeps the last value and drops the first without a word
        (
            "run.yaml",
            "model:\n  hidden_size: 8\n  hidden_size: 16\n",
            "has the key 'hidden_size' twice on lines 2 and 3 (keep one of them)",
        ),
        (
            "run.yaml",
            "model: {hidden_size: 8}\nmodel: {num_layers: 2}\n",
            "has the key 'model' twice on lines 1 and 2 (keep one of them)",
        ),
        (
            "run.json",
            '{"model": {"hidden_size": 8, "hidden_size": 16}}',
            "has the key 'hidden_size' twice in one object (keep one of them)",
        ),
        (
            "run.json",
            '{"model": {"hidden_size": 8}, "model": {"num_layers": 2}}',
            "has the key 'model' twice in one object (keep one of them)",
        ),
        # tomllib refuses it itself, as bad syntax
        (
            "run.toml",
            "[model]\nhidden_size = 8\nhidden_size = 16\n",
            "is not valid TOML: Cannot overwrite a value (at line 3, column 17)",
        ),
        # whether the text ends where the parser stops tells a file cut short from a typo inside it
        (
            "run.json",
            '{"model": {"hidden_size": 8}',
            "is not valid JSON: Expecting ',' delimiter (at line 1, column 29, where the text ends)",
        ),
        ("run.json", '{"model": {"hidden_size": 8}}}', "is not valid JSON: Extra data (at line 1, column 30)"),
        ("run.json", "[1, 2]", f"{NOT_A_MAPPING} [1, 2]"),
        ("run.json", "null", f"{NOT_A_MAPPING} None"),
        ("run.yaml", "- model\n", f"{NOT_A_MAPPING} ['model']"),
        ("run.yaml", "[]\n", f"{NOT_A_MAPPING} []"),  # any false value was read as no settings at all
        ("run.yaml", "false\n", f"{NOT_A_MAPPING} False"),
        ("run.toml", b"[model]\nhidden_size = 8 # \xe9\n", "is not UTF-8 text (byte 0xe9 on line 2)"),
        # each parser recurses per bracket and raised a RecursionError traceback
        ("run.json", '{"model": NESTED}', DEEP),
        ("run.toml", "model = NESTED\n", DEEP),
        ("run.yaml", "model: NESTED\n", DEEP),
        # each parser makes an int of the digits, which Python refuses past 4300 of them (sys.get_int_max_str_digits):
        # a ValueError traceback telling to raise that limit
        ("run.json", '{"model": {"hidden_size": HUGE}}', LONG),
        ("run.toml", "[model]\nhidden_size = HUGE\n", LONG),
        ("run.yaml", "model:\n  hidden_size: HUGE\n", LONG),
    ],
)
def test_load_file_names_the_file_what_is_wrong_and_the_fix(tmp_path, name, content, problem):
    """One wording for every file textfile.read_mapping reads: the file, the problem, the fix (the run records' and
    scaler.json's tests pin theirs)."""
    path = tmp_path / name
    if isinstance(content, str):
        content = content.replace("NESTED", NESTED).replace("HUGE", HUGE).encode()
    path.write_bytes(content)
    with pytest.raises(ConfigError) as error:
        load_file(path)
    assert str(error.value) == f"config file {str(path)!r} {problem}; correct the config file"


@pytest.mark.parametrize("text", ["", "# nothing set yet\n"])
def test_load_file_reads_an_empty_yaml_file_as_the_defaults(tmp_path, text):
    """YAML reads a file without a document as null, not as an empty mapping."""
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert load_file(path) == Config()


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"optimizer": {"lr": 10**400}}, "optimizer.lr must be a number float64 holds (at most about 1.8e308), got a "),
        ({"data": {"splits": [10**400, 0.1, 0.1]}}, "data.splits must be a list of numbers, got [1000"),
        # below -1.8e308 as well: float() raises OverflowError either side
        ({"optimizer": {"lr": -(10**400)}}, "optimizer.lr must be a number float64 holds (at most about 1.8e308), got"),
    ],
)
def test_an_integer_beyond_float64_is_refused(sections, message):
    """JSON and YAML read any number of digits into an int, which float() refused with an OverflowError traceback."""
    with pytest.raises(ConfigError) as error:
        from_dict(sections)
    assert str(error.value).startswith(message)


def test_yaml_merge_keys_may_be_overridden(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  <<: {hidden_size: 8, num_layers: 2}\n  hidden_size: 16\n")
    config = load_file(path)
    assert (config.model.hidden_size, config.model.num_layers) == (16, 2)


def test_config_written_by_a_run_loads_back(tmp_path):
    import json

    sections = {
        "model": {"hidden_size": 7},
        "data": {"dataset": "csv", "csv": "x.csv", "features": ["a", "b"], "target": "c"},
    }
    config = from_dict(sections)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    assert load_file(path) == config


def test_comma_separated_numbers_from_flags():
    config = from_dict({"data": {"splits": "0.05,0.475,0.475"}, "optimizer": {"betas": "0.8,0.99"}})
    assert config.data.splits == (0.05, 0.475, 0.475) and config.optimizer.betas == (0.8, 0.99)
    with pytest.raises(ConfigError, match=r"data\.splits must be a list of numbers, got \['a', 'b', 'c'\]"):
        from_dict({"data": {"splits": "a,b,c"}})


@pytest.mark.parametrize("given", ["", " , "])
def test_an_empty_list_from_a_flag_is_refused_not_read_as_the_default(given):
    """`--features "$COLUMNS"` with COLUMNS unset trained on the target alone, the default of no features."""
    with pytest.raises(ConfigError) as error:
        from_dict({"data": {"features": given}})
    assert str(error.value) == f"data.features is empty ({given!r}); give its items comma-separated, or leave it out"
    assert from_dict({"data": {"features": []}}).data.features == ()  # a file's empty list is the default


def test_the_backends_are_spelled_out_once():
    """config.BACKENDS names the trainers for lstm-train's --backend choices, validate, the zoo and the doctor's
    hint at a parity directory: each spelled ("torch", "jax") out on its own, four places for a third backend
    to miss. Only the neutral package is scanned: tests name both backends to parametrize over them."""
    package = Path(config_module.__file__).parent
    pattern = re.compile(r"""[(\[]\s*["']torch["'],\s*["']jax["']\s*[)\]]""")
    assert sorted(path.name for path in package.glob("*.py") if pattern.search(path.read_text())) == ["config.py"]
    assert config_module.BACKENDS == ("torch", "jax")


def test_settings_of_one_dataset_refused_together_are_called_them():
    """csv and target both read by the csv dataset only: one clause, one fix, the fix's pronoun counting the
    settings (two), not the clauses (one)."""
    with pytest.raises(ConfigError) as error:
        from_dict({"data": {"dataset": "digits", "csv": "a.csv", "target": "y"}})
    assert str(error.value) == "csv, target apply to dataset 'csv', not 'digits'; add --dataset csv, or drop them"


def test_backward_is_refused_with_the_cudnn_recurrence():
    """cuDNN's kernel computes the gradient itself: --backward autodiff chose nothing but the start-up check's
    path, as --remat and --unroll would."""
    with pytest.raises(ConfigError) as error:
        from_dict({"backend": "jax", "training": {"rnn": "cudnn", "backward": "autodiff"}})
    assert str(error.value) == (
        "backward applies to the scan recurrence; cuDNN's kernel computes the gradient (drop --backward)"
    )
    assert from_dict({"backend": "jax", "training": {"rnn": "cudnn"}}).training.backward == "custom"


def test_a_yaml_error_without_a_marked_problem_gives_its_first_line(tmp_path):
    """PyYAML's reader refuses a control character with a ReaderError, which carries no problem mark: its message's
    first line says what is wrong, the next only where in the "<unicode string>" it read."""
    path = tmp_path / "run.yaml"
    path.write_text("model:\n  hidden_size: 8\x07\n")
    with pytest.raises(ConfigError) as error:
        load_file(path)
    assert str(error.value) == (
        f"config file {str(path)!r} is not valid YAML: unacceptable character #x0007: special characters are not "
        "allowed; correct the config file"
    )
