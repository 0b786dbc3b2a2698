"""GradDiff: gradient ascent on the forget set, descent on the retain set (Liu et al., 2022;
TOFU's "gradient difference" baseline).

L = gamma * (-NLL(forget)) + alpha * R, R = retain NLL (or KL to the model before unlearning).
"""

from __future__ import annotations

import torch

from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import nll_loss


class GradDiff(UnlearnTrainer):
    Args = RetainArgs

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return -nll_loss(logps.token_logp, logps.mask)
