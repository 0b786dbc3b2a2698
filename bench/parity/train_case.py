#!/usr/bin/env python3
"""The training side of the parity case: the same tiny model finetuned and unlearned by
open-unlearning (OU) and by obliviate, step for step.

  PYTHONPATH=src python bench/parity/train_case.py case WORK          # data, OU model copy, runs
  (cd $OU_DIR && PYTHONPATH=src:$STUBS $OU_PY $REPO/bench/parity/record_ou_train.py WORK/case.json WORK KIND)
  PYTHONPATH=src python bench/parity/train_case.py ob WORK KIND PROTOCOL   # -> WORK/ob_KIND_PROTOCOL.json
  PYTHONPATH=src python bench/parity/train_case.py compare WORK/ou_KIND.json WORK/ob_KIND_PROTOCOL.json
  PYTHONPATH=src python bench/parity/train_case.py pack WORK           # -> tests/parity/ou_train_tiny.json

Model: tests/parity/tiny_model (the evaluation case's 2-layer byte-level Llama). Data: obliviate's
built-in fictitious authors (2 authors, seed 0) written as TOFU JSON files, so OU reads exactly
the rows obliviate trains on. Every run is float32 on the CPU, no in-training evaluation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODEL_DIR = REPO / "tests/parity/tiny_model"
PACKED = REPO / "tests/parity/ou_train_tiny.json"
SPLITS = ("full", "forget50", "retain50")
#: settings both frameworks get. finetune: 40 rows at 3 x 2 per optimizer step, so the warm-up
#: of one epoch is not a whole number of steps (6.67: open-unlearning 6, obliviate 7) and the
#: last micro-batch holds one row; unlearning: 20 forget rows at 2 x 2, retain rows paired
_UNLEARN = dict(
    split="forget50",
    lr=1e-3,
    batch=2,
    accumulation=2,
    epochs=1,
    warmup_epochs=0.5,
    weight_decay=0.01,
)
RUNS = {
    "finetune": dict(
        method="finetune",
        split="full",
        lr=1e-3,
        batch=3,
        accumulation=2,
        epochs=1,
        warmup_epochs=1.0,
        weight_decay=0.01,
    ),
    # delta near the tiny model's answer NLL (~3.4 nats per byte): at delta 0 its SimNPO term
    # -(2/beta) log sigmoid(beta NLL) is ~1e-7 and so is its gradient (saturated, untestable)
    "simnpo": dict(method="SimNPO", method_args={"delta": 3.3}, **_UNLEARN),
    "graddiff": dict(method="GradDiff", **_UNLEARN),
    # 20 rows at 3 x 2 leave a last accumulation of one micro-batch per epoch (cause 16 of the lab log)
    "simnpo_partial": dict(
        method="SimNPO", method_args={"delta": 3.3}, split="forget50", lr=1e-3, batch=3,
        accumulation=2, epochs=2, warmup_epochs=0.5, weight_decay=0.01,
    ),
    "finetune_partial": dict(
        method="finetune",
        split="forget50",
        lr=1e-3,
        batch=3,
        accumulation=2,
        epochs=2,
        warmup_epochs=1.0,
        weight_decay=0.01,
    ),
}
OPTIM = "adamw_torch"  # OU's default paged_adamw_32bit needs bitsandbytes and a GPU
SEED = 0
OU_COMMIT = "d3d7cf9e6b3c125d16687d4232680d8d83548f1a"


def method_overrides(run: dict) -> list[str]:
    """``trainer.method_args.NAME=VALUE`` for the run's non-default method arguments."""
    return [f"trainer.method_args.{k}={v}" for k, v in run.get("method_args", {}).items()]


