"""``python src/train.py -m ...`` / ``obliviate train -m ...``: a sweep through Hydra's own
sweeper and launcher plugins.

Hydra is set up on the shipped config folder and its ``multirun`` does the rest, so whatever
``hydra/sweeper=...`` and ``hydra/launcher=...`` select is used as Hydra would use it: the basic
sweeper (cartesian product of comma-separated values) and the basic launcher (points one after
another in this process) by default, ``hydra/launcher=submitit_slurm`` (``hydra.launcher.*``:
partition, gpus_per_node, timeout_min, ...) for SLURM, ``hydra/sweeper=optuna`` for a search.
Before anything runs, every point of a basic sweep is composed and put through the training
checks, so a typo in one value stops the sweep with one line, not after three trainings.
"""

from __future__ import annotations

import logging
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from obliviate.config import CONFIG_DIR
from obliviate.errors import ConfigError
from obliviate.sweep import points as P
from obliviate.sweep.record import read_point
from obliviate.utils.io import atomic_write_json

log = logging.getLogger("obliviate")


def run_sweep(config_name: str, overrides: list[str]) -> Path:
    """Run (or resume) the sweep; returns its folder, where ``sweep.json`` lists the points."""
    plan = P.plan_sweep(config_name, overrides)
    # SIGTERM (kill, SLURM's stop before its deadline) unwinds like Ctrl-C: the running point
    # records "interrupted" and sweep.json is written, instead of dying mid-write.
    old_handler = signal.signal(signal.SIGTERM, _stop)
    # Hydra's job logging rewires the root logger for each point; give the caller its own back.
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return _sweep(plan)
    finally:
        signal.signal(signal.SIGTERM, old_handler)
        root.handlers[:] = handlers
        root.setLevel(level)


def _stop(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _sweep(plan: P.SweepPlan) -> Path:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from obliviate.sweep.job import PointJob

    with initialize_config_dir(
        config_dir=str(CONFIG_DIR), version_base="1.3", job_name=plan.task_name
    ):
        planned, sweep_dir = check_points(plan)
        write_sweep_file(sweep_dir, plan, planned)
        log.info("sweep %s: %s", sweep_dir, _counts(planned) or "points chosen by the sweeper")
        try:
            GlobalHydra.instance().hydra.multirun(
                config_name=plan.config_name,
                task_function=PointJob(plan.swept),
                overrides=[*plan.hydra_overrides(), *plan.task],
            )
        finally:
            final = write_sweep_file(sweep_dir, plan, planned)
            log.info(
                "sweep %s: %s; compare: obliviate compare %s", sweep_dir, _counts(final), sweep_dir
            )
    return sweep_dir


def check_points(plan: P.SweepPlan) -> tuple[list[dict[str, Any]], Path]:
    """Compose every point (basic sweeper) and run the training checks on it; the points with
    their folders and on-disk state. Other sweepers choose points as they go: their fixed
    overrides are checked once."""
    from obliviate.launch import compose

    if not plan.basic:
        fixed = [o for o in plan.task if o.split("=", 1)[0].lstrip("+~") in plan.fixed]
        compose(plan.config_name, fixed)
        return [], P.hydra_sweep_folders(plan, fixed)[0]
    per_point = any(o.startswith("hydra.sweep.subdir=") for o in plan.hydra)
    planned, sweep_dir = [], Path()
    for i, point in enumerate(plan.points()):
        cfg = compose(plan.config_name, point)
        if plan.hydra and (i == 0 or per_point):  # compose the hydra config: checks its overrides
            sweep_dir, sub = P.hydra_sweep_folders(plan, point)
        else:
            sweep_dir = sweep_dir if i else P.default_sweep_dir(cfg)
            sub = P.point_dirname(plan, point)
        folder = sweep_dir / sub
        check_point(cfg, folder, point)
        planned.append(
            {"name": sub, "overrides": P.swept_part(point, plan.swept), "all_overrides": point,
             "status": _state(folder)}
        )  # fmt: skip
    if len({p["name"] for p in planned}) < len(planned):
        raise ConfigError(
            f"two points of this sweep get the same folder name; sweep keys: {', '.join(plan.swept)}"
        )
    return planned, sweep_dir


def check_point(cfg: Any, folder: Path, point: list[str]) -> None:
    """The checks a training run makes before loading anything, and the point's evaluation
    config composes (read-only: nothing is created)."""
    from omegaconf import open_dict

    from obliviate.data.tofu import check_holdout
    from obliviate.eval.suite import suite_classes
    from obliviate.sweep.job import point_configs
    from obliviate.training import preflight

    train_cfg, eval_cfg = point_configs(cfg, folder, point)
    with open_dict(train_cfg):
        train_cfg.overwrite = True  # a point folder that exists is the sweep's own business
    preflight(train_cfg)
    check_holdout(eval_cfg.forget_split, eval_cfg.get("holdout_split"))
    suite_classes(eval_cfg)  # the selected evaluation suites exist


def _state(folder: Path) -> str:
    rec = read_point(folder)
    if rec:
        return str(rec.get("status", "partial"))
    return "partial" if folder.is_dir() and any(folder.iterdir()) else "pending"


def write_sweep_file(sweep_dir: Path, plan: P.SweepPlan, planned: list[dict]) -> list[dict]:
    """``sweep.json``: the command, the swept keys and every point (planned, or found on disk
    for sweepers that choose their points), each with its run folder and state."""
    by_name = {p["name"]: dict(p) for p in planned}
    for f in sorted(sweep_dir.glob(f"*/{P.POINT_FILE}")) if sweep_dir.is_dir() else []:
        rec = read_point(f.parent)  # points a sweeper chose (not planned up front)
        by_name.setdefault(
            f.parent.name,
            {"name": f.parent.name, "overrides": rec.get("swept", []),
             "all_overrides": rec.get("overrides", [])},
        )  # fmt: skip
    entries = [
        {**p, "status": _state(sweep_dir / p["name"]), "run_dir": p["name"],
         "eval_dir": f"{p['name']}/{P.EVAL_DIR}"}
        for p in by_name.values()
    ]  # fmt: skip
    atomic_write_json(
        sweep_dir / P.SWEEP_FILE,
        {
            "task_name": plan.task_name,
            "config_name": plan.config_name,
            "command": " ".join(sys.argv),
            "swept": list(plan.swept),
            "overrides": list(plan.task),
            "hydra_overrides": list(plan.hydra),
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "points": entries,
        },
    )
    return entries


def _counts(entries: list[dict]) -> str:
    states: dict[str, int] = {}
    for e in entries:
        states[e["status"]] = states.get(e["status"], 0) + 1
    return (
        f"{len(entries)} points: " + ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
        if entries
        else ""
    )
