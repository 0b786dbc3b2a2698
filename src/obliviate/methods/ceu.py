"""CE-U: Cross Entropy Unlearning (Yang, 2025, arXiv 2503.01224).

On each forget answer token the model is trained, by cross-entropy, toward its own current
distribution with the true token removed (logit set to -inf, the rest renormalised; the target
is detached): L_f = mean over answer tokens of H(q_t, softmax(z_t)), q_t = softmax(stopgrad(z_t)
with z_t[y_t] = -inf). The gradient softmax(z) - q stays bounded, unlike gradient ascent's. As in
the paper, no reference model and no retain set; the first answer token is left out
(``ignore_first_n_answer_tokens``, the paper's footnote on training settings).
Defaults: ignore_first_n_answer_tokens 1, gamma 1, alpha 0 (raise alpha to add a retain term).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from obliviate.errors import ConfigError
from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import ceu_loss


@dataclass
class CEUArgs(RetainArgs):
    gamma: float = 1.0
    alpha: float = 0.0
    ignore_first_n_answer_tokens: int = 1

    def validate(self, method: str) -> None:
        super().validate(method)
        n = self.ignore_first_n_answer_tokens
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ConfigError(
                f"trainer.method_args.ignore_first_n_answer_tokens={n!r} for {method} must be an integer >= 0"
            )


def drop_first_tokens(mask: torch.Tensor, n: int) -> torch.Tensor:
    """``mask`` (B, T) without the first ``n`` True positions of each row."""
    return mask & (mask.long().cumsum(-1) > n)


class CEU(UnlearnTrainer):
    Args = CEUArgs

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        mask = drop_first_tokens(logps.mask, self.method_args.ignore_first_n_answer_tokens)
        return ceu_loss(batch["logits"], logps.targets, mask)
