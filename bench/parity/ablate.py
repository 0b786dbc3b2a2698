#!/usr/bin/env python3
"""Measure each difference between obliviate's TOFU evaluation and open-unlearning's (OU) on
one model: obliviate's evaluation under ``eval.protocol=open-unlearning`` with ONE flag of
obliviate.protocol switched back at a time, each compared item by item with OU's own values.

  PYTHONPATH=src python bench/parity/ablate.py tiny    RAW.json
  PYTHONPATH=src python bench/parity/ablate.py folder  RAW.json MODEL_DIR MODEL_CFG TOFU_DIR [max_new_tokens] [batch_size]
  PYTHONPATH=src python bench/parity/ablate.py compare TABLE.json RAW.json OU_TOFU_EVAL.json

``tiny``: tests/parity/tiny_model on the items inside tests/parity/ou_tofu_tiny.json, with its
settings. ``folder``: any model folder (e.g. the parity harness's SmolLM2 copy, MODEL_CFG the
obliviate model config name for its chat format) on the forget01 files of TOFU_DIR.
``compare``: every variant against the TOFU_EVAL.json written by OU's evaluator on the same
model and items (metrics absent from OU's file are skipped).

Teacher-forced scores and generations are cached per distinct setting, so the seven variants
cost two scoring passes and five generation passes.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from obliviate.config import CONFIG_DIR
from obliviate.data.formatting import ChatFormat, QAEncoder, loaded_pad_id, prepare_tokenizer
from obliviate.eval import tofu_eval as TE
from obliviate.protocol import NAMED, OBLIVIATE, OPEN_UNLEARNING, Protocol

REPO = Path(__file__).resolve().parents[2]
FILES = {
    "forget": "forget01_perturbed",
    "retain": "retain_perturbed",
    "real_authors": "real_authors_perturbed",
    "world_facts": "world_facts_perturbed",
}
FLAGS = (
    "pad_id_masked",
    "generation_per_split",
    "decoded_texts",
    "truncates",
    "es_no_match_is_1_over_n",
    "vocab_dim_1_nll",
    "epsilon",
)
COMPARED = {
    "forget_Q_A_Prob": "prob",
    "forget_Q_A_PARA_Prob": "prob",
    "forget_Q_A_PERT_Prob": "prob",
    "forget_truth_ratio": "score",
    "forget_Q_A_ROUGE": "rougeL_recall",
    "extraction_strength": "score",
    "exact_memorization": "score",
    "retain_Q_A_Prob": "prob",
    "retain_Truth_Ratio": "score",
    "retain_Q_A_ROUGE": "rougeL_recall",
    "ra_Q_A_Prob": "prob",
    "ra_Q_A_Prob_normalised": "prob",
    "ra_Truth_Ratio": "score",
    "ra_Q_A_ROUGE": "rougeL_recall",
    "wf_Q_A_Prob": "prob",
    "wf_Q_A_Prob_normalised": "prob",
    "wf_Truth_Ratio": "score",
    "wf_Q_A_ROUGE": "rougeL_recall",
}
ROUGE_KEYS = [k for k in COMPARED if k.endswith("ROUGE")]


def cached(fn: Any) -> Any:
    memo: dict[str, Any] = {}

    def wrapper(model: Any, encoder: QAEncoder, items: list, *args: Any, **kw: Any) -> Any:
        key = json.dumps(
            [
                encoder.mask_id,
                encoder.max_length,
                items,
                args,
                sorted((k, str(v)) for k, v in kw.items() if k not in ("desc", "stats")),
            ]
        )
        if key not in memo:
            memo[key] = fn(model, encoder, items, *args, **kw)
        return memo[key]

    return wrapper


TE.score_answers = cached(TE.score_answers)
TE.greedy_generate = cached(TE.greedy_generate)


def variants() -> dict[str, Protocol]:
    ou = NAMED[OPEN_UNLEARNING]
    out = {OBLIVIATE: NAMED[OBLIVIATE], OPEN_UNLEARNING: ou}
    for flag in FLAGS:
        back = getattr(NAMED[OBLIVIATE], flag)  # obliviate's value of this one flag
        out[f"{OPEN_UNLEARNING} without {flag}"] = dataclasses.replace(
            ou, name=f"-{flag}", **{flag: back}
        )
    return out


def per_item(entry: dict, field: str) -> list:
    by = entry["value_by_index"]
    return [by[i][field] for i in sorted(by, key=int)]


def compare(ours: dict, theirs: dict) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, field in COMPARED.items():
        if key not in ours or key not in theirs:
            continue
        a = [x for v in per_item(ours[key], field) for x in (v if isinstance(v, list) else [v])]
        b = [x for v in per_item(theirs[key], field) for x in (v if isinstance(v, list) else [v])]
        rel = [abs(x - y) / max(abs(y), 1e-12) for x, y in zip(a, b, strict=True)]
        row = {
            "n": len(rel),
            "items_rel_gt_1e-4": sum(r > 1e-4 for r in rel),
            "max_rel": max(rel),
            "agg_ours": ours[key]["agg_value"],
            "agg_ou": theirs[key]["agg_value"],
        }
        if key in ROUGE_KEYS:
            ga, gb = per_item(ours[key], "generation"), per_item(theirs[key], "generation")
            row["generations_differing"] = sum(x != y for x, y in zip(ga, gb, strict=True))
        table[key] = row
    return table


def run_all(model: Any, tokenizer: Any, fmt: ChatFormat, data: dict, settings: dict) -> dict:
    """Every variant's TOFU_EVAL dict."""
    pad = loaded_pad_id(tokenizer)
    tokenizer = prepare_tokenizer(tokenizer, fmt)
    out = {}
    for name, proto in variants().items():
        enc = QAEncoder(tokenizer, fmt, 512 if proto.truncates else None, proto.mask_id(pad))
        es = TE.EvalSettings(
            "forget01", "retain99", "parity", progress=False, protocol=proto, **settings
        )
        out[name] = TE.evaluate_model(model, enc, data, es)
        print(f"evaluated: {name}", flush=True)
    return out


