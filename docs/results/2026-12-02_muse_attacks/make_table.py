"""Write README.md here from the reports copied beside it by run_muse_attacks.py
(<model>.relearn.json): before -> after of every MUSE metric and the recovered shares.

    PYTHONPATH=src python docs/results/2026-12-02_muse_attacks/make_table.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = ("target", "retain", "SimNPO", "GradDiff", "NPO", "GradAscent")
COLUMNS = (  # (summary key, header)
    ("forget_verbmem_ROUGE", "verbmem_f ↓ (kept items)"),
    ("forget_knowmem_ROUGE", "knowmem_f ↓ (all items)"),
    ("extraction_strength", "ES forget ↓ (kept items)"),
    ("mia_min_k", "min-k AUC"),
    ("privleak", "privleak →0"),
    ("retain_knowmem_ROUGE", "knowmem_r ↑"),
)
RECOVERED = ("forget_verbmem_ROUGE", "forget_knowmem_ROUGE")


def fmt(v: float | None, key: str) -> str:
    if v is None:
        return "null"
    return f"{v:.1f}" if key == "privleak" else f"{v:.3f}"


def pair(s: dict, key: str) -> str:
    return f"{fmt(s.get(f'muse/{key}_before'), key)} → {fmt(s.get(f'muse/{key}_after'), key)}"


def share(rep: dict, key: str) -> str:
    v = ((rep.get("recovery") or {}).get(key) or {}).get("recovered_share")
    return "—" if v is None else f"{v:+.0%}"


def target(rep: dict) -> str:
    rec = rep.get("recovery") or {}
    values = [(rec.get(k) or {}).get("target") for k in RECOVERED]
    return " / ".join("—" if v is None else f"{v:.3f}" for v in values)


def row(model: str, rep: dict) -> str:
    s = rep["summary"]
    cells = [pair(s, key) for key, _ in COLUMNS]
    cells[1:1] = [share(rep, RECOVERED[0])]  # verbmem's recovered share after it
    cells[3:3] = [share(rep, RECOVERED[1])]  # knowmem's
    steps = rep["settings"]["steps"]
    return f"| {model} | {steps} | " + " | ".join(cells) + f" | {target(rep)} |"


def main() -> None:
    reports = {m: json.loads(p.read_text()) for m in MODELS if (p := HERE / f"{m}.relearn.json").is_file()}  # fmt: skip
    first = next(iter(reports.values()))
    settings = first["settings"]
    header = [h for _, h in COLUMNS]
    header[1:1], header[3:3] = ["recovered"], ["recovered"]
    lines = [
        "# Relearning attack under MUSE on the MUSE demo's models (CPU, 2026-12-02)",
        "",
        "The models of `obliviate demo --benchmark muse --unlearn-epochs 8` (SmolLM2-135M-Instruct, "
        "built-in MUSE-shaped news, 4 articles per group, seed 0), each attacked by "
        "`run_muse_attacks.py` through `run_eval` with the demo's evaluation settings (32-token "
        "verbmem continuations, bf16 autocast, the demo's retain-model evaluation as privleak's "
        "reference): `steps` AdamW steps (20 for the target's run, which came first and took "
        f"16 min, 10 for the others; lr {settings['lr']:g}, batch {settings['batch_size']}) "
        f"on a seeded {settings['fraction']:.0%} of the forget verbmem "
        f"items (items {first['forget_items_used']} of 4, as text, loss on every token), then "
        "the MUSE suite again. Each cell is unattacked → attacked, on the same items: verbmem_f "
        "and extraction strength without the trained item(s), knowmem_f on all 16 QA pairs "
        "(never trained on, but some ask about the trained article: docs/attacks.md, MUSE), "
        "min-k / privleak on all privleak texts (the trained article is one of the 4 members). "
        "`recovered` = (after − before) / (target − before) with the target's level on the same "
        "items (the demo's evaluation of the target, last column: verbmem_f / knowmem_f); — where "
        "the target is not above the model by 0.001. Written by `make_table.py` from the JSON "
        "files here.",
        "",
        "| model | steps | " + " | ".join(header) + " | target's verbmem_f / knowmem_f |",
        "|---|---|" + "---|" * (len(header) + 1),
    ]
    lines += [row(m, rep) for m, rep in reports.items()]
    lines.append("")
    for m, rep in reports.items():
        info = rep["info"]
        losses = info["losses"]
        lines.append(
            f"- {m}: loss of step 1 {losses[0]:.3f}, mean of the last 5 "
            f"{np.mean(losses[-5:]):.3f} ({info['n_items']} chunk(s)); "
            f"attack {info['attack_seconds']:.0f} s"
        )
    missing = [m for m in MODELS if m not in reports]
    if missing:
        lines += ["", f"Not run (time): {', '.join(missing)}."]
    (HERE / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
