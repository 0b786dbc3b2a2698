#!/usr/bin/env python3
"""The SmolLM2 residual of the parity lab log (item 9, then 10): same logits, two reductions.

  PYTHONPATH=src python bench/parity/nll_layout.py OUT.json MODEL_DIR TOFU_DIR [OU_BATCH.pt]

Scores the forget01 answers of TOFU_DIR (obliviate's encoding under eval.protocol=open-unlearning,
one right-padded batch as open-unlearning forms it) with MODEL_DIR in float32 and measures, per
answer token, the error of the log-softmax normaliser against float64 for

- ``last_dim``: log-softmax over the last dimension of (B, T, V) (obliviate's cross-entropy), and
- ``vocab_dim_1``: cross-entropy over (B, V, T), open-unlearning's ``evaluate_probability``;

then each item's probability exp(-mean NLL) both ways and in float64. OU_BATCH.pt (optional):
a batch and its logits dumped inside open-unlearning's ``evaluate_probability`` (keys ``batch``,
``logits``); its input ids, mask and labels, and the logits obliviate's forward gives on them,
are compared with ours (equal = the frameworks differ only after the logits).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from obliviate.config import CONFIG_DIR
from obliviate.data.collate import pad_batch
from obliviate.data.formatting import ChatFormat, QAEncoder, loaded_pad_id, prepare_tokenizer
from obliviate.logprobs import sequence_logprobs, vocab_dim_1_mean_nll


def encoded_batch(model_dir: Path, tofu_dir: Path) -> dict[str, torch.Tensor]:
    tok = AutoTokenizer.from_pretrained(model_dir)
    pad = loaded_pad_id(tok)
    fmt = ChatFormat.from_config(
        OmegaConf.load(CONFIG_DIR / "model/SmolLM2-135M-Instruct.yaml").template
    )
    enc = QAEncoder(prepare_tokenizer(tok, fmt), fmt, None, pad)
    rows = [
        json.loads(x) for x in (tofu_dir / "forget01_perturbed.json").read_text().splitlines() if x
    ]
    return pad_batch([enc.encode(r["question"], r["answer"]) for r in rows], pad, mask_id=pad)


def normaliser_errors(logits: torch.Tensor, mask: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per labelled position: float32 log-softmax minus float64 (the same for every class)."""
    exact = torch.log_softmax(logits.double(), -1)
    ways = {
        "last_dim": torch.log_softmax(logits, -1),
        "vocab_dim_1": torch.log_softmax(logits.transpose(1, 2), 1).transpose(1, 2),
    }
    out = {}
    for name, lp in ways.items():
        err = (lp.double() - exact)[..., 0][mask]  # class 0: the offset is common to all classes
        out[name] = {"mean_nats": err.mean().item(), "max_abs_nats": err.abs().max().item()}
    return out


def exact_mean_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B,) mean NLL of the labelled tokens in float64."""
    lp = torch.log_softmax(logits.double()[:, :-1], -1)
    target = labels[:, 1:]
    keep = target != -100
    nll = -lp.gather(-1, target.clamp(min=0)[..., None])[..., 0] * keep
    return nll.sum(-1) / keep.sum(-1)


def main() -> None:
    dest, model_dir, tofu_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    batch = encoded_batch(model_dir, tofu_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"]
    answer = F.pad(labels[:, 1:] != -100, (0, 1))  # positions whose logit predicts a label
    doc = {
        "model": model_dir.name,
        "torch": torch.__version__,
        "items": labels.size(0),
        "answer_tokens": int(answer.sum()),
        "vocab": logits.size(-1),
        "normaliser_error_vs_float64": normaliser_errors(logits, answer),
        "prob": {
            "last_dim": torch.exp(sequence_logprobs(logits, labels).mean).tolist(),
            "vocab_dim_1": torch.exp(-vocab_dim_1_mean_nll(logits, labels)).tolist(),
            "float64": torch.exp(-exact_mean_nll(logits, labels)).tolist(),
        },
    }
    if len(sys.argv) > 4:
        ou = torch.load(sys.argv[4])
        same = all(torch.equal(ou["batch"][k].long(), batch[k].long()) for k in batch)
        doc["ou_batch"] = {
            "inputs_equal": same,
            "logits_max_abs_diff": (ou["logits"] - logits).abs().max().item(),
        }
    dest.write_text(json.dumps(doc, indent=1) + "\n")
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
