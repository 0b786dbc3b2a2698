"""lm-eval on obliviate's loaded model: its accuracy equals obliviate's own scoring of the same
4-choice items, and the batch size, chat template and limit arrive."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from conftest import tiny_eval_config
from obliviate.data.builtin_wmdp import task_items
from obliviate.data.formatting import IGNORE_INDEX, ChatFormat, prepare_tokenizer
from obliviate.errors import ConfigError
from obliviate.eval.lm_eval_suite import LMEvalSettings, LMEvalSuite
from obliviate.eval.lm_eval_tasks import check_known, write_mcq_task
from obliviate.eval.runner import run_eval
from obliviate.logprobs import score_encoded
from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

TEMPLATE = {
    "system_prompt": "You are a helpful assistant.",
    "date_string": "10 Apr 2025",
    "end_of_turn": "<|eot_id|>",
    "pad_token": "<|reserved_special_token_2|>",
}
N_ITEMS = 8
TOPIC = "contemporary authors"


def suite_cfg(task_list: list[str], **settings) -> OmegaConf:
    lm_eval = {"tasks": task_list, "batch_size": 8, "num_fewshot": None}
    lm_eval |= {"apply_chat_template": False, "limit": None} | settings
    return OmegaConf.create({"eval": {"lm_eval": lm_eval}, "model": {"template": TEMPLATE}})


@pytest.fixture(scope="module")
def tiny() -> tuple:
    tok = prepare_tokenizer(build_tiny_tokenizer(), ChatFormat.from_config(TEMPLATE))
    return build_tiny_model(init_seed=3), tok


@pytest.fixture(scope="module")
def task_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local task YAML (the offline route) over the first built-in author questions."""
    items = task_items("builtin_authors")[:N_ITEMS]
    return write_mcq_task(tmp_path_factory.mktemp("task"), "mini_authors", items, TOPIC)


def reference_loglikelihoods(model, tok, items: list[dict]) -> list[list[float]]:
    """log p(" X" | WMDP prompt) for each letter X, with obliviate's log-prob helper: the prompt
    written out here as WMDP's format (description, question, lettered choices, "Answer:")."""
    encoded = []
    for it in items:
        prompt = (
            f"The following are multiple choice questions (with answers) about {TOPIC}.\n\n"
            f"{it['question']}\nA. {it['choices'][0]}\nB. {it['choices'][1]}\n"
            f"C. {it['choices'][2]}\nD. {it['choices'][3]}\nAnswer:"
        )
        context = tok(prompt)["input_ids"]  # as lm-eval: whatever special tokens the tokenizer adds
        for letter in "ABCD":
            answer = tok(f" {letter}", add_special_tokens=False)["input_ids"]
            labels = [IGNORE_INDEX] * len(context) + answer
            encoded.append({"input_ids": context + answer, "labels": labels})
    scored = score_encoded(model, encoded, tok.pad_token_id, batch_size=16, keep_tokens=False)
    sums = [s.sum_logp for s in scored]
    return [sums[i : i + 4] for i in range(0, len(sums), 4)]


def test_accuracy_equals_obliviates_own_scoring(tiny, task_file):
    model, tok = tiny
    items = task_items("builtin_authors")[:N_ITEMS]
    calls: list[int] = []
    hook = model.register_forward_hook(lambda m, args, out: calls.append(args[0].size(0)))
    try:
        res = LMEvalSuite(suite_cfg([str(task_file)], batch_size=3)).run(model, tok)
    finally:
        hook.remove()

    ref = reference_loglikelihoods(model, tok, items)
    ref_acc = sum(max(range(4), key=lambda k: ll[k]) == it["answer"] for ll, it in zip(ref, items, strict=True)) / N_ITEMS  # fmt: skip
    assert 0 < ref_acc < 1  # not saturated: the comparison can fail either way
    summary = res.summary
    assert summary["mini_authors/acc"] == pytest.approx(ref_acc, abs=1e-12)
    p = ref_acc
    assert summary["mini_authors/acc_stderr"] == pytest.approx(
        math.sqrt(p * (1 - p) / (N_ITEMS - 1))
    )

    # The files: the summary as returned; per-sample records carry lm-eval's log-likelihoods.
    assert res.files["LMEval_SUMMARY.json"] == summary
    records = res.files["LMEval_EVAL.json"]["mini_authors"]["mini_authors"]
    assert len(records) == N_ITEMS
    for rec in records:
        got = [r[0] for r in rec["filtered_resps"]]
        assert got == pytest.approx(ref[rec["doc_id"]], abs=2e-4)
        assert rec["target"] == items[rec["doc_id"]]["answer"]
    # The batch size arrives: lm-eval scores the 4 one-token letters of an item from one
    # sequence (shared context), so 8 sequences in passes of 3, 3 and 2.
    assert sorted(calls) == [2, 3, 3]


