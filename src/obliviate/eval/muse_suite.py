"""The MUSE suite (``eval=muse``): MUSE_EVAL.json and MUSE_SUMMARY.json."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from obliviate.config import _whole
from obliviate.data.muse import MuseData, check_data_split
from obliviate.errors import ConfigError
from obliviate.eval import retain_log as RL
from obliviate.eval.muse_eval import MuseSettings, evaluate_muse, format_table, summary
from obliviate.eval.muse_metrics import PROTOCOLS
from obliviate.eval.suite import SuiteResult, check_excluded, metrics_result
from obliviate.protocol import OPEN_UNLEARNING, protocol_from
from obliviate.utils.receipt import rows_sha256

#: evaluation data key -> (MUSE config, split)
EVAL_SPLITS = {
    "forget_qa": ("knowmem", "forget_qa"),
    "retain_qa": ("knowmem", "retain_qa"),
    "forget_qa_icl": ("knowmem", "forget_qa_icl"),
    "retain_qa_icl": ("knowmem", "retain_qa_icl"),
    "verbmem": ("verbmem", "forget"),
    "privleak_forget": ("privleak", "forget"),
    "privleak_holdout": ("privleak", "holdout"),
}


def settings_from_cfg(cfg: DictConfig) -> MuseSettings:
    m = cfg.eval.muse
    protocol = str(m.protocol)
    if protocol not in PROTOCOLS:
        raise ConfigError(f"eval.muse.protocol={protocol!r}; use open-unlearning or paper")
    parity = protocol_from(cfg.eval.get("protocol"), "eval.protocol")
    if parity.name == OPEN_UNLEARNING and protocol != OPEN_UNLEARNING:
        raise ConfigError(
            f"eval.protocol=open-unlearning reproduces open-unlearning's MUSE numbers, which use "
            f"its metric conventions: drop eval.muse.protocol={protocol} (or set it to "
            "open-unlearning)"
        )
    for key in ("knowmem_max_new_tokens", "verbmem_max_new_tokens", "max_length"):
        _whole(f"eval.muse.{key}", m.get(key), 1)
    for key in ("max_items", "batch_size", "generation_batch_size"):
        if m.get(key) is not None:
            _whole(f"eval.muse.{key}", m.get(key), 1, "(or null for the default)")
    k = m.get("min_k")
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k <= 1:
        raise ConfigError(f"eval.muse.min_k={k} must be a fraction in (0, 1]")
    gpu = torch.cuda.is_available()
    return MuseSettings(
        data_split=check_data_split(m.data_split),
        protocol=protocol,
        knowmem_max_new_tokens=int(m.knowmem_max_new_tokens),
        verbmem_max_new_tokens=int(m.verbmem_max_new_tokens),
        max_length=int(m.max_length),
        min_k=float(k),
        max_items=m.get("max_items"),
        batch_size=int(m.get("batch_size") or (16 if gpu else 4)),
        generation_batch_size=int(m.get("generation_batch_size") or (128 if gpu else 32)),
        retain_logs_path=cfg.get("retain_logs_path"),
        muse_data=str(m.muse_data),
        parity=parity,
        exclude_forget=tuple(int(i) for i in m.get("exclude_forget_indices") or ()),
    )


class MuseSuite:
    """knowmem (forget and retain), verbmem, extraction strength, the min-k% attack and
    privleak of one model on one MUSE corpus. Its forget items, for ``exclude_key``, are the
    verbmem items: the only forget rows a relearning attack trains on (docs/attacks.md)."""

    name = "muse"
    result_files = ("MUSE_EVAL.json", "MUSE_SUMMARY.json")
    exclude_key = "eval.muse.exclude_forget_indices"

    def __init__(self, cfg: DictConfig):
        self.settings = s = settings_from_cfg(cfg)
        source = MuseData.from_config(
            {
                "muse_data": s.muse_data,
                "data_split": s.data_split,
                "builtin_muse": cfg.get("builtin_muse"),
            }
        )
        source.check(list(EVAL_SPLITS.values()))
        log = RL.load_retain_log(s.retain_logs_path) if s.retain_logs_path else None
        self.data = {key: source.load(*where) for key, where in EVAL_SPLITS.items()}
        verbmem = self.data["verbmem"]
        check_excluded(self.exclude_key, s.exclude_forget, len(verbmem[: s.max_items or None]))
        self.auc_retain = None
        if log is not None:  # a log that does not fit fails before the model loads
            self.auc_retain = retain_auc(log, s, self.data)
        self.checksums = {k: rows_sha256(v) for k, v in self.data.items()}
        self.receipt: dict[str, Any] = {
            "muse_data": source.describe,
            "eval_protocol": s.parity.name,
        }

    def run(self, model: Any, tokenizer: Any) -> SuiteResult:
        if tokenizer.pad_token is None:  # batching needs one; masks track padding anyway
            tokenizer.pad_token = tokenizer.eos_token
        res = evaluate_muse(model, tokenizer, self.data, self.settings, self.auc_retain)
        return metrics_result(
            "MUSE", res, summary(res), format_table(res), self.settings.notes, "privleak"
        )


def retain_auc(log: dict[str, Any], s: MuseSettings, data: dict[str, list]) -> float | None:
    """The retain model's min-k% AUC, from a log computed on the same items; None when the log
    has none (privleak is then null with a note). A log of another corpus or size is an error."""
    path = s.retain_logs_path
    info = log.get("eval_info") or {}
    if info.get("data_split") not in (None, s.data_split):
        raise ConfigError(
            f"retain log {path} was computed on data_split={info['data_split']}, this evaluation "
            f"uses {s.data_split}; privleak compares the same corpus only"
        )
    if "max_items" in info and info.get("max_items") != s.max_items:
        raise ConfigError(
            f"retain log {path} was computed with eval.muse.max_items={info.get('max_items')}, "
            f"this evaluation uses {s.max_items}; use the same item cap on both sides"
        )
    mia = log.get("mia_min_k")
    for split in ("forget", "holdout"):
        n = len(
            data[f"privleak_{split}"][: s.max_items] if s.max_items else data[f"privleak_{split}"]
        )
        entry = mia.get(split) if isinstance(mia, dict) else None
        by_index = entry.get("value_by_index") if isinstance(entry, dict) else None
        if by_index is not None and len(by_index) != n:
            raise ConfigError(
                f"retain log {path} has {len(by_index)} privleak {split} items, this evaluation "
                f"has {n}; the log is from another split or size"
            )
    return RL.retain_mia_auc(log)
