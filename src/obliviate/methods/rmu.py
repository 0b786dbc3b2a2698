"""RMU: Representation Misdirection for Unlearning (Li et al., 2024, "The WMDP Benchmark",
arXiv 2403.03218).

At a middle layer l, the activations of the forget answers' tokens are steered toward a fixed
random direction scaled by the steering coefficient c, while the retain answers' activations are
kept equal to those of the frozen model before unlearning:
L = gamma * mean_t ||h_l(t) - c u||^2 / D  (forget answer tokens)
  + alpha * mean_t ||h_l(t) - h_l^ref(t)||^2 / D  (retain answer tokens),
with u a unit vector of uniform [0, 1) entries drawn once from the run's seed, h_l the output
of decoder layer l and D the hidden size. Only the parameters matching ``trainable_params``
are trained; everything else is frozen.

Defaults are the paper's (Zephyr-7B): layer 7, trainable parameters the MLP down-projections of
layers l-2, l-1 and l, steering_coeff 6.5, alpha 1200 (lr 5e-5 in the paper). ``layer: null``
means 7, or the middle layer of a model with fewer than 16 layers. c and alpha depend on the
model's activation scale: tune them per model. The retain term is this activation distance
(there is no ``retain_loss_type``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from obliviate.data.formatting import IGNORE_INDEX
from obliviate.errors import ConfigError
from obliviate.methods.args import MethodArgs
from obliviate.methods.base import UnlearnTrainer, pad_parts
from obliviate.methods.losses import activation_mse

PAPER_LAYER = 7


@dataclass
class RMUArgs(MethodArgs):
    gamma: float = 1.0
    alpha: float = 1200.0
    steering_coeff: float = 6.5
    layer: int | None = None  # null = 7 (the paper's), or the middle layer of a smaller model
    trainable_params: str | None = None  # regex on parameter names; null = paper's choice
    seed: int = 0  # draws the random direction u

    def validate(self, method: str) -> None:
        super().validate(method)
        c = self.steering_coeff
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not c > 0:
            raise ConfigError(f"trainer.method_args.steering_coeff={c!r} for {method} must be > 0")
        if self.layer is not None and (
            isinstance(self.layer, bool) or not isinstance(self.layer, int) or self.layer < 0
        ):
            raise ConfigError(
                f"trainer.method_args.layer={self.layer!r} for {method} must be a layer index >= 0 or null"
            )
        if self.trainable_params is not None:
            try:
                re.compile(str(self.trainable_params))
            except re.error as e:
                raise ConfigError(
                    f"trainer.method_args.trainable_params={self.trainable_params!r} is not a regular expression ({e})"
                ) from e
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError(f"trainer.method_args.seed={self.seed!r} must be an integer")


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder layers of a causal LM (through DDP and PEFT wrappers)."""
    model = getattr(model, "module", model)
    if hasattr(model, "get_base_model"):
        model = model.get_base_model()
    return model.get_decoder().layers


def resolve_layer(layer: int | None, n_layers: int) -> int:
    if layer is None:
        return min(PAPER_LAYER, n_layers // 2)
    if layer >= n_layers:
        raise ConfigError(
            f"trainer.method_args.layer={layer} but the model has {n_layers} layers (0..{n_layers - 1})"
        )
    return layer


def default_trainable_pattern(layer: int) -> str:
    """The paper's choice: the MLP down-projections of layers l-2, l-1 and l."""
    layers = "|".join(str(i) for i in range(max(layer - 2, 0), layer + 1))
    return rf"layers\.({layers})\.mlp\.down_proj\."


def layer_output(
    model: torch.nn.Module, layer: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Output of decoder ``layer`` (B, T, D) in a forward pass of ``model``.

    The whole model runs (so DDP sees a normal forward), with the LM head on one position only;
    the hook is removed before backward, so checkpointed recomputation does not record again.
    """
    captured: list[torch.Tensor] = []

    def hook(module: Any, args: Any, output: Any) -> None:
        captured.append(output[0] if isinstance(output, tuple) else output)

    handle = layer.register_forward_hook(hook)
    try:
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
    finally:
        handle.remove()
    return captured[0]


class RMU(UnlearnTrainer):
    Args = RMUArgs
    needs_ref_model = True

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        a = self.method_args
        layers = decoder_layers(self.model)
        self.layer = resolve_layer(a.layer, len(layers))
        pattern = a.trainable_params or default_trainable_pattern(self.layer)
        self.trainable = freeze_all_but(self.model, pattern, self.layer)
        # Frozen embeddings: make their output require grad so checkpointed layers still pass a
        # gradient to the trainable parameters inside them.
        self.model.enable_input_require_grads()
        g = torch.Generator().manual_seed(int(a.seed))
        u = torch.rand(self.model.config.hidden_size, generator=g)
        self.control = u / u.norm() * float(a.steering_coeff)  # (D,), |c u| = c

    @property
    def retain_loss_type(self) -> str | None:
        return None  # the retain term is the activation distance, not NLL/KL

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        forget = inputs["forget"]
        retain = inputs.get("retain") if self.alpha > 0 else None
        parts = [forget] + ([retain] if retain is not None else [])
        ids, mask = pad_parts(parts)
        h = layer_output(model, decoder_layers(model)[self.layer], ids, mask)  # (B, T, D)
        n_f, t_f = forget["input_ids"].shape
        h_f = h[:n_f, :t_f]
        f_mask = forget["labels"] != IGNORE_INDEX  # activations of the answer tokens
        control = self.control.to(h.device)
        if retain is not None:
            t_r = retain["input_ids"].size(1)
            h_r = h[n_f:, :t_r]
            r_mask = retain["labels"] != IGNORE_INDEX
            with self.reference() as ref:
                h_ref = layer_output(
                    ref,
                    decoder_layers(ref)[self.layer],
                    retain["input_ids"],
                    retain["attention_mask"],
                )

        size = self.loss_group_size or n_f
        losses = []
        for g in (slice(i, i + size) for i in range(0, n_f, size)):
            forget_loss = activation_mse(h_f[g], control, f_mask[g])
            loss = self.gamma * forget_loss
            self._record("forget_loss", forget_loss)
            if retain is not None:
                retain_loss = activation_mse(h_r[g], h_ref[g], r_mask[g])
                loss = loss + self.alpha * retain_loss
                self._record("retain_loss", retain_loss)
            losses.append(loss)
        loss = torch.stack(losses).mean()
        return (loss, {"hidden": h}) if return_outputs else loss


def freeze_all_but(model: torch.nn.Module, pattern: str, layer: int) -> list[str]:
    """Freeze every parameter whose name does not match ``pattern`` (``re.search``); only
    currently trainable parameters can match (with LoRA: adapter weights). Returns the names
    left trainable."""
    regex = re.compile(pattern)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    keep = [n for n in trainable if regex.search(n)]
    if not keep:
        raise ConfigError(
            f"trainer.method_args.trainable_params={pattern!r} matches no trainable parameter; "
            f"names look like {trainable[:3]}"
        )
    after = [n for n in keep if (m := re.search(r"layers\.(\d+)\.", n)) and int(m.group(1)) > layer]
    if after:
        raise ConfigError(
            f"trainer.method_args.trainable_params={pattern!r} selects parameters after layer "
            f"{layer}, which RMU's loss never reaches: {after[:3]}"
        )
    chosen = set(keep)
    for n, p in model.named_parameters():
        if n not in chosen:
            p.requires_grad_(False)
    return keep
