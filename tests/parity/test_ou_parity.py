"""``eval.protocol=open-unlearning`` gives open-unlearning's own per-item TOFU values; the default
protocol differs from them exactly where docs/metrics.md ("Parity with open-unlearning") says.

The reference, ou_tofu_tiny.json, was recorded once with open-unlearning's evaluator
(bench/parity/record_ou.py: its commit, torch and transformers versions are inside) on
tiny_model/ (a 2-layer byte-level Llama, bench/parity/make_tiny_case.py) and four TOFU items
per split, which the file also holds: the test needs neither open-unlearning nor ../shared.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import compose_config
from obliviate.errors import ConfigError
from obliviate.eval.runner import run_eval

HERE = Path(__file__).resolve().parent
RECORD = json.loads((HERE / "ou_tofu_tiny.json").read_text())
FILES = {
    "forget": "forget01_perturbed",
    "retain": "retain_perturbed",
    "real_authors": "real_authors_perturbed",
    "world_facts": "world_facts_perturbed",
    "holdout": "holdout01",  # mia_min_k's non-members (record_ou_mink.py)
}
REL_TOL = 1e-4
#: where obliviate's own protocol must differ from open-unlearning's on this case (a metric is
#: listed if at least one of its items differs by more than REL_TOL)
NUMERIC = [k for k, v in RECORD["values"].items() if not isinstance(v[0], str)]
GENERATIONS = [k for k, v in RECORD["values"].items() if isinstance(v[0], str)]


def _per_item(res: dict, key: str) -> list:
    field = "generation" if key in GENERATIONS else ("prob" if "Prob" in key else "score")
    by_index = res[key]["value_by_index"]
    return [by_index[str(i)][field] for i in range(len(by_index))]


def _flat(values: list) -> list[float]:
    return [x for v in values for x in (v if isinstance(v, list) else [v])]


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def _min_k_worst(res: dict) -> float:
    """The largest relative difference of a min-k% score, forget and holdout items."""
    mia, theirs = res["mia_min_k"], RECORD["mia_min_k"]
    return max(
        _rel(float(mia[split]["value_by_index"][str(i)]["score"]), ref)
        for split in ("forget", "holdout")
        for i, ref in enumerate(theirs[split])
    )


def _evaluate(protocol: str, tmp: Path) -> dict:
    data = tmp / "tofu"
    data.mkdir()
    for part, name in FILES.items():
        rows = RECORD["items"][part]
        (data / f"{name}.json").write_text("".join(json.dumps(r) + "\n" for r in rows))
    retain_log = tmp / "retain_TOFU_EVAL.json"  # privleak's AUC_retain (record_ou_mink.py)
    retain_log.write_text(json.dumps(RECORD["privleak"]["retain_log"]))
    out = tmp / "eval"
    cfg = compose_config(
        [
            "experiment=eval/tofu/default",
            "model=tiny-bytes",
            f"model.model_args.pretrained_model_name_or_path={HERE / 'tiny_model'}",
            "task_name=parity",
            f"tofu_data={data}",
            "forget_split=forget01",
            "holdout_split=holdout01",
            f"eval.max_new_tokens={RECORD['settings']['max_new_tokens']}",
            f"eval.batch_size={RECORD['settings']['batch_size']}",
            f"eval.protocol={protocol}",
            f"retain_logs_path={retain_log}",
            f"paths.output_dir={out}",
        ],
        "eval.yaml",
    )
    run_eval(cfg)
    res = json.loads((out / "TOFU_EVAL.json").read_text())
    res["_receipt"] = json.loads((out / "eval_receipt.json").read_text())
    return res


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[str, dict]:
    return {p: _evaluate(p, tmp_path_factory.mktemp(p)) for p in ("open-unlearning", "obliviate")}


def test_open_unlearning_protocol_matches_its_recorded_values(results):
    res = results["open-unlearning"]
    assert res["eval_info"]["protocol"] == "open-unlearning"
    assert res["_receipt"]["eval_protocol"] == "open-unlearning"
    for key in NUMERIC:
        ours, theirs = _flat(_per_item(res, key)), _flat(RECORD["values"][key])
        assert len(ours) == len(theirs), key
        worst = max(_rel(a, b) for a, b in zip(ours, theirs, strict=True))
        assert worst <= REL_TOL, f"{key}: worst relative difference {worst:.2e}"
    for key in GENERATIONS:
        assert _per_item(res, key) == RECORD["values"][key], key
    agg = RECORD["aggregates"]
    assert math.isclose(res["model_utility"]["agg_value"], agg["model_utility"], rel_tol=REL_TOL)


def test_open_unlearning_protocol_matches_its_min_k_attack(results):
    """TOFU's min-k% attack, item by item, and privleak: open-unlearning scores an answer
    without its last labelled token (the end-of-turn), which ``drops_last_label`` leaves out too
    (lab log item 19). The AUC, 0.875 here, is not saturated: a holdout item scores below a
    forget item."""
    res = results["open-unlearning"]
    assert res["mia_min_k"]["n_forget"] == res["mia_min_k"]["n_holdout"] == 4
    assert _min_k_worst(res) <= REL_TOL, (
        f"mia_min_k: worst relative difference {_min_k_worst(res):.2e}"
    )
    assert res["mia_min_k"]["agg_value"] == pytest.approx(RECORD["mia_min_k"]["auc"], abs=1e-12)
    # privleak against the same retain log (AUC_retain 0.9375): open-unlearning's 1e-10 in the
    # denominator aside, ((1 - 0.875) - (1 - 0.9375)) / (1 - 0.9375) x 100 = 100 in both
    leak = res["privleak"]["agg_value"]
    assert leak == pytest.approx(100.0) and math.isclose(
        leak, RECORD["privleak"]["agg_value"], rel_tol=REL_TOL
    )


def test_obliviate_protocol_differs_where_documented(results):
    """The default protocol is not open-unlearning's: the attention mask moves every
    probability and truth ratio, and the generations."""
    res = results["obliviate"]
    assert res["eval_info"]["protocol"] == "obliviate"
    differing = []
    for key in NUMERIC:
        ours, theirs = _flat(_per_item(res, key)), _flat(RECORD["values"][key])
        if max(_rel(a, b) for a, b in zip(ours, theirs, strict=True)) > REL_TOL:
            differing.append(key)
    for key in GENERATIONS:
        if _per_item(res, key) != RECORD["values"][key]:
            differing.append(key)
    if _min_k_worst(res) > REL_TOL:  # the end-of-turn stays in obliviate's min-k% pool
        differing.append("mia_min_k")
    if not math.isclose(
        res["privleak"]["agg_value"], RECORD["privleak"]["agg_value"], rel_tol=REL_TOL
    ):
        differing.append("privleak")  # its AUC 0.8125 is 1/16 off open-unlearning's 0.875
    assert {"mia_min_k", "privleak"} <= set(differing)
    probability_like = [k for k in NUMERIC if "Prob" in k or "Ratio" in k or "ratio" in k]
    assert set(probability_like) <= set(differing), sorted(set(probability_like) - set(differing))


def test_unknown_protocol_is_a_clear_error(tmp_path):
    cfg = compose_config(
        [
            "experiment=eval/tofu/default",
            "model=tiny-bytes",
            "task_name=parity",
            "tofu_data=builtin",
            "eval.protocol=ou",
            f"paths.output_dir={tmp_path}",
        ],
        "eval.yaml",
    )
    with pytest.raises(ConfigError, match="eval.protocol='ou'.*open-unlearning"):
        run_eval(cfg)


def test_training_batch_is_open_unlearnings():
    """trainer.protocol=open-unlearning collates the batch open-unlearning's own preprocessing
    and collator built (recorded): same ids, labels and attention mask, with the end-of-turn
    tokens inside the prompt hidden; obliviate's protocol attends to them."""
    from omegaconf import OmegaConf

    from obliviate.config import CONFIG_DIR
    from obliviate.data.collate import PairCollator
    from obliviate.data.datasets import encode_rows
    from obliviate.data.formatting import ChatFormat, QAEncoder, loaded_pad_id, prepare_tokenizer
    from obliviate.models.tiny import BYTE_EOT_ID, build_tiny_tokenizer
    from obliviate.protocol import NAMED

    ou = RECORD["training_batch"]
    tok = build_tiny_tokenizer("bytes")
    ou_pad = loaded_pad_id(tok)
    assert ou_pad == ou["pad_token_id"] == BYTE_EOT_ID
    fmt = ChatFormat.from_config(OmegaConf.load(CONFIG_DIR / "model/tiny-bytes.yaml").template)
    tok = prepare_tokenizer(tok, fmt)
    items = [{"forget": it} for it in encode_rows(QAEncoder(tok, fmt), RECORD["items"]["forget"])]
    ours = PairCollator(tok.pad_token_id, NAMED["open-unlearning"].mask_id(ou_pad))(items)["forget"]
    mask = ours["attention_mask"]
    assert mask.tolist() == ou["attention_mask"]
    assert ours["labels"].tolist() == ou["labels"]
    ids = ours["input_ids"].where(mask.bool(), -1).tolist()  # padding values differ, masked
    assert ids == [
        [x if m else -1 for x, m in zip(r, mr, strict=True)]
        for r, mr in zip(ou["input_ids"], ou["attention_mask"], strict=True)
    ]
    plain = PairCollator(tok.pad_token_id, NAMED["obliviate"].mask_id(ou_pad))(items)["forget"]
    hidden = (plain["attention_mask"] - mask).sum().item()
    # per row: the end-of-turn of the system turn, of the user turn and the answer's last token
    assert hidden == 3 * len(items)


