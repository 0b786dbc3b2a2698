"""TOFU split names, row validation, author-disjointness and missing files: all ConfigErrors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import TINY_TRAIN, compose_config, mini_tofu_rows, write_json_lines, write_mini_tofu
from obliviate.data import tofu
from obliviate.errors import ConfigError
from obliviate.training import run_training


@pytest.fixture
def no_model_loading(monkeypatch):
    """Make any attempt to load a model or tokenizer fail the test: the checks must come first."""

    def boom(*args, **kwargs):
        pytest.fail("a model/tokenizer was loaded before the config error was raised")

    monkeypatch.setattr("obliviate.training.load_model", boom)
    monkeypatch.setattr("obliviate.training.load_tokenizer", boom)


def unlearn_cfg(tmp_path: Path, data: Path | str, forget: str, retain: str, *extra: str):
    return compose_config(
        [
            "experiment=unlearn/tofu/default",
            *TINY_TRAIN,
            f"forget_split={forget}",
            f"retain_split={retain}",
            "task_name=t",
            f"tofu_data={data}",
            f"paths.output_dir={tmp_path / 'run'}",
            *extra,
        ]
    )


# ---- split names ----------------------------------------------------------------------------


def test_non_complementary_split_names_fail_before_data_or_model(tmp_path, no_model_loading):
    # Neither the data folder nor the model folder exists: reaching them would raise a
    # different error (or fail the test through no_model_loading).
    cfg = unlearn_cfg(
        tmp_path,
        tmp_path / "no-such-tofu",
        "forget10",
        "retain95",
        f"model.model_args.pretrained_model_name_or_path={tmp_path / 'no-such-model'}",
    )
    with pytest.raises(ConfigError) as e:
        run_training(cfg)
    msg = str(e.value)
    assert "forget10" in msg and "retain95" in msg
    assert "retain90" in msg  # says what forget10 pairs with
    assert "\n" not in msg
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "pair", [("forget01", "retain99"), ("forget05", "retain95"), ("forget10", "retain90")]
)
def test_complementary_split_names_pass(pair):
    tofu.check_split_pair(*pair)


@pytest.mark.parametrize(
    ("forget", "retain", "bad"),
    [
        ("forget1", "retain99", "forget1"),
        ("forget00", "retain99", "forget00"),
        ("forget10", "retain100", "retain100"),
        ("retain90", "forget10", "retain90"),
        ("forget10", "retain_90", "retain_90"),
    ],
)
def test_malformed_split_names_name_the_bad_split(forget, retain, bad):
    with pytest.raises(ConfigError, match=bad):
        tofu.check_split_pair(forget, retain)


def test_holdout_must_match_forget():
    tofu.check_holdout("forget10", "holdout10")
    tofu.check_holdout("forget10", None)
    with pytest.raises(ConfigError, match="holdout10"):
        tofu.check_holdout("forget10", "holdout05")


# ---- forget/retain are author-disjoint complements ------------------------------------------
# mini-TOFU: 5 authors in blocks of 20 rows; author k owns rows 20k .. 20k+19.


def test_disjoint_complement_passes():
    full = mini_tofu_rows()
    tofu.check_disjoint(full[80:], full[:80], full, ("forget20", "retain80"))


def test_shared_question_is_rejected():
    full = mini_tofu_rows()
    with pytest.raises(ConfigError, match="share 1 question"):
        tofu.check_disjoint(full[80:], full[:81], full, ("forget20", "retain80"))


def test_shared_question_is_rejected_even_without_full():
    full = mini_tofu_rows()
    with pytest.raises(ConfigError, match="share 1 question"):
        tofu.check_disjoint(full[80:], full[:81], None, ("forget20", "retain80"))


def test_author_in_both_splits_is_rejected():
    full = mini_tofu_rows()
    # Shift the forget window back by one row: no shared question, 20 + 80 rows = full, but
    # author 3 (row 79) is now in forget and author 4 (row 99) in retain.
    forget = full[79:99]
    retain = full[:79] + [full[99]]
    with pytest.raises(ConfigError, match=r"share author\(s\) \[3, 4\]"):
        tofu.check_disjoint(forget, retain, full, ("forget20", "retain80"))


def test_retain_must_be_the_complement():
    full = mini_tofu_rows()
    # forget = author 4, retain = authors 0-2 only: author 3 is in neither.
    with pytest.raises(ConfigError, match=r"20 rows.*60 rows.*!= full \(100 rows\)"):
        tofu.check_disjoint(full[80:], full[:60], full, ("forget20", "retain80"))


@pytest.mark.parametrize(
    ("split", "rows"),
    # TOFU: 200 authors x 20 questions; XX% of the authors = 40 XX rows
    [("forget01", 40), ("forget10", 400), ("retain90", 3600), ("retain99", 3960), ("full", 4000)],
)
def test_hub_split_sizes_follow_from_the_names(split, rows):
    assert tofu.nominal_rows(split, 200 * 20) == rows
    assert tofu.nominal_rows("holdout10", 4000) is None  # not a training split


@pytest.mark.slow  # the real TOFU copy beside the repository (../shared/tofu), not in a clone
def test_shared_tofu_splits_are_author_disjoint_complements(shared_tofu):
    src = tofu.TofuSource(str(shared_tofu))
    full = src.load("full")
    assert len(full) == 200 * 20
    forget, retain = src.load("forget01"), src.load("retain99")
    assert (len(forget), len(retain)) == (40, 3960)
    assert forget == full[-40:]  # forget01 = the last 1% of the authors
    tofu.check_disjoint(forget, retain, full, ("forget01", "retain99"))


# ---- row validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ({"answer": "An answer."}, "row 1 has no 'question'"),
        ({"question": "A question?"}, "row 1 has no 'answer'"),
        ({"question": "A question?", "answer": ""}, "row 1: 'answer' is empty"),
        ({"question": "A question?", "answer": "   \n"}, "row 1: 'answer' is empty"),
        ({"question": "", "answer": "An answer."}, "row 1: 'question' is empty"),
        ({"question": "A question?", "answer": None}, "row 1: 'answer' is empty"),
    ],
)
def test_bad_rows_in_a_json_lines_file_raise(tmp_path, row, pattern):
    write_json_lines(tmp_path / "forget20.json", [{"question": "Q0?", "answer": "A0."}, row])
    rows = tofu.TofuSource(str(tmp_path)).load("forget20")
    with pytest.raises(ConfigError, match=pattern) as e:
        tofu.validate_rows(rows, "forget20")
    assert "forget20" in str(e.value)


def test_empty_split_raises():
    with pytest.raises(ConfigError, match="'retain80' is empty"):
        tofu.validate_rows([], "retain80")


def test_invalid_json_line_names_file_and_line(tmp_path):
    (tmp_path / "full.json").write_text(
        '{"question": "Q?", "answer": "A."}\n{"question": "Q2?", \n'
    )
    with pytest.raises(ConfigError, match=r"full\.json:2 is not valid JSON"):
        tofu.TofuSource(str(tmp_path)).load("full")


def test_jsonl_suffix_and_blank_lines_are_read(tmp_path):
    rows = [{"question": "Q?", "answer": "A."}, {"question": "Q2?", "answer": "B."}]
    (tmp_path / "forget20.jsonl").write_text(json.dumps(rows[0]) + "\n\n" + json.dumps(rows[1]))
    assert tofu.TofuSource(str(tmp_path)).load("forget20") == rows


def test_empty_answer_fails_run_training_before_the_model(tmp_path, no_model_loading):
    data = write_mini_tofu(tmp_path / "tofu")
    rows = mini_tofu_rows()[80:]
    rows[5] = {**rows[5], "answer": " "}
    write_json_lines(data / "forget20.json", rows)
    with pytest.raises(ConfigError, match=r"split 'forget20' row 5: 'answer' is empty"):
        run_training(unlearn_cfg(tmp_path, data, "forget20", "retain80"))


# ---- missing files --------------------------------------------------------------------------


def test_missing_split_file_names_the_split(tmp_path):
    data = write_mini_tofu(tmp_path)
    (data / "retain80.json").unlink()
    # Only the missing split is listed.
    with pytest.raises(ConfigError, match=r"no file for split\(s\) retain80 \("):
        tofu.TofuSource(str(data)).check_folder(["forget20", "retain80", "full"])


def test_missing_split_file_fails_run_training_before_the_model(tmp_path, no_model_loading):
    data = write_mini_tofu(tmp_path / "tofu")
    (data / "full.json").unlink()
    with pytest.raises(ConfigError, match=r"no file for split\(s\) full"):
        run_training(unlearn_cfg(tmp_path, data, "forget20", "retain80"))
    assert not (tmp_path / "run").exists()


def test_tofu_data_that_is_not_a_folder(tmp_path, no_model_loading):
    with pytest.raises(ConfigError, match="is not a folder"):
        run_training(unlearn_cfg(tmp_path, tmp_path / "nowhere", "forget20", "retain80"))
