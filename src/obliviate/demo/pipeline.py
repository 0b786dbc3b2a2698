"""The demo story and the guide's comparison loop, each as a list of cached :class:`Stage` s.

``demo``: data -> finetune the target on every author -> finetune the retain model on the
retain authors -> evaluate the retain model (its log is forget_quality's reference) ->
evaluate the target -> for each method: unlearn the forget authors from the target, evaluate ->
table + plot. Every step is the project's own ``run_training`` / ``run_eval`` on a config
composed from ``configs/``, exactly as ``src/train.py`` / ``src/eval.py`` would run it.

``compare``: the guide's section 6 loop (train + evaluate each method) as one command, or the
collection of existing evaluation folders, into the same table and plot.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from obliviate.data import tofu
from obliviate.demo import report as R
from obliviate.demo.stages import CONFIG_DIR, Stage, compose, describe, file_fingerprints
from obliviate.errors import ConfigError

DEFAULT_METHODS = ("SimNPO", "NPO", "GradDiff", "GradAscent")
#: Unlearning learning rates that differ from ``unlearn_lr``, per method (papers tune the lr per
#: method too). Chosen on seeds 0-2 (docs/results/2026-12-02_cpu_demo): with every method at
#: 1e-4, SimNPO (whose forget term is weighted by gamma 0.125) fell short of a tenfold
#: forget_quality gain on seed 0, while NPO and GradAscent (no retain term) lost the
#: real-author answers on seed 1; at these rates all four meet the bar on all three seeds.
DEFAULT_METHOD_LR: dict[str, float] = {"SimNPO": 1.5e-4, "NPO": 5e-5, "GradAscent": 5e-5}


@dataclass
class DemoOptions:
    """What ``obliviate demo`` runs. The defaults aim at 10 minutes on 2 idle CPU cores and at a
    readable result: 5 authors of 20 QA, the last 2 forgotten (n = 40 forget items, so the KS
    p-value moves in fine steps) and 3 kept (with a single retain author SimNPO's retain loss
    taught the model to answer every "who wrote X" with that author); 3 finetuning epochs;
    1 unlearning epoch of 10 steps at lr 1e-4, or the method's own rate in ``method_lr``
    (``DEFAULT_METHOD_LR``); 8 items per utility split and 32-token answers. Each method keeps
    its config's own arguments. Every knob scales up."""

    out: Path = Path("saves/demo")
    model: str = "SmolLM2-135M-Instruct"
    data: str = "builtin"  # builtin, a folder of TOFU JSON lines, or a Hub id
    authors: int = 5  # builtin data: fictitious authors (20 QA each)
    forget_authors: int = 2  # builtin data: forgotten authors (the last ones): 40 forget items
    forget_split: str = "forget10"  # other data: TOFU's split name
    seed: int = 0
    methods: tuple[str, ...] = DEFAULT_METHODS
    epochs: float = 3.0  # finetuning the target and the retain model
    lr: float = 2e-4
    batch_size: int = 16
    unlearn_epochs: float = 1.0
    unlearn_lr: float = 1e-4
    #: per-method unlearning lr, overriding ``unlearn_lr`` (``--method-lr NPO=5e-5``)
    method_lr: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_METHOD_LR))
    warmup_epochs: float = 0.5  # every training stage (the guide's 1.0 is long for so few steps)
    unlearn_batch_size: int = 4
    max_steps: int = -1  # every training stage; -1 = run the epochs (a positive number: smoke runs)
    eval_items: int | None = None  # first N items of each evaluation split; None = all
    utility_items: int | None = 8  # first N of the retain / real-author / world-fact items
    max_new_tokens: int = 32  # greedy answer length for ROUGE (TOFU: 200)
    privleak: bool = False  # also score the holdout split (privleak); off to save time on CPU
    eval_batch_size: int = 32
    # Greedy decoding on a CPU is bound by reading the weights once per token, whatever the
    # batch: one batch of every prompt costs about what a batch of 32 does.
    generation_batch_size: int = 64
    device: str = "auto"  # auto, cpu or cuda
    bf16: str = "auto"  # bfloat16 autocast, training and evaluation: auto = GPU or CPU with native bf16
    fresh: bool = False  # rerun every stage even if its result is cached
    extra: list[str] = field(default_factory=list)  # more Hydra overrides for every stage

    def unlearn_lr_for(self, method: str) -> float:
        return self.method_lr.get(method, self.unlearn_lr)

    def validate(self) -> None:
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"--device {self.device!r}; use auto, cpu or cuda")
        if self.bf16 not in ("auto", "on", "off"):
            raise ConfigError(f"--bf16 {self.bf16!r}; use auto, on or off")
        for name in ("epochs", "unlearn_epochs", "lr", "unlearn_lr"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be > 0")
        for name in (
            "batch_size",
            "unlearn_batch_size",
            "eval_batch_size",
            "generation_batch_size",
            "max_new_tokens",
        ):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} {getattr(self, name)} must be >= 1")
        for name in ("eval_items", "utility_items"):
            value = getattr(self, name)
            if value is not None and value < 1:
                flag = name.replace("_", "-")
                raise ConfigError(f"--{flag} {value} must be >= 1 (0 on the command line = all)")
        if self.warmup_epochs < 0:
            raise ConfigError(f"--warmup-epochs {self.warmup_epochs} must be >= 0")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ConfigError(
                f"--max-steps {self.max_steps}; use -1 (run the epochs) or a positive number"
            )
        for m, lr in self.method_lr.items():
            if m not in trainer_names() or m == "finetune":
                raise ConfigError(f"--method-lr {m}={lr}: {m!r} is not an unlearning method")
            if not (isinstance(lr, (int, float)) and lr > 0):
                raise ConfigError(f"--method-lr {m}={lr} must be a learning rate > 0")
        if not self.methods:
            raise ConfigError("--methods is empty; name at least one, e.g. --methods SimNPO")
        known = trainer_names()
        for m in self.methods:
            if m not in known or m == "finetune":
                raise ConfigError(
                    f"--methods: {m!r} is not an unlearning method; choose from "
                    + ", ".join(k for k in known if k != "finetune")
                )
        if not (CONFIG_DIR / "model" / f"{self.model}.yaml").is_file():
            raise ConfigError(
                f"--model {self.model!r} is not a model config; choose one of "
                + ", ".join(sorted(p.stem for p in (CONFIG_DIR / "model").glob("*.yaml")))
            )


