"""NPO: Negative Preference Optimization (Zhang, Lin, Bai, Mei, 2024, arXiv 2404.05868).

L_f = mean_i -(2/beta) log sigmoid(-beta (log pi_theta(y_i|x_i) - log pi_ref(y_i|x_i))),
with sequence log-probs summed over answer tokens and pi_ref the model before unlearning;
L = gamma * L_f + alpha * R. The reference log-probs of the forget answers are computed once
before training (they never change), so no second copy of the weights is kept for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import npo_loss


@dataclass
class NPOArgs(RetainArgs):
    beta: float = 0.1


class NPO(UnlearnTrainer):
    Args = NPOArgs
    needs_ref_logps = True

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        ref = batch["ref_logp"].to(logps.sum.dtype)
        return npo_loss(logps.sum, ref, self.method_args.beta)
