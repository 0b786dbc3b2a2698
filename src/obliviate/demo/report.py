"""The comparison of several evaluated models: a table (markdown + JSON) and a plot.

Each row is one ``TOFU_EVAL.json``. The columns are the headline numbers a reader compares,
each with its direction (see docs of :mod:`obliviate.eval.tofu_eval`): forget_quality (the KS
p-value against the retain model; higher is better, 1.0 = like a model that never saw the
forget set), model_utility, and the forget-side truth ratio, probability and ROUGE-L, plus the
retain-side probability and ROUGE-L.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from obliviate.errors import ConfigError
from obliviate.eval import metrics as M
from obliviate.eval import retain_log as RL
from obliviate.utils.io import atomic_write_json, atomic_write_text

# (metric key, short direction for the table header, what the direction means)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("forget_quality", "↑", "higher is better; 1.0 = indistinguishable from the retain model"),
    ("model_utility", "↑", "higher is better"),
    ("forget_truth_ratio", "→", "toward the retain model's value"),
    ("forget_Q_A_Prob", "↓", "lower = more forgotten"),
    ("forget_Q_A_ROUGE", "↓", "lower = more forgotten"),
    ("retain_Q_A_Prob", "↑", "higher is better"),
    ("retain_Q_A_ROUGE", "↑", "higher is better"),
)
KINDS = ("target", "retain", "method", "model")


@dataclass
class Row:
    name: str
    kind: str  # target (before unlearning), retain (never saw the forget set), method, model
    eval_dir: Path
    values: dict[str, float | None]
    n_forget: int | None
    forget_split: str | None
    notes: list[str] = field(default_factory=list)


def find_eval_file(folder: Path) -> Path:
    """``folder/TOFU_EVAL.json``, or ``folder/evals/TOFU_EVAL.json`` (the guide's run layout)."""
    for path in (folder / "TOFU_EVAL.json", folder / "evals" / "TOFU_EVAL.json"):
        if path.is_file():
            return path
    raise ConfigError(
        f"'{folder}' holds no TOFU_EVAL.json (nor evals/TOFU_EVAL.json); evaluate the model first "
        "(obliviate eval ... paths.output_dir=<folder>)"
    )


def load_row(
    name: str,
    kind: str,
    eval_path: Path,
    retain_log: dict[str, Any] | None = None,
    retain_log_path: str | None = None,
) -> Row:
    """One row from a ``TOFU_EVAL.json``. Where the evaluation has no forget_quality (it ran
    without a retain log) and ``retain_log`` is given, forget_quality is computed here from the
    per-item truth ratios, with the same checks and the same KS test as the evaluator."""
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r}; use one of {KINDS}")
    res = json.loads(Path(eval_path).read_text())
    values = {key: (res.get(key) or {}).get("agg_value") for key, _, _ in COLUMNS}
    info = res.get("eval_info") or {}
    n_forget = (res.get("forget_truth_ratio") or {}).get("n")
    row = Row(name, kind, Path(eval_path).parent, values, n_forget, info.get("forget_split"))
    row.values.update(attack_values(Path(eval_path).parent))
    if values["forget_quality"] is None and retain_log is not None:
        per_item = (res.get("forget_truth_ratio") or {}).get("value_by_index") or {}
        ours = np.array([per_item[str(i)]["score"] for i in range(len(per_item))], dtype=float)
        ref = RL.retain_truth_ratios(
            retain_log,
            retain_log_path or "?",
            str(info.get("forget_split")),
            len(ours),
            info.get("max_items"),
        )
        values["forget_quality"] = M.forget_quality(ours[~np.isnan(ours)], ref[~np.isnan(ref)])
        row.notes.append("forget_quality computed by the report from the per-item truth ratios")
    return row


def attack_values(folder: Path) -> dict[str, Any]:
    """``attack/<name>/<metric>`` from each ATTACK_<name>.json beside the evaluation (the
    attacks of docs/attacks.md): extra columns of the table."""
    out = {}
    for path in sorted(folder.glob("ATTACK_*.json")):
        report = json.loads(path.read_text())
        for metric, value in (report.get("summary") or {}).items():
            out[f"attack/{report.get('attack')}/{metric}"] = value
    return out


