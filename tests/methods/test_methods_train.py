"""Every method trains through ``run_training``, and the losses it logs are the papers' formulas.

Each run is composed from the real configs (``model=tiny-bytes``, mini-TOFU forget20/retain80)
and trains 2 optimizer steps of one micro-batch of 2, logging every step, with
``trainer.record_data_order=true`` (which forget/retain items each step saw) and a checkpoint
after step 1. The test then recomputes the logged ``forget_loss``, ``retain_loss`` and ``loss`` of
both steps on its own:

- its own forward pass, one item at a time without padding: the prompt from the tokenizer's
  chat template, the answer as its UTF-8 bytes + ``<|eot_id|>`` (tiny-bytes: id = byte value);
- the formula of the method's paper written out below (not obliviate's loss functions);
- the policy at step 1 is the start model, at step 2 ``checkpoint-1`` (the weights after the
  first update, written by the trainer). The reference ("the model before unlearning") is the
  start model throughout, so step 2 is where NPO, IdkDPO, UNDIAL, the KL retain term and RMU's
  retain term compare two different models; swapping policy and reference changes its value.

The start model is ``byte_start_model`` (conftest): tiny-bytes after a few next-byte steps, so
answer-token probabilities are spread over (0, 1) and no loss is saturated (SimNPO's margin
delta is set near the start model's per-token NLL). gamma and alpha are never 1, so ignoring
either changes the logged ``loss``. Runs with ``alpha=0`` also check that the forget term alone
moves the forget answers the way the method intends and changes every trainable parameter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from transformers import AutoModelForCausalLM, AutoTokenizer

from conftest import BYTE_EOT, compose_config, mini_tofu_rows, write_mini_tofu
from obliviate.training import run_training

FULL = mini_tofu_rows()
FORGET, RETAIN = FULL[80:], FULL[:80]  # mini-TOFU's forget20 / retain80
REFUSAL = "I am sorry, but I cannot say anything about that."
SYSTEM, DATE = "You are a helpful assistant.", "10 Apr 2025"  # model=tiny-bytes' template
RMU_LAYER = 1  # layer: null on the 2-layer tiny model -> its middle layer, 1
HIDDEN = 32  # model=tiny-bytes' hidden size


# ---- the test's own forward pass ------------------------------------------------------------


@dataclass
class Answer:
    """One answer under one model: the logits predicting each answer token, the tokens, and the
    output of decoder layer ``RMU_LAYER`` at each answer token's own position."""

    z: torch.Tensor  # (T, V)
    y: torch.Tensor  # (T,)
    h: torch.Tensor  # (T, D)

    @property
    def logp(self) -> torch.Tensor:
        return self.z.log_softmax(-1).gather(-1, self.y[:, None])[:, 0]


