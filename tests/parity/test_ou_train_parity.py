"""``trainer.protocol=open-unlearning`` trains as open-unlearning does: the same items in the same
micro-batches, the same learning rate at every step, the same per-step losses (and their forget
and retain parts) and the same final weights.

The reference, ou_train_tiny.json, was recorded once by running open-unlearning's own
``src/train.py`` (bench/parity/record_ou_train.py; its commit and versions are inside) on
tiny_model/ and 40 built-in author rows, which the file holds: finetuning, SimNPO, GradDiff, and
SimNPO over 2 epochs of 7 micro-batches at accumulation 2 (open-unlearning's transformers 4.45
carries each epoch's leftover micro-batch into the next step), float32 on the CPU. The test needs neither open-unlearning nor ../shared.

Tolerances (float32, unit roundoff 6e-8). The two frameworks do the same arithmetic in another
order (transformers 4.45 vs 5.x kernels; open-unlearning runs the forget and retain halves as
two passes, obliviate as one), so each number carries a few roundings' worth of difference:
measured at most 2.1e-7 relative on the losses (7.2e-7 absolute on GradDiff's, a difference
of two NLLs near 3.4, hence an absolute floor too), 1.5e-7 on the gradient norms, 1.2e-8 on the
weights' norms and 2.2e-6 on the norm of each tensor's change (Adam divides by sqrt(v), so
coordinates with tiny gradients pass roundoff on at full step size). The bounds below leave a
margin of 45-80x; the smallest training difference of the protocol (the attention mask)
moves the losses by 1.1e-4 and the weights' change by 4.8e-3 or more
(docs/results/2026-12-02_parity/README.md, "Training").
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from safetensors.torch import load_file
from transformers import TrainerCallback

from conftest import compose_config
from obliviate.training import run_training

HERE = Path(__file__).resolve().parent
RECORD = json.loads((HERE / "ou_train_tiny.json").read_text())
LOSS_TOL = 1e-5  # relative, and absolute for GradDiff's loss: a difference of two NLLs near 3.4
GRAD_NORM_TOL = 1e-5
WEIGHT_NORM_TOL = 1e-6
WEIGHT_CHANGE_TOL = 1e-4


class StepLog(TrainerCallback):
    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.steps.append(dict(logs))


def _train(kind: str, tmp: Path) -> tuple[list[dict], list[dict], dict, dict]:
    """obliviate's run of ``kind`` under the protocol: step logs, data order, weights, receipt."""
    run = RECORD["runs"][kind]
    data = tmp / "tofu"
    data.mkdir(exist_ok=True)
    for split, rows in RECORD["rows"].items():
        (data / f"{split}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp / kind
    if run["method"] == "finetune":
        config, task = (
            "train.yaml",
            ["experiment=finetune/tofu/default", f"train_split={run['split']}"],
        )
    else:
        config = "unlearn.yaml"
        task = [
            "experiment=unlearn/tofu/default",
            f"trainer={run['method']}",
            "forget_split=forget50",
            "retain_split=retain50",
            "holdout_split=null",
        ]
    cfg = compose_config(
        [
            *task,
            "model=tiny-bytes",
            f"model.model_args.pretrained_model_name_or_path={HERE / 'tiny_model'}",
            f"tofu_data={data}",
            f"trainer.args.learning_rate={run['lr']}",
            f"trainer.args.per_device_train_batch_size={run['batch']}",
            f"trainer.args.gradient_accumulation_steps={run['accumulation']}",
            f"trainer.args.num_train_epochs={run['epochs']}",
            f"trainer.args.warmup_epochs={run['warmup_epochs']}",
            f"trainer.args.weight_decay={run['weight_decay']}",
            f"trainer.args.optim={RECORD['optim']}",
            f"seed={RECORD['seed']}",
            "trainer.args.logging_steps=1",
            "trainer.args.eval_strategy=no",
            "trainer.fuse_accumulation=false",
            "trainer.record_data_order=true",
            "trainer.protocol=open-unlearning",
            "task_name=parity_train",
            *(f"trainer.method_args.{k}={v}" for k, v in run.get("method_args", {}).items()),
            f"paths.output_dir={out}",
        ],
        config,
    )
    log = StepLog()
    run_training(cfg, callbacks=[log])
    order = [json.loads(x) for x in (out / "data_order.rank0.jsonl").read_text().splitlines()]
    receipt = json.loads((out / "receipt.json").read_text())
    return log.steps, order, load_file(out / "model.safetensors"), receipt


def _per_step(values: list[float], accumulation: int) -> list[float]:
    """Micro-batch values -> the mean of each optimizer step's (what both trainers log)."""
    return [
        sum(values[i : i + accumulation]) / accumulation
        for i in range(0, len(values), accumulation)
    ]


def _close(a: float, b: float, tol: float) -> bool:
    return math.isclose(a, b, rel_tol=tol, abs_tol=tol)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple]:
    return {kind: _train(kind, tmp_path_factory.mktemp(kind)) for kind in RECORD["runs"]}


