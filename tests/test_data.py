from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from lstm_core import data, machine
from lstm_core.config import DATASET_SETTINGS, DataConfig, from_dict


def load(**fields):
    return data.load(from_dict({"data": fields}))


def test_sine_windows_are_chronological_and_scaled_on_train_only():
    prepared = load(num_samples=1000, window=20)
    assert prepared.train.x.shape == (700 - 20, 20, 1) and prepared.train.y.shape == (680, 1)
    assert prepared.val.x.shape == (150 - 20, 20, 1) and prepared.test.x.shape == (130, 20, 1)
    # The scaler saw only the first 700 points: its mean is theirs, and scaled train data has mean 0, std 1.
    raw = np.sin(2 * np.pi * np.arange(1000) / data.SINE_PERIOD)  # noise aside
    assert abs(prepared.feature_scaler.mean_[0] - raw[:700].mean()) < 0.02  # noise 0.1 / sqrt(700) ≈ 0.004
    train_values = np.concatenate([prepared.train.x[0, :, 0], prepared.train.x[1:, -1, 0]])  # each point once
    assert train_values.mean() == pytest.approx(0.0, abs=1e-3)  # the 20-step horizon tail is the only gap
    assert prepared.raw_stats["inputs"]["mean"] == pytest.approx(prepared.feature_scaler.mean_.tolist())


def test_target_is_the_next_step():
    prepared = load(num_samples=300, window=10, horizon=1)
    # Windows overlap: window i+1 ends with window i's target.
    np.testing.assert_allclose(prepared.train.x[1:, -1, 0], prepared.train.y[:-1, 0], rtol=0, atol=1e-12)


def test_inverse_targets_restores_original_units():
    prepared = load(num_samples=300, window=10)
    raw = prepared.inverse_targets(prepared.train.y)
    np.testing.assert_allclose(raw.mean(), prepared.target_scaler.mean_[0], atol=0.05)
    np.testing.assert_allclose(prepared.target_scaler.transform(raw), prepared.train.y, rtol=0, atol=1e-12)


def test_scaler_uses_population_std():
    prepared = load(num_samples=300, window=10)
    raw_train = prepared.inverse_targets(prepared.train.y)
    # sklearn's StandardScaler divides by the ddof=0 std; windows miss the first 10 points, hence the 2 %.
    assert prepared.target_scaler.scale_[0] == pytest.approx(raw_train.std(ddof=0), rel=0.02)


def test_no_scale_keeps_raw_values():
    prepared = load(num_samples=300, window=10, scale=False)
    assert prepared.feature_scaler is None and prepared.target_scaler is None
    assert np.abs(prepared.train.x).max() < 1.6  # amplitude 1 plus noise 0.1 (6 sigma)


def test_adding_problem_target_is_sum_of_marked_values():
    prepared = load(dataset="adding", window=30, num_samples=200, scale=False)
    x, y = prepared.train.x, prepared.train.y
    assert x.shape[1:] == (30, 2)
    assert np.all(x[:, :, 1].sum(axis=1) == 2)
    np.testing.assert_allclose((x[:, :, 0] * x[:, :, 1]).sum(axis=1), y[:, 0], rtol=1e-12)
    first_half = x[:, :15, 1].sum(axis=1)
    assert np.all(first_half == 1)  # one marker in each half


def test_digits_rows_as_time_steps():
    prepared = load(dataset="digits")
    assert prepared.task == "classification" and prepared.num_outputs == 10
    assert prepared.train.x.shape[1:] == (8, 8) and prepared.train.y.dtype == np.int64
    total = len(prepared.train) + len(prepared.val) + len(prepared.test)
    assert total == 1797
    assert set(np.unique(prepared.train.y)) == set(range(10))
    assert prepared.target_scaler is None and prepared.raw_stats["targets"] is None


def test_same_seed_same_data_other_seed_other_data():
    a, b = load(dataset="adding", num_samples=100), load(dataset="adding", num_samples=100)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    c = data.load(from_dict({"data": {"dataset": "adding", "num_samples": 100}, "training": {"seed": 1}}))
    assert not np.array_equal(a.train.x, c.train.x)


class RecordsReads:
    """A DataConfig that notes the name of every field read from it."""

    def __init__(self, config: DataConfig):
        self._config, self.read = config, set()

    def __getattr__(self, name):
        self.read.add(name)
        return getattr(self._config, name)