def ou_overrides(run: dict, model_dir: Path, configs: Path) -> list[str]:
    """OU's src/train.py command line for ``run`` (hydra overrides)."""
    common = [
        f"hydra.searchpath=[file://{configs}]",
        "model=tiny-bytes-parity",
        f"model.model_args.pretrained_model_name_or_path={model_dir}",
        f"model.tokenizer_args.pretrained_model_name_or_path={model_dir}",
        f"trainer.args.learning_rate={run['lr']}",
        f"trainer.args.per_device_train_batch_size={run['batch']}",
        f"trainer.args.gradient_accumulation_steps={run['accumulation']}",
        f"trainer.args.num_train_epochs={run['epochs']}",
        f"trainer.args.warmup_epochs={run['warmup_epochs']}",
        f"trainer.args.weight_decay={run['weight_decay']}",
        f"trainer.args.optim={OPTIM}",
        f"trainer.args.seed={SEED}",
        "trainer.args.bf16=false",
        "trainer.args.bf16_full_eval=false",
        "trainer.args.report_to=none",
        "trainer.args.do_eval=false",
        "trainer.args.eval_on_start=false",
        "trainer.args.eval_strategy=no",
        "trainer.args.logging_steps=1",
        "task_name=parity_train",
        *method_overrides(run),
    ]
    if run["method"] == "finetune":
        return [
            "--config-name=train.yaml",
            "experiment=finetune/tofu/default",
            *common,
            f"data.train.TOFU_QA_full.args.hf_args.name={run['split']}",
        ]
    return [
        "--config-name=unlearn.yaml",
        "experiment=unlearn/tofu/default",
        f"trainer={run['method']}",
        "forget_split=forget50",
        "retain_split=retain50",
        "holdout_split=null",
        *common,
    ]


def ob_overrides(run: dict, data: Path, out: Path, protocol: str) -> tuple[list[str], str]:
    """obliviate's overrides for ``run`` and the config name."""
    common = [
        "model=tiny-bytes",
        f"model.model_args.pretrained_model_name_or_path={MODEL_DIR}",
        f"tofu_data={data}",
        f"trainer.args.learning_rate={run['lr']}",
        f"trainer.args.per_device_train_batch_size={run['batch']}",
        f"trainer.args.gradient_accumulation_steps={run['accumulation']}",
        f"trainer.args.num_train_epochs={run['epochs']}",
        f"trainer.args.warmup_epochs={run['warmup_epochs']}",
        f"trainer.args.weight_decay={run['weight_decay']}",
        f"trainer.args.optim={OPTIM}",
        f"seed={SEED}",
        "trainer.args.logging_steps=1",
        "trainer.args.eval_strategy=no",
        "trainer.fuse_accumulation=false",
        "trainer.record_data_order=true",
        f"trainer.protocol={protocol}",
        "task_name=parity_train",
        *method_overrides(run),
        f"paths.output_dir={out}",
    ]
    if run["method"] == "finetune":
        return [
            "experiment=finetune/tofu/default",
            f"train_split={run['split']}",
            *common,
        ], "train.yaml"
    return [
        "experiment=unlearn/tofu/default",
        f"trainer={run['method']}",
        "forget_split=forget50",
        "retain_split=retain50",
        "holdout_split=null",
        *common,
    ], "unlearn.yaml"


def make_case(work: Path) -> None:
    """WORK/data (TOFU files), WORK/tiny_ou (the model as transformers 4.45 loads it), WORK/ou_configs
    (OU's model config for it), WORK/case.json (items and runs)."""
    from make_tiny_case import write_ou_copy
    from record_ou import MODEL_CFG
    from transformers import AutoModelForCausalLM

    from obliviate.data.builtin import build_splits

    splits = build_splits(2, SEED)
    data = work / "data"
    data.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        (data / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in splits[name]))
    write_ou_copy(AutoModelForCausalLM.from_pretrained(MODEL_DIR), work / "tiny_ou")
    cfg_dir = work / "ou_configs/model"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    (cfg_dir / "tiny-bytes-parity.yaml").write_text(MODEL_CFG)
    runs = {
        k: {**r, "ou_overrides": ou_overrides(r, work / "tiny_ou", work / "ou_configs")}
        for k, r in RUNS.items()
    }
    case = {"items": {n: splits[n] for n in SPLITS}, "runs": runs, "optim": OPTIM, "seed": SEED}
    (work / "case.json").write_text(json.dumps(case, indent=1) + "\n")
    print(f"wrote {work}/data, tiny_ou, ou_configs, case.json")


