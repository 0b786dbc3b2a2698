"""The one trainer every method subclasses.

A method overrides ``forget_loss`` (and declares what it needs); the base does the rest:
one forward pass over the forget and retain halves together, the retain loss (NLL or KL to the
model before unlearning), ``L = gamma * L_forget + alpha * R``, and separate logging of both
parts. Only the public ``compute_loss`` / ``log`` / ``evaluate`` hooks of ``transformers.Trainer``
are overridden.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from transformers import Trainer

from obliviate.data.datasets import ForgetRetainDataset
from obliviate.logprobs import (
    SequenceLogProbs,
    answer_window,
    forward_logits,
    score_encoded,
    sequence_logprobs,
)
from obliviate.methods.args import MethodArgs
from obliviate.methods.losses import kl_retain_loss, nll_loss
from obliviate.models.lora import is_peft_model
from obliviate.utils.dist import full_parameters, is_zero3_partitioned


@dataclass
class TrainData:
    """What a method builds its training set from (see ``UnlearnTrainer.build_train_dataset``)."""

    train_rows: list[dict[str, Any]]  # the forget split (unlearning) or the training split
    retain_rows: list[dict[str, Any]] | None  # None when finetuning
    encode: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]  # rows -> tokenised items
    #: tokenised items -> log pi_ref(y|x), summed over answer tokens, of the model as loaded
    reference_logps: Callable[[list[dict[str, Any]]], list[float]]
    seed: int
    #: retain pairs drawn from torch's global generator at each read (open-unlearning's way)
    global_rng_pairing: bool = False


class UnlearnTrainer(Trainer):
    """Base unlearning trainer. Subclasses set ``Args`` and implement ``forget_loss``."""

    Args: ClassVar[type[MethodArgs]] = MethodArgs
    #: the reference log-probs of each forget (and alternate) answer, computed once before
    #: training by ``build_train_dataset`` (item key ``ref_logp``)
    needs_ref_logps: ClassVar[bool] = False
    #: the config mode whose data this trainer consumes (forget/retain pairs, or plain QA)
    mode: ClassVar[str] = "unlearn"
    #: needs the model before unlearning at every step (a frozen copy, or the LoRA base model)
    needs_ref_model: ClassVar[bool] = False

    def __init__(
        self,
        *args: Any,
        method_args: MethodArgs,
        eval_hook: Callable[[Any, int], dict[str, float]] | None = None,
        ref_model_factory: Callable[[], torch.nn.Module] | None = None,
        loss_group_size: int | None = None,
        data_order_file: Path | None = None,
        batch_stream: Any = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        #: a batch sampler of every epoch's micro-batches in one stream (data/stream.py), or None
        self.batch_stream = batch_stream
        self.method_args = method_args
        self.eval_hook = eval_hook
        #: rows per user micro-batch when several are fused into one pass (None = not fused)
        self.loss_group_size = loss_group_size
        #: trainer.record_data_order=true: the item indices of every micro-batch go here
        self.data_order_file = data_order_file
        # Our losses are means over the micro-batch: let Trainer divide by the accumulation steps.
        self.loss_is_scaled_for_ga = False
        self._components: dict[str, list[torch.Tensor]] = defaultdict(list)
        self.ref_model = None
        #: with LoRA the reference is the base model itself, adapters switched off: no copy
        self._ref_is_base = False
        self.all_finite: torch.Tensor | None = None
        if self.needs_ref_model or (self.retain_loss_type == "KL" and self.alpha > 0):
            # KL needs the full reference distribution on retain tokens: keep a frozen copy.
            if is_peft_model(self.model):
                self._ref_is_base = True
            elif is_zero3_partitioned(self.model):
                # A deepcopy of a ZeRO-3 model copies empty weight slices; load the start model
                # again (partitioned as it loads) and give it its own inference-only engine.
                if ref_model_factory is None:
                    raise ValueError(
                        "under DeepSpeed ZeRO-3 the reference model needs ref_model_factory"
                    )
                self.ref_model = zero3_inference_engine(
                    ref_model_factory(),
                    self.accelerator.state.deepspeed_plugin.deepspeed_config,
                    self.args,
                )
            else:
                self.ref_model = copy.deepcopy(self.model).eval().requires_grad_(False)

    def get_train_dataloader(self) -> Any:
        if self.batch_stream is None:
            return super().get_train_dataloader()
        loader = torch.utils.data.DataLoader(
            self.train_dataset,
            batch_sampler=self.batch_stream,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
        )
        return self.accelerator.prepare(loader)

    # ---- the training set -------------------------------------------------------------------
    @classmethod
    def build_train_dataset(cls, data: TrainData, method_args: MethodArgs) -> Any:
        """Forget/retain pairs, tokenised once. A method that needs more per item overrides
        ``alternate_rows`` (a second answer per forget question) or sets ``needs_ref_logps``."""
        forget = data.encode(data.train_rows)
        retain = data.encode(data.retain_rows or [])
        alt_rows = cls.alternate_rows(data.train_rows, method_args, data.seed)
        alternate = data.encode(alt_rows) if alt_rows is not None else None
        if cls.needs_ref_logps:
            for items in (forget, alternate or []):
                for item, lp in zip(items, data.reference_logps(items), strict=True):
                    item["ref_logp"] = lp
        return ForgetRetainDataset(
            forget, retain, seed=data.seed, alternate=alternate, global_rng=data.global_rng_pairing
        )

    @classmethod
    def alternate_rows(
        cls, forget_rows: list[dict[str, Any]], method_args: MethodArgs, seed: int
    ) -> list[dict[str, Any]] | None:
        """A second answer to each forget question (batch part ``alternate``); None = none."""
        return None

    # ---- what a method declares -------------------------------------------------------------
    @property
    def gamma(self) -> float:
        return float(getattr(self.method_args, "gamma", 1.0))

    @property
    def alpha(self) -> float:
        return float(getattr(self.method_args, "alpha", 0.0))

    @property
    def retain_loss_type(self) -> str | None:
        return getattr(self.method_args, "retain_loss_type", None)

    def forget_loss(self, logps: SequenceLogProbs, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The forget loss of one micro-batch. Besides the collated tensors, ``batch`` holds
        ``logits`` (B, T', V), aligned with ``logps.mask``, and, when the data has an
        ``alternate`` part, ``alternate_logp`` (B,) (and ``alternate_ref_logp``)."""
        raise NotImplementedError

    # ---- the shared machinery ---------------------------------------------------------------
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        forget = inputs["forget"]
        alternate = inputs.get("alternate")  # a second answer to each forget question
        retain = inputs.get("retain") if self.alpha > 0 else None
        parts = [p for p in (forget, alternate, retain) if p is not None]
        logits, start = joint_logits(model, parts)  # one pass, logits from `start` on
        n_f = forget["input_ids"].size(0)
        f_logps = _part_logprobs(logits[:n_f], forget, start)
        forget = {**forget, "logits": logits[:n_f, : forget["input_ids"].size(1) - start - 1]}
        n_done = n_f
        if alternate is not None:
            a_logps = _part_logprobs(logits[n_f : 2 * n_f], alternate, start)
            forget["alternate_logp"] = a_logps.sum
            if "ref_logp" in alternate:
                forget["alternate_ref_logp"] = alternate["ref_logp"]
            n_done += n_f
        r_logits = (
            logits[n_done:, : retain["input_ids"].size(1) - start] if retain is not None else None
        )

        # With fused accumulation, one pass holds several of the user's micro-batches; the loss
        # is then the mean of each micro-batch's loss, exactly what accumulation would give.
        size = self.loss_group_size or n_f
        losses = []
        for g in (slice(i, i + size) for i in range(0, n_f, size)):
            forget_loss = self.forget_loss(f_logps[g], _rows(forget, g))
            loss = self.gamma * forget_loss
            self._record("forget_loss", forget_loss)
            if retain is not None:
                retain_loss = self.retain_loss(r_logits[g], _rows(retain, g), start)
                loss = loss + self.alpha * retain_loss
                self._record("retain_loss", retain_loss)
            losses.append(loss)
        loss = torch.stack(losses).mean()
        return (loss, {"logits": logits}) if return_outputs else loss

    def retain_loss(
        self, logits: torch.Tensor, retain: dict[str, torch.Tensor], start: int
    ) -> torch.Tensor:
        """``logits`` (B, T - start, V) cover positions ``start ..`` of the retain rows."""
        logps = _part_logprobs(logits, retain, start)
        if self.retain_loss_type == "KL":
            with self.reference() as ref:
                ref_logits = forward_logits(
                    ref, retain["input_ids"], retain["attention_mask"], start
                )
            return kl_retain_loss(logits[:, :-1], ref_logits[:, :-1], logps.mask)
        return nll_loss(logps.token_logp, logps.mask)

    @contextlib.contextmanager
    def reference(self) -> Iterator[torch.nn.Module]:
        """The model before unlearning, for no-grad passes: the frozen copy, or (LoRA) the model
        itself with its adapters switched off."""
        with torch.no_grad():
            if self._ref_is_base:
                with self.model.disable_adapter():
                    yield self.model
            else:
                yield self.ref_model

    def reference_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The reference model's logits aligned with ``batch["logits"]``: (B, T', V)."""
        start = batch["input_ids"].size(1) - 1 - batch["logits"].size(1)
        with self.reference() as ref:
            logits = forward_logits(ref, batch["input_ids"], batch["attention_mask"], start)
        return logits[:, :-1]

    def training_step(self, model, inputs, num_items_in_batch=None):
        if self.data_order_file is not None:
            self._record_data_order(inputs)
        loss = super().training_step(model, inputs, num_items_in_batch)
        # Accumulated on the device (no sync); FiniteLossGuard reads it once per optimizer step.
        finite = torch.isfinite(loss).all()
        self.all_finite = finite if self.all_finite is None else self.all_finite & finite
        return loss

    def _record_data_order(self, inputs: dict[str, Any]) -> None:
        line = {"step": self.state.global_step + 1, "rank": self.args.process_index}
        for part, batch in inputs.items():
            if isinstance(batch, dict) and "index" in batch:
                line[part] = batch["index"].tolist()
        with open(self.data_order_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")

    def _record(self, name: str, value: torch.Tensor) -> None:
        if self.model.training:
            self._components[name].append(value.detach().float())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        # Training logs get the mean of each loss part since the last log, averaged over ranks.
        if "loss" in logs and self._components:
            for name, values in self._components.items():
                mean = torch.stack(values).mean()
                logs[name] = round(self.accelerator.reduce(mean, reduction="mean").item(), 6)
            self._components.clear()
        super().log(logs, start_time)

    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        """``eval_strategy=steps`` lands here: run the TOFU evaluation hook on the current model."""
        if self.eval_hook is None:
            return {}
        was_training = self.model.training
        metrics = self.eval_hook(self.model, self.state.global_step)
        self.model.train(was_training)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in metrics.items()}
        self.log(metrics)
        return metrics


def _rows(batch: dict[str, torch.Tensor], rows: slice) -> dict[str, torch.Tensor]:
    return {k: v[rows] for k, v in batch.items()}


def joint_logits(
    model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]
) -> tuple[torch.Tensor, int]:
    """Run several right-padded batches through the model in one forward pass.

    Each batch is padded on the right to the longest of them; attention masks keep the extra
    padding invisible, so item i's logits over its own length are those of a separate pass.
    Returns logits at positions ``start ..`` only (the LM head is skipped on prompt-only
    positions) and ``start``.
    """
    start = min(answer_window(b["labels"]) for b in batches)
    ids, mask = pad_parts(batches)
    return forward_logits(model, ids, mask, start), start


def pad_parts(batches: list[dict[str, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack right-padded batches into one: ``input_ids`` and ``attention_mask`` (sum B, T)."""
    if len(batches) == 1:
        return batches[0]["input_ids"], batches[0]["attention_mask"]
    longest = max(b["input_ids"].size(1) for b in batches)
    ids, masks = [], []
    for b in batches:
        pad = longest - b["input_ids"].size(1)
        ids.append(torch.nn.functional.pad(b["input_ids"], (0, pad), value=0))
        masks.append(torch.nn.functional.pad(b["attention_mask"], (0, pad), value=0))
    return torch.cat(ids), torch.cat(masks)


