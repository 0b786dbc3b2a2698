"""Relearning under MUSE (``experiment=eval/muse/default attack=relearn``) on a saved tiny-bytes
model and the built-in MUSE corpus (4 forget articles: 4 verbmem items, 16 knowmem QA pairs):
the verbmem items trained on leave verbmem and extraction strength, knowmem keeps all its
items, the loss is the mean NLL of every byte of their text, the saved model is kept.

The tiny model's greedy continuations are blank (ROUGE 0 before and after), so the recovered
share is checked here for its plumbing and target items; its arithmetic on non-zero MUSE values
is test_recovery.py's."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from attack_cli import builtin_cache, read  # noqa: F401
from omegaconf import open_dict

from conftest import compose_config, snapshot
from obliviate.attacks.base import build_attack
from obliviate.attacks.relearn_data import sample_indices
from obliviate.data.builtin_muse import BuiltinMuseOptions, build_muse_splits
from obliviate.errors import ConfigError
from obliviate.eval.runner import run_eval
from obliviate.launch import run
from obliviate.models.loading import load_model, load_tokenizer
from obliviate.models.tiny import BYTE_BOS_ID

N_VERBMEM, N_KNOWMEM, MAX_LENGTH = 4, 16, 64
FRACTION, SEED = 0.5, 1  # draws verbmem items 1 and 2: kept items 0 and 3 are renumbered 0, 1
MUSE = [
    "experiment=eval/muse/default",
    "model=tiny-bytes",
    "task_name=muse_attack_test",
    "muse_data=builtin",
    f"builtin_muse.forget={N_VERBMEM}",
    "builtin_muse.retain=2",
    "builtin_muse.holdout=2",
    "builtin_muse.icl=2",
    "eval.muse.knowmem_max_new_tokens=2",
    "eval.muse.verbmem_max_new_tokens=4",
    "eval.muse.max_length=128",
    f"data.max_length={MAX_LENGTH}",  # the relearning chunks: BOS + 63 bytes
]
SPLITS = build_muse_splits(BuiltinMuseOptions(forget=N_VERBMEM, retain=2, holdout=2, icl=2))


def argv(model_dir, out, *extra: str) -> list[str]:
    return [
        "--config-name=eval.yaml",
        *MUSE,
        f"model.model_args.pretrained_model_name_or_path={model_dir}",
        f"paths.output_dir={out}",
        *extra,
    ]


def per_item(res: dict, key: str, field: str) -> list[float]:
    by = res[key]["value_by_index"]
    return [by[str(i)][field] for i in range(len(by))]


def text_nll(model: torch.nn.Module, texts: list[str], max_length: int) -> float:
    """Independent of the code under test: each text's bytes cut into pieces of max_length - 1
    behind BOS; -log p(byte | BOS + the piece's earlier bytes) summed over every byte of every
    piece, divided by the number of bytes."""
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            data = list(text.encode())
            for start in range(0, len(data), max_length - 1):
                ids = torch.tensor([[BYTE_BOS_ID, *data[start : start + max_length - 1]]])
                logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
                total -= float(logp[:-1].gather(-1, ids[0, 1:, None]).sum())
                count += ids.shape[1] - 1
    return total / count


@pytest.fixture(scope="module")
def model_dir(byte_start_model):
    return byte_start_model


def test_relearn_on_muse_leaves_its_verbmem_items_out_and_measures_recovery(model_dir, tmp_path):
    files = snapshot(model_dir)
    plain = run(run_eval, "eval", argv(model_dir, tmp_path / "plain")) / "MUSE_EVAL.json"
    full = read(plain)
    # A made-up target whose per-item verbmem / knowmem values are all different and above the
    # model's: its level must be the mean over exactly the items the attack evaluated.
    target = copy.deepcopy(full)
    t_verb = [0.9 - 0.05 * i for i in range(N_VERBMEM)]
    t_know = [0.5 + 0.01 * i for i in range(N_KNOWMEM)]
    for key, values in (("forget_verbmem_ROUGE", t_verb), ("forget_knowmem_ROUGE", t_know)):
        for i, v in enumerate(values):
            target[key]["value_by_index"][str(i)]["rougeL_f1"] = v
    target_path = tmp_path / "target_MUSE_EVAL.json"
    target_path.write_text(json.dumps(target))
    out = run(
        run_eval,
        "eval",
        argv(
            model_dir,
            tmp_path / "relearn",
            "attack=relearn",
            "attack.steps=2",
            "attack.batch_size=64",  # every chunk in each step: the first loss is checked below
            "attack.lr=1e-2",
            f"attack.fraction={FRACTION}",
            f"attack.seed={SEED}",
            f"attack.target_eval={target_path}",
        ),
    )
    assert snapshot(model_dir) == files  # the saved model is never written

    rep = read(out / "ATTACK_relearn.json")
    used = rep["forget_items_used"]
    assert used == sample_indices(N_VERBMEM, FRACTION, SEED) == [1, 2]
    kept = [i for i in range(N_VERBMEM) if i not in used]
    before, after = read(out / "MUSE_EVAL.json"), read(out / "attack_relearn" / "MUSE_EVAL.json")
    trained = [SPLITS["verbmem"]["forget"][i] for i in used]
    texts = [r["prompt"] + " " + r["gt"] for r in trained]
    # what was trained on: the items' text, chunked as MUSE training text, loss on every byte
    info = rep["info"]
    assert (info["benchmark"], info["n_rows"]) == ("muse", 2)
    assert info["n_items"] == sum(math.ceil(len(t.encode()) / (MAX_LENGTH - 1)) for t in texts)
    assert all(set(b) == set(used) for b in info["batches"])
    model = load_model(compose_config([*MUSE, f"model.model_args.pretrained_model_name_or_path={model_dir}"], "eval.yaml").model)  # fmt: skip
    assert info["losses"][0] == pytest.approx(text_nll(model, texts, MAX_LENGTH), rel=1e-4)
    assert info["losses"][1] < info["losses"][0]

    for res in (before, after):
        assert res["eval_info"]["excluded_forget_indices"] == used
        assert res["eval_info"]["n_per_split"]["verbmem"] == len(kept)
        prompts = [v["input"] for v in res["forget_verbmem_ROUGE"]["value_by_index"].values()]
        assert prompts == [SPLITS["verbmem"]["forget"][i]["prompt"] for i in kept]
        assert res["extraction_strength"]["n"] == len(kept)
        assert res["forget_knowmem_ROUGE"]["n"] == N_KNOWMEM  # QA pairs: never trained on
    # before the attack, the kept items' values are the plain evaluation's, item for item
    for key, field in (("forget_verbmem_ROUGE", "rougeL_f1"), ("extraction_strength", "score")):
        mine = per_item(before, key, field)
        assert mine == pytest.approx([per_item(full, key, field)[i] for i in kept], abs=1e-6)
        assert before[key]["agg_value"] == pytest.approx(np.mean(mine))
    assert per_item(before, "forget_knowmem_ROUGE", "rougeL_f1") == pytest.approx(
        per_item(full, "forget_knowmem_ROUGE", "rougeL_f1")
    )
    # recovered share = (after - before) / (target - before), from the per-item values
    summary = rep["summary"]
    for key, t_values, items in (
        ("forget_verbmem_ROUGE", t_verb, kept),
        ("forget_knowmem_ROUGE", t_know, range(N_KNOWMEM)),
    ):
        b = np.mean(per_item(before, key, "rougeL_f1"))
        a = np.mean(per_item(after, key, "rougeL_f1"))
        t = np.mean([t_values[i] for i in items])
        assert rep["recovery"][key]["target"] == pytest.approx(t)
        assert summary[f"muse/{key}_recovered"] == pytest.approx((a - b) / (t - b))
        assert summary[f"muse/{key}_before"] == pytest.approx(b)
        assert summary[f"muse/{key}_after"] == pytest.approx(a)
    assert read(out / "MUSE_SUMMARY.json")["attack/relearn"] == summary


def muse_cfg(model_dir, *extra: str):
    return compose_config(
        [*MUSE, f"model.model_args.pretrained_model_name_or_path={model_dir}", "attack=relearn",
         "attack.steps=2", "attack.batch_size=4", *extra],
        "eval.yaml",
    )  # fmt: skip


def test_the_same_seed_gives_the_same_items_and_losses_and_retain_is_the_retain_text(model_dir):
    cfg = muse_cfg(model_dir)
    a, b = build_attack(cfg), build_attack(cfg)
    cfg.attack.seed = 1
    c = build_attack(cfg)
    model, tok = load_model(cfg.model), load_tokenizer(cfg.model)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    _, info_a = a.apply(copy.deepcopy(model), tok)
    _, info_b = b.apply(copy.deepcopy(model), tok)
    assert a.excluded_forget_indices() == b.excluded_forget_indices()
    assert info_a["losses"] == info_b["losses"] and info_a["batches"] == info_b["batches"]
    assert c.excluded_forget_indices() != a.excluded_forget_indices()
    assert all(v.equal(model.state_dict()[k]) for k, v in state.items())  # the original is kept
    # attack.data=retain: the retain articles of retain_split, nothing excluded
    r = build_attack(muse_cfg(model_dir, "attack.data=retain", "retain_split=retain2"))
    assert r.source.rows == [{"text": x["text"]} for x in SPLITS["raw"]["retain2"]]
    assert r.excluded_forget_indices() == [] and r.benchmark == "muse"
    _, info = r.apply(copy.deepcopy(model), tok)
    joined = "\n\n".join(x["text"] for x in SPLITS["raw"]["retain2"])
    assert info["n_items"] == math.ceil(len(joined.encode()) / (MAX_LENGTH - 1))


def test_bad_muse_relearn_settings_fail_in_one_line_before_the_model_loads(model_dir, tmp_path):
    with pytest.raises(ConfigError, match="retain_split=retain90 is not a MUSE retain split"):
        build_attack(muse_cfg(model_dir, "attack.data=retain", "retain_split=retain90"))
    cfg = muse_cfg(model_dir)
    with open_dict(cfg):  # eval=[tofu,muse]: which benchmark is not obvious
        cfg.eval.suites.tofu = {"_target_": "obliviate.eval.tofu_suite.TofuSuite"}
    with pytest.raises(ConfigError, match="both tofu and muse.*attack.benchmark=tofu"):
        build_attack(cfg)
    tofu_eval = tmp_path / "TOFU_EVAL.json"
    tofu_eval.write_text(json.dumps({"forget_Q_A_Prob": {}, "forget_Q_A_ROUGE": {}}))
    with pytest.raises(ConfigError, match="is a tofu evaluation but eval=tofu is not selected"):
        build_attack(muse_cfg(model_dir, f"attack.target_eval={tofu_eval}"))
    # an attack run's own "before" has left items out: the target's level would not match
    partial = tmp_path / "MUSE_EVAL.json"
    partial.write_text(json.dumps({"forget_verbmem_ROUGE": {}, "forget_knowmem_ROUGE": {},
                                   "eval_info": {"excluded_forget_indices": [3]}}))  # fmt: skip
    with pytest.raises(ConfigError, match=r"left out forget items \[3\]; pass a plain evaluation"):
        build_attack(muse_cfg(model_dir, f"attack.target_eval={partial}"))


def test_quantize_and_a_text_file_work_under_muse(model_dir, tmp_path):
    """The benchmark-free attacks: quantize evaluates its 4-bit copy with the MUSE suite; a
    text file as attack.data excludes nothing."""
    out = run(run_eval, "eval", argv(model_dir, tmp_path / "q", "attack=quantize", "attack.group_size=32"))  # fmt: skip
    rep = read(out / "ATTACK_quantize.json")
    assert (
        read(out / "attack_quantize" / "MUSE_EVAL.json")["forget_verbmem_ROUGE"]["n"] == N_VERBMEM
    )
    assert read(out / "MUSE_SUMMARY.json")["attack/quantize"] == rep["summary"]
    assert rep["info"]["quantized_modules"] == 14 and "muse/mia_min_k_after" in rep["summary"]
    rows = tmp_path / "unrelated.jsonl"
    rows.write_text('{"text": "The weather in Oslo was mild today."}\n')
    attack = build_attack(muse_cfg(model_dir, f"attack.data={rows}"))
    assert attack.benchmark is None and attack.excluded_forget_indices() == []
    assert attack.source.rows == [{"text": "The weather in Oslo was mild today."}]
