"""The documentation's commands are what the code accepts.

Every ```bash block of README.md and docs/*.md is read; each command in it that trains or
evaluates -- ``python src/train.py ...``, ``python src/eval.py ...``, ``obliviate train|unlearn|eval
...``, ``python -m obliviate ...``, also behind ``VAR=value`` prefixes and behind ``accelerate
launch [options]`` -- is split as the shell would (continuation lines joined), composed with
:func:`obliviate.launch.compose` exactly as the door would, and put through the checks a run does
before it loads anything (:func:`obliviate.training.preflight` for training; the evaluation's
checks for evaluation). So a renamed key, a removed option or a wrong split in the docs fails here.

Shell variables in the commands: a block that defines an array ``NAME=(a b c)`` and loops
``for VAR in "${NAME[@]}"`` gives ``$VAR`` / ``${VAR}`` each of those values (one command per
value); ``$(obliviate configs)`` is the shipped config folder. Any other variable fails this test
naming it: give it a value in ``SHELL_VALUES`` below.
"""

from __future__ import annotations

import contextlib
import functools
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from conftest import REPO_ROOT
from obliviate import cli
from obliviate import config as C
from obliviate.config import CONFIG_DIR
from obliviate.data import tofu
from obliviate.errors import ConfigError
from obliviate.eval.lm_eval_suite import LMEvalSettings
from obliviate.eval.tofu_suite import settings_from_cfg
from obliviate.launch import compose, parse_argv, split_multirun
from obliviate.models.loading import check_model_path
from obliviate.training import preflight

DOC_FILES = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# Variables a command may use that no loop in its block defines.
SHELL_VALUES: dict[str, str] = {}
# What the repository's scripts compose when no --config-name is given (src/train.py, src/eval.py).
SCRIPTS = {"src/train.py": ("train", "unlearn"), "src/eval.py": ("eval", "eval")}

BASH_BLOCK = re.compile(r"^([ \t]*)```bash\n(.*?)^[ \t]*```", re.S | re.M)
ARRAY = re.compile(r"^\s*(\w+)=\((.*)\)\s*$", re.M)
LOOP = re.compile(r'^\s*for (\w+) in "\$\{(\w+)\[@\]\}"', re.M)
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line of the bash block
    door: str  # "train" or "eval"
    argv: tuple[str, ...]  # what follows the script or subcommand
    default_config: str  # the config the door composes without --config-name
    launcher: tuple[str, ...]  # the `accelerate launch` options before the script, if any

    def __str__(self) -> str:
        return f"{self.where}: {self.door} {' '.join(self.argv)}"


def bash_blocks(path: Path) -> list[tuple[str, str]]:
    """(file:line, text) of every ```bash block, indentation removed."""
    text = path.read_text()
    blocks = []
    for m in BASH_BLOCK.finditer(text):
        indent, body = m.group(1), m.group(2)
        body = "\n".join(line.removeprefix(indent) for line in body.splitlines())
        line = text.count("\n", 0, m.start()) + 1
        blocks.append((f"{path.relative_to(REPO_ROOT)}:{line}", body))
    return blocks


def expansions(block: str, line: str) -> list[str]:
    """``line`` with its shell variables replaced: one line per value of a loop variable."""
    line = line.replace("$(obliviate configs)", str(CONFIG_DIR))
    arrays = {name: shlex.split(values) for name, values in ARRAY.findall(block)}
    loops = {var: arrays[array] for var, array in LOOP.findall(block) if array in arrays}
    names = {a or b for a, b in VARIABLE.findall(line)}
    unknown = names - set(loops) - set(SHELL_VALUES)
    assert not unknown, f"no value for ${' $'.join(sorted(unknown))}: add it to SHELL_VALUES"
    lines = [line]
    for name in names:
        values = loops.get(name) or [SHELL_VALUES[name]]
        lines = [
            VARIABLE.sub(lambda m, n=name, v=v: v if (m.group(1) or m.group(2)) == n else m[0], ln)
            for ln in lines
            for v in values
        ]
    return lines


