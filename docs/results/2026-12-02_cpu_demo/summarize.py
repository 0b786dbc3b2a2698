"""Write README.md here from the three seeds' own demo outputs (../2026-12-02_cpu_demo_seed*/).

Every number in the README is read from those comparison.json files, and each table is the
demo's comparison.md, verbatim. Run after copying the demo outputs in:

    for s in 0 1 2; do
      obliviate demo --seed $s --out /tmp/demo_s$s
      mkdir -p docs/results/2026-12-02_cpu_demo_seed$s
      cp /tmp/demo_s$s/comparison.{md,json,png} docs/results/2026-12-02_cpu_demo_seed$s/
    done
    python docs/results/2026-12-02_cpu_demo/summarize.py
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
FQ_FACTOR, MU_TOLERANCE = 10.0, 0.1
# Written by hand for the runs of 2026-12-02 (its figures are in the tables below).
READING = (
    "**Reading.** With the default's per-method unlearning rates (SimNPO 1.5e-4, NPO and "
    "GradAscent 5e-5, GradDiff 1e-4) every method meets the bar on every seed. Holds in every "
    "seed: the target is far from the retain model and each method raises forget_quality by "
    "orders of magnitude while model_utility stays near the target's. Varies: the size of the "
    "gain (a KS p-value over 40 items; SimNPO's is the smallest on seeds 0 and 1) and GradDiff's "
    "utility cost on seed 1 (the closest to the 0.1 limit). Kept below, the runs that led to "
    "these rates: with every method at 1e-4 SimNPO fell short of x10 on seed 0 and NPO and "
    "GradAscent lost the real-author answers on seed 1 (model_utility 0: one of its nine parts, "
    "the ROUGE-L of the 8 real-author answers, was 0); with every method at 1.5e-4 SimNPO passed "
    "but NPO, GradDiff and GradAscent lost model_utility on seed 1."
)  # the issue's bar: forget_quality x10, utility within 0.1


def seeds(base: Path = HERE.parent, pattern: str = f"{HERE.name}_seed*") -> list[tuple[int, Path, dict]]:
    found = []
    for folder in sorted(base.glob(pattern)):
        path = folder / "comparison.json"
        if path.is_file():
            found.append((int(folder.name.rsplit("seed", 1)[1]), folder, json.loads(path.read_text())))
    return found


def rows(report: dict) -> dict[str, dict]:
    return {r["name"]: r for r in report["rows"]}


def method_lines(runs: list[tuple[int, Path, dict]]) -> list[str]:
    """Per method: forget_quality / target's and model_utility - target's, per seed."""
    methods = [r["name"] for r in runs[0][2]["rows"] if r["kind"] == "method"]
    out = ["| method | " + " | ".join(f"seed {s}: FQ ratio, ΔMU" for s, _, _ in runs) + " | holds in all seeds |",
           "|---|" + "---|" * (len(runs) + 1)]
    for m in methods:
        cells, ok_all = [], True
        for _, _, rep in runs:
            t, r = rows(rep)["target"], rows(rep)[m]
            ratio = r["forget_quality"] / t["forget_quality"]
            dmu = r["model_utility"] - t["model_utility"]
            ok_all &= ratio >= FQ_FACTOR and dmu >= -MU_TOLERANCE
            cells.append(f"x{ratio:.3g}, {dmu:+.3f}")
        out.append(f"| {m} | " + " | ".join(cells) + f" | {'yes' if ok_all else 'no'} |")
    return out


def span(values: list[float], fmt: str) -> str:
    return f"{format(min(values), fmt)} .. {format(max(values), fmt)}"


def readme(runs: list[tuple[int, Path, dict]]) -> str:
    first = runs[0][2]
    lines = [
        "# `obliviate demo` over three seeds (CPU, 2026-12-02)",
        "",
        f"`obliviate demo --seed S` for S = {', '.join(str(s) for s, _, _ in runs)}, default settings "
        f"otherwise: {first['model']}, built-in fictitious authors (the seed draws other authors "
        f"and seeds every training stage), forget split {first['forget_split']} "
        f"(n = {first['n_forget']} items). Each seed's own output (table, JSON, plot) is in "
        + ", ".join(f"[{f.name}](../{f.name}/)" for _, f, _ in runs)
        + "; this file is written from them by `summarize.py`.",
        "",
        "## What holds and what varies",
        "",
        f"The bar (issue 11): a method raises forget_quality at least x{FQ_FACTOR:g} over the "
        f"target's and keeps model_utility within {MU_TOLERANCE} of the target's.",
        "",
        *method_lines(runs),
        "",
        READING,
        "",
    ]
    tfq = [rows(r)["target"]["forget_quality"] for _, _, r in runs]
    tmu = [rows(r)["target"]["model_utility"] for _, _, r in runs]
    rmu = [rows(r)["retain"]["model_utility"] for _, _, r in runs]
    lines += [
        f"- The target's forget_quality ranges {span(tfq, '.2e')} over the seeds (the retain "
        "model's is 1 by definition; a KS p-value is compared only within one seed's table, "
        "which is why the bar is a ratio to the same seed's target).",
        f"- model_utility: target {span(tmu, '.3f')}, retain model {span(rmu, '.3f')}.",
    ]
    for m in [r["name"] for r in first["rows"] if r["kind"] == "method"]:
        fq = [rows(r)[m]["forget_quality"] for _, _, r in runs]
        mu = [rows(r)[m]["model_utility"] for _, _, r in runs]
        lines.append(f"- {m}: forget_quality {span(fq, '.2e')}, model_utility {span(mu, '.3f')}.")
    lines += [
        "",
        "## Time",
        "",
        "| seed | wall time of the last call (stages reused) | 1-min load average (start -> end) "
        "| all 12 stages: wall s, CPU s | device |",
        "|---|---|---|---|---|",
    ]
    for s, _, r in runs:
        load = r.get("load_average") or {}
        reused = sum(1 for st in r.get("stages") or [] if st.get("reused"))
        lines.append(
            f"| {s} | {r['wall_seconds']:.0f} s ({reused}) | {load.get('start')} -> {load.get('end')} | "
            f"{r.get('stage_seconds_total')}, {r.get('stage_cpu_seconds_total')} | {r['device']} |"
        )
    lines += [
        "",
        "These tables come from calls that reused cached stages (the targets, retain models and "
        "most evaluations were made earlier, while four other jobs shared the 2 cores, one torch "
        "thread each), so their wall times say little; the CPU seconds are what the stages used. "
        "The wall time a user sees is the fresh run on an idle machine below.",
        "",
        "## The three tables",
    ]
    for s, folder, _ in runs:
        lines += ["", f"### seed {s}", "", (folder / "comparison.md").read_text().rstrip()]
    earlier = seeds(HERE, "all_at_lr_1e-4_seed*")
    return (
        "\n".join(
            lines
            + idle_run("idle_fresh_run", runs, "the default")
            + idle_run("all_at_lr_1e-4_idle_fresh_run", earlier, "every method at lr 1e-4")
            + other_settings()
        )
        + "\n"
    )


def idle_run(folder: str, runs: list[tuple[int, Path, dict]], what: str) -> list[str]:
    """``<folder>/``: the demo run again from nothing on an otherwise idle machine (the wall
    time a user sees), compared row by row with the committed table of its seed."""
    path = HERE / folder / "comparison.json"
    if not path.is_file():
        return []
    r = json.loads(path.read_text())
    seed = r["settings"]["seed"]
    same_seed = [rep for s, _, rep in runs if s == seed]
    keys = ("forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob")
    if same_seed:
        other = rows(same_seed[0])
        equal = all(
            row.get(k) == other[row["name"]].get(k) for row in r["rows"] for k in keys
        )
        verdict = (
            f"every row's {', '.join(keys)} equal to the committed seed-{seed} table of the same settings: "
            + ("yes, bit for bit" if equal else "NO")
        )
    else:
        verdict = f"no committed seed-{seed} table to compare with"
    load = r.get("load_average") or {}
    reused = sum(1 for st in r.get("stages") or [] if st.get("reused"))
    return [
        "",
        f"## One fresh run on an idle machine, {what} ([{folder}]({folder}/))",
        "",
        f"`obliviate demo --seed {seed}` into an empty folder ({reused} stages reused), nothing "
        f"else running: **{r['wall_seconds']:.0f} s wall time** on {r['device']}, 1-min load "
        f"average {load.get('start')} -> {load.get('end')}, {r.get('stage_cpu_seconds_total')} "
        f"CPU seconds; {verdict}.",
    ]


def other_settings() -> list[str]:
    """Earlier runs kept here (``<setting>_seed<S>/``, the demo's own files): the same bar."""
    groups = sorted({f.name.rsplit("_seed", 1)[0] for f in HERE.glob("*_seed*") if f.is_dir()})
    lines = []
    for group in groups:
        runs = seeds(HERE, f"{group}_seed*")
        st = runs[0][2]["settings"]
        lines += [
            "",
            f"## Also run: {group} (folders {', '.join(f'[{f.name}]({f.name}/)' for _, f, _ in runs)})",
            "",
            f"Same targets and retain models, every method at unlearning lr {st['unlearn_lr']:g}:",
            "",
            *method_lines(runs),
        ]
    return lines


if __name__ == "__main__":
    found = seeds()
    if not found:
        raise SystemExit(f"error: no {HERE.name}_seed*/comparison.json beside {HERE}")
    (HERE / "README.md").write_text(readme(found))
    print(f"wrote {HERE / 'README.md'} from seeds {[s for s, _, _ in found]}")
