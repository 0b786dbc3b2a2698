#!/usr/bin/env python3
"""TOFU's min-k% attack (``mia_min_k``) of obliviate against open-unlearning's recorded scores
(tests/parity/ou_tofu_tiny.json, bench/parity/record_ou_mink.py), per protocol variant: the two
named protocols and open-unlearning's with one flag switched back at a time (lab log item 19).

  PYTHONPATH=src python bench/parity/compare_mink.py OUT.json

Runs obliviate's evaluation the user's way (compose + run_eval, TOFU_EVAL.json) on
tests/parity/tiny_model and the record's items, forget01 as members and the record's holdout
items as non-members, privleak against the record's retain log (AUC_retain 0.9375); generation
is capped at 4 new tokens (min-k% reads teacher-forced log-probs only).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from conftest import compose_config  # noqa: E402
from obliviate import protocol as P  # noqa: E402
from obliviate.eval.runner import run_eval  # noqa: E402

RECORD = json.loads((REPO / "tests/parity/ou_tofu_tiny.json").read_text())
FILES = {"forget": "forget01_perturbed", "holdout": "holdout01"}
FILES.update(retain="retain_perturbed", real_authors="real_authors_perturbed")
FILES.update(world_facts="world_facts_perturbed")
FLAGS = ("pad_id_masked", "truncates", "vocab_dim_1_nll", "drops_last_label", "epsilon")
SPLITS = ("forget", "holdout")


def evaluate(protocol: P.Protocol, tmp: Path) -> dict:
    """obliviate's mia_min_k under ``protocol`` (installed as the named open-unlearning one)."""
    real = P.NAMED[P.OPEN_UNLEARNING]
    P.NAMED[P.OPEN_UNLEARNING] = protocol
    try:
        cfg = compose_config(
            [
                "experiment=eval/tofu/default",
                "model=tiny-bytes",
                f"model.model_args.pretrained_model_name_or_path={REPO / 'tests/parity/tiny_model'}",
                "task_name=mink",
                f"tofu_data={tmp / 'tofu'}",
                "forget_split=forget01",
                "holdout_split=holdout01",
                "eval.max_new_tokens=4",
                "eval.protocol=open-unlearning",
                f"retain_logs_path={tmp / 'retain_TOFU_EVAL.json'}",
                f"paths.output_dir={tmp / protocol.name}",
            ],
            "eval.yaml",
        )
        run_eval(cfg)
    finally:
        P.NAMED[P.OPEN_UNLEARNING] = real
    return json.loads((tmp / protocol.name / "TOFU_EVAL.json").read_text())


def row(res: dict) -> dict:
    mia, ref = res["mia_min_k"], RECORD["mia_min_k"]
    ours = {
        s: [mia[s]["value_by_index"][str(i)]["score"] for i in range(len(ref[s]))] for s in SPLITS
    }
    rel = [abs(a - b) / abs(b) for s in SPLITS for a, b in zip(ours[s], ref[s], strict=True)]
    return {
        "auc": mia["agg_value"],
        "auc_ou": ref["auc"],
        "items_rel_gt_1e-4": sum(r > 1e-4 for r in rel),
        "n": len(rel),
        "max_rel": max(rel),
        "privleak": res["privleak"]["agg_value"],
        "privleak_ou": RECORD["privleak"]["agg_value"],
        **ours,
    }


def main() -> None:
    ou = P.NAMED[P.OPEN_UNLEARNING]
    variants = {"obliviate": dataclasses.replace(P.NAMED[P.OBLIVIATE], name="obliviate")}
    variants["open-unlearning"] = ou
    for flag in FLAGS:
        back = getattr(P.NAMED[P.OBLIVIATE], flag)
        variants[f"open-unlearning without {flag}"] = dataclasses.replace(
            ou, name=f"without_{flag}", **{flag: back}
        )
    table = {
        "open_unlearning": {**RECORD["mia_min_k"], "privleak": RECORD["privleak"]["agg_value"]}
    }
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "tofu").mkdir()
        for part, name in FILES.items():
            lines = "".join(json.dumps(r) + "\n" for r in RECORD["items"][part])
            (tmp / "tofu" / f"{name}.json").write_text(lines)
        (tmp / "retain_TOFU_EVAL.json").write_text(json.dumps(RECORD["privleak"]["retain_log"]))
        for label, protocol in variants.items():
            table[label] = row(evaluate(protocol, tmp))
            print(label, {k: v for k, v in table[label].items() if k not in SPLITS})
    Path(sys.argv[1]).write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