class Recorder:
    """A TrainerCallback (built lazily: transformers is imported by the run) noting the logged
    values of every optimizer step."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Rec(TrainerCallback):
            def __init__(self):
                self.steps: list[dict] = []

            def on_log(self, args, state, control, logs=None, **kwargs):
                keys = ("loss", "learning_rate", "grad_norm", "forget_loss", "retain_loss")
                if logs and "loss" in logs:
                    self.steps.append(
                        {"step": state.global_step, **{k: logs[k] for k in keys if k in logs}}
                    )

        return _Rec()


def weight_digest(state: dict, start: dict) -> dict[str, list[float]]:
    """Per tensor, float64: norm, sum, norm of the change from ``start`` (as record_ou_train.py)."""
    return {
        n: [
            float(p.double().norm()),
            float(p.double().sum()),
            float((p.double() - start[n].double()).norm()),
        ]
        for n, p in state.items()
    }


def run_obliviate(work: Path, kind: str, protocol: str) -> dict:
    """obliviate's run of ``kind`` under ``protocol``: the record record_ou_train.py writes."""
    import shutil

    from safetensors.torch import load_file

    sys.path.insert(0, str(REPO / "tests"))
    from conftest import compose_config
    from obliviate.config import method_class
    from obliviate.training import run_training

    out = work / f"ob_{kind}_{protocol}"
    if out.exists():
        shutil.rmtree(out)
    overrides, name = ob_overrides(RUNS[kind], work / "data", out, protocol)
    rec = Recorder()
    cfg = compose_config(overrides, name)
    micro: list[dict] = []
    cls = method_class(cfg)
    real = cls.compute_loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        out = real(self, model, inputs, return_outputs, num_items_in_batch)
        loss = out[0] if return_outputs else out
        if model.training:
            micro.append({"loss": float(loss.detach())})
        return out

    cls.compute_loss = compute_loss
    try:
        run_training(cfg, callbacks=[rec])
    finally:
        cls.compute_loss = real
    order = [json.loads(x) for x in (out / "data_order.rank0.jsonl").read_text().splitlines()]
    state = load_file(out / "model.safetensors")
    return {
        "kind": kind,
        "protocol": protocol,
        "steps": rec.steps,
        "micro_losses": micro,
        "micro_batches": [{k: v for k, v in b.items() if k not in ("step", "rank")} for b in order],
        "weights": weight_digest(state, load_file(MODEL_DIR / "model.safetensors")),
    }


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def compare(ou: dict, ob: dict) -> dict:
    """Largest relative difference per logged value, data order equality, weights."""
    out: dict = {"steps": (len(ou["steps"]), len(ob["steps"]))}
    # relative differences; OU (transformers 4.45) logs the step loss to 4 decimals only, so the
    # losses are compared per micro-batch below (as compute_loss returned them)
    pairs = list(zip(ob["steps"], ou["steps"], strict=False))
    out["grad_norm"] = max(_rel(a["grad_norm"], b["grad_norm"]) for a, b in pairs)
    # transformers 4.45 logs the rate of the next step, 5.x the rate the step used
    lrs = [
        (a["learning_rate"], b["learning_rate"])
        for a, b in zip(ob["steps"][1:], ou["steps"], strict=False)
    ]
    out["learning_rate"] = max(abs(a - b) for a, b in lrs)
    ml = [
        (a["loss"], b["loss"])
        for a, b in zip(
            ob["micro_losses"], [m for m in ou["micro_losses"] if "loss" in m], strict=False
        )
    ]
    out["micro_loss"] = max(_rel(a, b) for a, b in ml)
    out["micro_loss_abs"] = max(abs(a - b) for a, b in ml)  # GradDiff's loss nears 0
    out["micro_loss_first_diff"] = next(
        (i for i, (a, b) in enumerate(ml) if _rel(a, b) > 1e-5), None
    )
    r_ou = [m["retain_loss"] for m in ou["micro_losses"] if "retain_loss" in m]
    if r_ou:  # per step: the mean of its micro-batches' retain losses (obliviate's log)
        ga = len(r_ou) // len(ob["steps"])
        means = [sum(r_ou[i : i + ga]) / ga for i in range(0, len(r_ou), ga)]
        out["retain_loss"] = max(
            _rel(s["retain_loss"], m) for s, m in zip(ob["steps"], means, strict=False)
        )
    same = [a == b for a, b in zip(ou["micro_batches"], ob["micro_batches"], strict=False)]
    out["micro_batches_equal"] = f"{sum(same)}/{len(same)}"
    first = next((i for i, s in enumerate(same) if not s), None)
    if first is not None:
        out["first_diff"] = {
            "ou": ou["micro_batches"][first],
            "ob": ob["micro_batches"][first],
            "i": first,
        }
    rel = {
        n: _rel(ob["weights"][n][0], v[0]) for n, v in ou["weights"].items() if n in ob["weights"]
    }
    out["weights_norm_max_rel"] = max(rel.values())
    moved = {
        n: _rel(ob["weights"][n][2], v[2]) for n, v in ou["weights"].items() if n in ob["weights"]
    }
    out["weights_change_max_rel"] = max(moved.values())
    out["weights_missing"] = sorted(set(ou["weights"]) ^ set(ob["weights"]))
    return out


