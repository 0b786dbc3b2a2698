#!/usr/bin/env python3
"""Record open-unlearning's own per-item MUSE values for the tiny MUSE parity case, into
tests/parity/ou_muse_tiny.json (the test's reference; the test never runs open-unlearning).

  1. PYTHONPATH=src python bench/parity/make_tiny_muse_case.py $WORK      (obliviate's venv)
  2. python3 bench/parity/record_ou_muse.py $OU_DIR $OU_PYTHON $WORK

OU_DIR is a scratch checkout of locuslab/open-unlearning that this script patches (configs
only, none of its code): MUSE dataset configs read $WORK/muse_case/<config>/<split>.jsonl
(`path: json`) instead of the Hub, the metric configs stop pointing them back at the Hub, a model
config for the tiny model (Llama-2-7b-hf's template: no chat template, `Question: ` /
`Answer: ` tags, as OU's MUSE runs use) and an eval config = OU's muse.yaml. OU_PYTHON is its
venv's python (transformers 4.45; a deepspeed stub on PYTHONPATH, as for record_ou.py).
Everything runs on CPU in float32, with OU's MUSE defaults (batch sizes 16 / 8, k = 0.4) but
shorter generations (KNOWMEM_NEW / VERBMEM_NEW tokens instead of 32 / 128, so that the test's
two evaluations stay fast; the test passes the same caps to obliviate); no retain log, so OU's
privleak is its 0.5 fallback (not compared; mia_min_k's AUC and per-item scores are).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "tests/parity/ou_muse_tiny.json"
KNOWMEM_NEW = 16
VERBMEM_NEW = 32
MODEL_CFG = """model_args:
  pretrained_model_name_or_path: ???
  attn_implementation: sdpa
  torch_dtype: float32
tokenizer_args:
  pretrained_model_name_or_path: ???
template_args:
  apply_chat_template: false
  user_start_tag: "Question: "
  user_end_tag: "\\n"
  asst_start_tag: "Answer: "
  asst_end_tag: "\\n\\n"
"""
#: per-item values the test compares: metric key -> fields of each value_by_index entry
PER_ITEM = {
    "forget_knowmem_ROUGE": ("rougeL_f1", "generation", "ground_truth"),
    "retain_knowmem_ROUGE": ("rougeL_f1", "generation", "ground_truth"),
    "forget_verbmem_ROUGE": ("rougeL_f1", "generation", "ground_truth"),
    "extraction_strength": ("score",),
}


def patch(ou: Path) -> None:
    """Point every MUSE dataset at $MUSE_DIR/<config>/<split>.jsonl."""
    hub = r'path: "muse-bench/MUSE-News"\n(\s*)name: "(\w+)"\n\s*split: "(\w+)"'
    local = r"path: json\n\1data_files: ${oc.env:MUSE_DIR}/\2/\3.jsonl\n\1split: train"
    for f in sorted((ou / "configs/data/datasets").glob("MUSE_*.yaml")):
        f.write_text(re.sub(hub, local, f.read_text()))
    for f in sorted((ou / "configs/eval/muse_metrics").glob("*.yaml")):
        f.write_text(
            f.read_text().replace("path: muse-bench/MUSE-${eval.muse.data_split}", "path: json")
        )
    (ou / "configs/model/tiny-muse-parity.yaml").write_text(MODEL_CFG)


def run_ou(ou: Path, python: str, work: Path) -> Path:
    model, out = work / "tiny_muse_ou", work / "ou_muse_run"
    overrides = [
        "experiment=eval/muse/default",
        "data_split=News",
        "model=tiny-muse-parity",
        f"model.model_args.pretrained_model_name_or_path={model}",
        f"model.tokenizer_args.pretrained_model_name_or_path={model}",
        "model.model_args.device_map=cpu",
        "eval.muse.overwrite=true",
        f"eval.muse.metrics.forget_knowmem_ROUGE.generation_args.max_new_tokens={KNOWMEM_NEW}",
        f"eval.muse.metrics.retain_knowmem_ROUGE.generation_args.max_new_tokens={KNOWMEM_NEW}",
        f"eval.muse.metrics.forget_verbmem_ROUGE.generation_args.max_new_tokens={VERBMEM_NEW}",
        "task_name=parity_muse",
        f"paths.output_dir={out}",
    ]
    env = {**os.environ, "MUSE_DIR": str(work / "muse_case"), "HF_HUB_OFFLINE": "1"}
    env.update(HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", CUDA_VISIBLE_DEVICES="")
    cmd = [python, "src/eval.py", "--config-name=eval.yaml", *overrides]
    subprocess.run(cmd, cwd=ou, env=env, check=True)
    return out / "MUSE_EVAL.json"


def by_index(entry: dict, field: str) -> list:
    return [entry["value_by_index"][i][field] for i in sorted(entry["value_by_index"], key=int)]


def pack(ou: Path, python: str, work: Path, result: Path) -> None:
    res = json.loads(result.read_text())
    values = {
        key: {field: by_index(res[key], field) for field in fields}
        for key, fields in PER_ITEM.items()
    }
    mia = res["privleak"]["pre_compute"]["forget"] if "pre_compute" in res["privleak"] else None
    mia = mia or res.get("mia_min_k")
    values["mia_min_k"] = {
        "auc": mia["agg_value"],
        "forget": by_index(mia["forget"], "score"),
        "holdout": by_index(mia["holdout"], "score"),
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
        "what": "open-unlearning's MUSE evaluator on tests/parity/tiny_muse_model (bench/parity/record_ou_muse.py)",
        "open_unlearning_commit": commit,
        "torch": versions[0],
        "transformers": versions[1],
        "settings": {
            "device": "cpu",
            "dtype": "float32",
            "data_split": "News",
            "knowmem_max_new_tokens": KNOWMEM_NEW,
            "verbmem_max_new_tokens": VERBMEM_NEW,
        },
        "items": json.loads((work / "muse_items.json").read_text()),
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
