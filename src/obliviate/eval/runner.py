"""``src/eval.py``: evaluate one model with the selected suites (``eval=tofu`` by default) and
write each suite's result files, the resolved config and a receipt. With ``attack=NAME``
(configs/attack/) the attack runs the suites before and after it and writes ATTACK_NAME.json."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from obliviate.attacks.base import build_attack, report_file
from obliviate.attacks.base import write_report as write_attack_report
from obliviate.config import check_numeric_settings, require_task_name
from obliviate.eval.scoring import is_main_process
from obliviate.eval.suite import SuiteResult, result_files, suite_classes
from obliviate.models.loading import check_model_path, load_model, load_tokenizer
from obliviate.utils.dist import launched
from obliviate.utils.io import (
    atomic_write_json,
    atomic_write_text,
    check_writable,
    guard_output_dir,
)
from obliviate.utils.receipt import make_receipt, weights_fingerprint

log = logging.getLogger("obliviate")


def eval_device() -> torch.device:
    """This process's device; under a distributed launcher (WORLD_SIZE > 1) the process group
    is set up so that evaluation shards its items across the processes."""
    if launched()[1] > 1:
        from accelerate import PartialState

        return PartialState().device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def run_eval(cfg: DictConfig) -> Path:
    # Checks first: names, settings, the output folder, then the attack's and each suite's own
    # checks and data (splits, retain logs). The model is loaded once every check has passed.
    require_task_name(cfg)
    check_numeric_settings(cfg)
    classes = suite_classes(cfg)
    attack = build_attack(cfg)  # before the suites: relearning excludes its forget items there
    if attack is not None:
        exclude_attack_items(cfg, classes, attack)
    model_path = cfg.model.model_args.get("pretrained_model_name_or_path")
    check_model_path(model_path)
    markers = result_files(classes) + (attack_files(attack, classes) if attack else ())
    out = guard_output_dir(Path(cfg.paths.output_dir), markers, bool(cfg.overwrite))
    check_writable(out)
    suites = [cls(cfg) for cls in classes]

    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model)
    model.to(eval_device())
    receipt = {
        "model": model_path or f"built-in {cfg.model.name}",
        "model_weights": weights_fingerprint(model_path) if model_path else None,
    }

    def evaluate(m: torch.nn.Module, folder: Path) -> dict[str, dict[str, Any]]:
        return evaluate_into(folder, cfg, suites, m, tokenizer, receipt)

    if attack is None:
        evaluate(model, out)
        return out
    report = attack.run(model, tokenizer, evaluate, out)
    if is_main_process():
        summaries = [out / f for f in result_files(classes) if f.endswith("_SUMMARY.json")]
        path = write_attack_report(out, report, summaries)
        print(f"attack {attack.name}: " + json.dumps(report["summary"]) + f"\nreport: {path}")
    return out


def exclude_attack_items(cfg: DictConfig, classes: list[type], attack: Any) -> None:
    """The forget items the attack trains on go into the ``exclude_key`` of the suite of the
    benchmark they come from (TOFU: eval.exclude_forget_indices, MUSE:
    eval.muse.exclude_forget_indices), so that suite leaves them out before and after."""
    used = attack.excluded_forget_indices()
    if not used:
        return
    suite = next(c for c in classes if c.name == attack.benchmark)
    with open_dict(cfg):
        OmegaConf.update(cfg, suite.exclude_key, used, force_add=True)


def evaluate_into(
    out: Path, cfg: DictConfig, suites: list[Any], model: Any, tokenizer: Any, receipt: dict
) -> dict[str, dict[str, Any]]:
    """Run every suite on ``model``, write their files into ``out``; their summaries."""
    t0 = time.time()
    results = {s.name: s.run(model, tokenizer) for s in suites}
    seconds = time.time() - t0
    if is_main_process():
        write_results(out, cfg, suites, results, {**receipt, "eval_seconds": round(seconds, 2)})
        for res in results.values():
            print(res.report)
            for note in res.notes:
                print(f"note: {note}")
    return {name: res.summary for name, res in results.items()}


def attack_files(attack: Any, classes: list[type]) -> tuple[str, ...]:
    """The attack's report and the attacked model's result files (a sub-folder)."""
    return (report_file(attack.name),) + tuple(
        f"attack_{attack.name}/{f}" for f in result_files(classes)
    )


def write_results(
    out: Path, cfg: DictConfig, suites: list[Any], results: dict[str, SuiteResult], extra: dict
) -> None:
    """Receipt and config first, the result files last (each atomic), so a crash never leaves
    result files that look complete."""
    atomic_write_text(out / "eval_config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    checksums = {k: v for s in suites for k, v in _prefixed(s, s.checksums).items()}
    details = {k: v for s in suites for k, v in s.receipt.items()}
    atomic_write_json(
        out / "eval_receipt.json",
        make_receipt(int(cfg.seed), checksums, suites=[s.name for s in suites], **details, **extra),
    )
    for res in results.values():
        for name, obj in res.files.items():
            atomic_write_json(out / name, obj)


def _prefixed(suite: Any, checksums: dict[str, str]) -> dict[str, str]:
    """TOFU's keys stay bare (as before suites existed); other suites' get their name."""
    return (
        checksums
        if suite.name == "tofu"
        else {f"{suite.name}/{k}": v for k, v in checksums.items()}
    )