def build_report(rows: list[Row], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON form: metadata, the columns with their directions, the rows, and verdicts."""
    splits = {r.forget_split for r in rows if r.forget_split}
    sizes = {r.n_forget for r in rows if r.n_forget}
    if len(splits) > 1 or len(sizes) > 1:
        raise ConfigError(
            f"the evaluations compare different forget sets ({sorted(splits)}, n={sorted(sizes)}); "
            "forget_quality is only comparable on the same split and size"
        )
    return {
        **meta,
        "forget_split": next(iter(splits), None),
        "n_forget": next(iter(sizes), None),
        "columns": [{"metric": k, "direction": d, "meaning": m} for k, d, m in COLUMNS]
        + [
            {"metric": k, "direction": "", "meaning": "attack report (docs/attacks.md)"}
            for k in dict.fromkeys(k for r in rows for k in r.values if k.startswith("attack/"))
        ],
        "rows": [
            {
                "name": r.name,
                "kind": r.kind,
                "eval_dir": str(r.eval_dir),
                **r.values,
                **({"notes": r.notes} if r.notes else {}),
            }
            for r in rows
        ],
        "verdicts": verdicts(rows),
    }


def verdicts(rows: list[Row], fq_factor: float = 10.0, mu_tolerance: float = 0.1) -> list[str]:
    """Plain-language reading of the table: how far the target is from the retain model, and
    which methods raised forget_quality by ``fq_factor`` or more while keeping model_utility
    within ``mu_tolerance`` of the target's."""
    target = next((r for r in rows if r.kind == "target"), None)
    retain = next((r for r in rows if r.kind == "retain"), None)
    out = []
    if target is None or target.values["forget_quality"] is None:
        return out
    fq_t, mu_t = target.values["forget_quality"], target.values["model_utility"]
    if retain is not None and retain.values["forget_quality"] is not None:
        out.append(
            f"target forget_quality {_fmt(fq_t)} vs the retain model's {_fmt(retain.values['forget_quality'])} "
            "(1.0 = forget-set answers scored like a model that never saw them)"
        )
    for r in rows:
        if r.kind != "method":
            continue
        fq, mu = r.values["forget_quality"], r.values["model_utility"]
        if fq is None or mu is None or mu_t is None:
            continue
        ratio = fq / fq_t if fq_t > 0 else math.inf
        kept = mu >= mu_t - mu_tolerance  # a gain in utility is not a loss
        ok = ratio >= fq_factor and kept
        out.append(
            f"{r.name}: forget_quality x{ratio:.3g} of the target's, model_utility {mu - mu_t:+.3f} "
            + (
                f"-> forgets (>= x{fq_factor:g}) and keeps utility (within {mu_tolerance})"
                if ok
                else ("-> utility lost" if not kept else f"-> forgets less than x{fq_factor:g}")
            )
        )
    return out


def _fmt(v: float | None, key: str = "forget_quality") -> str:
    if v is None:
        return "—"
    if "forget_quality" in key:
        return f"{v:.3g}" if v >= 1e-2 or v == 0 else f"{v:.2e}"
    return f"{v:.3f}"


def markdown(report: dict[str, Any]) -> str:
    """The table as GitHub markdown, with a legend for the directions."""
    cols = report["columns"]
    head = "| model | " + " | ".join(f"{c['metric']} {c['direction']}" for c in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 1)]
    for row in report["rows"]:
        cells = [_fmt(row.get(c["metric"]), c["metric"]) for c in cols]
        name = (
            row["name"]
            if row["kind"] in ("method", row["name"])
            else f"{row['name']} ({row['kind']})"
        )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    legend = "; ".join(f"{c['direction']} {c['metric']}: {c['meaning']}" for c in cols[:3])
    lines += [
        "",
        f"Forget split {report.get('forget_split')} (n={report.get('n_forget')} items). {legend}; "
        "↓ forget-side Prob/ROUGE: lower = more forgotten; ↑ retain-side: higher is better. "
        "forget_quality is a KS-test p-value: compare it only within one table.",
    ]
    if report.get("verdicts"):
        lines += ["", *[f"- {v}" for v in report["verdicts"]]]
    if report.get("settings"):
        lines += ["", settings_line(report)]
    return "\n".join(lines) + "\n"


def settings_line(report: dict[str, Any]) -> str:
    """The demo's own settings (what differs from a TOFU run) and its cost, in one paragraph."""
    st = report["settings"]
    text = (
        f"Demo settings: {report.get('data')}, {st['forget_authors']} forgotten; finetuning "
        f"{st['epochs']:g} epochs at lr {st['lr']:g}, batch {st['batch_size']}; unlearning "
        f"{st['unlearn_epochs']:g} epoch(s) at lr {st['unlearn_lr']:g}"
        + "".join(f", {m} at lr {lr:g}" for m, lr in (st.get("method_lr") or {}).items())
        + ", batch "
        f"{st['unlearn_batch_size']} (each forget item paired with a retain item), warm-up "
        f"{st['warmup_epochs']:g} epoch; {st['utility_items']} items per utility split, "
        f"{st['max_new_tokens']}-token answers"
        + ("; bf16 autocast" if report.get("bf16_autocast") else "")
        + ". Methods at their configs' defaults (configs/trainer/<method>.yaml): "
        + "; ".join(
            f"{m} " + (", ".join(f"{k} {v}" for k, v in args.items()) or "(no arguments)")
            for m, args in (report.get("method_args") or {}).items()
        )
        + "."
    )
    if report.get("wall_seconds") is not None:
        load = report.get("load_average") or {}
        text += (
            f" Wall time {report['wall_seconds']:.0f} s on {report.get('device')}"
            f" (1-min load average {load.get('start')} -> {load.get('end')})"
        )
        reused = sum(1 for st in report.get("stages") or [] if st.get("reused"))
        if reused:
            text += f"; {reused} of {len(report['stages'])} stages reused from an earlier run"
        if report.get("stage_cpu_seconds_total") is not None:
            text += (
                f"; all stages together took {report.get('stage_seconds_total', 0):.0f} s wall, "
                f"{report['stage_cpu_seconds_total']:.0f} CPU seconds"
            )
        text += "."
    return text


