"""Reading the text files a user or a run hands us (CSV data, config files, scaler.json, records): their text, or
one error that names the file, what is wrong with it and what to do.

The caller says what the file is (`what`: "config file") and what to do about a bad one (`fix`: "re-run the
training that wrote it"); the errors read `{what} {path!r} {problem}; {fix}` ("cannot read {what} {path!r}:
{reason}; {fix}"), so that one failure is worded one way whichever file it meets."""

from __future__ import annotations

import csv
import io
import json
import reprlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def read_text(path: str | Path, what: str, error: type[Exception], fix: str) -> str:
    """The text of `path`, `what` the caller calls it ("config file"), as written (newlines untouched, as `csv`
    wants them; a UTF-8 byte-order mark, which Excel's "CSV UTF-8" writes, dropped). Raises `error` if the file
    cannot be read or is not UTF-8, with the first undecodable byte and its line, then `fix`."""
    try:
        data = Path(path).read_bytes()
    except OSError as problem:
        raise error(f"cannot read {what} {str(path)!r}: {problem.strerror}; {fix}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:  # its object is the data after any byte-order mark
        line = problem.object[: problem.start].count(b"\n") + 1
        byte = problem.object[problem.start]
        raise error(f"{what} {str(path)!r} is not UTF-8 text (byte {byte:#04x} on line {line}); {fix}") from None


def read_csv_rows(path: str | Path, what: str, error: type[Exception], fix: str) -> list[list[str]]:
    """The rows of the CSV file `path` (read by read_text). Raises `error` where the csv module cannot split a
    record, naming the line the record starts on: a quote that opens a field and never closes swallows the rest of
    the file into that field, until the csv module stops at its field size limit."""
    reader = csv.reader(io.StringIO(read_text(path, what, error, fix), newline=""))
    rows = []
    while True:
        start = reader.line_num + 1
        try:
            rows.append(next(reader))
        except StopIteration:
            return rows
        except csv.Error as problem:
            raise error(
                f"{what} {str(path)!r} line {start}: {problem}, as when a quote that opens a field is never closed "
                "(the field then runs on to the end of the file); close that quote or remove it"
            ) from None


class FileContentError(ValueError):
    """What a JSON, TOML or YAML parser refuses in a file's text: bad syntax, a key given twice, nesting past the
    parser's recursion depth, an integer past Python's digit limit. The message is the problem worded to follow
    the file's name ("is not valid JSON: ..."); read_mapping puts the name before it and the fix after it."""


class DuplicateKeyError(FileContentError):
    """A key given twice in one mapping of a JSON or YAML file, where the parser would silently keep the last."""

    def __init__(self, key: Any, where: str = "in one object"):
        super().__init__(f"has the key {key!r} twice {where} (keep one of them)")


def within_parser_limits(parse: Callable[[], Any]) -> Any:
    """parse(), where a parser that stops on the file's size rather than its syntax raises FileContentError: json,
    tomllib and PyYAML recurse once per bracket or indent (RecursionError), and each makes an int of a number's
    digits, which Python refuses past sys.get_int_max_str_digits() (a ValueError telling to raise that limit)."""
    try:
        return parse()
    except RecursionError:
        raise FileContentError("is nested too deeply to read (brackets or indents thousands of levels deep)") from None
    except ValueError as error:
        if "integer string conversion" not in str(error):
            raise
        raise FileContentError(
            f"holds an integer of more than {sys.get_int_max_str_digits()} digits, beyond any value it could set"
        ) from None


def read_mapping(path: str | Path, parse: Callable[[str], Any], what: str, error: type[Exception], fix: str) -> dict:
    """The mapping (JSON object, TOML table, YAML mapping) that `parse` reads from the text of `path` (read_text),
    within the parser's limits (within_parser_limits). Raises `error` as read_text does, and where `parse` raises
    FileContentError or the file holds another value (a list, a number): `what` the file is, its path, the problem
    (with the line and column of bad syntax), then `fix`."""
    text = read_text(path, what, error, fix)
    try:
        value = within_parser_limits(lambda: parse(text))
    except FileContentError as problem:
        raise error(f"{what} {str(path)!r} {problem}; {fix}") from None
    if not isinstance(value, dict):
        raise error(f"{what} {str(path)!r} must hold a mapping {{name: value, ...}}, got {reprlib.repr(value)}; {fix}")
    return value


def parse_json(text: str) -> Any:
    """The JSON value in `text`, every object's keys unique (unique_keys); FileContentError on bad syntax, naming
    its line and column and whether the text ends there (as a file cut short does)."""
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as error:
        # JSON's whitespace only: str.rstrip's own (a form feed, a no-break space) is text the parser stops at
        ends = ", where the text ends" if error.pos >= len(text.rstrip(" \t\n\r")) else ""
        raise FileContentError(
            f"is not valid JSON: {error.msg} (at line {error.lineno}, column {error.colno}{ends})"
        ) from None


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads(..., object_pairs_hook=unique_keys)`: a JSON object as a dict, DuplicateKeyError on a key
    given twice."""
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise DuplicateKeyError(key)
        seen.add(key)
    return dict(pairs)
