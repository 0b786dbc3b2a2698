"""The built-in fictitious-author data: deterministic, author-disjoint splits named by TOFU's
rules, and every item carries a paraphrase and false answers of the same shape."""

from __future__ import annotations

import json

import pytest

from conftest import compose_config
from obliviate.data import builtin as B
from obliviate.data import tofu
from obliviate.data.builtin_facts import REAL_AUTHORS, WORLD_FACTS
from obliviate.errors import ConfigError
from obliviate.eval.data import OPTION_FIELDS, PERTURBED_FIELDS, load_eval_data


@pytest.fixture(scope="module")
def five() -> dict[str, list[dict]]:
    return B.build_splits(5, seed=0)


def test_same_seed_same_data_other_seed_other_data(five):
    assert B.build_splits(5, seed=0) == five
    other = B.build_splits(5, seed=1)
    assert other["full"] != five["full"]
    assert {r["question"] for r in other["full"]}.isdisjoint(
        {r["question"] for r in five["full"][:20]}
    ), "a different seed should give different authors"


def test_author_i_does_not_depend_on_how_many_authors():
    assert B.make_authors(3, seed=7) == B.make_authors(12, seed=7)[:3]


def test_names_and_titles_are_unique_and_name_parts_not_shared():
    authors = B.make_authors(40, seed=0)
    assert len({a.name for a in authors}) == 40
    titles = [t for a in authors for t in a.books]
    assert len(set(titles)) == len(titles)
    firsts = [a.name.split(" ", 1)[0] for a in authors]
    lasts = [a.name.split(" ", 1)[1] for a in authors]
    assert len(set(firsts)) == 40 and len(set(lasts)) == 40


def test_every_birth_and_debut_is_in_the_past():
    for a in B.make_authors(200, seed=3):
        assert 1935 <= a.birth_date.year < 1980
        assert a.birth_date.year + 23 <= a.debut_year <= 2018


def test_split_names_follow_tofu_rules(five):
    assert B.forget_split_name(5, 1) == "forget20"
    assert B.forget_split_name(2, 1) == "forget50"
    assert B.forget_split_name(200, 20) == "forget10"
    assert {k for k in five if k.startswith(("forget", "retain", "holdout"))} == {
        "forget20", "forget20_perturbed", "retain80", "holdout20",
        "forget40", "forget40_perturbed", "retain60", "holdout40", "retain_perturbed",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="forget20"):
        B.forget_split_name(5, 3)  # 60%: more than half
    with pytest.raises(ConfigError, match="no TOFU-style forget split"):
        B.build_splits(3)  # 100/3 is not a whole number


def test_large_sets_write_tofus_own_splits_only():
    assert [B.forget_split_name(200, k) for k in B.split_sizes(200)] == [
        "forget01",
        "forget05",
        "forget10",
    ]


@pytest.mark.parametrize("k", [1, 2])
def test_forget_and_retain_are_author_disjoint_complements(five, k):
    pct = 100 * k // 5
    forget, retain, full = five[f"forget{pct:02d}"], five[f"retain{100 - pct:02d}"], five["full"]
    tofu.check_disjoint(forget, retain, full, (f"forget{pct:02d}", f"retain{100 - pct:02d}"))
    assert forget == full[len(full) - 20 * k :]  # forgetXX = the last XX% of the authors
    authors = tofu.author_of(full)
    assert {authors[r["question"]] for r in forget} == set(range(5 - k, 5))


def test_holdout_and_retain_eval_authors_are_where_they_belong(five):
    full_q = {r["question"] for r in five["full"]}
    assert not {r["question"] for r in five["holdout20"]} & full_q  # never trained on
    assert len(five["holdout20"]) == len(five["forget20"])
    kept = {r["question"] for r in five["retain60"]}
    assert {r["question"] for r in five["retain_perturbed"]} <= kept  # outside every forget split


