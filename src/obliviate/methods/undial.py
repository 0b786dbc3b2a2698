"""UNDIAL: Self-Distillation with Adjusted Logits (Dong et al., 2024, arXiv 2402.10052; NAACL 2025).

The model is distilled, on the forget answers only, toward the reference model's distribution
with the true next token's logit lowered by beta:
L_f = mean over answer tokens of H(softmax(z_ref - beta * onehot(y_t)), softmax(z_theta)),
L = gamma * L_f + alpha * R. A minimisation toward a fixed target, so it does not diverge the way
gradient ascent does. The reference logits are needed at every step: a frozen copy of the model
is kept (with LoRA, the base model with its adapters switched off -- no copy).
Defaults: beta 10 (the paper searched 3, 10, 30), gamma 1, alpha 0 (the paper uses no retain
set; raise alpha to add one). The paper trained LoRA adapters (r 8, alpha 16) at lr 1e-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import undial_loss


@dataclass
class UNDIALArgs(RetainArgs):
    gamma: float = 1.0
    alpha: float = 0.0
    beta: float = 10.0


class UNDIAL(UnlearnTrainer):
    Args = UNDIALArgs
    needs_ref_model = True

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ref_logits = self.reference_logits(batch)  # (B, T', V), no grad
        return undial_loss(
            batch["logits"], ref_logits, logps.targets, logps.mask, self.method_args.beta
        )
