"""`lstm-doctor RUN_DIR`: why is my loss not decreasing? The verdict on a run directory's records.

It reads what `lstm-train` (either backend) or a plain-loop recorder (`lstm_torch.recorder`,
`lstm_jax.recorder`) wrote (`lstm_core.run_records`), runs the rules of `lstm_core.diagnosis`, and prints
(`lstm_core.diagnosis_report`) for each cause ok / suspect / found with the evidence in numbers and the fix
as `lstm-train` flags; `--json` prints the same as JSON.

Exit status: 0 healthy, 3 a cause was found (or the run is otherwise unhealthy, e.g. a non-finite loss
before the first update, or a run too short to judge that ends with a high loss), 2 the records cannot be
read (one line on stderr, no traceback). A reader that stops early (`lstm-doctor RUN | head -1`) ends the
output quietly, with the same status.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from lstm_core import diagnosis, diagnosis_report, run_records

EXIT_HEALTHY = 0
EXIT_UNREADABLE = 2
EXIT_CAUSE_FOUND = 3


def exit_code(result: diagnosis.Diagnosis) -> int:
    return EXIT_HEALTHY if result.healthy else EXIT_CAUSE_FOUND


def report(run_dir: str | Path, as_json: bool = False) -> tuple[str, int]:
    """The doctor's text (or JSON) for `run_dir` and its exit status (0 healthy, 3 cause found).

    Raises `run_records.RunRecordsError` when the records are missing, truncated or not a run's.
    """
    result = diagnosis.diagnose(run_records.load_run(run_dir))
    if as_json:
        text = json.dumps(diagnosis_report.to_json(result), indent=2, allow_nan=False, ensure_ascii=False)
    else:
        text = diagnosis_report.format_report(result)
    return text, exit_code(result)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm-doctor",
        description=(
            "Name why a run's loss is not decreasing (exploding or vanishing gradients, a learning rate too "
            "high or too low, unscaled data, under- or overfitting) from the records in its run directory, "
            "and give the lstm-train flags that fix it. Exit status: 0 healthy, 3 a cause found, 2 "
            "unreadable records."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the directory a run wrote (lstm-train --out)")
    parser.add_argument("--json", action="store_true", help="print the diagnosis as JSON (causes, findings)")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        text, code = report(args.run_dir, as_json=args.json)
    except run_records.RunRecordsError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return EXIT_UNREADABLE
    try:
        print(text)
        sys.stdout.flush()  # inside the try: a closed pipe raises here, not at the interpreter's exit
    except BrokenPipeError:
        # The reader closed the pipe (`| head -1`): stop quietly, as the Python docs advise (the note on
        # SIGPIPE in the signal module); stdout now points at devnull so that the final flush cannot fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return code


if __name__ == "__main__":
    sys.exit(main())
