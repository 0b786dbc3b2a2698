"""Every method trains: 2 optimizer steps of the tiny model through ``run_training``.

Each run is composed from the real configs (Hydra compose API), trained once per module, and
checked for finite logged losses (with the per-component losses), a change in every trainable
parameter, and a complete run folder.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import SHARED_TOFU, TINY_TRAIN, compose_config, shared_tofu_available, write_mini_tofu
from obliviate.models.tiny import build_tiny_model
from obliviate.training import run_training

LN_VOCAB = math.log(128256)  # NLL of a uniform guess over Llama-3's vocabulary: 11.7618


@dataclass(frozen=True)
class Method:
    id: str
    config_name: str
    overrides: tuple[str, ...]
    target: str  # class name of trainer._target_
    forget_term: bool
    retain_term: bool


METHODS = [
    Method("GradAscent", "unlearn.yaml", ("trainer=GradAscent",), "GradAscent", True, False),
    Method("GradDiff", "unlearn.yaml", ("trainer=GradDiff",), "GradDiff", True, True),
    Method(
        "GradDiff-KL",
        "unlearn.yaml",
        ("trainer=GradDiff", "trainer.method_args.retain_loss_type=KL"),
        "GradDiff",
        True,
        True,
    ),
    Method("NPO", "unlearn.yaml", ("trainer=NPO",), "NPO", True, True),
    Method("SimNPO", "unlearn.yaml", ("trainer=SimNPO",), "SimNPO", True, True),
    Method(
        "finetune", "train.yaml", ("experiment=finetune/tofu/default",), "Finetune", False, False
    ),
]


@dataclass
class Run:
    method: Method
    out: Path
    cfg: object
    data: Path
    forget_split: str
    retain_split: str


def _train(method: Method, data: Path, forget: str, retain: str, out: Path) -> Run:
    if method.config_name == "unlearn.yaml":
        split_overrides = [
            "experiment=unlearn/tofu/default",
            f"forget_split={forget}",
            f"retain_split={retain}",
        ]
    else:
        split_overrides = [f"train_split={forget}"]
    cfg = compose_config(
        [
            *split_overrides,
            *method.overrides,
            *TINY_TRAIN,
            f"task_name=t_{method.id}",
            f"tofu_data={data}",
            f"paths.output_dir={out}",
            # A clearly visible update in 2 steps: no warm-up (lr 0 at step 1), lr 1e-3.
            "trainer.args.warmup_epochs=0",
            "trainer.args.learning_rate=1e-3",
        ],
        config_name=method.config_name,
    )
    assert run_training(cfg) == out
    return Run(method, out, cfg, data, forget, retain)


RUNS = [(data, m) for data in ("shared", "mini") for m in METHODS]


@pytest.fixture(scope="module", params=RUNS, ids=[f"{d}-{m.id}" for d, m in RUNS])
def run(request, tmp_path_factory) -> Run:
    """One 2-step training run per (data, method), shared by the tests below. ``shared`` is
    the real TOFU (forget01/retain99); ``mini`` a generated 5-author TOFU (forget20/retain80)
    so that training is exercised even where the shared data is absent."""
    data, m = request.param
    out = tmp_path_factory.mktemp(f"{data}-{m.id}") / "run"
    if data == "shared":
        if not shared_tofu_available():
            pytest.skip(
                f"shared TOFU data not found at {SHARED_TOFU}; the mini-TOFU runs still train"
            )
        return _train(m, SHARED_TOFU, "forget01", "retain99", out)
    tofu_dir = write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))
    return _train(m, tofu_dir, "forget20", "retain80", out)


def parse_log(path: Path) -> list[dict[str, float]]:
    """trainer_log.txt lines ``step=1 epoch=0.10 loss=... forget_loss=...`` -> dicts."""
    lines = []
    for line in path.read_text().splitlines():
        entry = {}
        for part in line.split():
            key, _, value = part.partition("=")
            entry[key] = float(value)
        lines.append(entry)
    return lines


# ---------------------------------------------------------------------------------------------


def test_logged_losses_are_finite_and_split_into_components(run: Run):
    log = parse_log(run.out / "trainer_log.txt")
    assert log, "trainer_log.txt is empty"
    for entry in log:
        for key, value in entry.items():
            assert math.isfinite(value), f"{key}={value} in {entry}"
    first = log[0]  # logging_first_step: step 1's losses
    assert first["step"] == 1 and "loss" in first
    assert ("forget_loss" in first) == run.method.forget_term
    assert ("retain_loss" in first) == run.method.retain_term
    assert log[-1]["step"] == 2 and "train_loss" in log[-1]

    if run.method.forget_term:
        # One micro-batch per step: loss = gamma * forget_loss + alpha * retain_loss, with the
        # composed config's weights (GradAscent has no weights: gamma 1, no retain term).
        margs = run.cfg.trainer.method_args
        gamma = float(margs.get("gamma", 1.0))
        alpha = float(margs.get("alpha", 0.0)) if run.method.retain_term else 0.0
        expected = gamma * first["forget_loss"] + alpha * first.get("retain_loss", 0.0)
        assert first["loss"] == pytest.approx(expected, abs=1e-3)


def test_step_one_losses_match_the_formulas_for_the_untrained_model(run: Run):
    """At step 1 the model is the random-init tiny Llama, whose predictions are near uniform
    over the 128256-word vocabulary (NLL ~ ln 128256 = 11.76), and equal to the reference."""
    first = parse_log(run.out / "trainer_log.txt")[0]
    m = run.method.id
    if m in ("GradAscent", "GradDiff", "GradDiff-KL"):
        assert first["forget_loss"] == pytest.approx(-LN_VOCAB, abs=0.25)  # -NLL
    if m == "NPO":
        # theta == ref: -(2/beta) log sigmoid(0) = (2/0.1) ln 2 = 13.8629 exactly.
        assert first["forget_loss"] == pytest.approx(2 / 0.1 * math.log(2), abs=1e-3)
    if m == "SimNPO":
        # -(2/4.5) log sigmoid(4.5 * 11.76) ~ (2/4.5) e^-52.9 ~ 0.
        assert first["forget_loss"] == pytest.approx(0.0, abs=1e-6)
    if m == "GradDiff-KL":
        assert first["retain_loss"] == pytest.approx(0.0, abs=1e-4)  # KL(model || itself)
    elif run.method.retain_term:
        assert first["retain_loss"] == pytest.approx(LN_VOCAB, abs=0.25)  # NLL
    if m == "finetune":
        assert first["loss"] == pytest.approx(LN_VOCAB, abs=0.25)


def test_every_trainable_parameter_changed(run: Run):
    from transformers import AutoModelForCausalLM

    before = dict(build_tiny_model(init_seed=0).named_parameters())
    after = dict(
        AutoModelForCausalLM.from_pretrained(run.out, dtype=torch.float32).named_parameters()
    )
    assert before.keys() == after.keys()
    unchanged = [
        n
        for n, p in after.items()
        if p.requires_grad and torch.equal(p.detach(), before[n].detach())
    ]
    assert not unchanged, f"{run.method.id}: parameters not updated: {unchanged}"


def test_run_folder_is_complete(run: Run):
    names = {p.name for p in run.out.iterdir()}
    expected = {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "obliviate_config.yaml",
        "receipt.json",
        "trainer_log.txt",
    }
    assert expected <= names, f"missing: {expected - names}"

    # The tokenizer is saved with the tiny template's pad token and the Llama-3.2-style chat
    # template, so the run folder alone is enough to evaluate it.
    tok_cfg = json.loads((run.out / "tokenizer_config.json").read_text())
    assert tok_cfg["pad_token"] == "<|reserved_special_token_2|>"
    template = tok_cfg.get("chat_template") or (run.out / "chat_template.jinja").read_text()
    assert "Cutting Knowledge Date" in template

    saved = OmegaConf.load(run.out / "obliviate_config.yaml")
    assert saved.trainer._target_.rsplit(".", 1)[1] == run.method.target
    assert saved.trainer.args.max_steps == 2
    assert saved.paths.output_dir == str(run.out)  # resolved, not "${...}"

    receipt = json.loads((run.out / "receipt.json").read_text())
    assert receipt["seed"] == 0
    assert receipt["global_steps"] == 2
    assert receipt["method"] == run.method.target
    for pkg in ("torch", "transformers", "obliviate"):
        assert isinstance(receipt["versions"][pkg], str) and receipt["versions"][pkg]
    if run.method.config_name == "unlearn.yaml":
        assert set(receipt["data_sha256"]) == {run.forget_split, run.retain_split, "full"}
    else:
        assert set(receipt["data_sha256"]) == {run.forget_split}
    # The checksum is sha256 over the canonical JSON of each row (sorted keys) plus "\n".
    h = hashlib.sha256()
    for line in (run.data / f"{run.forget_split}.json").read_text(encoding="utf-8").splitlines():
        if line.strip():
            h.update(
                json.dumps(json.loads(line), sort_keys=True, ensure_ascii=False).encode() + b"\n"
            )
    assert receipt["data_sha256"][run.forget_split] == h.hexdigest()
