#!/usr/bin/env python3
"""Record open-unlearning's TOFU min-k% attack (``mia_min_k``: each forget and holdout item's
score, and the AUC) on the tiny parity case, into tests/parity/ou_tofu_tiny.json beside the
values record_ou.py recorded (lab log item 19).

  python3 bench/parity/record_ou_mink.py $OU_DIR $OU_PYTHON $WORK $TOFU_DIR [RETAIN_LOG]

WORK is make_tiny_case.py's folder (tiny_ou/, tofu_case/); OU_DIR a scratch copy of
open-unlearning (this script writes two config files into it, as record_ou.py does, and changes
none of its code); the deepspeed stub goes on PYTHONPATH as for record_ou.py. The case has no
holdout split, so the first HOLDOUT_ITEMS rows of TOFU's forget05.json (authors outside forget01,
never shown to the tiny model) are written as WORK/tofu_case/holdout01.json and stored in the
record as its "holdout" items. mia_min_k runs alone (k = 0.4, open-unlearning's default).

With RETAIN_LOG (a TOFU_EVAL.json holding a retain model's mia_min_k), privleak runs too, against
that log, and the record keeps the log's eval_info, forget_truth_ratio and mia_min_k (what
obliviate reads from a retain log). The recorded one is obliviate's evaluation of the untrained
tiny-bytes model on the same case (holdout included; its AUC 0.9375 is far from privleak's
undefined 1.0): ``python src/eval.py experiment=eval/tofu/default model=tiny-bytes
tofu_data=$WORK/tofu_case forget_split=forget01 holdout_split=holdout01 ...``. Without a log,
privleak is left out: open-unlearning would divide by a fixed AUC of 0.5, obliviate writes null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from record_ou import MODEL_CFG, OUT

HOLDOUT_ITEMS = 4
EVAL_CFG = """# @package eval.tofu
defaults:
  - tofu_metrics:
    - mia_min_k
handler: TOFUEvaluator
output_dir: ${paths.output_dir}
metrics: {}
overwrite: true
forget_split: forget01
holdout_split: holdout01
retain_logs_path: null
question_key: question
batch_size: 32
"""


def write_holdout(tofu_dir: Path, work: Path) -> list[dict]:
    with open(tofu_dir / "forget05.json") as f:
        rows = [json.loads(line) for line in f if line.strip()][:HOLDOUT_ITEMS]
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (work / "tofu_case/holdout01.json").write_text(lines)
    return rows


def run_ou(ou: Path, python: str, work: Path, retain_log: Path | None = None) -> dict:
    """open-unlearning's TOFU_EVAL.json with mia_min_k, or privleak against ``retain_log``."""
    name = "privleak" if retain_log else "mia_min_k"
    (ou / "configs/model/tiny-bytes-parity.yaml").write_text(MODEL_CFG)
    (ou / f"configs/eval/tofu_parity_{name}.yaml").write_text(EVAL_CFG.replace("mia_min_k", name))
    model, out = work / "tiny_ou", work / f"ou_run_{name}"
    cmd = [
        python,
        "src/eval.py",
        "--config-name=eval.yaml",
        "experiment=eval/tofu/default",
        f"eval=tofu_parity_{name}",
        "forget_split=forget01",
        "holdout_split=holdout01",
        "model=tiny-bytes-parity",
        f"model.model_args.pretrained_model_name_or_path={model}",
        f"model.tokenizer_args.pretrained_model_name_or_path={model}",
        "model.model_args.device_map=cpu",
        "task_name=parity_mink",
        f"paths.output_dir={out}",
        *([f"eval.tofu.retain_logs_path={retain_log}"] if retain_log else []),
    ]
    env = {**os.environ, "TOFU_DIR": str(work / "tofu_case"), "HF_HUB_OFFLINE": "1"}
    env.update(HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    subprocess.run(cmd, cwd=ou, env=env, check=True)
    return json.loads((out / "TOFU_EVAL.json").read_text())


def main() -> None:
    ou, python = Path(sys.argv[1]).resolve(), sys.argv[2]
    work, tofu_dir = Path(sys.argv[3]).resolve(), Path(sys.argv[4])
    holdout = write_holdout(tofu_dir, work)
    mia = run_ou(ou, python, work)["mia_min_k"]
    record = json.loads(OUT.read_text())
    record["items"]["holdout"] = holdout
    record["mia_min_k"] = {
        "k": 0.4,
        "holdout_items": f"the first {HOLDOUT_ITEMS} rows of TOFU's forget05.json",
        "auc": mia["auc"],
        **{
            split: [mia[split]["value_by_index"][str(i)]["score"] for i in range(HOLDOUT_ITEMS)]
            for split in ("forget", "holdout")
        },
    }
    if len(sys.argv) > 5:
        log_path = Path(sys.argv[5]).resolve()
        log = json.loads(log_path.read_text())
        leak = run_ou(ou, python, work, log_path)["privleak"]["agg_value"]
        kept = ("eval_info", "forget_truth_ratio", "mia_min_k")
        record["privleak"] = {"agg_value": leak, "retain_log": {k: log[k] for k in kept}}
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(
        f"wrote mia_min_k (AUC {mia['auc']}) and privleak {record.get('privleak', {}).get('agg_value')} into {OUT}"
    )


if __name__ == "__main__":
    main()