@pytest.mark.parametrize("dataset", DATASET_SETTINGS)
def test_each_dataset_reads_the_settings_of_its_row_in_the_table_and_no_other(dataset, tmp_path):
    """config.DATASET_SETTINGS, from which `validate` refuses a setting the chosen dataset would ignore, against
    what `data.load` reads: every field of the dataset's row, none of another row's, and every field in no row
    (dataset, splits, scale) for every dataset."""
    fields = {"dataset": dataset}
    if dataset == "csv":
        fields |= {"csv": write_csv(tmp_path / "series.csv", "y,t\n" + sine_rows(200)), "target": "y"}
    config = from_dict({"data": fields})
    recorded = RecordsReads(config.data)
    data.load(SimpleNamespace(data=recorded, training=config.training))
    in_no_row = {f.name for f in dataclasses.fields(DataConfig)} - {
        name for row in DATASET_SETTINGS.values() for name in row
    }
    assert recorded.read == in_no_row | set(DATASET_SETTINGS[dataset])


def test_epoch_batches_are_seeded_and_drop_the_partial_batch():
    first = data.epoch_batches(100, 32, np.random.default_rng(5))
    second = data.epoch_batches(100, 32, np.random.default_rng(5))
    np.testing.assert_array_equal(first, second)
    assert first.shape == (3, 32) and len(np.unique(first)) == 96
    with pytest.raises(data.DataError, match="batch_size 64 exceeds the 40 training samples"):
        data.epoch_batches(40, 64, np.random.default_rng(0))


def test_a_generated_dataset_beyond_the_machine_is_refused_before_it_is_drawn(monkeypatch):
    monkeypatch.setattr(machine, "memory_bytes", lambda: 2**20)  # a 1 MiB machine
    # 100000 windows of 20 steps, float64 and float32: 100000 * 20 * 12 bytes = 22.9 MiB
    with pytest.raises(data.DataError) as error:
        data.load(from_dict({"data": {"num_samples": 100_000}}))
    assert str(error.value) == (
        "100000 sine windows of 20 steps: at least 0.0224 GiB of memory, and this process may use 0.000977 GiB "
        "(the machine's memory, or its container's limit where smaller); lower --num-samples or --window"
    )
    assert len(data.load(from_dict({"data": {"num_samples": 2000}})).train) > 0  # 0.46 MiB: fits


def write_csv(path, text):
    path.write_text(text)
    return str(path)


def test_csv_forecasting(tmp_path):
    rows = "\n".join(f"{i},{np.sin(i / 5):.6f},{np.cos(i / 5):.6f}" for i in range(200))
    path = write_csv(tmp_path / "series.csv", "time,a,b\n" + rows + "\n")
    prepared = load(dataset="csv", csv=path, features=["a", "b"], target="b", window=12)
    assert prepared.train.x.shape == (140 - 12, 12, 2) and prepared.input_size == 2
    assert prepared.raw_stats["targets"]["max"][0] == pytest.approx(np.cos(np.arange(140) / 5).max(), abs=1e-6)


@pytest.mark.parametrize(
    ("text", "fields", "message"),
    [
        ("a,b\n1,2\n", {"target": "c"}, "column 'c' is not in"),
        ("", {"target": "a"}, "is empty"),
        ("a,b\n", {"target": "a"}, "has a header but no data rows"),
        ("a,b\n1,2\n3\n", {"target": "a"}, "line 3 has 1 fields, the header has 2"),
        ("a,b\n1,2\n3,4,5\n", {"target": "a"}, "line 3 has 3 fields, the header has 2; give every row one field"),
        (
            "a,b\n1,x\n",
            {"target": "b"},
            "line 2, column 'b': 'x' is not a number; the columns read (--features and --target) must hold numbers "
            "only: choose numeric columns, or correct that value",
        ),
        ("a,b\n1,2\n\n3,4\n", {"target": "a"}, "line 3 is blank; delete it"),  # only blank lines at the end are dropped
        ("y,y\n1,2\n", {"target": "y"}, "column 'y' appears 2 times in the header of"),
        ("y,y\n1,2\n", {"target": "y"}, "(columns 1 and 2); rename all but one"),
        # The target is also the default feature: the message names it and its line in the file, header = line 1.
        ("a\n" + "1\n" * 20 + "nan\n" + "1\n" * 20, {"target": "a"}, "column 'a' of "),
        ("a\n" + "1\n" * 20 + "nan\n" + "1\n" * 20, {"target": "a"}, "has 1 NaN/inf value(s), the first on line 22"),
        ("y\n" + "1e200\n-1e200\n" * 10, {"target": "y", "window": 2}, "column 'y' of CSV file"),
        (
            "a,y\n" + "1e200,1\n-1e200,2\n" * 10,
            {"target": "y", "features": ["y", "a"], "window": 2},
            "column 'a' of CSV file",
        ),
        (
            "y\n" + "1e200\n-1e200\n" * 10,
            {"target": "y", "window": 2},
            "is too large to standardise (its variance overflows float64); rescale it",
        ),
        ("a\n" + "1\n2\n" * 10, {"target": "a"}, "the train split has 14 rows but a window of 20"),
    ],
)
def test_csv_errors(tmp_path, text, fields, message):
    path = write_csv(tmp_path / "bad.csv", text)
    with pytest.raises(data.DataError) as error:
        load(dataset="csv", csv=path, **fields)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("dataset", "fix"),
    [
        ("sine", "pass --num-samples 140"),  # no file to lengthen: it said "provide a longer series (...)"
        ("csv", "provide a longer series (at least 140 rows)"),
    ],
)
def test_a_series_too_short_for_the_window_says_how_to_lengthen_it(tmp_path, dataset, fix):
    """10 rows, the default window of 20 and splits 0.7,0.15,0.15: each split needs 21 rows, so 21 / 0.15 in all."""
    if dataset == "sine":
        fields = {"num_samples": 10}
    else:
        fields = {"dataset": "csv", "csv": write_csv(tmp_path / "short.csv", "a\n" + "1\n2\n" * 5), "target": "a"}
    with pytest.raises(data.DataError) as error:
        load(**fields)
    assert str(error.value).endswith(
        f"the train split has 7 rows but a window of 20 plus a horizon of 1 needs at least 21; {fix} or a smaller "
        "--window"
    )


