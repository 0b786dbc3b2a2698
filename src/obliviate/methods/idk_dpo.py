"""IdkDPO: Direct Preference Optimization (Rafailov et al., 2023, arXiv 2305.18290) with an
"I don't know" answer as the preferred one -- TOFU's "IDK" preference baseline (Maini et al.,
2024, arXiv 2401.06121; compared against in NPO, arXiv 2404.05868).

For each forget question x with answer y_l, the winner y_w is a refusal sentence:
L_f = mean_i -log sigmoid(beta [(log pi(y_w|x) - log pi_ref(y_w|x)) - (log pi(y_l|x) - log pi_ref(y_l|x))])
and L = gamma * L_f + alpha * R (R = retain NLL, or KL to the model before unlearning).
Sequence log-probs are summed over answer tokens; both reference log-probs are computed once
before training (they never change), so no second copy of the weights is kept for them.

The refusal sentences are the package's own (``obliviate.data.idk``) or, with
``idk_path=<file>``, a text file of one sentence per line; each forget question gets one,
drawn once with the run's seed. Defaults: beta 0.1, gamma 1, alpha 1 (open-unlearning's
TOFU setting). open-unlearning scales L_f by 2/beta (NPO's normalisation); to match its
gradients, pass ``gamma=20`` (= 2/0.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from obliviate.data import idk
from obliviate.errors import ConfigError
from obliviate.logprobs import SequenceLogProbs
from obliviate.methods.args import RetainArgs
from obliviate.methods.base import UnlearnTrainer
from obliviate.methods.losses import dpo_loss


@dataclass
class IdkDPOArgs(RetainArgs):
    beta: float = 0.1
    idk_path: str | None = None  # null = the package's own refusal sentences

    def validate(self, method: str) -> None:
        super().validate(method)
        if self.idk_path is not None and not Path(str(self.idk_path)).expanduser().is_file():
            raise ConfigError(
                f"trainer.method_args.idk_path={self.idk_path!r} for {method} is not a file; "
                "give a text file with one refusal sentence per line, or null for the built-in ones"
            )


class IdkDPO(UnlearnTrainer):
    Args = IdkDPOArgs
    needs_ref_logps = True  # of the original answers and of the refusals

    @classmethod
    def alternate_rows(
        cls, forget_rows: list[dict[str, Any]], method_args: IdkDPOArgs, seed: int
    ) -> list[dict[str, Any]]:
        """The winner of each pair: a refusal per forget question, drawn once with the seed."""
        refusals = idk.load_refusals(method_args.idk_path)
        return idk.refusal_rows(forget_rows, refusals, seed=seed)

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        dtype = logps.sum.dtype
        return dpo_loss(
            batch["alternate_logp"],  # winner: the refusal
            batch["alternate_ref_logp"].to(dtype),
            logps.sum,  # loser: the original answer
            batch["ref_logp"].to(dtype),
            self.method_args.beta,
        )
