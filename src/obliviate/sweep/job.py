"""One sweep point, as Hydra's task function: train into the point's run folder, evaluate the
result into ``<run folder>/evals`` (every suite the config selects, with the retain log when
``retain_logs_path`` is given), and record both stages in ``point.json``. A stage whose record
matches what is asked now (:mod:`obliviate.sweep.record`) is reused, and the log says so."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from obliviate.data import tofu
from obliviate.sweep import record as R
from obliviate.sweep.points import EVAL_DIR, POINT_FILE, swept_part
from obliviate.utils.io import atomic_write_json

log = logging.getLogger("obliviate")

# Overrides that only training takes; the evaluation reads the point's run folder instead.
TRAIN_ONLY = ("trainer", "train_split", "task_name", "overwrite", "paths", "mode")
TRAIN_FILES = ("*.safetensors", "receipt.json", "obliviate_config.yaml")


@dataclass(frozen=True)
class PointJob:
    """Hydra's task function for every point of one sweep. A plain picklable object: the
    submitit launchers send it to their worker processes (or SLURM jobs)."""

    swept: tuple[str, ...]

    def __call__(self, cfg: DictConfig) -> dict[str, Any]:
        from hydra.core.hydra_config import HydraConfig

        hc = HydraConfig.get()
        folder = Path(str(hc.sweep.dir)) / str(hc.sweep.subdir)
        overrides = [str(o) for o in hc.overrides.task]
        return run_point(cfg, folder, overrides, self.swept, int(hc.job.num))


def run_point(
    cfg: DictConfig, folder: Path, overrides: list[str], swept: tuple[str, ...], num: int = 0
) -> dict[str, Any]:
    """Train (or reuse) and evaluate (or reuse) one point; returns its record."""
    train_cfg, eval_cfg = point_configs(cfg, folder, overrides)
    label = f"point #{num} ({','.join(swept_part(overrides, swept)) or folder.name})"
    saved = R.read_point(folder)
    want_train = R.stage_record(
        train_cfg, R.WHERE_KEYS, R.data_sha256(train_cfg, R.train_splits(train_cfg))
    )
    want_eval = R.stage_record(eval_cfg, R.EVAL_WHERE_KEYS, R.eval_data_sha256(eval_cfg))
    train_problem = R.reuse_problem(saved.get("train"), want_train, folder)
    eval_problem = (
        "training redone"
        if train_problem
        else R.reuse_problem(saved.get("eval"), want_eval, folder / EVAL_DIR)
    )
    if not train_problem and not eval_problem:
        log.info("%s: complete, receipts match (config, code, data): skipped", label)
        return saved
    rec: dict[str, Any] = {
        "overrides": overrides,
        "swept": swept_part(overrides, swept),
        "train": saved.get("train") if not train_problem else None,
        "eval": None,
        "status": "partial",
    }
    try:
        if train_problem:
            log.info("%s: training (%s)", label, train_problem)
            rec["train"] = train(train_cfg, folder, want_train)
            _write(folder, rec)  # the training is reusable even if the evaluation fails
        else:
            log.info("%s: training reused (receipts match); evaluating (%s)", label, eval_problem)
        rec["eval"] = evaluate(eval_cfg, folder / EVAL_DIR, want_eval)
        rec["status"] = "complete"
    except BaseException as e:
        rec["status"] = "failed" if isinstance(e, Exception) else "interrupted"
        rec["error"] = " ".join(f"{type(e).__name__}: {e}".split())[:500]
        _write(folder, rec)
        raise
    _write(folder, rec)
    log.info("%s: complete", label)
    return rec


def point_configs(
    cfg: DictConfig, folder: Path, overrides: list[str]
) -> tuple[DictConfig, DictConfig]:
    """The point's training config (writing into ``folder``) and its evaluation config (reading
    the trained model, writing into ``folder/evals``), the latter composed from eval.yaml with
    the point's overrides that evaluation also takes."""
    from obliviate.launch import compose
    from obliviate.models.lora import MERGED_DIR

    train_cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    with open_dict(train_cfg):
        train_cfg.pop("hydra", None)
        train_cfg.paths.output_dir = str(folder)
    lora = train_cfg.model.get("lora") or {}
    model_dir = folder / MERGED_DIR if lora.get("r") and lora.get("merge") else folder
    ov = (
        *eval_overrides(overrides, str(train_cfg.forget_split)),
        f"task_name={train_cfg.task_name}",
    )
    if ov not in _EVAL_CONFIGS:  # points of a sweep usually share it: compose it once
        _EVAL_CONFIGS[ov] = compose("eval", list(ov))
    eval_cfg = copy.deepcopy(_EVAL_CONFIGS[ov])
    eval_cfg.model.model_args.pretrained_model_name_or_path = str(model_dir)
    eval_cfg.paths.output_dir = str(folder / EVAL_DIR)
    return train_cfg, eval_cfg


_EVAL_CONFIGS: dict[tuple[str, ...], DictConfig] = {}


def eval_overrides(overrides: list[str], forget_split: str) -> list[str]:
    """The training overrides evaluation also takes; ``experiment=unlearn/X`` becomes
    ``experiment=eval/X`` (default eval/tofu/default), and the holdout split matches the
    forget split unless given (it feeds privleak; a missing one is only a note)."""
    from obliviate.config import CONFIG_DIR

    out, keys = [], set()
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        keys.add(key)
        if (
            key.split(".")[0] in TRAIN_ONLY
            or key == "model.model_args.pretrained_model_name_or_path"
        ):
            continue
        if key == "experiment":
            name = "eval/" + value.split("/", 1)[-1]
            ov = f"experiment={name if (CONFIG_DIR / 'experiment' / f'{name}.yaml').is_file() else 'eval/tofu/default'}"
        out.append(ov)
    if "experiment" not in keys:
        out.insert(0, "experiment=eval/tofu/default")
    if "holdout_split" not in keys:
        out.append(f"holdout_split=holdout{tofu.split_percent(forget_split, 'forget'):02d}")
    return out


def train(cfg: DictConfig, folder: Path, want: dict[str, Any]) -> dict[str, Any]:
    import json

    from obliviate.training import run_training

    with open_dict(cfg):
        cfg.overwrite = folder.is_dir() and any(folder.iterdir())  # an unfinished or stale run
    run_training(cfg)
    receipt = json.loads((folder / "receipt.json").read_text())
    files = R.files_in(folder, TRAIN_FILES)
    return {**want, "done": True, "files": files, "efficiency": receipt.get("efficiency")}


def evaluate(cfg: DictConfig, out: Path, want: dict[str, Any]) -> dict[str, Any]:
    from obliviate.eval.runner import run_eval

    with open_dict(cfg):
        cfg.overwrite = True  # this point's own evaluation, being redone
    run_eval(cfg)
    return {**want, "done": True, "files": R.files_in(out, ("*.json",))}


def _write(folder: Path, rec: dict[str, Any]) -> None:
    atomic_write_json(folder / POINT_FILE, rec)
