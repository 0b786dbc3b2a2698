"""Command-line launcher for the guide's ``src/train.py`` / ``src/eval.py`` commands.

It takes the same arguments as a Hydra app (``--config-name=NAME`` plus ``key=value``
overrides) and composes the config with Hydra's compose API, so that every mistake -- an
unknown trainer, a typo in a key, a bad value -- ends as ONE line naming the value and the fix,
with exit status 2, before anything is loaded.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from obliviate.config import CONFIG_DIR
from obliviate.errors import ConfigError

GROUPS = ("model", "trainer", "experiment", "attack")


def parse_argv(argv: list[str], default_config: str) -> tuple[str, list[str]]:
    """Split ``--config-name=X`` (or ``-cn X``) from the overrides."""
    name, overrides, i = default_config, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--config-name="):
            name = arg.split("=", 1)[1]
        elif arg in ("--config-name", "-cn"):
            if i + 1 >= len(argv):
                raise ConfigError(f"{arg} needs a value, e.g. {arg} unlearn.yaml")
            name, i = argv[i + 1], i + 1
        elif arg.startswith("-"):
            raise ConfigError(
                f"unknown option {arg!r}; pass --config-name=NAME and key=value overrides"
            )
        else:
            overrides.append(arg)
        i += 1
    return name.removesuffix(".yaml"), overrides


def split_multirun(argv: list[str]) -> tuple[bool, list[str]]:
    """Hydra's ``-m`` / ``--multirun`` flag (a sweep, :mod:`obliviate.sweep`) and the rest."""
    rest = [a for a in argv if a not in ("-m", "--multirun")]
    return len(rest) != len(argv), rest


def _options(group: str) -> list[str]:
    root = CONFIG_DIR / group
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.yaml"))


def check_names(config_name: str, overrides: list[str]) -> None:
    """Unknown config / group option names, with the list of valid ones."""
    tops = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml") if p.stem not in ("common", "training"))
    if config_name not in tops:
        raise ConfigError(
            f"--config-name={config_name} is not a config; use one of {', '.join(t + '.yaml' for t in tops)}"
        )
    for ov in overrides:
        key, _, value = ov.lstrip("+~").partition("=")
        if key in GROUPS and value not in ("", "null"):
            options = _options(key)
            if value not in options:
                hint = difflib.get_close_matches(value, options, n=1)
                raise ConfigError(
                    f"{key}={value} is not a known {key}"
                    + (f" (did you mean {hint[0]}?)" if hint else "")
                    + f"; choose one of: {', '.join(options)}"
                )


def compose(config_name: str, overrides: list[str]) -> DictConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    check_names(config_name, overrides)
    try:
        if GlobalHydra.instance().is_initialized():  # inside a sweep's job: Hydra is set up
            return hydra_compose(config_name, overrides=overrides)
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return hydra_compose(config_name, overrides=overrides)
    except HydraException as e:
        raise ConfigError(_one_line(e, config_name, overrides)) from e


def _one_line(e: Exception, config_name: str, overrides: list[str]) -> str:
    msg = str(e)
    m = re.search(r"Could not override '([^']+)'", msg)
    if not m:
        first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
        return " ".join(first.split())
    key = m.group(1)
    parent, _, leaf = key.rpartition(".")
    # Compose without the offending override to see which keys do exist there.
    base = compose(config_name, [o for o in overrides if not o.lstrip("+~").startswith(key + "=")])
    if parent == "trainer.method_args":
        # Let the method's typed arguments name the valid ones.
        from obliviate import config as C

        cls = C.method_class(base)
        known = list(cls.Args.__dataclass_fields__)
        hint = difflib.get_close_matches(leaf, known, n=1)
        return (
            f"unknown method argument trainer.method_args.{leaf} for {cls.__name__}"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; {cls.__name__} takes: {', '.join(known) or 'none'}"
        )
    node = OmegaConf.select(base, parent) if parent else base
    siblings = [str(k) for k in node] if isinstance(node, DictConfig) else []
    if parent == "trainer.args":
        from transformers import TrainingArguments

        siblings += list(TrainingArguments.__dataclass_fields__)
    hint = difflib.get_close_matches(leaf, siblings, n=1)
    if hint:
        return (
            f"{key} is not a config key (did you mean {parent + '.' if parent else ''}{hint[0]}?)"
        )
    return f"{key} is not a config key; add a new key with +{key}=VALUE if that is intended"


def run(fn: Callable[[DictConfig], Any], default_config: str, argv: list[str] | None = None) -> Any:
    """Compose from ``argv`` and run ``fn(cfg)``; user errors exit 2 with one ``error:`` line."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("obliviate").setLevel(logging.INFO)
    argv = sys.argv[1:] if argv is None else argv
    try:
        multirun, argv = split_multirun(argv)
        name, overrides = parse_argv(argv, default_config)
        if multirun:
            if default_config == "eval":
                raise ConfigError("-m (a sweep) is for training commands; evaluation runs as part of each point")
            from obliviate.sweep.run import run_sweep

            return run_sweep(name, overrides)
        cfg = compose(name, overrides)
        relaunch_cpu_processes()
        return fn(cfg)
    except ConfigError as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            logging.getLogger("obliviate").debug("full error", exc_info=True)
        # One line even when the message quotes a multi-line error (e.g. the Hub client's).
        print("error: " + " ".join(str(e).split()), file=sys.stderr)
        sys.exit(2)


def requested_cpu_processes(launcher_argv: list[str]) -> int:
    """The ``--num_processes N`` an ``accelerate launch --cpu ...`` command asked for (else 1).

    Only the launcher's own options count: they end at the first argument that is not an
    option or an option's value, i.e. the training script.
    """
    if "--cpu" not in launcher_argv or not any(
        a == "launch" or a.endswith(".launch") for a in launcher_argv
    ):
        return 1
    for i, arg in enumerate(launcher_argv):
        for name in ("--num_processes", "--num-processes"):
            if arg == name and i + 1 < len(launcher_argv):
                value = launcher_argv[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
            else:
                continue
            try:
                return max(1, int(value))
            except ValueError:
                return 1
        if arg.endswith(".py"):  # the training script: what follows is its own argv
            break
    return 1


def relaunch_cpu_processes() -> None:
    """Honour ``accelerate launch --cpu --num_processes N``.

    accelerate's ``--cpu`` always starts ONE process and silently drops ``--num_processes``, so a
    user who asked for two CPU processes would get one without noticing. When our parent is such
    a launcher, start the N processes ourselves with ``torch.distributed.run`` (gloo process
    group, the same code path as any DDP run) instead of training alone.
    """
    if (
        os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true")
        or "WORLD_SIZE" in os.environ
        or os.environ.get("OBLIVIATE_NO_RELAUNCH") == "1"
    ):
        return
    try:
        import psutil

        parent = psutil.Process(os.getppid()).cmdline()
    except Exception:  # no psutil / no /proc: keep the one process accelerate started
        return
    if not any(Path(a).name.startswith("accelerate") for a in parent[:3]):
        return
    n = requested_cpu_processes(parent)
    if n <= 1:
        return
    threads = max(1, (os.cpu_count() or 1) // n)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads))}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}"]
    cmd += sys.argv  # the same command line (src/train.py ... or obliviate train ...), in N processes
    logging.getLogger("obliviate").info(
        "accelerate launch --cpu starts one process; starting the %d requested CPU processes "
        "(gloo) with torch.distributed.run",
        n,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)