def _part_logprobs(
    logits: torch.Tensor, batch: dict[str, torch.Tensor], start: int
) -> SequenceLogProbs:
    """Log-probs of one part of a joint pass: its rows, cut to its own length."""
    t = batch["input_ids"].size(1)
    return sequence_logprobs(logits[:, : t - start], batch["labels"][:, start:])


@torch.no_grad()
def reference_logps(
    model: torch.nn.Module,
    items: list[dict[str, Any]],
    pad_id: int,
    batch_size: int = 16,
    mask_id: int | None = None,
) -> list[float]:
    """log pi_ref(y|x) (summed over answer tokens) of each item under ``model`` as it is now.

    Used by NPO-style methods so that the reference model need not stay in memory: the
    reference is the model before unlearning, and its log-probs on the forget set never change.
    Items are scored in length-sorted batches; results come back in the original order.
    """
    was_training = model.training
    model.eval()
    with full_parameters(model):  # ZeRO-3: this pass runs before DeepSpeed's engine exists
        scored = score_encoded(model, items, pad_id, batch_size, keep_tokens=False, mask_id=mask_id)
    model.train(was_training)
    return [s.sum_logp for s in scored]


def zero3_inference_engine(model: torch.nn.Module, ds_config: dict, args: Any) -> torch.nn.Module:
    """Wrap a frozen model in a DeepSpeed engine with the run's ZeRO-3 settings but no optimizer:
    every rank keeps a slice of the weights and each forward gathers them.

    ``ds_config`` is the run's DeepSpeed config (it may still hold ``"auto"`` values, filled in
    here the way transformers fills them for the trained model); ``args`` the TrainingArguments.
    """
    import deepspeed

    ds = copy.deepcopy(ds_config)
    for key in ("optimizer", "scheduler"):
        ds.pop(key, None)
    zero = ds.setdefault("zero_optimization", {})
    zero.pop("offload_optimizer", None)
    cfg = getattr(model.config, "text_config", model.config)
    h = int(getattr(cfg, "hidden_size", 0) or 0)
    sized = {
        "reduce_bucket_size": h * h,
        "stage3_prefetch_bucket_size": int(0.9 * h * h),
        "stage3_param_persistence_threshold": 10 * h,
    }
    for key, value in sized.items():
        if zero.get(key) == "auto":
            zero[key] = value
    ds["train_micro_batch_size_per_gpu"] = args.per_device_train_batch_size
    ds["gradient_accumulation_steps"] = args.gradient_accumulation_steps
    ds["train_batch_size"] = (
        args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
    )
    if ds.get("gradient_clipping") == "auto":
        ds["gradient_clipping"] = args.max_grad_norm
    for key, on in (("bf16", args.bf16), ("fp16", args.fp16)):
        if isinstance(ds.get(key), dict) and ds[key].get("enabled") == "auto":
            ds[key]["enabled"] = bool(on)
    engine, *_ = deepspeed.initialize(model=model.requires_grad_(False), config=ds)
    engine.eval()
    return engine