def weights_max_abs(ou_dir: Path, ob_dir: Path) -> float:
    """Largest element-wise difference between two saved models (tied lm_head aside)."""
    from safetensors.torch import load_file

    a, b = load_file(ou_dir / "model.safetensors"), load_file(ob_dir / "model.safetensors")
    return max(float((a[n] - b[n]).abs().max()) for n in b)


#: the runs tests/parity/test_ou_train_parity.py repeats
TESTED = ("finetune", "simnpo", "graddiff", "simnpo_partial")


def pack(work: Path) -> None:
    """tests/parity/ou_train_tiny.json: the rows, each tested run's settings and OU's record."""
    case = json.loads((work / "case.json").read_text())
    runs = {}
    for kind in TESTED:
        ou = json.loads((work / f"ou_{kind}.json").read_text())
        settings = {k: v for k, v in case["runs"][kind].items() if k != "ou_overrides"}
        runs[kind] = {
            **settings,
            "warmup_steps": ou["warmup_steps"],
            # the micro-batches' total losses, in order (OU logs the step loss to 4 decimals)
            "micro_losses": [m["loss"] for m in ou["micro_losses"] if "loss" in m],
            "retain_losses": [m["retain_loss"] for m in ou["micro_losses"] if "retain_loss" in m],
            # the collator runs one micro-batch ahead of the trainer: keep those trained on
            "micro_batches": ou["micro_batches"][
                : len(ou["micro_losses"])
                - len([m for m in ou["micro_losses"] if "retain_loss" in m])
            ],
            # as logged: transformers 4.45 logs, at step k, the rate step k + 1 will use
            "logged_learning_rates": [s["learning_rate"] for s in ou["steps"]],
            "grad_norms": [s["grad_norm"] for s in ou["steps"]],
            "weights": {n: v for n, v in ou["weights"].items() if n != "lm_head.weight"},
        }
    record = {
        "recorded_by": "bench/parity/record_ou_train.py (open-unlearning's src/train.py, run as is)",
        "open_unlearning_commit": OU_COMMIT,
        "versions": ou["versions"],
        "model": "tests/parity/tiny_model",
        "data": "obliviate built-in authors (2 authors, seed 0) as TOFU JSON files",
        "optim": case["optim"],
        "seed": case["seed"],
        "rows": case["items"],
        "runs": runs,
    }
    PACKED.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {PACKED}")


