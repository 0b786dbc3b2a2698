"""The TOFU suite (``eval=tofu``, the default): TOFU_EVAL.json and TOFU_SUMMARY.json."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from obliviate.data import tofu
from obliviate.data.formatting import ChatFormat, QAEncoder, loaded_pad_id, prepare_tokenizer
from obliviate.eval import retain_log as RL
from obliviate.eval.data import load_eval_data
from obliviate.eval.suite import SuiteResult, check_excluded, metrics_result
from obliviate.eval.tofu_eval import EvalSettings, evaluate_model, format_table, summary
from obliviate.protocol import protocol_from
from obliviate.utils.receipt import rows_sha256


def settings_from_cfg(cfg: DictConfig) -> EvalSettings:
    return EvalSettings(
        forget_split=str(cfg.forget_split),
        retain_split=f"retain{100 - tofu.split_percent(cfg.forget_split, 'forget'):02d}",
        model_name=str(cfg.model.name),
        max_items=cfg.eval.get("max_items"),
        utility_items=cfg.eval.get("utility_items"),
        max_new_tokens=int(cfg.eval.max_new_tokens),
        batch_size=int(cfg.eval.batch_size or (64 if torch.cuda.is_available() else 32)),
        retain_logs_path=cfg.get("retain_logs_path"),
        protocol=protocol_from(cfg.eval.get("protocol"), "eval.protocol"),
        generation_batch_size=int(
            cfg.eval.get("generation_batch_size") or (512 if torch.cuda.is_available() else 64)
        ),
        exclude_forget=tuple(int(i) for i in cfg.eval.get("exclude_forget_indices") or ()),
    )


class TofuSuite:
    """Every metric of metrics.md on the forget split, retain, real authors and world facts
    (and the holdout split, for privleak, when it exists)."""

    name = "tofu"
    result_files = ("TOFU_EVAL.json", "TOFU_SUMMARY.json")
    exclude_key = "eval.exclude_forget_indices"

    def __init__(self, cfg: DictConfig):
        self.settings = settings_from_cfg(cfg)
        self.template = cfg.model.template
        self.max_length = int(cfg.data.max_length)
        self.loaded_pad_id: int | None = None
        tofu.check_holdout(cfg.forget_split, cfg.get("holdout_split"))
        source = tofu.TofuSource.from_config(cfg)
        source.check_folder(
            [
                f"{cfg.forget_split}_perturbed",
                "retain_perturbed",
                "real_authors_perturbed",
                "world_facts_perturbed",
            ]
        )
        path = self.settings.retain_logs_path
        self.retain_log = RL.load_retain_log(path) if path else None
        self.data, files = load_eval_data(
            source, self.settings.forget_split, cfg.get("holdout_split"), self.settings.notes
        )
        cap = self.settings.max_items
        n_f = len(self.data["forget"][:cap] if cap else self.data["forget"])
        check_excluded(self.exclude_key, self.settings.exclude_forget, n_f)
        if self.retain_log is not None:  # a log that does not fit fails before the model loads
            RL.retain_truth_ratios(self.retain_log, path, self.settings.forget_split, n_f, cap)
        self.checksums = {k: rows_sha256(v) for k, v in self.data.items()}
        self.receipt: dict[str, Any] = {
            "data_files": files,
            "eval_protocol": self.settings.protocol.name,
        }

    def run(self, model: Any, tokenizer: Any) -> SuiteResult:
        fmt = ChatFormat.from_config(self.template)
        # open-unlearning's mask hides its pad id: the tokenizer's as loaded, before ours is set
        # (the first call sees it; later calls, e.g. during training, get the same tokenizer)
        if self.loaded_pad_id is None:
            self.loaded_pad_id = loaded_pad_id(tokenizer)
        mask_id = self.settings.protocol.mask_id(self.loaded_pad_id)
        tokenizer = prepare_tokenizer(tokenizer, fmt)
        max_length = self.max_length if self.settings.protocol.truncates else None
        encoder = QAEncoder(tokenizer, fmt, max_length, mask_id)
        res = evaluate_model(model, encoder, self.data, self.settings, self.retain_log)
        return metrics_result(
            "TOFU", res, summary(res), format_table(res), self.settings.notes, "forget_quality"
        )
