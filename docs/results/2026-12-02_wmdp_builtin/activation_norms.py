"""Mean and median token norm of SmolLM2-135M-Instruct's decoder-layer outputs on the first 8
passages of the built-in forget corpus: the scale RMU's steering coefficient is set against."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from obliviate.data.builtin_wmdp import corpora
from obliviate.launch import compose
from obliviate.models.loading import load_model, load_tokenizer


@torch.no_grad()
def main() -> None:
    cfg = compose("eval", ["model=SmolLM2-135M-Instruct", "task_name=x"])
    model, tok = load_model(cfg.model).eval(), load_tokenizer(cfg.model)
    batch = tok(corpora()["forget"][:8], return_tensors="pt", padding=True)
    hidden = model(**batch, output_hidden_states=True).hidden_states  # [embeddings, layer 0, ...]
    out = {}
    for layer in (4, 6, 7, 8, 12):
        norms = hidden[layer + 1][batch["attention_mask"].bool()].norm(dim=-1)
        out[f"layer_{layer}"] = {
            "mean": round(norms.mean().item(), 2),
            "median": round(norms.median().item(), 2),
        }
    text = json.dumps(out, indent=2)
    (Path(__file__).parent / "activation_norms.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
