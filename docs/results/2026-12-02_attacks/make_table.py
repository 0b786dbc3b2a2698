"""Write README.md here from the ATTACK_<name>.json files copied beside it by run_attacks.py
(<model>.<attack>.json): one table per attack, before -> after and the recovered share.

forget_quality is computed here for every row from the per-item forget truth ratios
(<model>.<attack>.truth_ratios.json) against the retain model's (retain_log.truth_ratios.json,
from the demo's saves/demo/evals/retain/TOFU_EVAL.json), on the same items — the relearning
sample removed from both; where a report has forget_quality itself, the two must agree.

    PYTHONPATH=src python docs/results/2026-12-02_attacks/make_table.py
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from obliviate.eval.metrics import forget_quality

HERE = Path(__file__).resolve().parent
MODELS = ("target", "retain", "SimNPO", "NPO", "GradDiff", "GradAscent")
TITLES = {
    "relearn": "Relearning: 20 AdamW steps (lr 1e-4, batch 4) on a seeded 25% of the forget "
    "items (10 of 40), evaluated on the other 30",
    "quantize": "4-bit quantization: torchao int4 weight-only, symmetric, group size 64 "
    "(every Linear but the LM head), all 40 forget items",
    "nf4": "4-bit quantization: bitsandbytes NF4 (QLoRA's 4-bit normal-float codebook), block size 64, "
    "no double quantization (every Linear but the LM head), all 40 forget items",
}


def fmt(v: float | None, key: str) -> str:
    if v is None:
        return "—"
    if key == "forget_quality":
        return f"{v:.3g}" if v >= 1e-2 or v == 0 else f"{v:.2e}"
    return f"{v:.3f}"


def pair(s: dict, key: str) -> str:
    return f"{fmt(s.get(key + '_before'), key)} → {fmt(s.get(key + '_after'), key)}"


def share(rep: dict, key: str) -> str:
    r = (rep.get("recovery") or {}).get(key) or {}
    v = r.get("recovered_share")
    return "—" if v is None else f"{v:+.0%}"


def add_forget_quality(model: str, attack: str, rep: dict) -> None:
    """forget_quality before / after into ``rep["summary"]`` (checked against the report's)."""
    path = HERE / f"{model}.{attack}.truth_ratios.json"
    ref_path = HERE / "retain_log.truth_ratios.json"
    if not (path.is_file() and ref_path.is_file()):
        return
    ratios, ref = json.loads(path.read_text()), np.array(json.loads(ref_path.read_text()))
    ref = np.delete(ref, rep.get("forget_items_used") or [])
    for when in ("before", "after"):
        ours = np.array(ratios[when], dtype=float)
        value = forget_quality(ours[~np.isnan(ours)], ref[~np.isnan(ref)])
        key = f"forget_quality_{when}"
        if rep["summary"].get(key) is not None:
            assert math.isclose(rep["summary"][key], value, rel_tol=1e-9), (model, attack, key)
        rep["summary"][key] = value


def table(attack: str) -> list[str]:
    lines = [
        f"### {TITLES[attack]}",
        "",
        "| model | forget_Q_A_Prob | recovered | forget_Q_A_ROUGE | recovered | "
        "forget_quality | model_utility | target's Prob / ROUGE on these items |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for model in MODELS:
        path = HERE / f"{model}.{attack}.json"
        if not path.is_file():
            lines.append(f"| {model} | not run | | | | | | |")
            continue
        rep = json.loads(path.read_text())
        add_forget_quality(model, attack, rep)
        s, rec = rep["summary"], rep.get("recovery") or {}
        target = " / ".join(
            fmt((rec.get(k) or {}).get("target"), k)
            for k in ("forget_Q_A_Prob", "forget_Q_A_ROUGE")
        )
        lines.append(
            f"| {model} | {pair(s, 'forget_Q_A_Prob')} | {share(rep, 'forget_Q_A_Prob')} | "
            f"{pair(s, 'forget_Q_A_ROUGE')} | {share(rep, 'forget_Q_A_ROUGE')} | "
            f"{pair(s, 'forget_quality')} | {pair(s, 'model_utility')} | {target} |"
        )
    return lines


def details(attack: str) -> list[str]:
    out = []
    for model in MODELS:
        path = HERE / f"{model}.{attack}.json"
        if path.is_file():
            info = json.loads(path.read_text())["info"]
            if attack == "relearn":
                losses = info["losses"]
                first, last = np.mean(losses[:5]), np.mean(losses[-5:])
                text = f"mean loss of steps 1-5 {first:.3f} → of the last 5 {last:.3f}"
            elif info["library"] == "torchao":
                text = (
                    f"{info['library']} {info['library_version']}, {info['quantized_modules']} "
                    f"modules, largest weight change {info['max_change_in_half_steps']:.3f} half-steps"
                )
            else:
                text = (
                    f"{info['library']} {info['library_version']} {info['scheme']}, "
                    f"{info['quantized_modules']} modules, largest weight change "
                    f"{info['max_change_over_block_absmax']:.3f} x block absmax (bound "
                    f"{info['bound_over_block_absmax']:.3f})"
                )
            out.append(f"- {model}: {text}; attack {info['attack_seconds']:.0f} s")
    return out


def main() -> None:
    used = None
    for model in MODELS:
        path = HERE / f"{model}.relearn.json"
        if path.is_file():
            used = json.loads(path.read_text())["forget_items_used"]
            break
    lines = [
        "# Relearning and quantization attacks on the demo's models (CPU, 2026-12-02)",
        "",
        "The models of `obliviate demo` (default settings, seed 0: SmolLM2-135M-Instruct, 5 "
        "built-in fictitious authors, forget40 = the last 2 authors, n = 40 items), each attacked "
        "by `run_attacks.py` through `run_eval` with the demo's evaluation settings (8 items per "
        "utility split, 32-token answers, bf16 autocast, the retain model's log for "
        "forget_quality). Each cell is unattacked → attacked, on the same items. `recovered` = "
        "(after − before) / (target − before): the share of the gap to the target (the model "
        "before unlearning) that the attack closed; — where the target is not above the model by "
        "0.001 (nothing to recover). Written by `make_table.py` from the JSON files here. "
        "See [docs/attacks.md](../../attacks.md) for what the attacks do and what this shows.",
        "",
        "Runs: on a 2-core CPU heavily shared with other jobs, one attack run at a time per "
        "process (two evaluations plus the attack; `attack_seconds` below is the attack alone). "
        "The target and "
        "the retain model come from `obliviate demo`; the SimNPO and GradDiff models from the "
        'demo\'s own unlearning stages (`demo_stages(DemoOptions())["unlearn:<method>"]`, the '
        "same configs and cache markers), run in a second process ahead of the demo; NPO's relearning, "
        "GradAscent's two runs and the retain model's evaluation (forget_quality's reference) "
        "came after the demo's other stages, on a less loaded machine. forget_quality is "
        "computed against that evaluation. The `nf4` runs came later the same day (one after "
        "the other, `run_attacks.py <model>:nf4`, with three other jobs on the machine) on the "
        "models of a fresh `obliviate demo` run of the same seed; their unattacked columns equal "
        "the torchao runs' to the last digit, so the models are the same.",
        "",
    ]
    if used is not None:
        lines += [f"Forget items trained on by the relearning attack (seed 0): {used}.", ""]
    for attack in ("relearn", "quantize", "nf4"):
        lines += table(attack) + [""] + details(attack) + [""]
    (HERE / "README.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