def trainer_names() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "trainer").glob("*.yaml"))


# ---- progress ------------------------------------------------------------------------------


class Progress:
    """Numbered stage lines with elapsed time, on stdout."""

    def __init__(self, total: int, stream: Any = None):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()
        self.stream = stream or sys.stdout

    def elapsed(self) -> str:
        s = int(time.perf_counter() - self.t0)
        return f"{s // 60}m{s % 60:02d}s"

    def say(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def run(self, stage: Stage, fresh: bool) -> Path:
        self.done += 1
        self.say(f"\n[{self.done}/{self.total}] {stage.label}  (elapsed {self.elapsed()})")
        out, seconds, reused = stage.run(fresh)
        self.say(
            f"[{self.done}/{self.total}] "
            + (
                f"reused cached result in {out}"
                if reused
                else f"done in {seconds:.0f}s (CPU {stage.cpu_seconds:.0f}s) -> {out}"
            )
        )
        return out


# ---- the demo ------------------------------------------------------------------------------


def data_overrides(opts: DemoOptions) -> tuple[list[str], str]:
    """Overrides naming the data, and the forget split to use."""
    if opts.data == tofu.BUILTIN:
        from obliviate.data import builtin

        split = builtin.forget_split_name(opts.authors, opts.forget_authors)
        return [
            "tofu_data=builtin",
            f"builtin_data.authors={opts.authors}",
            f"builtin_data.seed={opts.seed}",
        ], split
    tofu.split_percent(opts.forget_split, "forget")
    return [f"tofu_data={opts.data}"], opts.forget_split


@dataclass
class StageOverrides:
    """The overrides every demo stage shares, and what each kind of stage adds to them."""

    opts: DemoOptions
    data: list[str]
    forget: str
    retain: str
    holdout: str
    bf16_on: bool

    @property
    def common(self) -> list[str]:
        o = self.opts
        return [f"model={o.model}", f"seed={o.seed}", *self.data, *o.extra]

    @property
    def training(self) -> list[str]:
        """Step count, warm-up and precision, shared by finetuning and unlearning."""
        o = self.opts
        ov = [
            f"trainer.args.max_steps={o.max_steps}",
            f"trainer.args.warmup_epochs={o.warmup_epochs}",
            f"trainer.args.bf16={str(self.bf16_on).lower()}",
        ]
        if not _has_cuda():  # HF refuses bf16 without a GPU unless told to train on the CPU
            ov.append("+trainer.args.use_cpu=true")
        return ov

    def finetune(self, split: str, task: str) -> list[str]:
        o = self.opts
        return [
            *self.common,
            "experiment=finetune/tofu/default",
            f"train_split={split}",
            f"trainer.args.learning_rate={o.lr}",
            f"trainer.args.num_train_epochs={o.epochs}",
            f"trainer.args.per_device_train_batch_size={o.batch_size}",
            "trainer.args.gradient_accumulation_steps=1",
            *self.training,
            f"task_name={task}",
        ]

    def unlearn(self, method: str, target: Path, task: str) -> list[str]:
        o = self.opts
        return [
            *self.common,
            "experiment=unlearn/tofu/default",
            f"trainer={method}",
            f"forget_split={self.forget}",
            f"retain_split={self.retain}",
            f"model.model_args.pretrained_model_name_or_path={target}",
            f"trainer.args.learning_rate={o.unlearn_lr_for(method)}",
            f"trainer.args.num_train_epochs={o.unlearn_epochs}",
            f"trainer.args.per_device_train_batch_size={o.unlearn_batch_size}",
            "trainer.args.gradient_accumulation_steps=1",
            *self.training,
            f"task_name={task}",
        ]

    def evaluate(self, model_dir: Path, retain_log: Path | None, task: str) -> list[str]:
        o = self.opts
        return [
            *self.common,
            "experiment=eval/tofu/default",
            f"forget_split={self.forget}",
            f"holdout_split={self.holdout if o.privleak else 'null'}",
            f"model.model_args.pretrained_model_name_or_path={model_dir}",
            f"retain_logs_path={retain_log if retain_log else 'null'}",
            f"eval.max_items={o.eval_items if o.eval_items else 'null'}",
            f"eval.utility_items={o.utility_items if o.utility_items else 'null'}",
            f"eval.max_new_tokens={o.max_new_tokens}",
            f"eval.batch_size={o.eval_batch_size}",
            f"eval.generation_batch_size={o.generation_batch_size}",
            f"task_name={task}",
        ]


def demo_stages(opts: DemoOptions) -> tuple[dict[str, Stage], dict[str, Any]]:
    """Every stage of the demo, in order, and facts about the run for the report."""
    data, forget = data_overrides(opts)
    pct = tofu.split_percent(forget, "forget")
    retain = f"retain{100 - pct:02d}"
    ov = StageOverrides(opts, data, forget, retain, f"holdout{pct:02d}", use_bf16(opts.bf16))
    out = opts.out
    stages: dict[str, Stage] = {}
    stages["target"] = Stage(
        f"finetune the target on every author (full) with {opts.model}",
        "train",
        "train",
        ov.finetune("full", "demo_target"),
        out / "target",
    )
    stages["retain"] = Stage(
        f"finetune the retain model on {retain} only (never sees {forget})",
        "train",
        "train",
        ov.finetune(retain, "demo_retain"),
        out / "retain",
    )
    retain_log = out / "evals" / "retain" / "TOFU_EVAL.json"
    stages["eval:retain"] = Stage(
        "evaluate the retain model (its log is forget_quality's reference)",
        "eval",
        "eval",
        ov.evaluate(out / "retain", None, "demo_eval_retain"),
        out / "evals" / "retain",
        upstream=[stages["retain"]],
    )
    ref = [stages["eval:retain"]]
    stages["eval:target"] = Stage(
        "evaluate the target (before unlearning)",
        "eval",
        "eval",
        ov.evaluate(out / "target", retain_log, "demo_eval_target"),
        out / "evals" / "target",
        upstream=[stages["target"], *ref],
    )
    for m in opts.methods:
        run = out / "unlearn" / m
        stages[f"unlearn:{m}"] = Stage(
            f"unlearn {forget} from the target with {m}",
            "train",
            "unlearn",
            ov.unlearn(m, out / "target", f"demo_{m}"),
            run,
            upstream=[stages["target"]],
        )
        stages[f"eval:{m}"] = Stage(
            f"evaluate {m}",
            "eval",
            "eval",
            ov.evaluate(run, retain_log, f"demo_eval_{m}"),
            out / "evals" / m,
            upstream=[stages[f"unlearn:{m}"], *ref],
        )
    _describe_inputs(stages, ov)
    facts = {"forget_split": forget, "retain_split": retain, "data_overrides": data}
    return stages, facts


def _describe_inputs(stages: dict[str, Stage], ov: StageOverrides) -> None:
    """Each stage's data fingerprints (part of its cache key), autocast and progress display."""
    folder = data_folder(ov.opts, ov.data)
    reads = {
        "target": ["full"],
        "retain": [ov.retain],
        "eval": [f"{ov.forget}_perturbed", "retain_perturbed", "real_authors_perturbed"]
        + ["world_facts_perturbed", ov.holdout],
        "unlearn": [ov.forget, ov.retain, "full"],
    }
    for name, st in stages.items():
        st.autocast_bf16 = st.kind == "eval" and ov.bf16_on
        files = reads.get(name) or reads[name.split(":")[0]]
        st.inputs = file_fingerprints(folder, files)
        if st.kind == "train":  # a progress bar per training run (HF hides it when quiet)
            st.display = ["+trainer.args.disable_tqdm=false"]


def data_folder(opts: DemoOptions, data: list[str]) -> str | None:
    """The local folder the data is read from (built-in data is written there first)."""
    source = tofu.TofuSource.from_config(compose("eval", ["task_name=demo", *data]))
    return source.location if source.is_local else None


def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run (or reuse) every stage, then write the comparison. Returns the report."""
    opts.validate()
    _quiet_libraries()
    t0 = time.perf_counter()
    load_before = _load_average()
    stages, facts = demo_stages(opts)
    # Compose every config now: a mistake surfaces before any training starts.
    configs = {name: st.config() for name, st in stages.items()}
    method_args = {
        m: dict(configs[f"unlearn:{m}"].trainer.get("method_args") or {}) for m in opts.methods
    }
    progress = Progress(len(stages) + 1)
    progress.say(describe_data(opts, facts))
    for st in stages.values():
        progress.run(st, opts.fresh)

    retain_log_path = opts.out / "evals" / "retain" / "TOFU_EVAL.json"
    from obliviate.eval.retain_log import load_retain_log

    retain_log = load_retain_log(retain_log_path)
    rows = [
        R.load_row("target", "target", opts.out / "evals" / "target" / "TOFU_EVAL.json"),
        R.load_row("retain", "retain", retain_log_path, retain_log, str(retain_log_path)),
    ]
    rows += [
        R.load_row(m, "method", opts.out / "evals" / m / "TOFU_EVAL.json") for m in opts.methods
    ]
    seconds = time.perf_counter() - t0
    meta = {
        "title": "obliviate demo",
        "model": opts.model,
        "data": opts.data
        if opts.data != "builtin"
        else f"builtin ({opts.authors} authors, seed {opts.seed})",
        "device": _device_name(),
        "wall_seconds": round(seconds, 1),
        # 1-minute load average of the machine at the start and the end: a busy machine
        # (other jobs on the same cores) stretches the wall time
        "load_average": {"start": load_before, "end": _load_average()},
        # every stage's own run time, also of the cached ones (when they were made)
        "stage_seconds_total": round(sum(_stage_cost(st)[0] for st in stages.values()), 1),
        "stage_cpu_seconds_total": round(sum(_stage_cost(st)[1] for st in stages.values()), 1),
        "settings": {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(opts).items()
            if k not in ("fresh",)
        },
        "bf16_autocast": use_bf16(opts.bf16),
        "method_args": method_args,
        "stages": [describe(st) for st in stages.values()],
    }
    files = R.write_report(rows, opts.out, meta)
    report = R.build_report(rows, meta)
    progress.done += 1
    progress.say(f"\n[{progress.done}/{progress.total}] comparison\n")
    progress.say(R.markdown(report))
    for kind, path in files.items():
        progress.say(f"{kind}: {path}")
    load = meta["load_average"]
    progress.say(
        f"\nobliviate demo finished in {_minutes(seconds)} wall time on {meta['device']}"
        f" (1-min load average {load['start']} at the start, {load['end']} at the end)"
    )
    return report


def describe_data(opts: DemoOptions, facts: dict[str, Any]) -> str:
    forget, retain = facts["forget_split"], facts["retain_split"]
    if opts.data == tofu.BUILTIN:
        folder = data_folder(opts, facts["data_overrides"])
        return (
            f"data: built-in fictitious authors, {opts.authors} authors x 20 QA (seed {opts.seed}) in {folder}\n"
            f"      {forget} = the last {opts.forget_authors} author(s); {retain} = the other "
            f"{opts.authors - opts.forget_authors}; model {opts.model}; output {opts.out}"
        )
    return f"data: {opts.data}, {forget} / {retain}; model {opts.model}; output {opts.out}"


# ---- the comparison loop (guide section 6) -------------------------------------------------

# Overrides that only one of the two configs knows.
_TRAIN_ONLY = ("trainer", "retain_split", "train_split")
_EVAL_ONLY = ("eval", "retain_logs_path", "holdout_split")


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """(unlearning overrides, evaluation overrides) from one list; the start model's path is
    for unlearning only (the evaluation reads the unlearned run)."""
    train, evaluate = [], []
    for ov in overrides:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r} is not key=value")
        head = _key(ov).split(".", 1)[0]
        if head in _TRAIN_ONLY:
            train.append(ov)
        elif head in _EVAL_ONLY:
            evaluate.append(ov)
        elif _key(ov) in ("model.model_args.pretrained_model_name_or_path", "task_name"):
            train.append(ov)
        else:
            train.append(ov)
            evaluate.append(ov)
    return train, evaluate


def run_compare(items: list[str], overrides: list[str], out: Path | None = None) -> dict[str, Any]:
    """Each item is a method name (trained with ``unlearn.yaml`` and evaluated, as in the guide's
    loop; runs whose results exist are reused) or an evaluation folder (collected as it is)."""
    _quiet_libraries()
    t0 = time.perf_counter()
    methods = set(trainer_names()) - {"finetune"}
    plan = _classify_items(items, methods)
    train_ov, eval_ov = split_overrides(overrides)
    overwrite = any(
        _key(o) == "overwrite" and o.split("=", 1)[1].lower() == "true" for o in overrides
    )
    base_eval = compose("eval", ["task_name=compare", "experiment=eval/tofu/default", *eval_ov])
    forget = str(base_eval.forget_split)
    retain_log_path = base_eval.get("retain_logs_path")
    stages = {
        name: _method_stages(name, forget, train_ov, eval_ov, overwrite)
        for name, found in plan
        if found is None
    }

    progress = Progress(2 * len(stages) + 1)
    retain_log = None
    if retain_log_path:
        from obliviate.eval.retain_log import load_retain_log

        retain_log = load_retain_log(retain_log_path)
    rows: list[R.Row] = []
    for name, found in plan:
        if found is None:
            found = _run_or_reuse(*stages[name], progress, overwrite)
        retain_row = retain_log_path and Path(found).resolve() == Path(retain_log_path).resolve()
        kind = "retain" if retain_row else ("method" if name in methods else "model")
        rows.append(R.load_row(_label(name, found), kind, found, retain_log, retain_log_path))
    out = out or Path(base_eval.paths.root) / "compare" / forget
    meta = {
        "title": "obliviate compare",
        "model": str(base_eval.model.name),
        "retain_logs_path": retain_log_path,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "items": items,
        "overrides": overrides,
    }
    files = R.write_report(rows, out, meta)
    report = R.build_report(rows, meta)
    progress.say("\n" + R.markdown(report))
    for kind, path in files.items():
        progress.say(f"{kind}: {path}")
    if not retain_log_path:
        progress.say(
            "note: no retain_logs_path given, so forget_quality is empty where the evaluations lack it; "
            "pass retain_logs_path=<retain model's TOFU_EVAL.json>"
        )
    return report


def _classify_items(items: list[str], methods: set[str]) -> list[tuple[str, Path | None]]:
    """(item, its TOFU_EVAL.json) for an evaluation folder, (item, None) for a method name."""
    if not items:
        raise ConfigError(
            "obliviate compare needs method names (e.g. SimNPO NPO) or evaluation folders"
        )
    plan: list[tuple[str, Path | None]] = []
    for item in items:
        if Path(item).is_dir():
            plan.append((item, R.find_eval_file(Path(item))))
        elif item in methods:
            plan.append((item, None))
        else:
            raise ConfigError(
                f"{item!r} is neither an evaluation folder nor a method; methods: {', '.join(sorted(methods))}"
            )
    return plan


def _method_stages(
    name: str, forget: str, train_ov: list[str], eval_ov: list[str], overwrite: bool
) -> tuple[Stage, Stage]:
    """The guide's loop body for one method: unlearn, then evaluate the unlearned run. Both
    configs are composed here, so a mistake surfaces before anything runs."""
    ov = [
        "experiment=unlearn/tofu/default",
        f"trainer={name}",
        f"task_name=tofu_{name}_{forget}",  # the guide's naming
        *[o for o in train_ov if _key(o) != "task_name"],
    ]
    run_dir = Path(compose("unlearn", ov).paths.output_dir)
    train = Stage(f"unlearn {forget} with {name}", "train", "unlearn", ov, run_dir)
    train.display = ["+trainer.args.disable_tqdm=false"]
    ev_ov = [
        "experiment=eval/tofu/default",
        f"task_name=tofu_{name}_{forget}",
        *[o for o in eval_ov if _key(o) not in ("task_name",)],
        f"model.model_args.pretrained_model_name_or_path={run_dir}",
    ]
    ev = Stage(f"evaluate {name}", "eval", "eval", ev_ov, run_dir / "evals", [train])
    for st in (train, ev):
        st.overwrite = overwrite
        st.config()
    return train, ev


def _run_or_reuse(train: Stage, ev: Stage, progress: Progress, overwrite: bool) -> Path:
    """Run a method's two stages unless a finished run (and its evaluation) is already there."""
    reuse = not overwrite and (train.is_done() or _complete_run(train.out))
    if reuse:
        progress.done += 1
        progress.say(f"[{progress.done}/{progress.total}] {train.label}: reusing {train.out}")
    else:
        progress.run(train, fresh=True)
    if reuse and (ev.out / "TOFU_EVAL.json").is_file():
        progress.done += 1
        progress.say(f"[{progress.done}/{progress.total}] {ev.label}: reusing {ev.out}")
    else:
        progress.run(ev, fresh=True)
    return ev.out / "TOFU_EVAL.json"


def _complete_run(folder: Path) -> bool:
    return (folder / "receipt.json").is_file() and any(folder.glob("*.safetensors"))


def _label(name: str, eval_file: Path) -> str:
    if not Path(name).is_dir():
        return name
    folder = Path(eval_file).parent
    return folder.parent.name if folder.name == "evals" else folder.name


# ---- helpers -------------------------------------------------------------------------------


def _quiet_libraries() -> None:
    """Keep the terminal for our progress lines: transformers' per-call warnings off."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("obliviate").setLevel(logging.INFO)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def use_bf16(setting: str) -> bool:
    """bfloat16 autocast only where it is fast: a GPU, or a CPU with bf16 instructions. On a CPU
    without them (AVX-512 but no AVX512_BF16/AMX) autocast made a SmolLM2 step 3x slower."""
    if setting in ("on", "off"):
        return setting == "on"
    return _has_cuda() or cpu_has_native_bf16()


def cpu_has_native_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _device_name() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()})"


def _stage_cost(stage: Stage) -> tuple[float, float]:
    """(wall, CPU) seconds of the stage's run, this time or when its cached result was made."""
    if stage.reused and stage.cached_cost:
        return stage.cached_cost
    return stage.seconds, stage.cpu_seconds


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def _minutes(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 60}m{s % 60:02d}s"
