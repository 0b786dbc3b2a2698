"""A sweep command's overrides, read with Hydra's own parser: which keys are swept, the points
(for Hydra's basic sweeper, the cartesian product of the swept values), and where each point's
run folder is.

The folders follow Hydra's multirun layout: ``hydra.sweep.dir`` (default
``<paths.root>/sweep/<task_name>``) holds one ``hydra.sweep.subdir`` per point, named by the
point's swept overrides (``hydra.job.override_dirname`` without the keys that have one value),
e.g. ``saves/sweep/simnpo_sweep/trainer.args.learning_rate=1e-05,trainer.method_args.beta=2.5``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from obliviate.errors import ConfigError

SWEEP_FILE = "sweep.json"  # the sweep's points, in the sweep folder
POINT_FILE = "point.json"  # one point's record, in its run folder
EVAL_DIR = "evals"  # a point's evaluation, inside its run folder


@dataclass(frozen=True)
class SweepPlan:
    config_name: str
    task: tuple[str, ...]  # overrides of the run's config, sweeps included
    hydra: tuple[str, ...]  # hydra/<group>=... and hydra.* overrides (launcher, sweeper, dirs)
    swept: tuple[str, ...]  # keys given several values
    fixed: tuple[str, ...]  # keys given one value
    task_name: str
    basic: bool  # Hydra's basic sweeper: the points are known before anything runs

    def hydra_overrides(self) -> list[str]:
        """Our defaults for the sweep layout, then the user's hydra overrides (later wins)."""
        exclude = ",".join(f"'{k}'" for k in sorted({*self.fixed, "task_name"}))
        # Points run in this process unless a launcher plugin is chosen: then the logging set up
        # at start stays. Hydra's job logging would re-run logging.config.dictConfig per point,
        # which closes every handler in the process (and absl's, from rouge-score, closes its
        # stream). A launcher that starts new processes keeps Hydra's job logging.
        in_process = not any(o.startswith("hydra/launcher=") for o in self.hydra)
        return [
            "hydra.sweep.dir=${paths.root}/sweep/${task_name}",
            "hydra.sweep.subdir=${hydra.job.override_dirname}",
            f"hydra.job.config.override_dirname.exclude_keys=[{exclude}]",
            *(["hydra/job_logging=none"] if in_process else []),
            *self.hydra,
        ]

    def points(self) -> list[list[str]]:
        """Every point's task overrides (basic sweeper only), in Hydra's launch order."""
        from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

        (batch,) = BasicSweeper.split_arguments(_parse(list(self.task)), max_batch_size=None)
        return [list(p) for p in batch]


def _parse(overrides: list[str]) -> list:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise ConfigError(" ".join(str(e).split())) from e


def plan_sweep(config_name: str, overrides: list[str]) -> SweepPlan:
    """Split a ``-m`` command's overrides; a sweep needs a ``task_name`` (its folder's name)."""
    parsed = _parse(overrides)
    hydra = [o for o in parsed if o.is_hydra_override()]
    task = [o for o in parsed if not o.is_hydra_override()]
    swept = tuple(o.key_or_group for o in task if o.is_sweep_override())
    fixed = tuple(o.key_or_group for o in task if not o.is_sweep_override())
    if "task_name" in swept:
        raise ConfigError("task_name names the whole sweep; give it one value and sweep other keys")
    names = [o.value() for o in task if o.key_or_group == "task_name"]
    if not names:
        raise ConfigError(
            "a sweep needs task_name=NAME: its points go to <paths.root>/sweep/NAME/<overrides>"
        )
    sweeper = [o.value() for o in hydra if o.key_or_group == "hydra/sweeper"]
    return SweepPlan(
        config_name=config_name,
        task=tuple(o.input_line for o in task),
        hydra=tuple(o.input_line for o in hydra),
        swept=swept,
        fixed=fixed,
        task_name=str(names[-1]),
        basic=not sweeper or sweeper[-1] in ("basic", None),
    )


def point_dirname(plan: SweepPlan, point: list[str]) -> str:
    """The point's folder name, as Hydra computes ``hydra.job.override_dirname`` with our
    ``exclude_keys``: its swept overrides, sorted, joined by commas."""
    from hydra._internal.config_loader_impl import get_overrides_dirname

    exclude = sorted({*plan.fixed, "task_name"})
    return get_overrides_dirname(_parse(point), exclude, item_sep=",", kv_sep="=")


def default_sweep_dir(cfg: DictConfig) -> Path:
    return Path(str(cfg.paths.root)) / "sweep" / str(cfg.task_name)


def hydra_sweep_folders(plan: SweepPlan, point: list[str]) -> tuple[Path, str]:
    """The sweep folder and the point's sub-folder from the composed Hydra config: what the
    command's hydra overrides make of them (composing also checks those overrides)."""
    import contextlib

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    from obliviate.config import CONFIG_DIR

    ready = GlobalHydra.instance().is_initialized()  # inside run_sweep, or a check on its own
    try:
        with (
            contextlib.nullcontext()
            if ready
            else initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3")
        ):
            cfg = hydra_compose(
                plan.config_name, [*point, *plan.hydra_overrides()], return_hydra_config=True
            )
    except HydraException as e:  # e.g. hydra/launcher=submitit_slurm without the plugin
        hint = ""
        if "launcher" in str(e) or "sweeper" in str(e):
            hint = " (the submitit launchers: pip install 'obliviate[sweeps]'; optuna: pip install hydra-optuna-sweeper)"
        raise ConfigError(" ".join(str(e).split()[:60]) + hint) from e
    sweep = OmegaConf.select(cfg, "hydra.sweep", throw_on_missing=True)
    return Path(str(sweep.dir)), str(sweep.subdir)


def swept_part(point: list[str], swept: tuple[str, ...]) -> list[str]:
    """The overrides of ``point`` that differ between points (what names its folder)."""
    return [o.input_line for o in _parse(point) if o.key_or_group in swept]
