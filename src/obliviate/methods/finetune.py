"""Finetuning (how the TOFU target and retain models are made): plain answer-token NLL."""

from __future__ import annotations

from typing import Any

from obliviate.data.datasets import QADataset
from obliviate.logprobs import forward_logprobs
from obliviate.methods.args import MethodArgs
from obliviate.methods.base import TrainData, UnlearnTrainer
from obliviate.methods.losses import nll_loss


class Finetune(UnlearnTrainer):
    Args = MethodArgs
    mode = "finetune"

    @classmethod
    def build_train_dataset(cls, data: TrainData, method_args: MethodArgs) -> Any:
        return QADataset(data.encode(data.train_rows))

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        batch = inputs["train"]
        logps, logits = forward_logprobs(model, batch)
        loss = nll_loss(logps.token_logp, logps.mask)
        return (loss, {"logits": logits}) if return_outputs else loss