def table(raw: dict, theirs: dict) -> dict:
    out = {name: compare(res, theirs) for name, res in raw.items()}
    for name, rows in out.items():
        print(
            name,
            {k: (v["items_rel_gt_1e-4"], v.get("generations_differing")) for k, v in rows.items()},
        )
    return out


def main() -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    mode, dest = sys.argv[1], Path(sys.argv[2])
    if mode == "compare":  # ablate.py compare OUT.json RAW.json OU_TOFU_EVAL.json
        raw = json.loads(Path(sys.argv[3]).read_text())
        theirs = json.loads(Path(sys.argv[4]).read_text())
        doc = {**raw["meta"], "ou_eval": sys.argv[4], "variants": table(raw["results"], theirs)}
        dest.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {dest}")
        return
    if mode == "tiny":
        from obliviate.models.tiny import build_tiny_tokenizer

        rec = json.loads((REPO / "tests/parity/ou_tofu_tiny.json").read_text())
        model_dir, tok, data = (
            REPO / "tests/parity/tiny_model",
            build_tiny_tokenizer("bytes"),
            rec["items"],
        )
        cfg = OmegaConf.load(CONFIG_DIR / "model/tiny-bytes.yaml")
        settings = {
            "max_new_tokens": rec["settings"]["max_new_tokens"],
            "batch_size": rec["settings"]["batch_size"],
        }
    else:
        model_dir, cfg_name, tofu_dir = Path(sys.argv[3]), sys.argv[4], Path(sys.argv[5])
        tok = AutoTokenizer.from_pretrained(model_dir)
        cfg = OmegaConf.load(CONFIG_DIR / f"model/{cfg_name}.yaml")
        data = {
            p: [
                json.loads(x)
                for x in (tofu_dir / f"{n}.json").read_text().splitlines()
                if x.strip()
            ]
            for p, n in FILES.items()
        }
        settings = {
            "max_new_tokens": int(sys.argv[6]) if len(sys.argv) > 6 else 200,
            "batch_size": int(sys.argv[7]) if len(sys.argv) > 7 else 32,
        }
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    fmt = ChatFormat.from_config(cfg.template)
    raw = run_all(model, tok, fmt, data, settings)
    dest.parent.mkdir(parents=True, exist_ok=True)
    meta = {"model": str(model_dir), "settings": settings}
    dest.write_text(json.dumps({"meta": meta, "results": raw}, indent=1) + "\n")
    print(f"wrote {dest} (then: ablate.py compare TABLE.json {dest} OU_TOFU_EVAL.json)")


if __name__ == "__main__":
    main()
