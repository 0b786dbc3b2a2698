"""The attack tests' evaluation command: tiny-bytes (a saved, briefly trained copy), the
built-in fictitious authors (2 authors, forget50 = 20 forget items, the first 8 evaluated),
run in process through the same launcher as ``python src/eval.py``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from obliviate.eval.runner import run_eval
from obliviate.launch import run

N_FORGET = 8


def eval_argv(model_dir: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config-name=eval.yaml",
        "experiment=eval/tofu/default",
        "model=tiny-bytes",
        f"model.model_args.pretrained_model_name_or_path={model_dir}",
        "task_name=attack_test",
        "tofu_data=builtin",
        "builtin_data.authors=2",
        "forget_split=forget50",
        "holdout_split=null",
        f"eval.max_items={N_FORGET}",
        "eval.utility_items=2",
        "eval.max_new_tokens=4",
        f"paths.output_dir={out}",
        *extra,
    ]


def run_eval_command(model_dir: Path, out: Path, *extra: str) -> Path:
    """``python src/eval.py ARGS`` in this process (same compose, checks and runner)."""
    return run(run_eval, "eval", eval_argv(model_dir, out, *extra))


def read(path: Path) -> Any:
    return json.loads(path.read_text())


@pytest.fixture(autouse=True)
def builtin_cache(tmp_path_factory, monkeypatch):
    """One generated data cache for every attack test (not the user's ~/.cache); import it
    into a test module to use it."""
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path_factory.getbasetemp() / "attack_cache"))
