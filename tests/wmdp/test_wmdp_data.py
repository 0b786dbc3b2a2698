"""The WMDP corpora are read as their formats are, chunked like every text corpus, and a
missing or gated corpus fails in one line that says what to do."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import compose_config
from obliviate.data import builtin_wmdp
from obliviate.data.wmdp import WmdpTrainingSource, materialise_builtin, read_corpus
from obliviate.errors import ConfigError
from obliviate.methods.rmu import RMU
from obliviate.models.tiny import build_tiny_tokenizer
from obliviate.training import preflight

LONG = (
    "Protocol details that are long enough to pass the reference code's length filter, number {}."
)


def write_corpora(folder, split="cyber", bio_rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    if bio_rows is not None:
        (folder / "bio-forget-corpus.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in bio_rows), encoding="utf-8"
        )
    (folder / f"{split}-forget-corpus.jsonl").write_text(
        LONG.format(1) + "\n\nshort line\n" + '{"text": "' + LONG.format(2) + '"}\n', "utf-8"
    )
    (folder / f"{split}-retain-corpus.jsonl").write_text(LONG.format(3) + "\n", "utf-8")
    return folder


def cfg_for(folder, *extra):
    return compose_config(
        [
            "experiment=unlearn/wmdp/default",
            f"wmdp_data={folder}",
            "model=tiny-bytes",
            "task_name=t",
            "trainer.method_args.layer=1",
            *extra,
        ]
    )


def test_bio_forget_is_json_lines_the_others_plain_lines(tmp_path):
    folder = write_corpora(
        tmp_path / "w",
        bio_rows=[
            {"title": "T1", "abstract": "A1", "text": LONG.format("b1"), "doi": "10.1/x"},
            {"title": "T2", "abstract": "A2", "text": "too short", "doi": "10.1/y"},
        ],
    )
    assert read_corpus(folder / "bio-forget-corpus.jsonl", "bio-forget-corpus") == [
        LONG.format("b1")  # the text field only: no JSON syntax, title or DOI
    ]
    # plain lines as they are (a JSON-looking line too: that corpus is not JSON), blank and
    # <= 50-character lines dropped
    assert read_corpus(folder / "cyber-forget-corpus.jsonl", "cyber-forget-corpus") == [
        LONG.format(1),
        '{"text": "' + LONG.format(2) + '"}',
    ]


def test_bad_json_line_is_named(tmp_path):
    path = tmp_path / "bio-forget-corpus.jsonl"
    path.write_text('{"text": "ok"}\nnot json\n', "utf-8")
    with pytest.raises(ConfigError, match=r"bio-forget-corpus.jsonl:2 is not valid JSON"):
        read_corpus(path, "bio-forget-corpus")


def test_preflight_names_the_gated_bio_corpus(tmp_path):
    folder = write_corpora(tmp_path / "w", split="bio")
    (folder / "bio-forget-corpus.jsonl").unlink(missing_ok=True)
    with pytest.raises(ConfigError, match=r"no bio-forget-corpus\.jsonl; the WMDP bio forget corpus is gated: request access at https://huggingface\.co/datasets/cais/wmdp-bio-forget-corpus"):  # fmt: skip
        preflight(cfg_for(folder, "data_split=bio"))


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("data_split=chem", "data_split='chem' is not a WMDP corpus"),
        ("retain_split=bio-retain-corpus", "retain_split='bio-retain-corpus'; use cyber-retain-corpus or wikitext"),
        ("retain_split=wikitext", "no wikitext.jsonl; save wikitext-2-raw-v1's test split"),
        ("wmdp_data=/nonexistent/wmdp", "wmdp_data='/nonexistent/wmdp' is not a folder"),
    ],
)  # fmt: skip
def test_bad_wmdp_settings_fail_before_loading(tmp_path, override, needle):
    folder = write_corpora(tmp_path / "w")
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        preflight(cfg_for(folder, override))


def test_chunks_hold_the_corpus_text(tmp_path):
    """Forget rows -> 64-token chunks (BOS + 63 text tokens) whose text is the corpus's."""
    folder = write_corpora(tmp_path / "w")
    cfg = cfg_for(folder, "data.max_length=64")
    source = WmdpTrainingSource(cfg)
    rows = source.load(source.splits("unlearn"), "unlearn")
    tok = source.prepare_tokenizer(build_tiny_tokenizer("bytes"))
    chunks = source.encoder(tok)(rows["cyber-forget-corpus"])
    assert all(len(c["input_ids"]) <= 64 for c in chunks) and len(chunks[0]["input_ids"]) == 64
    text = b"".join(bytes(c["input_ids"][1:]) for c in chunks).decode()
    assert text == LONG.format(1) + "\n\n" + '{"text": "' + LONG.format(2) + '"}'
    assert preflight(cfg).method_cls is RMU


def test_builtin_corpora_and_questions_agree():
    folder = materialise_builtin()
    forget = read_corpus(folder / "bio-forget-corpus.jsonl", "bio-forget-corpus")
    assert forget == read_corpus(folder / "cyber-forget-corpus.jsonl", "cyber-forget-corpus")
    retain = read_corpus(folder / "cyber-retain-corpus.jsonl", "cyber-retain-corpus")
    for task, corpus in (("builtin_hazard", forget), ("builtin_retain", retain)):
        items = builtin_wmdp.task_items(task)
        # every question's true answer is stated in its corpus; no false choice is
        for it in items:
            true = it["choices"][it["answer"]]
            assert any(it["question"] in t and true in t for t in corpus)
        # the answer letters are balanced (each within one of n/4)
        counts = Counter(it["answer"] for it in items)
        assert max(counts.values()) - min(counts.values()) <= 1
    assert not set(forget) & set(retain)
    assert builtin_wmdp.task_items("builtin_authors") == builtin_wmdp.task_items("builtin_authors")
