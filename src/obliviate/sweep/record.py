"""When may a sweep reuse a finished point? When its receipts say it was made from the same
resolved config, the same code and the same data as the point asked for now.

Each point keeps ``point.json`` in its run folder with one record per stage (training,
evaluation): the sha256 of the stage's resolved config (without the keys that only say where
files go or whether to overwrite them), the code version (:func:`obliviate.utils.receipt.code_version`),
the sha256 of every data split the stage reads, and the files it wrote. A rerun recomputes the
first three and checks the files; any difference redoes the stage (a new training also redoes
the evaluation).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

# Keys that say where a stage writes, or whether it may replace files: not part of "what ran".
WHERE_KEYS = ("overwrite", "paths.output_dir", "trainer.args.output_dir")
EVAL_WHERE_KEYS = (*WHERE_KEYS, "model.model_args.pretrained_model_name_or_path")


def config_sha256(cfg: DictConfig, drop: tuple[str, ...]) -> str:
    """sha256 of the resolved config as sorted JSON, without the ``drop`` keys."""
    data = OmegaConf.to_container(cfg, resolve=True)
    for key in drop:
        *parents, leaf = key.split(".")
        node = data
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def train_splits(cfg: DictConfig) -> list[str]:
    if str(cfg.mode) == "unlearn":
        return [str(cfg.forget_split), str(cfg.retain_split), "full"]
    return [str(cfg.train_split)]


def data_sha256(cfg: DictConfig, splits: list[str]) -> dict:
    """sha256 of each training split's rows as the run loads them (Hub, folder or built-in)."""
    from obliviate.data.tofu import TofuSource
    from obliviate.utils.receipt import rows_sha256

    source = TofuSource.from_config(cfg)
    return {s: rows_sha256(source.load(s)) for s in splits}


def eval_data_sha256(cfg: DictConfig) -> dict:
    """sha256 of the data every selected evaluation suite reads: each suite is built as the
    evaluation builds it (its checks and data, no model) and reports its own checksums."""
    from obliviate.eval.suite import suite_classes

    out = {}
    for cls in suite_classes(cfg):
        suite = cls(cfg)
        out.update({f"{suite.name}/{k}": v for k, v in suite.checksums.items()})
    return out


def stage_record(cfg: DictConfig, drop: tuple[str, ...], data: dict) -> dict[str, Any]:
    """What a stage is made of: the fields :func:`reuse_problem` compares."""
    from obliviate.utils.receipt import code_version

    return {"config_sha256": config_sha256(cfg, drop), "code": code_version(), "data_sha256": data}


def reuse_problem(saved: dict | None, wanted: dict, folder: Path) -> str | None:
    """None when the saved stage can be reused; else why not, in a few words."""
    if not saved or not saved.get("done"):
        return "not finished"
    missing = [f for f in saved.get("files", []) if not (folder / f).is_file()]
    if missing:
        return f"files missing ({', '.join(missing[:3])})"
    for key, what in (("config_sha256", "config"), ("code", "code"), ("data_sha256", "data")):
        if saved.get(key) != wanted[key]:
            return f"{what} changed"
    return None


def read_point(folder: Path) -> dict[str, Any]:
    from obliviate.sweep.points import POINT_FILE

    path = folder / POINT_FILE
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}  # a torn file: the point is redone


def files_in(folder: Path, patterns: tuple[str, ...]) -> list[str]:
    """The files under ``folder`` matching ``patterns``, relative to ``folder``, sorted."""
    found = {p for pattern in patterns for p in folder.glob(pattern) if p.is_file()}
    return sorted(str(p.relative_to(folder)) for p in found)
