"""MUSE end to end on the tiny byte-level model and the built-in corpus: finetune -> unlearn
(SimNPO, 2 steps) -> evaluate, through the same entry points as the CLI; the JSON is checked
against numbers recomputed independently from the model and from its own per-item values."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import compose_config
from obliviate.errors import ConfigError
from obliviate.eval import metrics as M
from obliviate.eval.runner import run_eval
from obliviate.training import run_training

SMALL = [
    "model=tiny-bytes",
    "muse_data=builtin",
    "builtin_muse.forget=4",
    "builtin_muse.retain=2",
    "builtin_muse.holdout=3",
    "builtin_muse.icl=2",
]
TRAIN = [
    *SMALL,
    "data.max_length=256",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.args.gradient_accumulation_steps=1",
]
EVAL = [
    *SMALL,
    "eval.muse.max_items=3",
    "eval.muse.knowmem_max_new_tokens=12",
    "eval.muse.verbmem_max_new_tokens=24",
    "eval.muse.max_length=200",
]


def evaluate(model: Path, out: Path, *extra: str) -> dict:
    cfg = compose_config(
        [
            "experiment=eval/muse/default",
            "task_name=e",
            f"paths.output_dir={out}",
            f"model.model_args.pretrained_model_name_or_path={model}",
            *EVAL,
            *extra,
        ],
        "eval.yaml",
    )
    run_eval(cfg)
    return json.loads((out / "MUSE_EVAL.json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("muse")
    target = run_training(
        compose_config(
            [
                "experiment=finetune/muse/default",
                "task_name=target",
                f"paths.output_dir={root / 'target'}",
                "trainer.args.max_steps=3",
                "trainer.args.learning_rate=1e-2",
                *TRAIN,
            ],
            "train.yaml",
        )
    )
    unlearned = run_training(
        compose_config(
            [
                "experiment=unlearn/muse/default",
                "trainer=SimNPO",
                "task_name=simnpo",
                f"paths.output_dir={root / 'simnpo'}",
                f"model.model_args.pretrained_model_name_or_path={target}",
                "trainer.args.max_steps=2",
                *TRAIN,
            ],
            "unlearn.yaml",
        )
    )
    evaluate(target, root / "eval_target")
    log = root / "eval_target" / "MUSE_EVAL.json"
    evaluate(unlearned, root / "eval_simnpo", f"retain_logs_path={log}")
    return {"root": root, "target": target, "unlearned": unlearned, "log": log}


def test_the_pipeline_writes_open_unlearnings_keys(runs):
    res = json.loads((runs["root"] / "eval_simnpo" / "MUSE_EVAL.json").read_text())
    summary = json.loads((runs["root"] / "eval_simnpo" / "MUSE_SUMMARY.json").read_text())
    keys = {
        "forget_knowmem_ROUGE",
        "retain_knowmem_ROUGE",
        "forget_verbmem_ROUGE",
        "extraction_strength",
        "mia_min_k",
        "privleak",
    }
    assert keys <= set(res) and set(summary) == keys
    assert res["eval_info"]["protocol"] == "open-unlearning" and res["eval_info"]["rouge_stemmer"]
    for key in ("forget_knowmem_ROUGE", "retain_knowmem_ROUGE", "forget_verbmem_ROUGE"):
        items = res[key]["value_by_index"]
        assert len(items) == 3 and set(items["0"]) >= {"rougeL_f1", "generation", "ground_truth"}
        # the aggregate is the mean of the per-item ROUGE-L F1 of the stored texts
        again = M.rouge_scores(
            [v["generation"] for v in items.values()], [v["ground_truth"] for v in items.values()]
        )
        assert res[key]["agg_value"] == pytest.approx(np.mean([s["rougeL_f1"] for s in again]))
    receipt = json.loads((runs["root"] / "eval_simnpo" / "eval_receipt.json").read_text())
    assert receipt["suites"] == ["muse"] and "muse/verbmem" in receipt["data_sha256"]
    assert (runs["unlearned"] / "receipt.json").is_file()


def test_privleak_and_the_attack_agree_with_their_formulas(runs):
    res = json.loads((runs["root"] / "eval_simnpo" / "MUSE_EVAL.json").read_text())
    ret = json.loads(runs["log"].read_text())
    mia = res["mia_min_k"]
    forget = [v["score"] for v in mia["forget"]["value_by_index"].values()]
    holdout = [v["score"] for v in mia["holdout"]["value_by_index"].values()]
    pairs = [(f, h) for f in forget for h in holdout]  # AUC = P(holdout scores higher)
    auc = sum((h > f) + 0.5 * (h == f) for f, h in pairs) / len(pairs)
    assert mia["agg_value"] == pytest.approx(auc)
    a, r = mia["agg_value"], ret["mia_min_k"]["agg_value"]
    assert res["privleak"]["agg_value"] == pytest.approx(((1 - a) - (1 - r)) / (1 - r) * 100)


def test_one_min_k_score_recomputed_from_the_model(runs):
    """The first holdout text's min-40% score from a forward pass written out here."""
    from transformers import AutoModelForCausalLM

    from obliviate.data.builtin_muse import BuiltinMuseOptions, build_muse_splits

    res = json.loads((runs["root"] / "eval_simnpo" / "MUSE_EVAL.json").read_text())
    text = build_muse_splits(BuiltinMuseOptions(forget=4, retain=2, holdout=3, icl=2))["privleak"][
        "holdout"
    ][0]["text"]
    ids = torch.tensor([[256, *list(text.encode())[:200]]])  # BOS + the first 200 bytes
    model = AutoModelForCausalLM.from_pretrained(runs["unlearned"]).eval()
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
    token_logp = logp.gather(-1, ids[0, 1:, None]).squeeze(-1).numpy()  # (200,)
    lowest = np.sort(token_logp)[: int(200 * 0.4)]  # the 80 least likely bytes
    stored = res["mia_min_k"]["holdout"]["value_by_index"]["0"]["score"]
    assert stored == pytest.approx(-lowest.mean(), rel=1e-4)


def test_a_retain_log_of_another_corpus_or_size_is_refused(runs, tmp_path):
    log = json.loads(runs["log"].read_text())
    log["eval_info"]["data_split"] = "Books"
    other = tmp_path / "books.json"
    other.write_text(json.dumps(log))
    with pytest.raises(ConfigError, match="data_split=Books, this evaluation uses News"):
        evaluate(runs["unlearned"], tmp_path / "a", f"retain_logs_path={other}")
    with pytest.raises(ConfigError, match="max_items=3, this evaluation uses 2"):
        evaluate(
            runs["unlearned"],
            tmp_path / "b",
            f"retain_logs_path={runs['log']}",
            "eval.muse.max_items=2",
        )


def test_without_a_retain_log_privleak_is_null_with_a_note(runs):
    res = json.loads((runs["root"] / "eval_target" / "MUSE_EVAL.json").read_text())
    assert res["privleak"]["agg_value"] is None
    assert "retain_logs_path=" in res["privleak"]["note"]