def test_chat_template_and_limit_arrive(tiny, task_file):
    model, tok = tiny
    suite = LMEvalSuite(suite_cfg([str(task_file)], apply_chat_template=True, limit=2))
    records = suite.run(model, tok).files["LMEval_EVAL.json"]["mini_authors"]["mini_authors"]
    assert len(records) == 2
    item = task_items("builtin_authors")[0]
    choices = "".join(f"\n{x}. {c}" for x, c in zip("ABCD", item["choices"], strict=True))
    # obliviate's system prompt and fixed date, rendered by the tokenizer's chat template (lm-eval
    # appends the task description to the system turn)
    assert records[0]["arguments"][0][0] == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 10 Apr 2025\n\n"
        f"You are a helpful assistant.\n\nThe following are multiple choice questions (with answers) about {TOPIC}.<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{item['question']}{choices}\nAnswer:<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


@pytest.mark.slow  # a TOFU evaluation and two lm-eval tasks
def test_tofu_and_lm_eval_in_one_command(tmp_path):
    """eval=[tofu,lm_eval] through run_eval: both suites' files, one receipt; the built-in
    task is registered locally (lm-eval's own task index is not needed)."""
    out = run_eval(
        tiny_eval_config(
            tmp_path / "eval",
            "eval=[tofu,lm_eval]",
            "eval.max_items=2",
            "eval.utility_items=1",
            "eval.lm_eval.tasks=[builtin_hazard,builtin_retain_cloze]",
            "eval.lm_eval.limit=4",
        )
    )
    summary = json.loads((out / "LMEval_SUMMARY.json").read_text())
    cloze = [f"builtin_retain_cloze/{m}" for m in ("acc", "acc_stderr", "acc_norm", "acc_norm_stderr")]  # fmt: skip
    assert set(summary) == {"builtin_hazard/acc", "builtin_hazard/acc_stderr", *cloze}
    assert summary["builtin_hazard/acc"] in (0, 0.25, 0.5, 0.75, 1)  # 4 items
    records = json.loads((out / "LMEval_EVAL.json").read_text())
    assert len(records["builtin_hazard"]["builtin_hazard"]) == 4
    # the cloze variant scores each choice's own text after "Question: q\nAnswer:"
    first = records["builtin_retain_cloze"]["builtin_retain_cloze"][0]
    item = task_items("builtin_retain")[0]
    assert first["arguments"] == [
        [f"Question: {item['question']}\nAnswer:", f" {c}"] for c in item["choices"]
    ]
    assert (out / "TOFU_SUMMARY.json").is_file()
    receipt = json.loads((out / "eval_receipt.json").read_text())
    assert receipt["suites"] == ["tofu", "lm_eval"]
    assert receipt["lm_eval"]["tasks"] == ["builtin_hazard", "builtin_retain_cloze"]
    assert receipt["lm_eval"]["limit"] == 4


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("batch_size", 0, "eval.lm_eval.batch_size=0"),
        ("batch_size", "big", "auto"),
        ("limit", 1.5, "eval.lm_eval.limit=1.5"),
        ("num_fewshot", -1, "eval.lm_eval.num_fewshot=-1"),
        ("apply_chat_template", "yes", "true or false"),
        ("tasks", [], "non-empty list"),
        ("tasks", ["/nonexistent/task.yaml"], "does not exist"),
    ],
)
def test_bad_settings_fail_in_one_line(key, value, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.")):
        LMEvalSuite(suite_cfg(["builtin_retain"], **{key: value}))


def test_unknown_task_names_close_matches():
    with pytest.raises(ConfigError, match="no task or group 'wmdp_cybr'.*wmdp_cyber"):
        check_known(("wmdp_cybr",), {"wmdp_cyber", "wmdp_bio", "mmlu"})


def test_builtin_data_stands_in_for_wmdp_and_mmlu():
    cfg = suite_cfg(["wmdp_cyber", "mmlu"])
    cfg.wmdp_data = "builtin"
    assert LMEvalSettings.from_config(cfg).tasks == ("builtin_hazard", "builtin_retain")


def test_default_batch_size_is_large():
    s = LMEvalSettings.from_config(suite_cfg(["builtin_retain"], batch_size=None))
    assert s.batch_size == (64 if torch.cuda.is_available() else 32)
    assert LMEvalSettings.from_config(suite_cfg(["x"], batch_size="auto:4")).batch_size == "auto:4"