@pytest.mark.slow
def test_trainer_protocol_reaches_the_batches_and_the_receipt(tmp_path, monkeypatch):
    """A 1-step NPO run under trainer.protocol=open-unlearning: its collator and its reference
    log-probs mask open-unlearning's pad id (tiny-bytes: the end-of-turn, 259) and the run's
    receipt says so."""
    from obliviate import training as T
    from obliviate.methods import base
    from obliviate.models.tiny import BYTE_EOT_ID

    seen: dict[str, object] = {}
    real_reference = base.score_encoded

    class Recording(T.PairCollator):
        def __init__(self, pad_id, mask_id=None):
            super().__init__(pad_id, mask_id)
            seen["collator"] = mask_id

    def reference(*args, **kw):
        seen["reference"] = kw.get("mask_id")
        return real_reference(*args, **kw)

    monkeypatch.setattr(T, "PairCollator", Recording)
    monkeypatch.setattr(base, "score_encoded", reference)
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "cache"))
    cfg = compose_config(
        [
            "experiment=unlearn/tofu/default",
            "trainer=NPO",
            "model=tiny-bytes",
            "tofu_data=builtin",
            "builtin_data.authors=2",
            "forget_split=forget50",
            "retain_split=retain50",
            "trainer.args.max_steps=1",
            "trainer.args.per_device_train_batch_size=2",
            "trainer.args.gradient_accumulation_steps=1",
            "trainer.args.eval_strategy=no",
            "trainer.protocol=open-unlearning",
            "task_name=t",
            f"paths.output_dir={tmp_path / 'run'}",
        ]
    )
    T.run_training(cfg)
    assert seen == {"collator": BYTE_EOT_ID, "reference": BYTE_EOT_ID}
    receipt = json.loads((tmp_path / "run" / "receipt.json").read_text())
    assert receipt["trainer_protocol"] == "open-unlearning"
