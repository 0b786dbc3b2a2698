"""Which TOFU files the evaluation reads, loaded and validated up front."""

from __future__ import annotations

from typing import Any

from obliviate.data import tofu
from obliviate.errors import ConfigError

PERTURBED_FIELDS = ("question", "answer", "paraphrased_answer", "perturbed_answer")
OPTION_FIELDS = ("question", "answer", "perturbed_answer")


def eval_split_files(forget_split: str) -> dict[str, str]:
    return {
        "forget": f"{forget_split}_perturbed",
        "retain": "retain_perturbed",
        "real_authors": "real_authors_perturbed",
        "world_facts": "world_facts_perturbed",
    }


def load_eval_data(
    source: tofu.TofuSource, forget_split: str, holdout_split: str | None, notes: list[str]
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Rows per evaluation part, plus the file name each came from (for the receipt)."""
    files = eval_split_files(forget_split)
    data: dict[str, list[dict[str, Any]]] = {}
    for part, name in files.items():
        rows = source.load(name)
        tofu.validate_rows(
            rows, name, PERTURBED_FIELDS if part in ("forget", "retain") else OPTION_FIELDS
        )
        data[part] = rows
    if holdout_split:
        try:
            if source.is_local and source.path_of(holdout_split) is None:
                raise ConfigError(f"no {holdout_split} file in {source.location}")
            rows = source.load(holdout_split)
            tofu.validate_rows(rows, holdout_split)
            data["holdout"] = rows
            files["holdout"] = holdout_split
        except ConfigError as e:
            notes.append(
                f"holdout split {holdout_split} unavailable ({e}): mia_min_k and privleak skipped, "
                "no made-up reference is used"
            )
    return data, files
