#!/usr/bin/env python3
"""Record open-unlearning's own per-item TOFU values for the tiny parity case, into
tests/parity/ou_tofu_tiny.json (the test's reference; the test never runs open-unlearning).

  1. PYTHONPATH=src python bench/parity/make_tiny_case.py $TOFU_DIR $WORK    (obliviate's venv)
  2. python3 bench/parity/record_ou.py $OU_DIR $OU_PYTHON $WORK

OU_DIR is a scratch checkout of locuslab/open-unlearning (e.g. `git archive` of its main branch;
its commit is read from OU_DIR/.commit if present), OU_PYTHON a python with its pinned
requirements (transformers 4.45; ../shared/parity/setup.sh builds both, with a deepspeed stub
on PYTHONPATH: pass it in the environment). This script adds to OU_DIR, without changing any of
open-unlearning's code: TOFU dataset configs reading $WORK/tofu_case/<name>.json (`path: json`),
a model config for the tiny model (its own chat template, the fixed date and system prompt
obliviate's tiny config uses) and an eval config = OU's tofu.yaml with exact_memorization on and
privleak off (no holdout split in the case). Generation is capped at MAX_NEW_TOKENS on every
ROUGE metric (the same cap the test passes to obliviate). Everything runs on CPU in float32.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests/parity/ou_tofu_tiny.json"
MAX_NEW_TOKENS = 48
BATCH_SIZE = 32
MODEL_CFG = """model_args:
  pretrained_model_name_or_path: ???
  attn_implementation: sdpa
  torch_dtype: float32
tokenizer_args:
  pretrained_model_name_or_path: ???
template_args:
  apply_chat_template: true
  system_prompt: You are a helpful assistant.
  date_string: 10 Apr 2025
"""
ROUGE_METRICS = ("forget_Q_A_ROUGE",) + tuple(
    f"model_utility.pre_compute.{p}_Q_A_ROUGE" for p in ("retain", "ra", "wf")
)
#: per-item values the test compares: metric key -> field of each value_by_index entry
PER_ITEM = {
    "forget_Q_A_Prob": "prob",
    "forget_Q_A_PARA_Prob": "prob",
    "forget_Q_A_PERT_Prob": "prob",
    "forget_truth_ratio": "score",
    "forget_Q_A_ROUGE": "generation",
    "extraction_strength": "score",
    "exact_memorization": "score",
    "retain_Q_A_Prob": "prob",
    "retain_Truth_Ratio": "score",
    "retain_Q_A_ROUGE": "generation",
    "ra_Q_A_Prob_normalised": "prob",
    "ra_Truth_Ratio": "score",
    "ra_Q_A_ROUGE": "generation",
    "wf_Q_A_Prob_normalised": "prob",
    "wf_Truth_Ratio": "score",
    "wf_Q_A_ROUGE": "generation",
}


def patch(ou: Path) -> None:
    for f in sorted((ou / "configs/data/datasets").glob("TOFU_*.yaml")):
        text = f.read_text()
        new = re.sub(
            r'^( *)path: "locuslab/TOFU"',
            lambda m: (
                f"{m.group(1)}path: json\n{m.group(1)}data_files: ${{oc.env:TOFU_DIR}}/${{.name}}.json"
            ),
            text,
            flags=re.M,
        )
        f.write_text(new)
    (ou / "configs/model/tiny-bytes-parity.yaml").write_text(MODEL_CFG)
    tofu = (ou / "configs/eval/tofu.yaml").read_text()
    cfg = tofu.replace("    - privleak\n", "").replace(
        "    # - exact_memorization\n", "    - exact_memorization\n"
    )
    if "- privleak" in cfg or "    - exact_memorization\n" not in cfg:
        raise SystemExit("OU's configs/eval/tofu.yaml has an unexpected layout")
    (ou / "configs/eval/tofu_parity_case.yaml").write_text(cfg)


def run_ou(ou: Path, python: str, work: Path) -> Path:
    model, out = work / "tiny_ou", work / "ou_run"
    overrides = [
        "experiment=eval/tofu/default",
        "eval=tofu_parity_case",
        "forget_split=forget01",
        "holdout_split=holdout01",
        "model=tiny-bytes-parity",
        f"model.model_args.pretrained_model_name_or_path={model}",
        f"model.tokenizer_args.pretrained_model_name_or_path={model}",
        "model.model_args.device_map=cpu",
        f"eval.tofu.batch_size={BATCH_SIZE}",
        "eval.tofu.overwrite=true",
        "task_name=parity_case",
        f"paths.output_dir={out}",
        *(
            f"eval.tofu.metrics.{m}.generation_args.max_new_tokens={MAX_NEW_TOKENS}"
            for m in ROUGE_METRICS
        ),
    ]
    env = {**os.environ, "TOFU_DIR": str(work / "tofu_case"), "HF_HUB_OFFLINE": "1"}
    env.update(HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    cmd = [python, "src/eval.py", "--config-name=eval.yaml", *overrides]
    subprocess.run(cmd, cwd=ou, env=env, check=True)
    return out / "TOFU_EVAL.json"


def pack(ou: Path, python: str, work: Path, result: Path) -> None:
    res = json.loads(result.read_text())
    values = {
        key: [
            res[key]["value_by_index"][i][field]
            for i in sorted(res[key]["value_by_index"], key=int)
        ]
        for key, field in PER_ITEM.items()
    }
    versions = subprocess.run(
        [
            python,
            "-c",
            "import torch, transformers; print(torch.__version__, transformers.__version__)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    commit = (ou / ".commit").read_text().strip() if (ou / ".commit").is_file() else None
    record = {
        "what": "open-unlearning's TOFU evaluator on tests/parity/tiny_model (bench/parity/record_ou.py)",
        "open_unlearning_commit": commit,
        "torch": versions[0],
        "transformers": versions[1],
        "settings": {
            "max_new_tokens": MAX_NEW_TOKENS,
            "batch_size": BATCH_SIZE,
            "device": "cpu",
            "dtype": "float32",
        },
        "items": json.loads((work / "items.json").read_text()),
        "aggregates": {
            k: v.get("agg_value")
            for k, v in res.items()
            if isinstance(v, dict) and "agg_value" in v
        },
        "values": values,
    }
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {OUT}")


def main() -> None:
    ou, python, work = Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3]).resolve()
    patch(ou)
    pack(ou, python, work, run_ou(ou, python, work))


if __name__ == "__main__":
    main()