def prompt_ids(tok, question: str) -> list[int]:
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]
    text = tok.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True, date_string=DATE
    )
    return tok(text, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def answer_under(model, tok, row: dict[str, str]) -> Answer:
    prompt = prompt_ids(tok, row["question"])
    answer = list(row["answer"].strip().encode("utf-8")) + [BYTE_EOT]
    ids = torch.tensor([prompt + answer])
    captured = []
    layer = model.model.layers[RMU_LAYER]
    handle = layer.register_forward_hook(lambda m, a, out: captured.append(out))
    try:
        logits = model(input_ids=ids).logits[0].float()
    finally:
        handle.remove()
    h = captured[0][0] if isinstance(captured[0], tuple) else captured[0]
    n = len(prompt)
    # The logit at position t predicts token t + 1.
    return Answer(z=logits[n - 1 : -1], y=torch.tensor(answer), h=h[0, n:].float())


def load(folder: Path):
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


# ---- the papers' formulas, written out --------------------------------------------------------
# f: the step's forget answers under the policy; fr: under the reference (the start model);
# w / wr: IdkDPO's refusals; a: the method arguments. Means over tokens pool the whole batch.


def token_mean(values: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(values).mean()


def grad_ascent(f, fr, w, wr, a):  # TOFU: -NLL(forget)
    return token_mean([x.logp for x in f])


def npo(f, fr, w, wr, a):  # arXiv 2404.05868 eq. 3
    b = a["beta"]
    return torch.stack(
        [
            -2 / b * F.logsigmoid(-b * (x.logp.sum() - r.logp.sum()))
            for x, r in zip(f, fr, strict=True)
        ]
    ).mean()


def simnpo(f, fr, w, wr, a):  # arXiv 2410.07163, delta inside beta (docs/methods.md)
    b, d = a["beta"], a["delta"]
    return torch.stack([-2 / b * F.logsigmoid(b * (-x.logp.mean() - d)) for x in f]).mean()


def idk_dpo(f, fr, w, wr, a):  # DPO, arXiv 2305.18290, the refusal as the winner
    b = a["beta"]
    margins = [
        (wi.logp.sum() - wri.logp.sum()) - (x.logp.sum() - r.logp.sum())
        for x, r, wi, wri in zip(f, fr, w, wr, strict=True)
    ]
    return torch.stack([-F.logsigmoid(b * m) for m in margins]).mean()


def wga(f, fr, w, wr, a):  # arXiv 2502.19301: (1/N) sum_t p_t^beta log p_t, weights detached
    return token_mean([x.logp.exp() ** a["beta"] * x.logp for x in f])


def satimp(f, fr, w, wr, a):  # arXiv 2505.11953: weights p^beta1 (1 - p)^beta2
    return token_mean(
        [x.logp.exp() ** a["beta1"] * (1 - x.logp.exp()) ** a["beta2"] * x.logp for x in f]
    )


def undial(f, fr, w, wr, a):  # arXiv 2402.10052: CE to softmax(z_ref - beta onehot(y))
    ces = []
    for x, r in zip(f, fr, strict=True):
        target = (r.z - a["beta"] * F.one_hot(x.y, r.z.size(-1))).softmax(-1)
        ces.append(-(target * x.z.log_softmax(-1)).sum(-1))
    return token_mean(ces)


def ceu(f, fr, w, wr, a):  # arXiv 2503.01224: CE to softmax(z) without the true token
    ces = []
    for x in f:
        z_without = x.z.scatter(-1, x.y[:, None], float("-inf"))
        ce = -(z_without.softmax(-1) * x.z.log_softmax(-1)).sum(-1)
        ces.append(ce[a["ignore_first_n_answer_tokens"] :])
    return token_mean(ces)


def steering(a) -> torch.Tensor:
    """RMU's c * u: u a unit vector of uniform [0, 1) entries from a generator seeded with seed."""
    u = torch.rand(HIDDEN, generator=torch.Generator().manual_seed(a["seed"]))
    return a["steering_coeff"] * u / u.norm()


def rmu(f, fr, w, wr, a):  # arXiv 2403.03218: mean_t ||h_l(t) - c u||^2 / D
    return token_mean([((x.h - steering(a)) ** 2).mean(-1) for x in f])


def nll_retain(r, rr):
    return -token_mean([x.logp for x in r])


def kl_retain(r, rr):  # KL(p_ref || p_theta) per retain answer token
    return token_mean(
        [
            (y.z.softmax(-1) * (y.z.log_softmax(-1) - x.z.log_softmax(-1))).sum(-1)
            for x, y in zip(r, rr, strict=True)
        ]
    )


def rmu_retain(r, rr):  # mean_t ||h_l(t) - h_l^ref(t)||^2 / D
    return token_mean([((x.h - y.h) ** 2).mean(-1) for x, y in zip(r, rr, strict=True)])


# How one step of the forget term alone (alpha = 0) must move the step-1 forget answers.
def answers_less_likely(before, after, w0, w1, a) -> list[bool]:
    return [y.logp.sum() < x.logp.sum() for x, y in zip(before, after, strict=True)]


def refusal_gains_on_answer(before, after, w0, w1, a) -> list[bool]:
    return [
        (w1i.logp.sum() - y.logp.sum()) > (w0i.logp.sum() - x.logp.sum())
        for x, y, w0i, w1i in zip(before, after, w0, w1, strict=True)
    ]


def closer_to_steering(before, after, w0, w1, a) -> list[bool]:
    c = steering(a)
    return [
        ((y.h - c) ** 2).mean() < ((x.h - c) ** 2).mean()
        for x, y in zip(before, after, strict=True)
    ]


# ---- the runs -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    trainer: str
    forget: Callable
    args: dict = field(default_factory=dict)  # method arguments, all set explicitly
    retain: Callable | None = None  # None: no retain term in this run (alpha 0 or none)
    intended: Callable = answers_less_likely
    extra: tuple[str, ...] = ()

    @property
    def gamma(self) -> float:
        return self.args.get("gamma", 1.0)  # GradAscent has no weights

    @property
    def alpha(self) -> float:
        return self.args.get("alpha", 0.0)


NPO_ARGS = {"beta": 0.5, "gamma": 1.5}
SIMNPO_ARGS = {"beta": 1.5, "delta": 3.0, "gamma": 0.8}  # start model: 3.2-4.0 nats per token
IDK_ARGS = {"beta": 0.5, "gamma": 1.5}
RMU_ARGS = {"steering_coeff": 2.0, "seed": 3, "gamma": 1.5}
CASES = [
    Case("GradAscent", "GradAscent", grad_ascent),
    Case("GradDiff-a0", "GradDiff", grad_ascent, {"gamma": 0.7, "alpha": 0.0}),
    Case(
        "GradDiff-KL",
        "GradDiff",
        grad_ascent,
        {"gamma": 0.7, "alpha": 2.5, "retain_loss_type": "KL"},
        kl_retain,
        # A larger first step, so that at step 2 KL(ref || policy) is large enough to differ
        # from the reversed KL(policy || ref) (the two agree to second order).
        extra=("trainer.args.learning_rate=3e-2",),
    ),
    Case("NPO-a0", "NPO", npo, {**NPO_ARGS, "alpha": 0.0}),
    Case("NPO", "NPO", npo, {**NPO_ARGS, "alpha": 0.4}, nll_retain),
    Case("SimNPO-a0", "SimNPO", simnpo, {**SIMNPO_ARGS, "alpha": 0.0}),
    Case("SimNPO", "SimNPO", simnpo, {**SIMNPO_ARGS, "alpha": 0.4}, nll_retain),
    Case("IdkDPO-a0", "IdkDPO", idk_dpo, {**IDK_ARGS, "alpha": 0.0}, None, refusal_gains_on_answer),
    Case("IdkDPO", "IdkDPO", idk_dpo, {**IDK_ARGS, "alpha": 0.4}, nll_retain),
    Case("WGA-a0", "WGA", wga, {"beta": 0.5, "gamma": 1.5, "alpha": 0.0}),
    Case("WGA", "WGA", wga, {"beta": 0.5, "gamma": 1.5, "alpha": 0.4}, nll_retain),
    Case("SatImp-a0", "SatImp", satimp, {"beta1": 2.0, "beta2": 1.5, "gamma": 0.6, "alpha": 0.0}),
    Case(
        "SatImp",
        "SatImp",
        satimp,
        {"beta1": 2.0, "beta2": 1.5, "gamma": 0.6, "alpha": 0.4},
        nll_retain,
    ),
    Case("UNDIAL-a0", "UNDIAL", undial, {"beta": 3.0, "gamma": 1.5, "alpha": 0.0}),
    Case("UNDIAL", "UNDIAL", undial, {"beta": 3.0, "gamma": 1.5, "alpha": 0.4}, nll_retain),
    Case("CEU-a0", "CEU", ceu, {"ignore_first_n_answer_tokens": 1, "gamma": 1.5, "alpha": 0.0}),
    Case(
        "CEU",
        "CEU",
        ceu,
        {"ignore_first_n_answer_tokens": 2, "gamma": 1.5, "alpha": 0.4},
        nll_retain,
    ),
    Case("RMU-a0", "RMU", rmu, {**RMU_ARGS, "alpha": 0.0}, None, closer_to_steering),
    # With gradient checkpointing: RMU's layer hook must not record twice on recomputation.
    Case(
        "RMU",
        "RMU",
        rmu,
        {**RMU_ARGS, "alpha": 3.0},
        rmu_retain,
        extra=("trainer.args.gradient_checkpointing=true",),
    ),
]


@dataclass
class Run:
    case: Case | None  # None: the finetuning run
    out: Path
    data: Path
    start: Path

    def log(self) -> dict[int, dict[str, float]]:
        """trainer_log.txt lines ``step=1 epoch=0.10 loss=...`` -> {step: {key: value}}, the
        per-step lines only (not the closing train_loss summary)."""
        steps = {}
        for line in (self.out / "trainer_log.txt").read_text().splitlines():
            entry = {k: float(v) for k, _, v in (p.partition("=") for p in line.split())}
            if "loss" in entry:
                steps[int(entry["step"])] = entry
        return steps

    def order(self) -> dict[int, dict[str, list[int]]]:
        lines = (self.out / "data_order.rank0.jsonl").read_text().splitlines()
        return {(d := json.loads(line))["step"]: d for line in lines}


TRAIN_SETTINGS = [
    "model=tiny-bytes",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.args.gradient_accumulation_steps=1",
    "trainer.args.max_steps=2",
    "trainer.args.eval_strategy=no",
    "trainer.args.logging_steps=1",
    "trainer.args.warmup_epochs=0",  # a visible first update (warm-up would make its lr 0)
    "trainer.args.learning_rate=1e-3",
    "trainer.args.save_strategy=steps",
    "trainer.args.save_steps=1",
    "trainer.args.save_only_model=true",
    "trainer.record_data_order=true",
]


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> Path:
    return write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))


