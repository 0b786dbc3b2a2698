"""SatImp: saturation- and importance-weighted gradient ascent (Yang et al., 2025, "Exploring
Criteria of Loss Reweighting to Enhance LLM Unlearning", arXiv 2505.11953).

Token t of a forget answer is weighted by w_t = p_t ** beta1 * (1 - p_t) ** beta2, detached
(saturation: p ** beta1; importance: (1 - p) ** beta2).
L_f = (1/N) sum_t w_t log p_t over the N answer tokens; L = gamma * L_f + alpha * R.
No reference model. Defaults: beta1 5, beta2 1, gamma 0.1, alpha 1 (open-unlearning's TOFU
setting).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import satimp_weights, weighted_ascent_loss


@dataclass
class SatImpArgs(RetainArgs):
    gamma: float = 0.1
    alpha: float = 1.0
    beta1: float = 5.0
    beta2: float = 1.0

    def validate(self, method: str) -> None:
        super().validate(method)
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(
                    f"trainer.method_args.{name}={value!r} for {method} must be a number >= 0"
                )


class SatImp(UnlearnTrainer):
    Args = SatImpArgs

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        a = self.method_args
        weights = satimp_weights(logps.token_logp, a.beta1, a.beta2)
        return weighted_ascent_loss(logps.token_logp, logps.mask, weights)
