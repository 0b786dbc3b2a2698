"""GradAscent: maximise the NLL of the forget set (TOFU's baseline, Maini et al., 2024).

L = -NLL(forget), with NLL the token-mean answer NLL of the batch. No retain term.
"""

from __future__ import annotations

import torch

from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import MethodArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import nll_loss


class GradAscent(UnlearnTrainer):
    Args = MethodArgs

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return -nll_loss(logps.token_logp, logps.mask)