def plot(report: dict[str, Any], path: Path) -> Path | None:
    """forget_quality (log scale) against model_utility, one point per row, saved to ``path``.
    Returns None (and says why in the report) when matplotlib is missing or no row has both
    numbers."""
    drawn = figure(report)
    if drawn is None:
        return None
    fig, _ = drawn
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def figure(report: dict[str, Any]) -> tuple[Any, list[Any]] | None:
    """The plot's figure and its point labels (matplotlib ``Annotation`` s), labels placed so
    that no two boxes overlap, also when two rows sit on the same point."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        report.setdefault("notes", []).append("matplotlib not installed: no plot")
        return None
    points = [
        r
        for r in report["rows"]
        if r.get("forget_quality") is not None and r.get("model_utility") is not None
    ]
    if not points:
        report.setdefault("notes", []).append("no row has forget_quality and model_utility")
        return None
    style = {
        "target": {"marker": "X", "color": "tab:red", "s": 120},
        "retain": {"marker": "*", "color": "tab:green", "s": 220},
    }
    fig, ax = plt.subplots(figsize=(7, 5))
    # Methods never take the target's red or the retain model's green.
    palette = ["tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:cyan"]
    colors = iter(palette + ["tab:olive", "tab:gray"] * 8)
    labels = []
    for r in points:
        st = style.get(r["kind"]) or {"marker": "o", "color": next(colors), "s": 70}
        fq = max(r["forget_quality"], 1e-300)  # 0 cannot sit on a log axis
        label = r["name"] if r["kind"] in ("method", r["name"]) else f"{r['name']} ({r['kind']})"
        ax.scatter([r["model_utility"]], [fq], label=label, zorder=3, **st)
        labels.append(
            ax.annotate(
                r["name"], (r["model_utility"], fq), textcoords="offset points", xytext=(6, 4)
            )
        )
    labels += _attacked_points(ax, report["rows"])
    ax.set_yscale("log")
    ax.set_xlabel("model_utility (higher is better)")
    ax.set_ylabel("forget_quality, KS p-value (log; higher is better)")
    title = f"{report.get('model', '')}  {report.get('forget_split')} (n={report.get('n_forget')})"
    ax.set_title(title.strip())
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    separate_labels(fig, labels)
    return fig, labels


def _attacked_points(ax: Any, rows: list[dict[str, Any]]) -> list[Any]:
    """Each row's attacked model (ATTACK_<name>.json: forget_quality and model_utility after
    the attack) as a hollow point labelled "<row> +<attack>"."""
    labels = []
    for r in rows:
        names = dict.fromkeys(k.split("/")[1] for k in r if k.startswith("attack/"))
        for a in names:
            fq = r.get(f"attack/{a}/forget_quality_after")
            mu = r.get(f"attack/{a}/model_utility_after")
            if fq is None or mu is None:
                continue
            xy = (mu, max(fq, 1e-300))
            ax.scatter(*xy, marker="o", facecolors="none", edgecolors="black", s=70, zorder=3)
            labels.append(
                ax.annotate(f"{r['name']} +{a}", xy, textcoords="offset points", xytext=(6, 4))
            )
    return labels


def separate_labels(fig: Any, labels: list[Any], gap_points: float = 1.0) -> None:
    """Move each label down, a line at a time, until its box meets no earlier label's box
    (coinciding or close points would otherwise print their names on top of each other)."""
    renderer = fig.canvas.get_renderer()
    to_points = 72.0 / fig.dpi  # label offsets are in points, extents in pixels
    placed = []
    for ann in labels:
        for _ in range(4 * len(labels)):  # enough steps to clear every earlier label
            box = ann.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            dx, dy = ann.xyann
            ann.xyann = (dx, dy - box.height * to_points - gap_points)
        placed.append(ann.get_window_extent(renderer))


def write_report(rows: list[Row], out: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """``comparison.json``, ``comparison.md`` and ``comparison.png`` in ``out``."""
    report = build_report(rows, meta)
    files = {}
    png = plot(report, out / "comparison.png")
    if png is not None:
        files["plot"] = png
    atomic_write_text(out / "comparison.md", markdown(report))
    atomic_write_json(out / "comparison.json", report)
    files["table"] = out / "comparison.md"
    files["json"] = out / "comparison.json"
    return files
