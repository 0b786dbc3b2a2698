"""Evaluation suites: ``eval.suites`` chooses what ``run_eval`` runs on one loaded model; every
suite's checks run before the model is loaded, and each writes its own result files."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from conftest import tiny_eval_config
from obliviate.errors import ConfigError
from obliviate.eval.runner import run_eval
from obliviate.eval.suite import SuiteResult

LOADS: list[str] = []  # what happened, in order, across one run_eval call


class MeanLogitSuite:
    """A second suite for the test: the mean logit of one fixed input, with its input's sum as
    the data checksum. Built (checked) before the model is loaded."""

    name = "meanlogit"
    result_files = ("MEANLOGIT.json",)

    def __init__(self, cfg: Any):
        LOADS.append("suite built")
        self.ids = torch.arange(1, 9).unsqueeze(0)
        self.checksums = {"input": str(int(self.ids.sum()))}
        self.receipt = {"meanlogit_items": 1}

    def run(self, model: Any, tokenizer: Any) -> SuiteResult:
        with torch.no_grad():
            value = float(model(input_ids=self.ids).logits.mean())
        return SuiteResult(
            files={"MEANLOGIT.json": {"mean_logit": value}}, summary={"mean_logit": value}
        )


def eval_cfg(tmp_path, *extra: str):
    return tiny_eval_config(tmp_path / "eval", "eval.max_items=2", "eval.utility_items=1", *extra)


def test_two_suites_run_on_one_model_and_share_one_receipt(tmp_path, monkeypatch):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    import obliviate.eval.runner as runner

    real_load = runner.load_model

    def load_model(model_cfg):
        LOADS.append("model loaded")
        return real_load(model_cfg)

    monkeypatch.setattr(runner, "load_model", load_model)
    LOADS.clear()
    cfg = eval_cfg(tmp_path, f"+eval.suites.meanlogit._target_={__name__}.MeanLogitSuite")
    out = run_eval(cfg)

    assert LOADS == ["suite built", "model loaded"]  # checks first, one model for both suites
    assert json.loads((out / "TOFU_SUMMARY.json").read_text())["model_utility"] is not None
    mean = json.loads((out / "MEANLOGIT.json").read_text())["mean_logit"]
    expected = float(real_load(cfg.model)(input_ids=torch.arange(1, 9).unsqueeze(0)).logits.mean())
    assert mean == pytest.approx(expected, abs=1e-6)
    receipt = json.loads((out / "eval_receipt.json").read_text())
    assert receipt["suites"] == ["tofu", "meanlogit"]
    assert receipt["data_sha256"]["meanlogit/input"] == "36"
    assert "forget" in receipt["data_sha256"] and receipt["meanlogit_items"] == 1


def test_no_suite_and_a_bad_target_are_clear_errors(tmp_path):
    cfg = eval_cfg(tmp_path, "~eval.suites")
    with pytest.raises(ConfigError, match="no evaluation suite selected"):
        run_eval(cfg)
    cfg = eval_cfg(tmp_path, "eval.suites.tofu._target_=obliviate.eval.nowhere.Suite")
    with pytest.raises(ConfigError, match="eval.suites.tofu._target_"):
        run_eval(cfg)
    assert not (tmp_path / "eval").exists()  # refused before anything was written


def test_existing_results_of_any_suite_are_not_overwritten(tmp_path):
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "MEANLOGIT.json").write_text("{}")
    cfg = eval_cfg(tmp_path, f"+eval.suites.meanlogit._target_={__name__}.MeanLogitSuite")
    with pytest.raises(ConfigError, match="overwrite"):
        run_eval(cfg)
