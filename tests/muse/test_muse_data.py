"""MUSE data sources: a local folder in the documented layout, the Hub path (never downloaded
here: the loader is replaced), Column objects, and one clear error per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from obliviate.data.builtin_muse import build_muse_splits
from obliviate.data.muse import MuseData, MuseTrainingSource, as_rows
from obliviate.errors import ConfigError

SPLITS = build_muse_splits()


def write_folder(root: Path, splits=SPLITS) -> Path:
    for config, by_split in splits.items():
        (root / config).mkdir(parents=True, exist_ok=True)
        for split, rows in by_split.items():
            lines = "".join(json.dumps(r) + "\n" for r in rows)
            (root / config / f"{split}.jsonl").write_text(lines)
    return root


def test_a_folder_in_the_hub_layout_reads_back_every_split(tmp_path):
    data = MuseData(str(write_folder(tmp_path)), "News")
    for config, by_split in SPLITS.items():
        for split, rows in by_split.items():
            assert data.load(config, split) == rows


def test_folder_problems_are_one_clear_error_each(tmp_path):
    root = write_folder(tmp_path / "m")
    (root / "verbmem" / "forget.jsonl").unlink()
    with pytest.raises(ConfigError, match=r"has no verbmem/forget.jsonl"):
        MuseData(str(root), "News").check([("raw", "forget"), ("verbmem", "forget")])
    (root / "raw" / "holdout.jsonl").write_text("")
    with pytest.raises(ConfigError, match=r"MUSE split raw/holdout is empty"):
        MuseData(str(root), "News").load("raw", "holdout")
    (root / "knowmem" / "forget_qa.jsonl").write_text(json.dumps({"question": "q?"}) + "\n")
    with pytest.raises(ConfigError, match=r"knowmem/forget_qa row 0 has no 'answer' field"):
        MuseData(str(root), "News").load("knowmem", "forget_qa")
    with pytest.raises(ConfigError, match="MUSE has no split raw/retain3"):
        MuseData(str(root), "News").check([("raw", "retain3")])
    with pytest.raises(ConfigError, match="is not a folder"):
        MuseData(str(tmp_path / "nowhere"), "News").check([("raw", "forget")])
    with pytest.raises(ConfigError, match="data_split='news' is not a MUSE corpus"):
        MuseData.from_config({"muse_data": "hub", "data_split": "news"})


class Column:
    """What newer ``datasets`` return for ``ds[name]``: iterable, not a list."""

    def __init__(self, values):
        self._values = values

    def __iter__(self):
        return iter(self._values)


class FakeDataset:
    column_names = ["question", "answer"]

    def __getitem__(self, name):
        return Column([f"{name} {i}" for i in range(2)])


def test_hub_rows_are_plain_dicts_even_from_column_objects(monkeypatch):
    calls = []

    def fake_load(path, name, split):
        calls.append((path, name, split))
        return FakeDataset()

    monkeypatch.setattr("datasets.load_dataset", fake_load)
    rows = MuseData("hub", "Books").load("knowmem", "retain_qa")
    assert calls == [("muse-bench/MUSE-Books", "knowmem", "retain_qa")]
    assert rows == [
        {"question": "question 0", "answer": "answer 0"},
        {"question": "question 1", "answer": "answer 1"},
    ]
    assert as_rows([{"text": "a"}]) == [{"text": "a"}]


def test_no_hub_access_says_how_to_work_offline(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr("datasets.load_dataset", offline)
    with pytest.raises(ConfigError, match="muse_data=<folder> or muse_data=builtin"):
        MuseData("hub", "News").load("raw", "forget")


def source(mode: str, **keys):
    from conftest import compose_config

    experiment = "unlearn" if mode == "unlearn" else "finetune"
    name = "unlearn.yaml" if mode == "unlearn" else "train.yaml"
    over = [f"experiment={experiment}/muse/default", "task_name=t", "muse_data=builtin"]
    over += [f"{k}={v}" for k, v in keys.items()]
    return MuseTrainingSource(compose_config(over, name))


def test_training_splits_map_to_muse_texts():
    target = source("finetune").load_texts("full")
    assert len(target) == 24  # forget + retain1 + retain2
    assert len(source("finetune").load_texts("retain")) == 16
    scal = source("unlearn", forget_config="scal", forget_split="forget_2")
    assert scal.load_texts("forget_2") == SPLITS["scal"]["forget_2"]
    with pytest.raises(ConfigError, match="train_split='all' is not a MUSE training split"):
        source("finetune").parts("all", "finetune")
    with pytest.raises(ConfigError, match="retain_split='retain' is not a MUSE retain split"):
        source("unlearn").parts("retain", "unlearn")
