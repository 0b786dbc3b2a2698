"""LoRA through PEFT really trains: after one step every ``lora_B`` (initialised to zero) has
changed, with and without gradient checkpointing; the base weights stay frozen; the run folder
holds the adapter (and, on request, the merged model), and ``load_model`` reads either.
All on ``model=tiny-bytes``, the tiny Llama with a 261-token byte-level vocabulary."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from safetensors.torch import load_file

from conftest import TINY_TRAIN, compose_config, write_mini_tofu
from obliviate.errors import ConfigError
from obliviate.logprobs import forward_logits
from obliviate.models.loading import load_model
from obliviate.models.lora import LoraSettings, apply_lora, lora_settings
from obliviate.models.tiny import build_tiny_model
from obliviate.training import run_training

pytest.importorskip("peft")

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
N_LAYERS = 2  # the tiny model
LN_VOCAB = math.log(261)  # model=tiny-bytes' vocabulary
# <|begin_of_text|> then the bytes of "The answer is 2." (tiny-bytes: id = byte value)
IDS = torch.tensor([[256, *b"The answer is 2."]])


def settings(**kw) -> LoraSettings:
    base = dict(r=4, alpha=8.0, dropout=0.0, target_modules=TARGETS, merge=False)
    return LoraSettings(**{**base, **kw})


def lora_B(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in tensors.items() if "lora_B" in k}


# ---- settings -----------------------------------------------------------------------------


def test_lora_is_off_by_default_and_on_with_r():
    cfg = compose_config(["model=tiny-bytes", "task_name=t"])
    assert lora_settings(cfg.model) is None
    on = lora_settings(compose_config(["model=tiny-bytes", "task_name=t", "model.lora.r=8"]).model)
    assert on == LoraSettings(8, 16.0, 0.0, TARGETS, False)


@pytest.mark.parametrize(
    ("override", "pattern"),
    [
        ("model.lora.r=0", r"model\.lora\.r=0 must be a positive integer"),
        ("model.lora.alpha=-1", r"model\.lora\.alpha=-1 must be a number > 0"),
        ("model.lora.dropout=1.0", r"model\.lora\.dropout=1\.0 must be in \[0, 1\)"),
        ("model.lora.target_modules=[]", r"target_modules=\[\] must be a non-empty list"),
        ("+model.lora.rank=8", r"unknown key model\.lora\.rank"),
    ],
)
def test_bad_lora_settings_name_themselves(override, pattern):
    cfg = compose_config(["model=tiny-bytes", "task_name=t", "model.lora.r=8", override])
    with pytest.raises(ConfigError, match=pattern):
        lora_settings(cfg.model)


def test_missing_peft_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # `import peft` now raises ImportError
    cfg = compose_config(["model=tiny-bytes", "task_name=t", "model.lora.r=8"])
    with pytest.raises(ConfigError, match=r"pip install 'obliviate\[lora\]'"):
        lora_settings(cfg.model)


def test_target_module_matching_nothing_is_an_error():
    with pytest.raises(ConfigError, match=r"\['qproj'\] match no module .*'q_proj'"):
        apply_lora(build_tiny_model(tokenizer="bytes"), settings(target_modules=("qproj",)))


# ---- gradients ----------------------------------------------------------------------------


@pytest.mark.parametrize("reentrant", [False, True])
def test_checkpointed_layers_pass_gradients_to_every_adapter(reentrant):
    """Re-entrant checkpointing with frozen embeddings is how LoRA silently trains nothing;
    ``apply_lora`` makes the embedding output require grad, so both modes reach the adapters."""
    model = apply_lora(build_tiny_model(tokenizer="bytes"), settings())
    model.activation_checkpointing_enable(
        activation_checkpointing_kwargs={"use_reentrant": reentrant}
    )
    model.train()
    forward_logits(model, IDS, torch.ones_like(IDS), 2).logsumexp(-1).sum().backward()
    grads = {n: p.grad for n, p in model.named_parameters() if "lora_B" in n}
    assert len(grads) == len(TARGETS) * N_LAYERS
    assert all(g is not None and g.abs().sum() > 0 for g in grads.values())
    # Only adapters are trainable; the base weights have no gradient.
    assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)


def test_reference_is_the_base_model_with_adapters_off(tmp_path):
    """A KL retain term (or UNDIAL/RMU) under LoRA uses the base model itself, not a copy."""
    from transformers import TrainingArguments

    from obliviate.methods.args import RetainArgs
    from obliviate.methods.grad_diff import GradDiff

    model = apply_lora(build_tiny_model(tokenizer="bytes"), settings())
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)  # adapters now change the output
    trainer = GradDiff(
        model=model,
        args=TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True),
        method_args=RetainArgs(retain_loss_type="KL"),
    )
    assert trainer.ref_model is None
    ids = IDS
    mask = torch.ones_like(ids)
    with trainer.reference() as ref:
        ref_logits = forward_logits(ref, ids, mask, 0)
    base_logits = forward_logits(build_tiny_model(tokenizer="bytes"), ids, mask, 0)
    torch.testing.assert_close(ref_logits, base_logits, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(forward_logits(model, ids, mask, 0), base_logits, atol=1e-3)


# ---- training runs ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))


def train(mini: Path, out: Path, *overrides: str, steps: int = 1):
    experiment = (
        []
        if any(o.startswith("experiment=") for o in overrides)
        else ["experiment=unlearn/tofu/default"]
    )
    cfg = compose_config(
        [
            *experiment,
            *overrides,
            "forget_split=forget20",
            "retain_split=retain80",
            *(o for o in TINY_TRAIN if not o.startswith("model=")),
            "model=tiny-bytes",
            f"trainer.args.max_steps={steps}",
            "task_name=t_lora",
            f"tofu_data={mini}",
            f"paths.output_dir={out}",
            "trainer.args.warmup_epochs=0",
            "trainer.args.learning_rate=1e-3",
            "model.lora.r=4",
            "model.lora.alpha=8",
        ]
    )
    assert run_training(cfg) == out
    return cfg


def first_log(out: Path) -> dict[str, float]:
    line = (out / "trainer_log.txt").read_text().splitlines()[0]
    return {k: float(v) for k, _, v in (p.partition("=") for p in line.split())}


@pytest.fixture(scope="module", params=[False, True], ids=["plain", "checkpointing+KL+merge"])
def lora_run(request, mini, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "run"
    extra = ["trainer=GradDiff"]
    if request.param:
        extra += [
            "trainer.args.gradient_checkpointing=true",
            "trainer.method_args.retain_loss_type=KL",
            "model.lora.merge=true",
        ]
    train(mini, out, *extra)
    return out, request.param


def test_one_step_changes_every_lora_B(lora_run):
    out, checkpointing = lora_run
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= names
    assert "model.safetensors" not in names  # the full weights are not written again
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["r"] == 4 and config["lora_alpha"] == 8
    assert sorted(config["target_modules"]) == sorted(TARGETS)
    bs = lora_B(load_file(out / "adapter_model.safetensors"))
    assert len(bs) == len(TARGETS) * N_LAYERS
    unchanged = [k for k, v in bs.items() if not v.abs().sum() > 0]  # all start at zero
    assert not unchanged, f"lora_B still zero after one step: {unchanged}"
    receipt = json.loads((out / "receipt.json").read_text())
    assert receipt["lora"]["r"] == 4
    if checkpointing:
        # KL to the base model with adapters off is exactly 0 before the first update.
        assert first_log(out)["retain_loss"] == pytest.approx(0.0, abs=1e-6)


def test_merged_model_is_base_plus_scaled_BA_and_base_stayed_frozen(lora_run):
    out, merged = lora_run
    if not merged:
        assert not (out / "merged").exists()
        return
    adapter = load_file(out / "adapter_model.safetensors")
    merged_w = load_file(out / "merged" / "model.safetensors")
    base = {k: v.detach() for k, v in build_tiny_model(tokenizer="bytes").state_dict().items()}
    scale = 8 / 4  # alpha / r
    checked = 0
    for name, w in merged_w.items():
        module = name.removesuffix(".weight")
        a_key = f"base_model.model.{module}.lora_A.weight"
        if a_key in adapter:
            b = adapter[f"base_model.model.{module}.lora_B.weight"]
            expected = base[name] + scale * (b @ adapter[a_key])
            torch.testing.assert_close(w, expected, rtol=1e-5, atol=1e-6)
            assert not torch.equal(w, base[name])
            checked += 1
        else:  # not adapted: embeddings, norms -- exactly the base's
            assert torch.equal(w, base[name]), name
    assert checked == len(TARGETS) * N_LAYERS


def test_evaluation_loads_the_adapter_folder_or_the_merged_model(lora_run):
    out, merged = lora_run
    ids = IDS
    mask = torch.ones_like(ids)
    folders = {"adapter": out, "base": None} | ({"merged": out / "merged"} if merged else {})
    logits = {}
    for label, path in folders.items():
        cfg = compose_config(["model=tiny-bytes", "task_name=t"]).model
        OmegaConf.update(
            cfg,
            "model_args.pretrained_model_name_or_path",
            None if path is None else str(path),
        )
        model = load_model(cfg).eval()
        assert not hasattr(model, "peft_config") or not model.peft_config  # a plain model
        with torch.no_grad():
            logits[label] = forward_logits(model, ids, mask, 0)
    assert not torch.allclose(logits["adapter"], logits["base"], atol=1e-4)  # adapter applied
    if merged:
        torch.testing.assert_close(logits["adapter"], logits["merged"], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("overrides", "trained"),
    [
        (("experiment=unlearn/tofu/idk", "trainer=IdkDPO"), "all"),
        (("trainer=UNDIAL",), "all"),
        (("trainer=RMU",), "down_proj"),  # RMU's default pattern selects the down_proj adapters
    ],
    ids=["IdkDPO", "UNDIAL", "RMU"],
)
def test_methods_with_a_reference_train_their_adapters(mini, tmp_path, overrides, trained):
    out = tmp_path / "run"
    train(mini, out, *overrides)
    log = first_log(out)
    if "trainer=IdkDPO" in overrides:
        assert log["forget_loss"] == pytest.approx(math.log(2), abs=1e-4)
    if "trainer=UNDIAL" in overrides:
        assert log["forget_loss"] == pytest.approx(LN_VOCAB, abs=0.25)
    if "trainer=RMU" in overrides:
        assert log["retain_loss"] == pytest.approx(0.0, abs=1e-7)
    bs = lora_B(load_file(out / "adapter_model.safetensors"))
    changed = {k for k, v in bs.items() if v.abs().sum() > 0}
    expected = {k for k in bs if trained == "all" or trained in k}
    assert changed == expected