@pytest.mark.parametrize("kind", list(RECORD["runs"]))
def test_same_batches_and_learning_rates(runs, kind):
    ou = RECORD["runs"][kind]
    steps, order, _, receipt = runs[kind]
    assert receipt["trainer_protocol"] == "open-unlearning"
    parts = ("train",) if ou["method"] == "finetune" else ("forget", "retain")
    assert [{p: b[p] for p in parts} for b in order] == ou["micro_batches"]
    rates = [s["learning_rate"] for s in steps]
    assert len(rates) == len(ou["logged_learning_rates"])
    # transformers 4.45 logs at step k the rate of step k + 1; the warm-up starts at 0
    assert rates[0] == 0.0
    for ours, theirs in zip(rates[1:], ou["logged_learning_rates"], strict=False):
        assert math.isclose(ours, theirs, rel_tol=1e-12), (rates, ou["logged_learning_rates"])


@pytest.mark.parametrize("kind", list(RECORD["runs"]))
def test_same_losses_and_gradient_norms(runs, kind):
    ou = RECORD["runs"][kind]
    steps = runs[kind][0]
    ga = ou["accumulation"]
    want = _per_step(ou["micro_losses"], ga)
    assert len(steps) == len(want)
    for s, w in zip(steps, want, strict=True):
        assert _close(s["loss"], w, LOSS_TOL), (s["loss"], w)
    for s, w in zip(steps, ou["grad_norms"], strict=True):
        assert math.isclose(s["grad_norm"], w, rel_tol=GRAD_NORM_TOL), (s["grad_norm"], w)
    if ou["retain_losses"]:  # the parts: L = gamma * forget + alpha * retain (alpha = 1)
        gamma = {"SimNPO": 0.125, "GradDiff": 1.0}[ou["method"]]
        forget = [
            (t - r) / gamma for t, r in zip(ou["micro_losses"], ou["retain_losses"], strict=True)
        ]
        for s, r, f in zip(
            steps, _per_step(ou["retain_losses"], ga), _per_step(forget, ga), strict=True
        ):
            assert _close(s["retain_loss"], r, LOSS_TOL), (s["retain_loss"], r)
            assert _close(s["forget_loss"], f, LOSS_TOL), (s["forget_loss"], f)


@pytest.mark.parametrize("kind", list(RECORD["runs"]))
def test_same_final_weights(runs, kind):
    ou = RECORD["runs"][kind]["weights"]
    weights = runs[kind][2]
    start = load_file(HERE / "tiny_model" / "model.safetensors")
    assert sorted(weights) == sorted(ou)
    for name, (norm, _total, change) in ou.items():
        w = weights[name].double()
        assert math.isclose(float(w.norm()), norm, rel_tol=WEIGHT_NORM_TOL), name
        moved = float((w - start[name].double()).norm())
        assert moved > 0 and math.isclose(moved, change, rel_tol=WEIGHT_CHANGE_TOL), (
            name,
            moved,
            change,
        )
