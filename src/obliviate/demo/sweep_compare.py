"""``obliviate compare <sweep folder> [--target EVAL] [--rule RULE]``: every point of a sweep in
one table (its overrides, the benchmark's headline metrics, attack columns, training cost), the
point a stated rule selects, and a plot with the target and retain models.

Writes ``comparison.md``, ``comparison.json`` and ``comparison.png`` (default: in
``<sweep folder>/compare``) and prints the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from obliviate.demo.report import separate_labels
from obliviate.sweep import select as S
from obliviate.sweep import table as T
from obliviate.utils.io import atomic_write_json, atomic_write_text

TOFU_COLUMNS = (
    "forget_quality", "model_utility", "forget_truth_ratio", "forget_Q_A_Prob",
    "forget_Q_A_ROUGE", "extraction_strength", "exact_memorization", "privleak",
)  # fmt: skip
MUSE_COLUMNS = (*S.MUSE_KEYS, "privleak")
COST_COLUMNS = tuple(short for _, short in T.COST_KEYS)


def run_sweep_compare(sweep_dir: Path, target: Path | None = None, retain: Path | None = None,
                      rule: str = "default", out: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Build, write and print the sweep's comparison; returns the report (comparison.json)."""
    sweep, rows = T.sweep_rows(Path(sweep_dir))
    target_row = T.model_row(target, "target", "target") if target else None
    retain_row = T.model_row(retain, "retain", "retain") if retain else None
    if retain:  # rows evaluated without the retain log (the retain model's own, too)
        for r in [*rows, *(x for x in (target_row, retain_row) if x)]:
            fill_forget_quality(r, Path(retain))
    sel = S.select(rows, rule, target_row, retain_row)
    if rule.startswith(("max:", "min:")):  # the expression's value, as its own column
        for r, score in zip(rows, sel.scores or [], strict=False):
            r["rule/score"] = score
    if rule == "hmean":
        for r in rows:
            r.update(
                {f"hmean/{k}": v for k, v in S.hmean_scores(r, target_row, retain_row).items()}
            )
    refs = [r for r in (target_row, retain_row) if r]
    columns = metric_columns(rows + refs, rule)
    report = {
        "title": "obliviate compare (sweep)",
        "sweep": str(sweep_dir),
        "task_name": sweep.get("task_name"),
        "command": sweep.get("command"),
        "swept": sweep.get("swept"),
        "rule": rule,
        "rule_text": sel.rule,
        "selected": rows[sel.index]["name"] if sel.index is not None else None,
        "selected_run_dir": rows[sel.index]["run_dir"] if sel.index is not None else None,
        "notes": sel.notes,
        "columns": columns,
        "rows": [{**r, "selected": i == sel.index} for i, r in enumerate(rows)] + refs,
    }
    out = Path(out) if out else Path(sweep_dir) / "compare"
    png = plot(report, out / "comparison.png")  # first: a plot it cannot draw adds a note
    text = markdown(report)
    atomic_write_text(out / "comparison.md", text)
    atomic_write_json(out / "comparison.json", report)
    print(text)
    for path in (out / "comparison.md", out / "comparison.json", png):
        if path:
            print(f"wrote {path}")
    return report


def fill_forget_quality(row: dict[str, Any], retain_log_path: Path) -> None:
    """forget_quality from the row's per-item truth ratios and the retain log, where its TOFU
    evaluation ran without one (the same checks and KS test as the evaluation)."""
    from obliviate.demo.report import load_row
    from obliviate.eval.retain_log import load_retain_log

    folder = Path(row["run_dir"])
    eval_file = (
        folder / "TOFU_EVAL.json" if row["kind"] != "point" else folder / "evals/TOFU_EVAL.json"
    )
    if row.get("forget_quality") is not None or not eval_file.is_file():
        return
    log = load_retain_log(str(retain_log_path))
    filled = load_row(row["name"], "model", eval_file, log, str(retain_log_path))
    row["forget_quality"] = filled.values["forget_quality"]


def metric_columns(rows: list[dict[str, Any]], rule: str) -> list[str]:
    """The benchmark's headline columns, then other suites' and attacks' (``x/y`` names), then
    the rule's parts (hmean), then cost; only columns some row has a value in."""
    head = MUSE_COLUMNS if S.is_muse(rows) else TOFU_COLUMNS
    extra = sorted(
        {k for r in rows for k in r if "/" in k and not k.startswith("hmean/")} - set(COST_COLUMNS)
    )
    parts = (
        [f"hmean/{k}" for k in ("memorisation", "privacy", "utility", "agg")]
        if rule == "hmean"
        else []
    )
    cols = [*head, *extra, *parts, *COST_COLUMNS]
    return [c for c in cols if any(r.get(c) is not None for r in rows)]


