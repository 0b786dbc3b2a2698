#!/usr/bin/env python3
"""obliviate's MUSE evaluation on the tiny MUSE parity case, item by item against
open-unlearning's recorded values (tests/parity/ou_muse_tiny.json, bench/parity/record_ou_muse.py),
under obliviate's protocol, open-unlearning's, and open-unlearning's with ONE flag of
obliviate.protocol switched back at a time (each flag's own effect).

  PYTHONPATH=src python bench/parity/compare_muse.py OUT.json

Per variant and metric: the number of items, the items off by more than 1e-4 relative, the
largest relative difference, both aggregates and how many generations / ground truths differ.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM

from obliviate.eval.muse_eval import MuseSettings, evaluate_muse
from obliviate.eval.muse_suite import EVAL_SPLITS
from obliviate.models.tiny import build_tiny_tokenizer
from obliviate.protocol import NAMED, OBLIVIATE, OPEN_UNLEARNING, Protocol

REPO = Path(__file__).resolve().parents[2]
RECORD = REPO / "tests/parity/ou_muse_tiny.json"
MODEL = REPO / "tests/parity/tiny_muse_model"
TEXT_FIELDS = ("generation", "ground_truth")
#: the flags that act on the MUSE evaluation
FLAGS = (
    "pad_id_masked",
    "generation_per_split",
    "decoded_texts",
    "es_no_match_is_1_over_n",
    "specials_by_tokenizer",
    "drops_last_label",
)


def variants() -> dict[str, Protocol]:
    ou = NAMED[OPEN_UNLEARNING]
    out = {OBLIVIATE: NAMED[OBLIVIATE], OPEN_UNLEARNING: ou}
    for flag in FLAGS:
        back = getattr(NAMED[OBLIVIATE], flag)
        out[f"{OPEN_UNLEARNING} without {flag}"] = dataclasses.replace(ou, **{flag: back})
    return out


def evaluate(record: dict, proto: Protocol) -> dict:
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32).eval()
    tok = build_tiny_tokenizer("bytes")
    loaded_pad = tok.pad_token_id
    data = {key: record["items"][f"{c}/{s}"] for key, (c, s) in EVAL_SPLITS.items()}
    caps = {k: v for k, v in record["settings"].items() if k.endswith("max_new_tokens")}
    settings = MuseSettings("News", parity=proto, progress=False, **caps)
    if loaded_pad is None:  # as MuseSuite.run
        tok.pad_token = tok.eos_token
    return evaluate_muse(model, tok, data, settings, None)


def per_item(entry: dict, field: str) -> list:
    by = entry["value_by_index"]
    return [by[i][field] for i in sorted(by, key=int)]


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def compare(ours: dict, record: dict) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for key, fields in record["values"].items():
        if key == "mia_min_k":
            mine = ours["mia_min_k"]
            a = per_item(mine["forget"], "score") + per_item(mine["holdout"], "score")
            b = fields["forget"] + fields["holdout"]
            agg = (mine["auc"], fields["auc"])
        else:
            num = next(f for f in fields if f not in TEXT_FIELDS)
            a, b = per_item(ours[key], num), fields[num]
            agg = (ours[key]["agg_value"], record["aggregates"][key])
        diffs = [rel(x, y) for x, y in zip(a, b, strict=True)]
        row = {
            "n": len(diffs),
            "items_rel_gt_1e-4": sum(d > 1e-4 for d in diffs),
            "max_rel": max(diffs),
            "agg_ours": agg[0],
            "agg_ou": agg[1],
        }
        for field in TEXT_FIELDS:
            if field in fields:
                mine = per_item(ours[key], field)
                row[f"{field}s_differing"] = sum(
                    x != y for x, y in zip(mine, fields[field], strict=True)
                )
        table[key] = row
    return table


def main() -> None:
    dest = Path(sys.argv[1])
    record = json.loads(RECORD.read_text())
    doc: dict[str, Any] = {"ou_record": str(RECORD.relative_to(REPO)), "variants": {}}
    for name, proto in variants().items():
        rows = compare(evaluate(record, proto), record)
        doc["variants"][name] = rows
        print(
            name,
            {k: (v["items_rel_gt_1e-4"], v.get("generations_differing")) for k, v in rows.items()},
        )
    dest.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
