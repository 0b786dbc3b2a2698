"""WGA: Weighted Gradient Ascent (Wang et al., 2025, "Rethinking LLM Unlearning Objectives: A
Gradient Perspective and Go Beyond", arXiv 2502.19301).

Gradient ascent whose token t is weighted by its own probability, w_t = p_t ** beta, detached:
tokens the model has already forgotten stop pulling, which keeps GA from over-unlearning.
L_f = (1/N) sum_t w_t log p_t over the N answer tokens of the batch; L = gamma * L_f + alpha * R.
No reference model. Defaults: beta 1, gamma 1, alpha 1 (open-unlearning's TOFU setting).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import weighted_ascent_loss, wga_weights


@dataclass
class WGAArgs(RetainArgs):
    beta: float = 1.0


class WGA(UnlearnTrainer):
    Args = WGAArgs

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        weights = wga_weights(logps.token_logp, self.method_args.beta)
        return weighted_ascent_loss(logps.token_logp, logps.mask, weights)