def results(work: Path, out: Path) -> None:
    """The lab log's table: every run of WORK compared with OU's (``compare``), per protocol,
    the ablations (``ablate``) and the fused-optimizer check (fused_optim.json) where present."""
    table: dict = {"open_unlearning_commit": OU_COMMIT, "runs": {}}
    for kind, run in RUNS.items():
        ou = json.loads((work / f"ou_{kind}.json").read_text())
        entry = {"settings": run, "ou_warmup_steps": ou["warmup_steps"], "versions": ou["versions"]}
        for protocol in ("open-unlearning", "obliviate"):
            path = work / f"ob_{kind}_{protocol}.json"
            if path.is_file():
                entry[protocol] = compare(ou, json.loads(path.read_text()))
        ablation = work / f"ablate_{kind}.json"
        if ablation.is_file():
            entry["ablation"] = json.loads(ablation.read_text())
        table["runs"][kind] = entry
    fused = work / "fused_optim.json"
    if fused.is_file():
        table["optim_adamw_torch_fused"] = json.loads(fused.read_text())
    out.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {out}")


#: the flags of obliviate.protocol that change training
TRAINING_FLAGS = ("pad_id_masked", "warmup_floor", "retain_pairs_global_rng", "epochs_as_one_stream")


@contextlib.contextmanager
def protocol_without(flag: str | None):
    """``trainer.protocol=open-unlearning`` with one flag switched off (None: all on)."""
    from obliviate import protocol

    full = protocol.NAMED[protocol.OPEN_UNLEARNING]
    if flag:
        protocol.NAMED[protocol.OPEN_UNLEARNING] = dataclasses.replace(full, **{flag: False})
    try:
        yield
    finally:
        protocol.NAMED[protocol.OPEN_UNLEARNING] = full


def main(argv: list[str]) -> None:
    cmd, rest = argv[0], argv[1:]
    if cmd == "case":
        make_case(Path(rest[0]).resolve())
    elif cmd == "ob":
        work, kind, protocol = Path(rest[0]).resolve(), rest[1], rest[2]
        rec = run_obliviate(work, kind, protocol)
        (work / f"ob_{kind}_{protocol}.json").write_text(json.dumps(rec, indent=1) + "\n")
        print(f"wrote {work / f'ob_{kind}_{protocol}.json'}")
    elif cmd == "compare":
        a, b = (json.loads(Path(p).read_text()) for p in rest[:2])
        res = compare(a, b)
        dirs = [Path(p).with_suffix("") for p in rest[:2]]
        if all((d / "model.safetensors").is_file() for d in dirs):
            res["weights_max_abs"] = weights_max_abs(*dirs)
        print(json.dumps(res, indent=1))
    elif cmd == "pack":
        pack(Path(rest[0]).resolve())
    elif cmd == "fused":  # obliviate's default optimizer against OU's run with adamw_torch
        global OPTIM
        work, OPTIM = Path(rest[0]).resolve(), "adamw_torch_fused"
        table = {}
        for kind in ("finetune", "simnpo"):
            rec = run_obliviate(work, kind, "open-unlearning")
            table[kind] = compare(json.loads((work / f"ou_{kind}.json").read_text()), rec)
        (work / "fused_optim.json").write_text(json.dumps(table, indent=1) + "\n")
        print(json.dumps(table, indent=1))
    elif cmd == "results":
        results(Path(rest[0]).resolve(), Path(rest[1]))
    elif cmd == "ablate":  # each training flag of the open-unlearning protocol switched off
        work, kind = Path(rest[0]).resolve(), rest[1]
        ou = json.loads((work / f"ou_{kind}.json").read_text())
        table = {}
        for flag in (None, *TRAINING_FLAGS):
            with protocol_without(flag):
                rec = run_obliviate(work, kind, "open-unlearning")
            name = f"without {flag}" if flag else "open-unlearning"
            table[name] = compare(ou, rec)
            (work / f"ob_{kind}_{name.replace(' ', '_')}.json").write_text(json.dumps(rec) + "\n")
        (work / f"ablate_{kind}.json").write_text(json.dumps(table, indent=1) + "\n")
        print(json.dumps(table, indent=1))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1:])
