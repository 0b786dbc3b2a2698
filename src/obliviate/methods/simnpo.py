"""SimNPO: Simplicity Prevails, reference-free NPO (Fan et al., 2024, arXiv 2410.07163).

L_f = mean_i -(2/beta) log sigmoid(beta (NLL_avg_i - delta)), NLL_avg_i the answer NLL of
item i divided by its token count; L = gamma * L_f + alpha * R. Defaults are the paper's TOFU
setting: beta 4.5, gamma 0.125 (``npo_coeff`` in the paper's code), alpha 1, delta 0 (the
margin, ``gamma`` in the paper's code).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import simnpo_loss


@dataclass
class SimNPOArgs(RetainArgs):
    gamma: float = 0.125
    alpha: float = 1.0
    beta: float = 4.5
    delta: float = 0.0


class SimNPO(UnlearnTrainer):
    Args = SimNPOArgs

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return simnpo_loss(-logps.mean, self.method_args.beta, self.method_args.delta)