def test_missing_csv(tmp_path):
    with pytest.raises(data.DataError, match="does not exist; pass an existing file with --csv PATH"):
        load(dataset="csv", csv=str(tmp_path / "nope.csv"), target="a")


def test_csv_directory(tmp_path):
    with pytest.raises(data.DataError, match="is a directory; pass a CSV file"):
        load(dataset="csv", csv=str(tmp_path), target="a")


def test_csv_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("a,y\n1,2\ncafé,3\n".encode("latin-1"))
    with pytest.raises(data.DataError) as error:
        load(dataset="csv", csv=str(path), target="y")
    assert str(error.value) == (
        f"CSV file {str(path)!r} is not UTF-8 text (byte 0xe9 on line 3); save the CSV file as UTF-8 text"
    )


def test_csv_quote_left_open(tmp_path):
    """A stray quote swallows the rest of the file into one field, which the csv module stops at its field size
    limit (131072 characters): one line naming where the record starts, not a _csv.Error traceback."""
    path = tmp_path / "quote.csv"
    path.write_text('a,y\n1,2\n"3,4\n' + "5,6\n" * 40000)
    with pytest.raises(data.DataError) as error:
        load(dataset="csv", csv=str(path), target="y")
    assert str(error.value) == (
        f"CSV file {str(path)!r} line 3: field larger than field limit (131072), as when a quote that opens a field "
        "is never closed (the field then runs on to the end of the file); close that quote or remove it"
    )


def sine_rows(count):
    return "".join(f"{np.sin(i / 5):.6f},{i}\n" for i in range(count))


def test_csv_with_byte_order_mark_and_trailing_blank_lines(tmp_path):
    path = tmp_path / "excel.csv"
    # Excel's "CSV UTF-8" starts with a byte-order mark and can end in empty rows.
    path.write_text("y,a\n" + sine_rows(200) + "\n,\n  \n", encoding="utf-8-sig")
    prepared = load(dataset="csv", csv=str(path), target="y", window=12)
    assert len(prepared.train) + len(prepared.val) + len(prepared.test) == 200 - 3 * 12  # every data row, once


def test_csv_beyond_float32_without_scaling(tmp_path):
    path = write_csv(tmp_path / "big.csv", "y\n" + "1e39\n-1e39\n" * 10)  # float32 ends at 3.4e38
    fields = {"dataset": "csv", "csv": path, "target": "y", "window": 2, "scale": False}
    with pytest.raises(data.DataError) as error:
        data.load(from_dict({"data": fields, "training": {"dtype": "float32"}}))
    assert str(error.value) == (
        "the data reach beyond float32's largest value 3.4e+38 (largest magnitudes: inputs 1e+39, targets 1e+39); "
        "keep them scaled (drop --no-scale), rescale them, or pass --dtype float64"
    )
    prepared = data.load(from_dict({"data": fields, "training": {"dtype": "float64"}}))
    assert np.abs(prepared.train.y).max() == 1e39