def _fmt(v: Any, key: str) -> str:
    if v is None:
        return "—"
    if not isinstance(v, (int, float)):
        return str(v)
    if key == "FLOPs":
        return f"{v:.2e}"
    if key in ("train_s", "tokens/s", "peak_MiB"):
        return f"{v:.0f}"
    if v != 0 and abs(v) < 1e-2:
        return f"{v:.2e}"
    return f"{v:.3g}" if key == "forget_quality" else f"{v:.4g}"


def markdown(report: dict[str, Any]) -> str:
    cols = report["columns"]
    lines = [
        f"Sweep `{report['sweep']}` ({report.get('task_name')}), swept: {', '.join(report.get('swept') or [])}.",
        "",
        "| point | status | " + " | ".join(cols) + " |",
        "|" + "---|" * (len(cols) + 2),
    ]
    for r in report["rows"]:
        name = f"**{r['name']}** ◀ selected" if r.get("selected") else r["name"]
        if r["kind"] != "point":
            name = f"{r['name']} (reference)"
        lines.append(
            f"| {name} | {r.get('status')} | " + " | ".join(_fmt(r.get(c), c) for c in cols) + " |"
        )
    chosen = report["selected"] or "none"
    lines += ["", f"Selection rule ({report['rule']}): {report['rule_text']}. Selected: {chosen}."]
    lines += [f"- {n}" for n in report["notes"]]
    lines += ["", "Cost columns come from each run's receipt.json (efficiency): train_s = trainer.train() "
              "wall seconds, s/step, tokens/s = training tokens per second, peak_MiB = peak CPU RSS or "
              "CUDA max allocated, FLOPs = 6·N·train tokens + 2·N·forward-only tokens (estimate)."]  # fmt: skip
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path | None:
    """Forget side against utility: every point, the target and retain models, the selected
    point ringed. TOFU: forget_quality (log) vs model_utility; MUSE: mean forget ROUGE vs
    retain knowmem ROUGE."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report["notes"].append("matplotlib not installed: no plot")
        return None
    muse = S.is_muse(report["rows"])
    xkey = "retain_knowmem_ROUGE" if muse else "model_utility"

    def y_of(r: dict[str, Any]) -> float | None:
        if muse:
            return S._mean(r.get("forget_verbmem_ROUGE"), r.get("forget_knowmem_ROUGE"))
        fq = r.get("forget_quality")
        return max(fq, 1e-300) if S._num(fq) else None  # 0 cannot sit on a log axis

    drawn = [(r, r.get(xkey), y_of(r)) for r in report["rows"]]
    drawn = [(r, x, y) for r, x, y in drawn if S._num(x) and y is not None and math.isfinite(y)]
    if not drawn:
        report["notes"].append(f"no row has {xkey} and the forget-side metric: no plot")
        return None
    fig, ax = plt.subplots(figsize=(7.5, 5))
    style = {
        "target": ("X", "tab:red", 130),
        "retain": ("*", "tab:green", 230),
        "point": ("o", "tab:blue", 60),
    }
    labels = []
    for r, x, y in drawn:
        marker, color, size = style.get(r["kind"], style["point"])
        ax.scatter([x], [y], marker=marker, color=color, s=size, zorder=3,
                   edgecolors="black" if r.get("selected") else "none", linewidths=1.5)  # fmt: skip
        if r.get("selected"):
            ax.scatter([x], [y], marker="o", s=400, facecolors="none", edgecolors="tab:orange",
                       linewidths=2.5, zorder=4, label=f"selected: {r['name']}")  # fmt: skip
        label = r["name"] if r["kind"] == "point" else f"{r['kind']} model"
        labels.append(
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
        )
    for kind, (marker, color, size) in style.items():
        ax.scatter(
            [],
            [],
            marker=marker,
            color=color,
            s=size * 0.6,
            label={"point": "sweep point"}.get(kind, f"{kind} model"),
        )
    if not muse:
        ax.set_yscale("log")
    ax.set_xlabel(f"{xkey} (higher is better)")
    ax.set_ylabel("mean forget verbmem/knowmem ROUGE (lower = more forgotten)" if muse
                  else "forget_quality, KS p-value (log; higher is better)")  # fmt: skip
    ax.set_title(f"sweep {report.get('task_name')}: rule {report['rule']}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    separate_labels(fig, labels)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
