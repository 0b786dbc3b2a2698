"""``obliviate demo --benchmark muse``: MUSE end to end on SmolLM2-135M and the built-in corpus.

Stages (each cached like the TOFU demo's, :class:`obliviate.demo.stages.Stage`):

1. the target: the base model finetuned on every article (``train_split=full``: forget +
   retain1 + retain2), until it reproduces them;
2. the retain model: the same finetuning without the forget articles (``train_split=retain``):
   MUSE's retrained reference, whose evaluation log is privleak's reference;
3. each method unlearns the forget articles from the target (``experiment=unlearn/muse/default``);
4. every model is evaluated with ``experiment=eval/muse/default``; the table and plot compare
   them (:mod:`obliviate.demo.muse_report`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.demo import muse_report as R
from obliviate.demo.pipeline import (
    DEFAULT_METHODS,
    Progress,
    _has_cuda,
    _quiet_libraries,
    _stage_cost,
    use_bf16,
)
from obliviate.demo.stages import Stage, describe
from obliviate.errors import ConfigError

#: per-method unlearning rates (SimNPO's forget term is weighted by gamma 0.125)
DEFAULT_METHOD_LR: dict[str, float] = {
    "SimNPO": 3e-4,
    "NPO": 1e-4,
    "GradDiff": 1e-4,
    "GradAscent": 5e-5,
}


@dataclass
class MuseDemoOptions:
    """What ``obliviate demo --benchmark muse`` runs; defaults aim at 15 minutes on 2 CPU cores."""

    out: Path = Path("saves/demo_muse")
    model: str = "SmolLM2-135M-Instruct"
    seed: int = 0
    methods: tuple[str, ...] = DEFAULT_METHODS
    articles: int = 4  # forget articles; retain1, retain2 and holdout have as many
    epochs: float = 8.0  # finetuning the target and the retain model
    lr: float = 4e-4
    batch_size: int = 4
    max_length: int = 256  # tokens per training chunk
    unlearn_epochs: float = 8.0  # one step per epoch at the default sizes; 2 barely moved verbmem
    unlearn_batch_size: int = 4
    method_lr: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_METHOD_LR))
    max_steps: int = -1
    verbmem_tokens: int = 32  # MUSE: 128 (each token is a decoding step on the CPU)
    bf16: str = "auto"
    fresh: bool = False
    extra: list[str] = field(default_factory=list)

    def validate(self) -> None:
        if self.articles < 4:
            raise ConfigError(
                f"--articles {self.articles} must be >= 4 (MUSE's scal/sust quarters)"
            )
        for name in ("epochs", "lr", "unlearn_epochs"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be > 0")
        missing = [m for m in self.methods if m not in self.method_lr]
        if missing:
            raise ConfigError(
                f"--methods {missing[0]}: give its rate with --method-lr {missing[0]}=LR"
            )


def stage_overrides(o: MuseDemoOptions) -> dict[str, list[str]]:
    """Overrides shared by every stage, by training stages, and by evaluations."""
    data = [
        "muse_data=builtin",
        f"builtin_muse.forget={o.articles}",
        f"builtin_muse.retain={o.articles}",
        f"builtin_muse.holdout={o.articles}",
        f"builtin_muse.seed={o.seed}",
    ]
    common = [f"model={o.model}", f"seed={o.seed}", *data, *o.extra]
    training = [
        f"data.max_length={o.max_length}",
        f"trainer.args.max_steps={o.max_steps}",
        "trainer.args.warmup_epochs=0.5",
        "trainer.args.logging_steps=1",  # every step in trainer_log.txt: progress you can watch
        "trainer.args.gradient_accumulation_steps=1",
        f"trainer.args.bf16={str(use_bf16(o.bf16)).lower()}",
        *([] if _has_cuda() else ["+trainer.args.use_cpu=true"]),
    ]
    evaluation = [f"eval.muse.verbmem_max_new_tokens={o.verbmem_tokens}"]
    return {"common": common, "training": training, "eval": evaluation}


def muse_stages(o: MuseDemoOptions) -> dict[str, Stage]:
    ov = stage_overrides(o)
    base, train = ov["common"], ov["common"] + ov["training"]
    stages: dict[str, Stage] = {}
    for name, split, what in (
        ("target", "full", "every article (forget + retain)"),
        ("retain", "retain", "the retain articles only"),
    ):
        stages[name] = Stage(
            f"finetune the {name} model on {what} with {o.model}",
            "train",
            "train",
            [
                *train,
                "experiment=finetune/muse/default",
                f"train_split={split}",
                f"trainer.args.learning_rate={o.lr}",
                f"trainer.args.num_train_epochs={o.epochs}",
                f"trainer.args.per_device_train_batch_size={o.batch_size}",
                f"task_name=muse_demo_{name}",
            ],
            o.out / name,
        )
    retain_log = o.out / "evals" / "retain" / "MUSE_EVAL.json"

    def evaluation(name: str, model_dir: Path, upstream: list[Stage], log: Path | None) -> Stage:
        return Stage(
            f"evaluate {name} on MUSE",
            "eval",
            "eval",
            [
                *base,
                *ov["eval"],
                "experiment=eval/muse/default",
                f"model.model_args.pretrained_model_name_or_path={model_dir}",
                f"retain_logs_path={log or 'null'}",
                f"task_name=muse_demo_eval_{name}",
            ],
            o.out / "evals" / name,
            upstream=upstream,
            result_file="MUSE_EVAL.json",
        )

    stages["eval:retain"] = evaluation("retain", o.out / "retain", [stages["retain"]], None)
    ref = [stages["eval:retain"]]
    stages["eval:target"] = evaluation(
        "target", o.out / "target", [stages["target"], *ref], retain_log
    )
    for m in o.methods:
        run = o.out / "unlearn" / m
        stages[f"unlearn:{m}"] = Stage(
            f"unlearn the forget articles from the target with {m}",
            "train",
            "unlearn",
            [
                *train,
                "experiment=unlearn/muse/default",
                f"trainer={m}",
                f"model.model_args.pretrained_model_name_or_path={o.out / 'target'}",
                f"trainer.args.learning_rate={o.method_lr[m]}",
                f"trainer.args.num_train_epochs={o.unlearn_epochs}",
                f"trainer.args.per_device_train_batch_size={o.unlearn_batch_size}",
                "trainer.args.lr_scheduler_type=constant",
                f"task_name=muse_demo_{m}",
            ],
            run,
            upstream=[stages["target"]],
        )
        stages[f"eval:{m}"] = evaluation(m, run, [stages[f"unlearn:{m}"], *ref], retain_log)
    for st in stages.values():
        st.autocast_bf16 = st.kind == "eval" and use_bf16(o.bf16)
    return stages


def run_muse_demo(o: MuseDemoOptions) -> dict[str, Any]:
    """Run (or reuse) every stage, then write muse_demo.md / .json / .png into ``o.out``."""
    import os

    o.validate()
    _quiet_libraries()
    t0, load_start = time.perf_counter(), _load()
    stages = muse_stages(o)
    for st in stages.values():  # every config composes before any training starts
        st.config()
    progress = Progress(len(stages) + 1)
    progress.say(
        f"MUSE demo: {o.model}, built-in news corpus ({o.articles} forget / {o.articles} retain1 / "
        f"{o.articles} retain2 / {o.articles} holdout articles, seed {o.seed}) -> {o.out}"
    )
    for st in stages.values():
        progress.run(st, o.fresh)
    names = ["target", "retain", *o.methods]
    rows = [R.load_row(n, o.out / "evals" / n / "MUSE_EVAL.json") for n in names]
    meta = {
        "title": "obliviate demo --benchmark muse",
        "model": o.model,
        "data": f"builtin MUSE-shaped news ({o.articles} articles per group, seed {o.seed})",
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "cpu_count": os.cpu_count(),
        "load_average": {"start": load_start, "end": _load()},
        # every stage's own run time, also of cached ones (when they were made): the CPU seconds
        # are what a busy machine cannot inflate
        "stage_seconds_total": round(sum(_stage_cost(st)[0] for st in stages.values()), 1),
        "stage_cpu_seconds_total": round(sum(_stage_cost(st)[1] for st in stages.values()), 1),
        "settings": {
            k: str(v) if isinstance(v, Path) else v for k, v in vars(o).items() if k != "fresh"
        },
        "stages": [describe(st) for st in stages.values()],
    }
    report = R.build(rows, meta)
    files = R.write(report, o.out)
    progress.done += 1
    progress.say(f"\n[{progress.done}/{progress.total}] comparison\n\n{R.markdown(report)}")
    for kind, path in files.items():
        progress.say(f"{kind}: {path}")
    return report


def _load() -> float | None:
    import os

    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover
        return None


def muse_demo_main(argv: list[str]) -> int:
    d = MuseDemoOptions()
    p = argparse.ArgumentParser(
        prog="obliviate demo --benchmark muse",
        description="MUSE end to end on SmolLM2-135M-Instruct and the built-in news corpus (docs/muse.md).",
    )
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--model", default=d.model)
    for name in ("seed", "articles", "epochs", "lr", "batch_size", "max_length", "unlearn_epochs",
                 "unlearn_batch_size", "max_steps", "verbmem_tokens"):  # fmt: skip
        default = getattr(d, name)
        p.add_argument(f"--{name.replace('_', '-')}", type=type(default), default=default,
                       help="(default %(default)s)")  # fmt: skip
    p.add_argument("--methods", default=",".join(d.methods))
    p.add_argument("--method-lr", action="append", default=[], metavar="METHOD=LR")
    p.add_argument("--bf16", default=d.bf16, choices=("auto", "on", "off"))
    p.add_argument("--fresh", action="store_true")
    p.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    from obliviate.demo.cli import parse_method_lr

    values = {k: v for k, v in vars(args).items() if k not in ("methods", "method_lr")}
    values["methods"] = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    values["method_lr"] = {**d.method_lr, **parse_method_lr(args.method_lr)}
    run_muse_demo(MuseDemoOptions(**values))
    return 0
