"""Refusal answers for IdkDPO: the package's own sentences, a user's file, and a seeded draw."""

from __future__ import annotations

import json

import pytest

from obliviate.data.idk import REFUSALS, load_refusals, refusal_rows
from obliviate.errors import ConfigError


def test_builtin_refusals_are_many_distinct_sentences():
    assert 30 <= len(REFUSALS) <= 100
    assert len(set(REFUSALS)) == len(REFUSALS)
    assert all(s == s.strip() and s[-1] in ".!" for s in REFUSALS)
    assert load_refusals(None) == list(REFUSALS)


def test_user_file_plain_lines_json_lines_and_comments(tmp_path):
    f = tmp_path / "idk.txt"
    f.write_text(
        "# my refusals\n"
        "No clue.\n"
        "\n"
        + json.dumps("Can't say.")
        + "\n"
        + json.dumps({"text": "Not known to me."})
        + "\n"
        + "{not json} kept as text\n",
        encoding="utf-8",
    )
    assert load_refusals(f) == [
        "No clue.",
        "Can't say.",
        "Not known to me.",
        "{not json} kept as text",
    ]


def test_empty_or_missing_file_is_an_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no sentences"):
        load_refusals(empty)
    with pytest.raises(ConfigError, match="does not exist"):
        load_refusals(tmp_path / "missing.txt")


def test_refusal_rows_keep_questions_and_repeat_with_the_seed():
    rows = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(50)]
    a = refusal_rows(rows, list(REFUSALS), seed=3)
    assert [r["question"] for r in a] == [r["question"] for r in rows]
    assert all(r["answer"] in REFUSALS for r in a)
    assert a == refusal_rows(rows, list(REFUSALS), seed=3)
    assert a != refusal_rows(rows, list(REFUSALS), seed=4)
    assert len({r["answer"] for r in a}) > 10  # varied, not one sentence for all
    assert rows[0]["answer"] == "a0"  # the input is not modified
