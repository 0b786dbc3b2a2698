#!/usr/bin/env python3
"""Run open-unlearning's (OU's) own ``src/train.py`` on the tiny parity case and record, per
optimizer step, the loss (and for unlearning its forget and retain parts), the learning rate,
the gradient norm and which items each micro-batch held; then a digest of the final weights.

  cd $OU_DIR && PYTHONPATH=src:$STUBS $OU_PYTHON $REPO/bench/parity/record_ou_train.py \
      CASE_JSON WORK_DIR KIND

KIND is a key of CASE_JSON's ``runs`` (``bench/parity/train_case.py case`` writes that file:
the items, the settings of each run, and where the OU copy of the tiny model lies). Writes
WORK_DIR/ou_<KIND>.json and the final weights WORK_DIR/ou_<KIND>/model.safetensors.

Nothing of OU's code is changed; three things are wrapped from outside, by this script only:
- ``torch.cuda.device_count`` answers 1: OU's ``warmup_epochs`` divides by it (0 on a CPU box),
  so the run is OU on one GPU, computed on the CPU;
- the evaluators are switched off (no in-training evaluation, no evaluation data needed);
- the collator notes each micro-batch's item indices before collating, and the trainer's loss
  functions note the total and the retain loss (the forget part is (L - alpha R) / gamma).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

torch.cuda.device_count = lambda: 1  # noqa: E731  (see the docstring)

from transformers import TrainerCallback  # noqa: E402

import train as ou_train  # noqa: E402  (OU's src/train.py; src/ is on PYTHONPATH)


class Recorder(TrainerCallback):
    """Per optimizer step: the logged values, the micro-batches' item indices, the loss parts."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.batches: list[dict] = []
        self.parts: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            step = {
                "step": state.global_step,
                **{k: logs[k] for k in ("loss", "learning_rate", "grad_norm") if k in logs},
            }
            self.steps.append(step)

    def collator(self, inner):
        def collate(instances):
            self.batches.append(self._indices(instances))
            return inner(instances)

        return collate

    def _indices(self, instances: list[dict]) -> dict[str, list[int]]:
        if "input_ids" not in instances[0]:  # forget/retain pairs keep their index
            return {part: [int(x[part]["index"]) for x in instances] for part in instances[0]}
        # finetuning: Trainer drops the unused ``index`` column before the collator; find each
        # item by its token ids (QADataset items are fixed, reading them draws nothing)
        if not hasattr(self, "by_ids"):
            ds = self.trainer.train_dataset
            self.by_ids = {tuple(ds[i]["input_ids"].tolist()): i for i in range(len(ds))}
        return {"train": [self.by_ids[tuple(x["input_ids"].tolist())] for x in instances]}


def wrap_losses(trainer, rec: Recorder) -> None:
    """Note each micro-batch's total loss and (unlearning with a retain set) its retain loss."""
    total = trainer.compute_loss

    def compute_loss(model, inputs, return_outputs=False):
        out = total(model, inputs, return_outputs=return_outputs)
        loss = out[0] if return_outputs else out
        rec.parts.append({"loss": float(loss.detach())})
        return out

    trainer.compute_loss = compute_loss
    if hasattr(trainer, "compute_retain_loss"):
        retain = trainer.compute_retain_loss

        def compute_retain_loss(model, retain_inputs):
            r = retain(model=model, retain_inputs=retain_inputs)
            rec.parts.append({"retain_loss": float(r.detach())})
            return r

        trainer.compute_retain_loss = compute_retain_loss


def weight_digest(state: dict, start: dict) -> dict[str, list[float]]:
    """Per tensor, in float64: the L2 norm, the sum, and the L2 norm of the change from the
    start (what training did, not drowned by the initial weights)."""
    return {
        name: [
            float(p.double().norm()),
            float(p.double().sum()),
            float((p.double() - start[name].double()).norm()),
        ]
        for name, p in state.items()
    }


def main() -> None:
    case_path, work, kind = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), sys.argv[3]
    case = json.loads(case_path.read_text())
    run = case["runs"][kind]
    os.environ["TOFU_DIR"] = str(work / "data")
    rec = Recorder()
    real_load_trainer = ou_train.load_trainer

    def load_trainer(*args, **kwargs):
        kwargs["data_collator"] = rec.collator(kwargs["data_collator"])
        rec.start = {k: v.detach().clone() for k, v in kwargs["model"].state_dict().items()}
        trainer, targs = real_load_trainer(*args, **kwargs)
        trainer.add_callback(rec)
        wrap_losses(trainer, rec)
        rec.trainer = trainer
        return trainer, targs

    ou_train.load_trainer = load_trainer
    ou_train.get_evaluators = lambda **kw: None
    out_dir = work / f"ou_{kind}"
    # called as a function, hydra cannot find ../configs from the module: name it
    configs = Path(ou_train.__file__).resolve().parents[1] / "configs"
    sys.argv = [
        "train.py",
        f"--config-path={configs}",
        *run["ou_overrides"],
        f"paths.output_dir={out_dir}",
    ]
    ou_train.main()
    model = rec.trainer.model
    from importlib.metadata import version

    record = {
        "kind": kind,
        "versions": {p: version(p) for p in ("torch", "transformers", "accelerate")},
        "steps": rec.steps,
        "micro_batches": rec.batches,
        "micro_losses": rec.parts,
        "weights": weight_digest({k: v.detach() for k, v in model.state_dict().items()}, rec.start),
        "warmup_steps": rec.trainer.args.warmup_steps,
        "optimizer": type(
            rec.trainer.optimizer.optimizer
            if hasattr(rec.trainer.optimizer, "optimizer")
            else rec.trainer.optimizer
        ).__name__,
    }
    (work / f"ou_{kind}.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {work / f'ou_{kind}.json'}: {len(rec.steps)} steps")


if __name__ == "__main__":
    main()