@pytest.mark.parametrize("k", [B.N_PERTURBED, 5])
def test_every_author_item_has_a_paraphrase_and_distinct_false_answers(five, k):
    splits = five if k == B.N_PERTURBED else B.build_splits(5, seed=0, n_perturbed=k)
    rows = splits["forget20_perturbed"] + splits["retain_perturbed"] + splits["holdout20"]
    assert len(splits["forget20_perturbed"]) == 20
    for r in rows:
        assert set(PERTURBED_FIELDS) <= set(r)
        assert r["paraphrased_answer"] and r["paraphrased_answer"] != r["answer"]
        pert = r["perturbed_answer"]
        assert len(pert) == k == len(set(pert))
        assert r["answer"] not in pert


def test_false_answers_change_the_fact_asked_about():
    author = B.make_authors(1, seed=0)[0]
    rows = B.author_rows(author, 0, seed=0)
    by_slot = {t.slots: r for t, r in zip(B.TEMPLATES, rows, strict=True)}
    true = {("name",): author.name, ("award",): author.award, ("place",): author.city}
    for slots, value in true.items():
        row = by_slot[slots]
        assert value in row["answer"] and value in row["paraphrased_answer"]
        assert all(value not in p for p in row["perturbed_answer"]), (slots, row)


def test_real_world_items_have_three_false_options(five):
    assert len(REAL_AUTHORS) >= 24 and len(WORLD_FACTS) >= 24
    for split in ("real_authors_perturbed", "world_facts_perturbed"):
        for r in five[split]:
            assert set(OPTION_FIELDS) <= set(r)
            assert len(r["perturbed_answer"]) == 3
            assert r["answer"] not in r["perturbed_answer"]
    questions = [q for q, _, _ in REAL_AUTHORS + WORLD_FACTS]
    assert len(set(questions)) == len(questions)


def test_tofu_data_builtin_is_read_like_a_local_tofu_copy(tmp_path):
    cfg = compose_config(
        [
            "task_name=t",
            "tofu_data=builtin",
            "builtin_data.authors=4",
            "builtin_data.seed=2",
            f"+builtin_data.cache_dir={tmp_path}",
        ],
        "eval.yaml",
    )
    source = tofu.TofuSource.from_config(cfg)
    assert source.is_local and str(tmp_path) in source.location
    expected = B.build_splits(4, seed=2)
    for split in ("full", "forget25", "retain75", "forget50_perturbed", "holdout25"):
        assert source.load(split) == expected[split]
    notes: list[str] = []
    data, _ = load_eval_data(source, "forget25", "holdout25", notes)  # validates every field
    assert len(data["forget"]) == 20 and len(data["holdout"]) == 20 and not notes
    info = json.loads(
        (tmp_path / next(p.name for p in tmp_path.iterdir()) / "builtin_info.json").read_text()
    )
    assert info["authors"] == 4 and info["seed"] == 2 and info["splits"]["full"] == 80
    # A second call reuses the folder (no rewrite).
    before = (tmp_path / source.location.split("/")[-1] / "full.json").stat().st_mtime_ns
    assert tofu.TofuSource.from_config(cfg).location == source.location
    assert (tmp_path / source.location.split("/")[-1] / "full.json").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "override, message",
    [
        ("builtin_data.authors=1", "must be >= 2"),
        ("builtin_data.authors=3", "no TOFU-style forget split"),
        ("+builtin_data.colour=red", "builtin_data.colour is not an option"),
        ("builtin_data.perturbed=0", "must be 1 .. 10"),
    ],
)
def test_bad_builtin_options_are_one_clear_error(override, message, tmp_path):
    cfg = compose_config(
        ["task_name=t", "tofu_data=builtin", f"+builtin_data.cache_dir={tmp_path}", override],
        "eval.yaml",
    )
    with pytest.raises(ConfigError, match=message):
        tofu.TofuSource.from_config(cfg)
