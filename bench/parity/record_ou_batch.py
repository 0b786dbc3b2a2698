#!/usr/bin/env python3
"""Record one open-unlearning (OU) training batch of the tiny parity case, built by OU's own
code: its QA preprocessing (``data.utils.preprocess_chat_instance``, chat-template path) and its
collator (``data.collators.DataCollatorForSupervisedDataset``, right padding), with the tokenizer
as OU's ``get_tokenizer`` prepares it (pad = EOS when the tokenizer has none).

  cd $OU_DIR && PYTHONPATH=src:$STUBS $OU_PYTHON $REPO/bench/parity/record_ou_batch.py $WORK

Adds ``training_batch`` (input_ids, attention_mask, labels of the forget items' (question,
answer) pairs, as lists) to tests/parity/ou_tofu_tiny.json; record_ou.py writes that file first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from data.collators import DataCollatorForSupervisedDataset
from data.utils import preprocess_chat_instance
from model import get_tokenizer
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[2]
RECORD = REPO / "tests/parity/ou_tofu_tiny.json"


def main() -> None:
    work = Path(sys.argv[1]).resolve()
    model_dir = work / "tiny_ou"
    template = OmegaConf.load(Path("configs/model/tiny-bytes-parity.yaml")).template_args
    tok = get_tokenizer(OmegaConf.create({"pretrained_model_name_or_path": str(model_dir)}))
    record = json.loads(RECORD.read_text())
    items = [
        preprocess_chat_instance(tok, template, [r["question"]], [r["answer"]], 512)
        for r in record["items"]["forget"]
    ]
    batch = DataCollatorForSupervisedDataset(tok, padding_side="right")(items)
    record["training_batch"] = {
        "pad_token_id": tok.pad_token_id,
        **{k: batch[k].long().tolist() for k in ("input_ids", "attention_mask", "labels")},
    }
    RECORD.write_text(json.dumps(record, indent=1) + "\n")
    print(f"added training_batch ({len(items)} rows, pad {tok.pad_token_id}) to {RECORD}")


if __name__ == "__main__":
    main()
