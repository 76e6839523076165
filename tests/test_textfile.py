"""lstm_core.textfile: parse_json's wording of bad JSON syntax (read_mapping's callers pin the rest, each in its
own file's tests: config files in test_config, run records in test_run_records, scaler.json in test_convert)."""

from __future__ import annotations

import pytest

from lstm_core.textfile import FileContentError, parse_json


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        # cut short: the parser stops at the very end, after any whitespace JSON allows (space, tab, newline, return)
        ('{"model": 8', "Expecting ',' delimiter (at line 1, column 12, where the text ends)"),
        ('{"model": [1, 2\r\n\t ', "Expecting ',' delimiter (at line 2, column 3, where the text ends)"),
        ('{"model":\n', "Expecting value (at line 2, column 1, where the text ends)"),
        # a form feed or a no-break space is whitespace to str.strip, not to JSON: the parser stops at it, and the
        # text goes on there, it does not end
        ('{"model": 8}\x0c', "Extra data (at line 1, column 13)"),
        ('{"model": 8}\u00a0\n', "Extra data (at line 1, column 13)"),
        ('{"model": \x0c', "Expecting value (at line 1, column 11)"),
        ('{"model": 8}}', "Extra data (at line 1, column 13)"),
    ],
)
def test_bad_json_names_line_column_and_whether_the_text_ends_there(text, problem):
    with pytest.raises(FileContentError) as error:
        parse_json(text)
    assert str(error.value) == f"is not valid JSON: {problem}"