def parse_command(tokens: list[str]) -> tuple[str, tuple[str, ...], str, tuple[str, ...]] | None:
    """(door, argv, default config, launcher options) of a training or evaluation command."""
    if not tokens:
        return None
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):  # VAR=value prefixes
        tokens = tokens[1:]
    launcher: list[str] = []
    if tokens[:2] == ["accelerate", "launch"]:
        i = 2
        while i < len(tokens) and tokens[i].startswith("-") and tokens[i] not in ("-m", "--module"):
            takes_value = "=" not in tokens[i] and tokens[i] not in ("--cpu",)
            launcher += tokens[i : i + 1 + takes_value]
            i += 1 + takes_value
        tokens = ["python", *tokens[i:]]
    if tokens[:1] in (["python"], ["python3"]) and tokens[1:3] in (["-m", "obliviate"], ["--module", "obliviate"]):
        tokens = ["obliviate", *tokens[3:]]
    if tokens[:1] in (["python"], ["python3"]) and len(tokens) > 1 and tokens[1] in SCRIPTS:
        door, default = SCRIPTS[tokens[1]]
        return door, tuple(tokens[2:]), default, tuple(launcher)
    if tokens[:1] == ["obliviate"] and len(tokens) > 1 and tokens[1] in cli.DEFAULT_CONFIG:
        door = "eval" if tokens[1] == "eval" else "train"
        return door, tuple(tokens[2:]), cli.DEFAULT_CONFIG[tokens[1]], tuple(launcher)
    return None


def doc_commands() -> list[DocCommand]:
    commands = []
    for path in DOC_FILES:
        for where, block in bash_blocks(path):
            for line in block.replace("\\\n", " ").splitlines():
                if not parse_command(shlex.split(line, comments=True)):
                    continue  # not a training or evaluation command (a loop, an export, ...)
                for expanded in expansions(block, line):
                    commands.append(DocCommand(where, *parse_command(shlex.split(expanded, comments=True))))
    return commands


COMMANDS = doc_commands()


@functools.cache
def train_outputs() -> set[str]:
    """The run folders the documented training commands write (those that compose)."""
    outputs = set()
    for c in COMMANDS:
        if c.door == "train":
            with contextlib.suppress(ConfigError):  # such a command fails its own test
                outputs.add(str(compose(*parse_argv(list(c.argv), c.default_config)).paths.output_dir))
    return outputs


def overridden(overrides: list[str]) -> list[tuple[str, object]]:
    """(key, value) of each ``key=value`` override, as Hydra's own override parser reads it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    return [(o.key_or_group, o.value()) for o in parser.parse_overrides(overrides)]


def plain(value):
    return getattr(value, "value", value)  # TrainingArguments keeps strategies as enums


def check_train(cfg, overrides: list[str]) -> None:
    """preflight, and the documented trainer and method arguments are the run's."""
    plan = preflight(cfg)
    for key, value in overridden(overrides):
        section, _, name = key.rpartition(".")
        if section == "trainer.args" and hasattr(plan.training_args, name):
            assert plain(getattr(plan.training_args, name)) == value, key
        elif section == "trainer.method_args":
            assert getattr(plan.method_args, name) == value, key


def check_eval(cfg) -> None:
    """The checks src/eval.py makes before loading anything. A model under saves/ must be the
    run folder of a training command in the docs (what a reader would have made first)."""
    C.require_task_name(cfg)
    C.check_numeric_settings(cfg)
    suites = cfg.eval.get("suites") or {}
    if "tofu" in suites:
        settings_from_cfg(cfg)
        tofu.check_holdout(cfg.forget_split, cfg.get("holdout_split"))
    if "muse" in suites:  # its settings; its data is only read when the suite is built
        from obliviate.eval.muse_suite import settings_from_cfg as muse_settings

        muse_settings(cfg)
    if "lm_eval" in suites:
        LMEvalSettings.from_config(cfg)
    model = str(cfg.model.model_args.pretrained_model_name_or_path)
    if model.startswith("saves/"):
        assert model in train_outputs(), f"{model} is made by no training command in the docs"
    else:
        check_model_path(model)


