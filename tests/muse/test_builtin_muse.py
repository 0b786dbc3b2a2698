"""The generated MUSE-shaped corpus (muse_data=builtin): deterministic, every MUSE split with
its fields, article groups disjoint, and QA / verbmem pairs that really come from the articles."""

from __future__ import annotations

import pytest

from obliviate.data.builtin_muse import BuiltinMuseOptions, build_muse_splits, make_articles
from obliviate.data.muse import SCHEMA, validate_rows
from obliviate.errors import ConfigError

SPLITS = build_muse_splits()


def test_same_seed_same_corpus_other_seed_other_articles():
    assert build_muse_splits() == SPLITS
    other = build_muse_splits(BuiltinMuseOptions(seed=1))
    assert {r["text"] for r in other["raw"]["forget"]}.isdisjoint(
        r["text"] for r in SPLITS["raw"]["forget"]
    )


def test_every_config_and_split_of_muse_is_there_with_its_fields():
    assert set(SPLITS) == set(SCHEMA)
    for config, splits in SCHEMA.items():
        assert set(SPLITS[config]) == set(splits)
        for split in splits:
            validate_rows(SPLITS[config][split], config, split)  # raises on a missing field


def test_forget_retain_holdout_and_icl_articles_share_no_town_or_person():
    opts = BuiltinMuseOptions()
    raw = SPLITS["raw"]
    groups = [{r["text"] for r in raw[g]} for g in ("forget", "retain1", "retain2", "holdout")]
    assert sum(len(g) for g in groups) == len(set().union(*groups)) == 32
    # each article's town and chair are its own: the forget facts are in no other article
    articles = make_articles(opts.forget + 2 * opts.retain + opts.holdout + opts.icl_articles)
    forget_towns = {a["text"].split(",")[0] for a in articles[: opts.forget] if "," in a["text"]}
    for a in articles[opts.forget :]:
        assert not any(t in a["text"] for t in forget_towns if len(t) > 5)
    names = [a["qa"][0][1] for a in articles]
    assert len(set(names)) == len(names)


def test_qa_answers_and_verbmem_pairs_come_from_their_articles():
    # article i owns QA rows 4i .. 4i+3; its people (answers 0 and 2) are in no other article
    everything = [r["text"] for g in SPLITS["raw"].values() for r in g]
    for qa_split, raw_split in (("forget_qa", "forget"), ("retain_qa", "retain1")):
        qa, texts = SPLITS["knowmem"][qa_split], [r["text"] for r in SPLITS["raw"][raw_split]]
        assert len(qa) == 4 * len(texts)
        for i, text in enumerate(texts):
            rows = qa[4 * i : 4 * i + 4]
            assert all(r["answer"] in text for r in rows)
            for person in (rows[0]["answer"], rows[2]["answer"]):
                assert [t for t in everything if person in t] == [text]
    forget_text = " ".join(r["text"] for r in SPLITS["raw"]["forget"])
    retain_text = " ".join(r["text"] for r in SPLITS["raw"]["retain1"])
    texts = [r["text"] for r in SPLITS["raw"]["forget"]]
    assert [v["prompt"] + " " + v["gt"] for v in SPLITS["verbmem"]["forget"]] == texts
    assert SPLITS["privleak"]["forget"] == SPLITS["raw"]["forget"]
    assert SPLITS["privleak"]["holdout"] == SPLITS["raw"]["holdout"]
    icl = SPLITS["knowmem"]["forget_qa_icl"] + SPLITS["knowmem"]["retain_qa_icl"]
    assert len(icl) == 6
    asked = {r["question"] for r in SPLITS["knowmem"]["forget_qa"] + SPLITS["knowmem"]["retain_qa"]}
    assert not asked & {r["question"] for r in icl}
    assert icl[0]["answer"] not in forget_text + retain_text  # the in-context article's chair


def test_scal_grows_and_sust_parts_partition_the_forget_articles():
    forget = SPLITS["raw"]["forget"]  # 8 articles -> quarters of 2
    assert [len(SPLITS["scal"][f"forget_{k}"]) for k in range(1, 5)] == [2, 4, 6, 8]
    assert SPLITS["scal"]["forget_4"] == forget
    parts = [SPLITS["sust"][f"forget_{k}"] for k in range(1, 5)]
    assert [r for p in parts for r in p] == forget


def test_bad_options_are_one_clear_error():
    with pytest.raises(ConfigError, match="builtin_muse.articles is not an option"):
        BuiltinMuseOptions.from_config({"articles": 3})
    with pytest.raises(ConfigError, match="forget >= 4"):
        BuiltinMuseOptions.from_config({"forget": 3})
