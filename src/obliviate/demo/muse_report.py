"""The MUSE demo's comparison: one row per model from its MUSE_SUMMARY.json, a markdown table,
verdicts that state what the numbers show, and a plot (forget memorisation vs utility)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from obliviate.utils.io import atomic_write_json, atomic_write_text

COLUMNS = (
    ("forget_verbmem_ROUGE", "verbmem forget ↓"),
    ("forget_knowmem_ROUGE", "knowmem forget ↓"),
    ("retain_knowmem_ROUGE", "knowmem retain ↑"),
    ("extraction_strength", "ES forget ↓"),
    ("mia_min_k", "min-k AUC"),
    ("privleak", "privleak →0"),
)


def load_row(name: str, eval_file: Path) -> dict[str, Any]:
    res = json.loads(Path(eval_file).read_text())
    row: dict[str, Any] = {"name": name, "eval_file": str(eval_file)}
    row.update({key: res[key]["agg_value"] for key, _ in COLUMNS if key in res})
    row["n"] = res.get("eval_info", {}).get("n_per_split")
    return row


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    """What the table shows, in words: does the target memorise, does each method forget, and
    what does it cost the retain knowledge."""
    by = {r["name"]: r for r in rows}
    t, r = by["target"], by["retain"]
    key = "forget_verbmem_ROUGE"
    lines = [
        f"target memorises the forget articles: verbmem {t[key]:.3f} vs the retain model's "
        f"{r[key]:.3f} ({'yes' if t[key] > r[key] + 0.1 else 'NOT clearly'})"
    ]
    for row in rows[2:]:
        lines.append(
            f"{row['name']}: verbmem {t[key]:.3f} -> {row[key]:.3f}, knowmem forget "
            f"{t['forget_knowmem_ROUGE']:.3f} -> {row['forget_knowmem_ROUGE']:.3f}, knowmem retain "
            f"{t['retain_knowmem_ROUGE']:.3f} -> {row['retain_knowmem_ROUGE']:.3f}"
            + ("" if row[key] < t[key] else "  (verbmem NOT lowered)")
        )
    return lines


def build(rows: list[dict[str, Any]], meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "rows": rows, "verdicts": verdicts(rows)}


def _fmt(v: Any) -> str:
    return "null" if v is None else f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def markdown(report: dict[str, Any]) -> str:
    head = "| model | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [f"# {report['title']}", "", f"{report['model']}, {report['data']}", "", head]
    lines.append("|" + "---|" * (len(COLUMNS) + 1))
    for row in report["rows"]:
        lines.append(
            f"| {row['name']} | " + " | ".join(_fmt(row.get(k)) for k, _ in COLUMNS) + " |"
        )
    lines += ["", *[f"- {v}" for v in report["verdicts"]], ""]
    load = report.get("load_average") or {}
    lines.append(
        f"Wall time {report['wall_seconds']:.0f} s on {report.get('cpu_count')} CPU cores "
        f"(1-min load average {load.get('start')} at the start, {load.get('end')} at the end); "
        f"all stages when they ran: {report.get('stage_seconds_total')} s wall, "
        f"{report.get('stage_cpu_seconds_total')} s CPU."
    )
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path | None:
    """Left: forget verbmem against retain knowmem; right: privleak per model."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.setdefault("notes", []).append("matplotlib not installed: no plot")
        return None
    rows = report["rows"]
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.5))
    for r in rows:
        for y, marker in (("forget_verbmem_ROUGE", "o"), ("forget_knowmem_ROUGE", "s")):
            ax.scatter(r["retain_knowmem_ROUGE"], r[y], marker=marker, s=60)
        ax.annotate(r["name"], (r["retain_knowmem_ROUGE"], r["forget_verbmem_ROUGE"]),
                    textcoords="offset points", xytext=(5, 4), fontsize="small")  # fmt: skip
    ax.set_xlabel("retain knowmem ROUGE (utility, higher is better)")
    ax.set_ylabel("forget ROUGE: verbmem (o), knowmem (s); lower = forgotten")
    ax.grid(True, alpha=0.3)
    leak = [(r["name"], r["privleak"]) for r in rows if r.get("privleak") is not None]
    bx.bar([n for n, _ in leak], [v for _, v in leak], color="tab:gray")
    bx.axhline(0, color="black", lw=0.8)
    bx.set_ylabel("privleak (near 0 is best)")
    bx.tick_params(axis="x", rotation=30)
    fig.suptitle(f"MUSE demo: {report['model']}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(report: dict[str, Any], out: Path) -> dict[str, Path]:
    files = {}
    png = plot(report, out / "muse_demo.png")
    if png is not None:
        files["plot"] = png
    atomic_write_text(out / "muse_demo.md", markdown(report))
    atomic_write_json(out / "muse_demo.json", report)
    files["table"], files["json"] = out / "muse_demo.md", out / "muse_demo.json"
    return files
