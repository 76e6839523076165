"""The doctor's verdict for people and machines: `format_report` (terminal text) and `to_json` (a strict-JSON
dict) of a `diagnosis.Diagnosis`."""

from __future__ import annotations

import math

from lstm_core.diagnosis import Diagnosis
from lstm_core.number_text import num
from lstm_core.records import jsonable


def to_json(diagnosis: Diagnosis) -> dict:
    """A JSON-ready dict (no NaN/inf floats): causes (roots first), healthy, notes and every finding."""
    return jsonable(
        {
            "run_dir": diagnosis.run_dir,
            "healthy": diagnosis.healthy,
            "causes": list(diagnosis.causes),
            "notes": list(diagnosis.notes),
            "context": diagnosis.context,
            "findings": {
                f.cause: {
                    "status": f.status,
                    "evidence": f.evidence,
                    "remedy": f.remedy,
                    "consequence_of": list(f.consequence_of),
                    "numbers": f.numbers,
                }
                for f in diagnosis.findings
            },
        }
    )


def format_report(diagnosis: Diagnosis) -> str:
    """A terminal report: the verdict, each found cause with evidence and fix, then suspects, then the rest."""
    c = diagnosis.context
    lines = [
        f"Diagnosis of {diagnosis.run_dir} ({c.get('backend') or '?'}, {c.get('task')}, {c.get('steps')} "
        f"steps, {c.get('epochs')} epochs; final training loss {num(c.get('final_train_loss', math.nan))}, "
        f"baseline {c.get('baseline_meaning')})"
    ]
    if diagnosis.healthy:
        lines.append("Healthy: no cause found.")
    elif diagnosis.causes:
        lines.append(f"Cause{'s' if len(diagnosis.causes) > 1 else ''} found: {', '.join(diagnosis.causes)}")
    for note in diagnosis.notes:
        lines.append(f"Note: {note}")
    for cause in diagnosis.causes:
        f = diagnosis.finding(cause)
        lines += [f"  [found]   {cause}: {f.evidence}", f"            fix: {f.remedy}"]
    for f in diagnosis.findings:
        if f.status == "suspect":
            lines.append(f"  [suspect] {f.cause}: {f.evidence}")
            if f.remedy:
                lines.append(f"            if so: {f.remedy}")
    fine = [f.cause for f in diagnosis.findings if f.status == "ok"]
    if fine:
        lines.append(f"  [ok]      {', '.join(fine)}")
    return "\n".join(lines)