def test_the_docs_have_the_guide_commands():
    # The guide's train and eval doors, the loop over four methods, an accelerate launch and
    # the installed command are all found (a parser that finds nothing would pass everything).
    where = {c.where.split(":")[0] for c in COMMANDS}
    assert {"README.md", "docs/guide.md", "docs/distributed.md"} <= where
    loop = [c for c in COMMANDS if "tofu_NPO_forget10" in " ".join(c.argv)]
    assert {c.door for c in loop} == {"train", "eval"}
    assert any(c.launcher for c in COMMANDS)
    assert any(c.door == "eval" for c in COMMANDS if c.where.startswith("README"))


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_doc_command_composes_and_passes_the_checks(command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # run folders are relative: start from an empty folder
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    multirun, argv = split_multirun(list(command.argv))
    name, overrides = parse_argv(argv, command.default_config)
    if multirun:  # a sweep (docs/sweeps.md): every point composed and checked as the sweep does
        from obliviate.sweep.points import plan_sweep
        from obliviate.sweep.run import check_points

        planned, _ = check_points(plan_sweep(name, overrides))
        assert planned, "a documented sweep has points"
        return
    cfg = compose(name, overrides)
    for key, value in overridden(overrides):  # every documented value arrives in the config
        if not (CONFIG_DIR / key).is_dir():  # a config group (model, trainer, eval, attack, ...)
            assert OmegaConf.select(cfg, key) == value, key
    if command.door == "train":
        check_train(cfg, overrides)
    else:
        check_eval(cfg)
    for i, opt in enumerate(command.launcher):  # accelerate configs named in the docs exist
        if opt == "--config_file":
            path = Path(command.launcher[i + 1])
            assert (path if path.is_absolute() else REPO_ROOT / path).is_file(), path


def guide_step_2(text: str) -> tuple[str, tuple[str, ...], str, tuple[str, ...]]:
    """The training command of the bash block after "Step 2:" in docs/guide.md."""
    block = BASH_BLOCK.search(text.split("Step 2:", 1)[1]).group(2).replace("\\\n", " ")
    (command,) = [parse_command(shlex.split(ln)) for ln in block.splitlines() if "src/train.py" in ln]
    return command


def test_the_guides_step_2_is_the_corrected_size(tmp_path, monkeypatch):
    """docs/guide.md's correction: forget10 is 20 authors x 20 QA = 400 pairs; at 2 x 8 per step
    an epoch is ceil(400 / 16) = 25 steps (the one warm-up epoch), 20 epochs are 500 steps."""
    monkeypatch.chdir(tmp_path)
    _, argv, default, _ = guide_step_2((REPO_ROOT / "docs" / "guide.md").read_text())
    plan = preflight(compose(*parse_argv(list(argv), default)))
    targs = plan.training_args
    assert plan.n_train == 20 * 20
    steps_per_epoch = -(-400 // (2 * 8))
    assert targs.warmup_steps == steps_per_epoch == 25
    assert targs.num_train_epochs * steps_per_epoch == 500


def test_the_guides_adjustments_apply_to_step_2(tmp_path, monkeypatch):
    """docs/guide.md §5: each listed adjustment, appended to the step-2 command, composes and
    passes the checks with its values in place."""
    monkeypatch.chdir(tmp_path)
    text = (REPO_ROOT / "docs" / "guide.md").read_text()
    section = text.split("Append to the step-2 command:", 1)[1].split("\n\n", 2)[1]
    adjustments = re.findall(r"^- [^`]*`([^`]+)`", section, re.M)
    assert len(adjustments) == 3, section
    base = guide_step_2(text)
    for extra in adjustments:
        name, overrides = parse_argv([*base[1], *shlex.split(extra)], base[2])
        check_train(compose(name, overrides), shlex.split(extra))


@pytest.mark.parametrize(("script", "subcommand"), [("src/train.py", "train"), ("src/eval.py", "eval")])
def test_obliviate_takes_the_scripts_arguments(script, subcommand, monkeypatch):
    """``obliviate train|eval ARGS`` hands the launcher what ``python src/train.py|eval.py ARGS``
    does: the same job, the same default config, the same arguments."""
    import runpy

    from obliviate import launch

    calls = []
    monkeypatch.setattr(launch, "run", lambda fn, default_config, argv=None: calls.append(
        (fn, default_config, sys.argv[1:] if argv is None else list(argv))
    ))
    args = ["--config-name=eval.yaml" if subcommand == "eval" else "trainer=NPO", "task_name=t"]
    monkeypatch.setattr(sys, "argv", [script, *args])
    runpy.run_path(str(REPO_ROOT / script), run_name="__main__")
    cli.main([subcommand, *args])
    assert len(calls) == 2 and calls[0] == calls[1]
    assert calls[0][2] == args