@pytest.fixture(scope="module")
def refusal_file(tmp_path_factory) -> Path:
    """One refusal sentence, so every forget question's IdkDPO winner is known to the test."""
    path = tmp_path_factory.mktemp("idk") / "refusal.txt"
    path.write_text(REFUSAL + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def runs(mini, refusal_file, byte_start_model, tmp_path_factory) -> Callable[[Case], Run]:
    """``runs(case)`` trains ``case`` the first time it is asked for, once per module."""
    done: dict[str, Run] = {}

    def get(case: Case) -> Run:
        if case.id not in done:
            done[case.id] = train(case, mini, refusal_file, byte_start_model, tmp_path_factory)
        return done[case.id]

    return get


def train(case: Case, mini: Path, refusal_file: Path, start: Path, tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp(case.id) / "run"
    experiment = "idk" if case.trainer == "IdkDPO" else "default"
    args = dict(case.args)
    if case.trainer == "IdkDPO":
        args["idk_path"] = str(refusal_file)
    cfg = compose_config(
        [
            f"experiment=unlearn/tofu/{experiment}",
            f"trainer={case.trainer}",
            *(f"trainer.method_args.{k}={v}" for k, v in args.items()),
            *TRAIN_SETTINGS,
            *case.extra,
            f"model.tofu_target={start}",
            "forget_split=forget20",
            "retain_split=retain80",
            f"task_name=t_{case.id}",
            f"tofu_data={mini}",
            f"paths.output_dir={out}",
        ]
    )
    assert run_training(cfg) == out
    return Run(case, out, mini, start)


@pytest.fixture(scope="module")
def finetune_run(mini, byte_start_model, tmp_path_factory) -> Run:
    out = tmp_path_factory.mktemp("finetune") / "run"
    cfg = compose_config(
        [
            "experiment=finetune/tofu/default",
            *TRAIN_SETTINGS,
            f"model.model_args.pretrained_model_name_or_path={byte_start_model}",
            "train_split=full",
            "task_name=t_finetune",
            f"tofu_data={mini}",
            f"paths.output_dir={out}",
        ],
        config_name="train.yaml",
    )
    assert run_training(cfg) == out
    return Run(None, out, mini, byte_start_model)


# ---- the checks ---------------------------------------------------------------------------


def expected_losses(run: Run, step: int) -> dict[str, float]:
    """forget_loss, retain_loss and loss of ``step``, from the test's own forward passes."""
    case = run.case
    order = run.order()[step]
    tok = AutoTokenizer.from_pretrained(run.start)
    ref = load(run.start)
    policy = ref if step == 1 else load(run.out / "checkpoint-1")
    forget = [FORGET[i] for i in order["forget"]]
    refusals = [{**row, "answer": REFUSAL} for row in forget]
    f = [answer_under(policy, tok, r) for r in forget]
    fr = [answer_under(ref, tok, r) for r in forget]
    w = [answer_under(policy, tok, r) for r in refusals]
    wr = [answer_under(ref, tok, r) for r in refusals]
    out = {"forget_loss": float(case.forget(f, fr, w, wr, case.args))}
    out["loss"] = case.gamma * out["forget_loss"]
    if case.retain is not None:
        retain = [RETAIN[i] for i in order["retain"]]
        r = [answer_under(policy, tok, row) for row in retain]
        rr = [answer_under(ref, tok, row) for row in retain]
        out["retain_loss"] = float(case.retain(r, rr))
        out["loss"] += case.alpha * out["retain_loss"]
    return out


ALPHA0 = [c for c in CASES if c.retain is None]


def by_id(cases: list[Case]):
    return pytest.mark.parametrize("case", cases, ids=[c.id for c in cases])


@by_id(CASES)
@pytest.mark.parametrize("step", [1, 2])
def test_logged_losses_are_the_papers_formulas(runs, case: Case, step: int):
    """Step 1: policy = reference = the start model; step 2: policy = checkpoint-1."""
    run = runs(case)
    logged = run.log()[step]
    expected = expected_losses(run, step)
    assert ("retain_loss" in logged) == ("retain_loss" in expected)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-4, abs=1e-5), (key, logged, expected)
    # Not saturated: the forget term has a value (and, below, a gradient) of ordinary size.
    assert 1e-2 < abs(expected["forget_loss"]) < 50
    if step == 2 and run.case.retain is not None:
        assert expected["retain_loss"] > 1e-6  # KL / RMU retain: policy differs from reference


@by_id(ALPHA0)
def test_a_step_of_the_forget_term_alone_moves_the_answers_as_intended(runs, case: Case):
    """alpha = 0 runs: one update from the forget term alone, on step 1's forget items."""
    run = runs(case)
    order = run.order()[1]
    tok = AutoTokenizer.from_pretrained(run.start)
    before, after = load(run.start), load(run.out / "checkpoint-1")
    rows = [FORGET[i] for i in order["forget"]]
    refusals = [{**row, "answer": REFUSAL} for row in rows]
    moved = case.intended(
        [answer_under(before, tok, r) for r in rows],
        [answer_under(after, tok, r) for r in rows],
        [answer_under(before, tok, r) for r in refusals],
        [answer_under(after, tok, r) for r in refusals],
        case.args,
    )
    assert all(moved), f"{case.id}: {case.intended.__name__} fails on items {order['forget']}"


@by_id(ALPHA0)
def test_the_forget_term_alone_changes_every_trainable_parameter(runs, case: Case):
    """alpha = 0 runs, so no change can come from the retain term. RMU trains only the MLP
    down-projections of layers l-2..l (layers 0 and 1 of the tiny model)."""
    run = runs(case)
    before = dict(load(run.start).named_parameters())
    after = dict(load(run.out).named_parameters())
    assert before.keys() == after.keys()
    changed = {n for n, p in after.items() if not torch.equal(p, before[n])}
    if run.case.trainer == "RMU":
        assert changed == {f"model.layers.{i}.mlp.down_proj.weight" for i in (0, 1)}
    else:
        assert changed == set(after), f"not updated: {sorted(set(after) - changed)}"


@pytest.mark.parametrize("step", [1, 2])
def test_finetune_logs_the_answer_nll(finetune_run: Run, step: int):
    order = finetune_run.order()[step]
    tok = AutoTokenizer.from_pretrained(finetune_run.start)
    model = load(finetune_run.start if step == 1 else finetune_run.out / "checkpoint-1")
    nll = nll_retain([answer_under(model, tok, FULL[i]) for i in order["train"]], None)
    assert finetune_run.log()[step]["loss"] == pytest.approx(float(nll), rel=1e-4, abs=1e-5)


@by_id(CASES)
def test_run_folder_is_complete(runs, case: Case):
    run = runs(case)
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

    # The tokenizer is saved with the template's pad token and the Llama-3.2-style chat
    # template, so the run folder alone is enough to evaluate it.
    tok_cfg = json.loads((run.out / "tokenizer_config.json").read_text())
    assert tok_cfg["pad_token"] == "<|finetune_right_pad_id|>"
    template = tok_cfg.get("chat_template") or (run.out / "chat_template.jinja").read_text()
    assert "Cutting Knowledge Date" in template

    saved = OmegaConf.load(run.out / "obliviate_config.yaml")
    assert saved.trainer._target_.rsplit(".", 1)[1] == run.case.trainer
    assert saved.trainer.args.max_steps == 2
    assert saved.paths.output_dir == str(run.out)  # resolved, not "${...}"

    receipt = json.loads((run.out / "receipt.json").read_text())
    assert receipt["seed"] == 0
    assert receipt["global_steps"] == 2
    assert receipt["method"] == run.case.trainer
    assert receipt["start_model"] == str(run.start)
    for pkg in ("torch", "transformers", "obliviate"):
        assert isinstance(receipt["versions"][pkg], str) and receipt["versions"][pkg]
    assert set(receipt["data_sha256"]) == {"forget20", "retain80", "full"}
    # The checksum is sha256 over the canonical JSON of each row (sorted keys) plus "\n".
    h = hashlib.sha256()
    for row in FORGET:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    assert receipt["data_sha256"]["forget20"] == h.hexdigest()
