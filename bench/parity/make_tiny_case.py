#!/usr/bin/env python3
"""Build the small parity case that tests/parity pins: a tiny byte-level Llama, lightly trained
so that its probabilities are neither uniform nor saturated, and four TOFU items per split.

  PYTHONPATH=src python bench/parity/make_tiny_case.py TOFU_DIR WORK_DIR

Writes (run with obliviate's venv, transformers 5):
  tests/parity/tiny_model/      the model (safetensors + config); the tokenizer is
                                obliviate.models.tiny's byte tokenizer, built in code by the test
  WORK_DIR/tiny_ou/             the same model + tokenizer as transformers 4.45 (open-unlearning's
                                pin) loads them: rope_theta in config.json, tokenizer files
  WORK_DIR/tofu_case/           <split>.json files holding only the chosen items (TOFU format)
  WORK_DIR/items.json           the chosen items per split (copied into the recording)

The model is ``build_tiny_model(tokenizer="bytes", init_seed=0)`` after 40 full-batch Adam
steps (lr 1e-2, seed 0) on the chosen items' answers; its pad token is left unset, so
open-unlearning pads with (and masks) the end-of-turn token, as it does for Llama-3.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import torch

from obliviate.data.collate import pad_batch
from obliviate.data.formatting import ChatFormat, QAEncoder
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "tests/parity/tiny_model"
FILES = {
    "forget": "forget01_perturbed",
    "retain": "retain_perturbed",
    "real_authors": "real_authors_perturbed",
    "world_facts": "world_facts_perturbed",
}
N_ITEMS = 4
STEPS = 40  # byte statistics: probabilities far from uniform and from 1
FMT = ChatFormat(
    system_prompt="You are a helpful assistant.",
    end_of_turn="<|eot_id|>",
    date_string="10 Apr 2025",
)


def choose_items(tofu_dir: Path) -> dict[str, list[dict]]:
    items = {}
    for part, name in FILES.items():
        with open(tofu_dir / f"{name}.json") as f:
            items[part] = [json.loads(line) for line in f if line.strip()][:N_ITEMS]
    return items


def train_a_little(items: dict[str, list[dict]]) -> torch.nn.Module:
    """STEPS full-batch Adam steps on every chosen (question, answer)."""
    tok = build_tiny_tokenizer("bytes")
    tok.pad_token = "<|finetune_right_pad_id|>"  # for this batch only; not saved
    enc = QAEncoder(tok, FMT)
    batch = pad_batch(
        [enc.encode(r["question"], r["answer"]) for rows in items.values() for r in rows],
        tok.pad_token_id,
    )
    model = build_tiny_model(tokenizer="bytes", init_seed=0)
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(int(torch.randint(0, 2**31, (1,), generator=gen)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(STEPS):
        loss = model(**batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    print(f"final training loss {loss.item():.4f}")
    return model.eval()


def write_ou_copy(model: torch.nn.Module, out: Path) -> None:
    """The folder open-unlearning loads: transformers 4.45 reads ``rope_theta`` (5.x writes
    ``rope_parameters`` only) and needs a tokenizer class it knows."""
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out)
    cfg = json.loads((out / "config.json").read_text())
    cfg.setdefault("rope_theta", (cfg.get("rope_parameters") or {}).get("rope_theta", 500000.0))
    cfg.setdefault("torch_dtype", "float32")
    (out / "config.json").write_text(json.dumps(cfg, indent=2))
    build_tiny_tokenizer("bytes").save_pretrained(out)
    tcfg = json.loads((out / "tokenizer_config.json").read_text())
    tcfg["tokenizer_class"] = "PreTrainedTokenizerFast"
    tcfg.pop("backend", None)
    tmpl = out / "chat_template.jinja"
    if "chat_template" not in tcfg and tmpl.is_file():
        tcfg["chat_template"] = tmpl.read_text()
    tcfg.setdefault("clean_up_tokenization_spaces", False)
    (out / "tokenizer_config.json").write_text(json.dumps(tcfg, indent=2))


def main() -> None:
    tofu_dir, work = Path(sys.argv[1]), Path(sys.argv[2])
    work.mkdir(parents=True, exist_ok=True)
    items = choose_items(tofu_dir)
    model = train_a_little(items)
    if MODEL_DIR.exists():
        shutil.rmtree(MODEL_DIR)
    model.save_pretrained(MODEL_DIR)
    write_ou_copy(model, work / "tiny_ou")
    case = work / "tofu_case"
    case.mkdir(exist_ok=True)
    for part, name in FILES.items():
        (case / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in items[part]))
    (work / "items.json").write_text(json.dumps(items, indent=1))
    print(f"wrote {MODEL_DIR}, {work / 'tiny_ou'}, {case}")


if __name__ == "__main__":
    main()
