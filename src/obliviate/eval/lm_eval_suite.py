"""lm-evaluation-harness as an evaluation suite (``eval=lm_eval``, or ``eval=[tofu,lm_eval]``).

The model and tokenizer obliviate has loaded are handed to lm-eval's ``HFLM`` together: the
tokenizer is never reloaded from the model's name (a run folder's name means nothing to the Hub,
and a reload would drop the pad token and chat settings obliviate prepared). The batch size
(``auto`` allowed), few-shot count, chat template on/off and item limit of ``eval.lm_eval`` are
passed through. Under a distributed launcher each process scores its shard of every task's
requests and lm-eval gathers them on the main process, so the numbers equal one process's.

Results: ``LMEval_EVAL.json`` (per task, lm-eval's per-sample records) and ``LMEval_SUMMARY.json``
(``<task>/<metric>``, e.g. ``wmdp_cyber/acc``, ``wmdp_cyber/acc_stderr``, ``mmlu/acc``: a group's
aggregate for a group such as ``mmlu``), the names open-unlearning gives them.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from obliviate.data.formatting import ChatFormat
from obliviate.errors import ConfigError
from obliviate.eval import lm_eval_tasks as T
from obliviate.eval.suite import SuiteResult

log = logging.getLogger("obliviate")

#: ``wmdp_data=builtin``: the built-in stand-ins of WMDP's tasks and of MMLU
BUILTIN_STANDINS = {
    "wmdp_bio": "builtin_hazard",
    "wmdp_cyber": "builtin_hazard",
    "mmlu": "builtin_retain",
}


@dataclass(frozen=True)
class LMEvalSettings:
    tasks: tuple[str, ...]  # the entries of eval.lm_eval.tasks (names, YAML paths, built-in)
    batch_size: int | str  # a whole number, "auto" or "auto:N" (lm-eval re-detects N times)
    num_fewshot: int | None  # None = each task's own default
    apply_chat_template: bool
    limit: int | float | None  # items per task: a count, or a fraction in (0, 1)
    system_prompt: str | None = None  # with the chat template: the model config's system prompt
    chat_kwargs: dict[str, Any] | None = None  # extra chat-template variables (a fixed date)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> LMEvalSettings:
        section = (cfg.get("eval") or {}).get("lm_eval")
        if section is None:
            raise ConfigError("eval.lm_eval is missing; select the suite with eval=lm_eval")
        raw = OmegaConf.to_container(section, resolve=True)
        tasks = raw.get("tasks")
        if isinstance(tasks, str):
            tasks = [tasks]
        if not tasks or not all(isinstance(t, str) and t for t in tasks):
            raise ConfigError(
                f"eval.lm_eval.tasks={tasks!r} must be a non-empty list of task names or task YAML paths"
            )
        if str(cfg.get("wmdp_data")) == "builtin":
            tasks = [BUILTIN_STANDINS.get(t, t) for t in tasks]
        fmt = ChatFormat.from_config(cfg.model.template)
        return cls(
            tasks=tuple(dict.fromkeys(tasks)),
            batch_size=_batch_size(raw.get("batch_size")),
            num_fewshot=_optional_count("num_fewshot", raw.get("num_fewshot"), 0),
            apply_chat_template=_flag("apply_chat_template", raw.get("apply_chat_template", False)),
            limit=_limit(raw.get("limit")),
            system_prompt=fmt.system_prompt,
            chat_kwargs={"date_string": fmt.date_string} if fmt.date_string else None,
        )


def _batch_size(value: Any) -> int | str:
    """null = 64 on a GPU, 32 on CPU; a whole number >= 1; ``auto`` or ``auto:N``."""
    if value is None:
        return 64 if torch.cuda.is_available() else 32
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    text = str(value)
    if text == "auto" or (text.startswith("auto:") and text[5:].isdigit() and int(text[5:]) >= 1):
        return text
    raise ConfigError(
        f"eval.lm_eval.batch_size={value!r} must be a whole number >= 1, auto, auto:N or null"
    )


def _optional_count(key: str, value: Any, low: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"eval.lm_eval.{key}={value!r} must be a whole number >= {low} or null")
    return value


def _flag(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"eval.lm_eval.{key}={value!r} must be true or false")
    return value


def _limit(value: Any) -> int | float | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return value
    if isinstance(value, float) and 0 < value < 1:
        return value
    raise ConfigError(
        f"eval.lm_eval.limit={value!r} must be a whole number of items >= 1, a fraction in (0, 1), or null"
    )


class LMEvalSuite:
    """lm-eval tasks on the loaded model: checks (and task indexing) in ``__init__``, no model."""

    name = "lm_eval"
    result_files = ("LMEval_EVAL.json", "LMEval_SUMMARY.json")

    def __init__(self, cfg: DictConfig) -> None:
        self.options = LMEvalSettings.from_config(cfg)
        self.plan = T.plan_tasks(list(self.options.tasks), seed=0)
        self.task_manager = make_task_manager(self.plan)
        T.check_known(self.plan.names, set(self.task_manager.all_tasks))
        self.checksums = {p.stem: file_sha256(p) for p in T.local_data_files(self.plan)}
        self.receipt: dict[str, Any] = {
            "lm_eval": {"version": lm_eval_version(), "tasks": list(self.plan.names)}
            | {k: v for k, v in asdict(self.options).items() if k != "tasks"}
        }

    def run(self, model: Any, tokenizer: Any) -> SuiteResult:
        """Evaluate every task (each process its shard); the records and summary come back
        on the main process (empty elsewhere)."""
        samples, summary = evaluate_tasks(
            model, tokenizer, self.options, self.plan, self.task_manager
        )
        return SuiteResult(
            files={"LMEval_EVAL.json": samples, "LMEval_SUMMARY.json": summary},
            summary=summary,
            report=format_summary(summary),
        )


def format_summary(summary: dict[str, Any]) -> str:
    rows = [
        f"{k:<40} {v:.4f}" if isinstance(v, float) else f"{k:<40} {v}" for k, v in summary.items()
    ]
    return "\n".join(["lm-eval", *rows])


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_task_manager(plan: T.TaskPlan) -> Any:
    from lm_eval.tasks import TaskManager

    return TaskManager(
        include_path=list(plan.include_paths) or None, include_defaults=plan.registry
    )


def _distributed() -> bool:
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def wrap_model(model: Any, tokenizer: Any, settings: LMEvalSettings) -> Any:
    """lm-eval's HF model around obliviate's model and tokenizer, sharded across processes."""
    from lm_eval.models.huggingface import HFLM

    class ObliviateLM(HFLM):
        """HFLM that takes this process's rank from the process group obliviate set up
        (HFLM assumes one process when handed a model object) and gathers through it."""

        def all_gather(self, tensor: torch.Tensor) -> torch.Tensor:
            if self.world_size <= 1:
                return tensor
            flat = tensor.reshape(-1)
            parts = [torch.empty_like(flat) for _ in range(self.world_size)]
            torch.distributed.all_gather(parts, flat)
            return torch.cat(parts)

        def barrier(self) -> None:
            if self.world_size > 1:
                torch.distributed.barrier()

    lm = ObliviateLM(
        pretrained=model,
        tokenizer=tokenizer,
        batch_size=settings.batch_size,
        chat_template_args=settings.chat_kwargs,
    )
    if _distributed():
        lm._rank = torch.distributed.get_rank()
        lm._world_size = torch.distributed.get_world_size()
    return lm


def evaluate_tasks(
    model: Any, tokenizer: Any, settings: LMEvalSettings, plan: T.TaskPlan, task_manager: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``({task: per-sample records}, {"<task>/<metric>": value})``; both empty off the main
    process. One lm-eval call per task, so each task's records stay under its own name."""
    from lm_eval import simple_evaluate

    was_training = model.training
    model.eval()
    lm = wrap_model(model, tokenizer, settings)
    samples: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    try:
        for name in plan.names:
            res = simple_evaluate(
                model=lm,
                tasks=[name],
                num_fewshot=settings.num_fewshot,
                limit=settings.limit,
                apply_chat_template=settings.apply_chat_template,
                system_instruction=settings.system_prompt if settings.apply_chat_template else None,
                task_manager=task_manager,
                log_samples=True,
                # None: lm-eval leaves the global RNGs alone (training may be mid-run); the
                # few-shot sampler keeps its own seeded generator.
                random_seed=None,
                numpy_random_seed=None,
                torch_random_seed=None,
            )
            if res is None:  # not the main process: lm-eval gathered everything on rank 0
                continue
            samples[name] = res.get("samples", {})
            summary.update(summarize(res, name))
    finally:
        model.train(was_training)
    return samples, summary


def summarize(res: dict[str, Any], name: str) -> dict[str, float | None]:
    """``<name>/<metric>`` from lm-eval's results: a group's aggregate if ``name`` is a group
    (``mmlu``), else the task's own line. lm-eval's filter suffix (``acc,none``) is dropped;
    a stderr lm-eval could not compute ("N/A") becomes None."""
    line = (res.get("groups") or {}).get(name) or (res.get("results") or {}).get(name)
    if line is None:
        raise RuntimeError(f"lm-eval returned no results for {name!r}")
    out: dict[str, float | None] = {}
    for key, value in line.items():
        if "," not in key:  # "alias", "name", "sample_len": not metrics
            continue
        metric = key.split(",", 1)[0]
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = None
        out[f"{name}/{metric}"] = number if number is None or math.isfinite(number) else None
    return out
