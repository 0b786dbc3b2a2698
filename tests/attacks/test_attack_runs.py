"""Each attack end to end through the eval command (in process, same launcher as
``python src/eval.py``) on a saved tiny-bytes model: the model's folder is left untouched, the
report and the summary entry are written, and relearning's items are out of every forget metric.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from attack_cli import N_FORGET, builtin_cache, read, run_eval_command  # noqa: F401
from scipy.stats import ks_2samp

from conftest import compose_config, snapshot
from obliviate.attacks.base import build_attack
from obliviate.attacks.relearn_data import sample_indices
from obliviate.demo.report import build_report, figure, load_row, markdown
from obliviate.errors import ConfigError
from obliviate.models.loading import load_model, load_tokenizer

PER_ITEM = {
    "forget_Q_A_Prob": "prob",
    "forget_truth_ratio": "score",
    "forget_Q_A_ROUGE": "rougeL_recall",
}


def values(res: dict, key: str) -> list[float]:
    by = res[key]["value_by_index"]
    return [by[str(i)][PER_ITEM[key]] for i in range(len(by))]


@pytest.fixture(scope="module")
def model_dir(byte_start_model):
    return byte_start_model


def test_relearn_reports_only_the_forget_items_it_did_not_train_on(model_dir, tmp_path):
    files, listing = snapshot(model_dir), sorted(p.name for p in model_dir.iterdir())
    plain = run_eval_command(model_dir, tmp_path / "plain") / "TOFU_EVAL.json"
    # A retain log whose per-item forget truth ratios are all different numbers: forget_quality
    # then tells which reference items were compared with which.
    log, ref = read(plain), [0.3, 3.0, 0.5, 5.0, 0.7, 7.0, 0.9, 9.0]
    for i, v in enumerate(ref):
        log["forget_truth_ratio"]["value_by_index"][str(i)]["score"] = v
    retain_log = tmp_path / "retain_log.json"
    retain_log.write_text(json.dumps(log))
    out = run_eval_command(
        model_dir,
        tmp_path / "relearn",
        "attack=relearn",
        "attack.steps=2",
        "attack.batch_size=2",
        "attack.seed=1",  # draws items 2 and 4: inside the list, not its tail
        f"retain_logs_path={retain_log}",
        f"attack.target_eval={plain}",
    )
    assert snapshot(model_dir) == files and sorted(p.name for p in model_dir.iterdir()) == listing

    rep = read(out / "ATTACK_relearn.json")
    used = rep["forget_items_used"]
    assert used == sample_indices(N_FORGET, 0.25, seed=1) == [2, 4]
    assert all(set(b) <= set(used) for b in rep["info"]["batches"])
    kept = [i for i in range(N_FORGET) if i not in used]
    full, before = read(plain), read(out / "TOFU_EVAL.json")
    after = read(out / "attack_relearn" / "TOFU_EVAL.json")
    assert before["eval_info"]["excluded_forget_indices"] == used
    assert rep["forget_truth_ratios"]["before"] == values(before, "forget_truth_ratio")
    assert rep["forget_truth_ratios"]["after"] == values(after, "forget_truth_ratio")
    for key in PER_ITEM:  # item j of the attack's evaluation is forget item kept[j]
        assert before[key]["n"] == after[key]["n"] == len(kept)
        assert values(before, key) == pytest.approx([values(full, key)[i] for i in kept], rel=1e-5)
    # forget_quality compares the kept items with the retain log's SAME items (KS test, by scipy)
    expected = ks_2samp(values(before, "forget_truth_ratio"), [ref[i] for i in kept]).pvalue
    assert rep["summary"]["forget_quality_before"] == pytest.approx(expected, rel=1e-9)
    assert rep["summary"]["forget_Q_A_Prob_after"] != rep["summary"]["forget_Q_A_Prob_before"]
    prob = rep["recovery"]["forget_Q_A_Prob"]  # the target's level over the kept items only
    assert prob["target"] == pytest.approx(
        np.mean([values(full, "forget_Q_A_Prob")[i] for i in kept])
    )
    assert prob["before"] == pytest.approx(prob["target"], rel=1e-5)
    assert prob["recovered_share"] is None  # the target is this model: nothing was forgotten
    assert read(out / "TOFU_SUMMARY.json")["attack/relearn"] == rep["summary"]
    # obliviate compare shows the attack's numbers as columns and the attacked point in the plot
    table = build_report([load_row("m", "model", out / "TOFU_EVAL.json")], {})
    columns = [c["metric"] for c in table["columns"]]
    assert [f"attack/relearn/{k}" for k in rep["summary"]] == columns[-len(rep["summary"]) :]
    row = table["rows"][0]
    assert all(row[f"attack/relearn/{k}"] == v for k, v in rep["summary"].items())
    assert "attack/relearn/forget_quality_after" in markdown(table)
    assert "m +relearn" in [label.get_text() for label in figure(table)[1]]


@pytest.mark.slow  # the seeded sample and batches are checked in the default suite (test_relearn)
def test_relearn_is_deterministic_with_the_seed_and_leaves_the_model_unchanged(model_dir):
    cfg = compose_config(
        ["experiment=eval/tofu/default", "model=tiny-bytes", "task_name=t", "tofu_data=builtin",
         "builtin_data.authors=2", "forget_split=forget50", f"eval.max_items={N_FORGET}",
         f"model.model_args.pretrained_model_name_or_path={model_dir}", "attack=relearn",
         "attack.steps=2", "attack.batch_size=2"],
        "eval.yaml",
    )  # fmt: skip
    a, b = build_attack(cfg), build_attack(cfg)
    cfg.attack.seed = 1
    c = build_attack(cfg)
    model, tok = load_model(cfg.model), load_tokenizer(cfg.model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    copy_a, info_a = a.apply(copy.deepcopy(model), tok)
    copy_b, info_b = b.apply(copy.deepcopy(model), tok)
    assert info_a == info_b and a.excluded_forget_indices() == b.excluded_forget_indices()
    assert all(v.equal(copy_b.state_dict()[k]) for k, v in copy_a.state_dict().items())
    assert c.excluded_forget_indices() != a.excluded_forget_indices()
    assert all(v.equal(model.state_dict()[k]) for k, v in state.items())  # the original is kept


def test_quantize_evaluates_a_4bit_copy_and_records_the_library(model_dir, tmp_path):
    files = snapshot(model_dir)
    out = run_eval_command(model_dir, tmp_path / "q", "attack=quantize", "attack.group_size=32")
    assert snapshot(model_dir) == files
    rep = read(out / "ATTACK_quantize.json")
    info = rep["info"]
    assert (info["library"], info["bits"], info["group_size"], info["scheme"]) == (
        "torchao",
        4,
        32,
        "symmetric",
    )
    assert info["library_version"] and info["quantized_modules"] == 14
    assert 0.5 < info["max_change_in_half_steps"] <= 1 + 1e-5
    assert (out / "attack_quantize" / "TOFU_EVAL.json").is_file()
    s = rep["summary"]
    assert s["forget_Q_A_Prob_after"] != s["forget_Q_A_Prob_before"]
    assert read(out / "TOFU_SUMMARY.json")["attack/quantize"] == s


def test_quantize_with_bitsandbytes_nf4_records_its_scheme_and_bound(model_dir, tmp_path):
    files = snapshot(model_dir)
    out = run_eval_command(
        model_dir, tmp_path / "nf4", "attack=quantize", "attack.library=bitsandbytes",
        "attack.group_size=32",
    )  # fmt: skip
    assert snapshot(model_dir) == files
    rep = read(out / "ATTACK_quantize.json")
    info = rep["info"]
    assert (info["library"], info["scheme"], info["bits"], info["group_size"]) == (
        "bitsandbytes", "nf4", 4, 32
    )  # fmt: skip
    assert info["library_version"] and info["quantized_modules"] == 14
    # NF4's widest gap is between -1 and -0.6962: a weight moves by at most 0.152 x absmax
    assert info["bound_over_block_absmax"] == pytest.approx((1 - 0.6961928) / 2)
    assert 0.05 < info["max_change_over_block_absmax"] <= info["bound_over_block_absmax"]
    s = rep["summary"]
    assert s["forget_Q_A_Prob_after"] != s["forget_Q_A_Prob_before"]
    assert read(out / "TOFU_SUMMARY.json")["attack/quantize"] == s


def test_rephrase_scores_every_variant_and_reports_the_largest(model_dir, tmp_path):
    out = run_eval_command(model_dir, tmp_path / "r", "attack=rephrase")
    rep = read(out / "ATTACK_rephrase.json")
    variants = rep["variants"]
    assert list(variants) == [
        "standard", "paraphrased_question", "no_system_prompt", "plain_prompt", "fill_in_blank"
    ]  # fmt: skip
    assert all(len(v["per_item"]) == N_FORGET for v in variants.values())
    # the standard prompt reproduces the TOFU suite's own forget numbers
    tofu = read(out / "TOFU_SUMMARY.json")
    assert variants["standard"]["forget_Q_A_Prob"] == pytest.approx(
        tofu["forget_Q_A_Prob"], rel=1e-4
    )
    assert variants["standard"]["forget_Q_A_ROUGE"] == pytest.approx(tofu["forget_Q_A_ROUGE"])
    for metric in ("forget_Q_A_Prob", "forget_Q_A_ROUGE"):
        best = max(variants[v][metric] for v in variants if v != "standard")
        assert rep["summary"][f"{metric}_after"] == best
        assert variants[rep["best_variant"][metric]][metric] == best
    # the variants really are different prompts
    probs = {v["forget_Q_A_Prob"] for v in variants.values()}
    assert len(probs) == len(variants)
    assert tofu["attack/rephrase"] == rep["summary"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("attack=quantize attack.bits=3", "attack.bits=3; use 4 or 8"),
        ("attack=quantize attack.library=gptq", "attack.library=gptq; use one of torchao"),
        ("attack=quantize attack.library=bitsandbytes attack.bits=8", "use attack.library=torchao"),
        ("attack=quantize attack.scheme=nf4", "attack.scheme=nf4 is not a torchao scheme"),
        ("attack=quantize attack.library=bitsandbytes attack.group_size=48", "block size is one"),
        ("attack=quantize attack.double_quant=true", "only with attack.library=bitsandbytes"),
        ("attack=relern", "attack=relern is not a known attack \\(did you mean relearn\\?\\)"),
        ("attack=relearn attack.fraction=1.0", "attack.fraction=1.0 must be in"),
        ("attack=relearn attack.data=/no/such.jsonl", "attack.data='/no/such.jsonl' is neither"),
        ("attack=relearn ~eval.suites.tofu", "forget_sample draws from TOFU.s or MUSE.s splits"),
        ("attack=rephrase attack.variants=[nope]", "attack.variants=\\['nope'\\]"),
    ],
)
def test_bad_attack_settings_fail_in_one_line_before_the_model_loads(override, message):
    with pytest.raises(ConfigError, match=message):
        cfg = compose_config(
            ["experiment=eval/tofu/default", "model=tiny-bytes", "task_name=t",
             "tofu_data=builtin", "builtin_data.authors=2", "forget_split=forget50",
             *override.split()],
            "eval.yaml",
        )  # fmt: skip
        build_attack(cfg)
