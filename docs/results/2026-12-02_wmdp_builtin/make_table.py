"""Build table.md from the LMEval_SUMMARY.json files of this folder: before/ (SmolLM2 as
shipped) and every after_*/ (one RMU run each)."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS = [("builtin_hazard_cloze", "hazard questions (forget domain)"),
         ("builtin_retain_cloze", "retain questions")]  # fmt: skip


def cell(summary: dict, task: str) -> str:
    return f"{summary[f'{task}/acc']:.3f} ± {summary[f'{task}/acc_stderr']:.3f}"


def main() -> None:
    runs = {"before": HERE / "before"} | {p.name: p for p in sorted(HERE.glob("after_*"))}
    summaries = {k: json.loads((p / "LMEval_SUMMARY.json").read_text()) for k, p in runs.items()}
    lines = [
        "| task (accuracy ± stderr) | " + " | ".join(summaries) + " | chance |",
        "|---" * (len(summaries) + 2) + "|",
    ]
    for task, label in TASKS:
        cells = " | ".join(cell(s, task) for s in summaries.values())
        lines.append(f"| `{task}`: {label} | {cells} | 0.250 |")
    (HERE / "table.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
