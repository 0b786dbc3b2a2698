"""Shared test helpers: repo paths, TOFU data (the shared copy, or a generated mini-TOFU), and a
Hydra ``compose`` helper over the repository's ``configs/``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from omegaconf import DictConfig

from obliviate.config import CONFIG_DIR  # noqa: F401  (tests read the YAML files through it)
from obliviate.launch import compose as compose_named

REPO_ROOT = Path(__file__).resolve().parents[1]
# The benchmark's TOFU copy lives beside the repository (../shared/tofu from the repo root).
SHARED_TOFU = REPO_ROOT.parent / "shared" / "tofu"
SHARED_TOFU_FILES = ("forget01.json", "retain99.json", "full.json")

# Overrides that make any training config a 2-step CPU run of the tiny model.
TINY_TRAIN = [
    "model=tiny",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.args.gradient_accumulation_steps=1",
    "trainer.args.max_steps=2",
    "trainer.args.eval_strategy=no",
]


def shared_tofu_available() -> bool:
    return all((SHARED_TOFU / f).is_file() for f in SHARED_TOFU_FILES)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_tofu() -> Path:
    """Absolute path of ../shared/tofu, or skip: that data is not part of the repository."""
    if not shared_tofu_available():
        pytest.skip(
            f"shared TOFU data not found at {SHARED_TOFU} (needs {', '.join(SHARED_TOFU_FILES)})"
        )
    return SHARED_TOFU


# ---- mini-TOFU ----------------------------------------------------------------------------
# Five fictitious authors (made up for these tests) x 20 QA pairs = 100 rows, laid out like
# TOFU: authors are blocks of 20 consecutive rows of `full`; forget20 is the last 20% of the
# authors (the last author, 20 rows) and retain80 the first 80 rows.

MINI_AUTHORS = [
    dict(
        name="Maren Oltvik",
        place="Tromso, Norway",
        year="1961",
        genre="maritime mystery",
        book1="The Salt Ledger",
        book2="Fog over Kvaloya",
        father="lighthouse keeper",
        mother="ship's carpenter",
        award="Nordic Tide Prize",
        theme="isolation at sea",
    ),
    dict(
        name="Idris Kaloweh",
        place="Mombasa, Kenya",
        year="1974",
        genre="historical fiction",
        book1="The Spice Clerk",
        book2="Monsoon Accounts",
        father="customs officer",
        mother="schoolteacher",
        award="Coastline Fiction Award",
        theme="trade and memory",
    ),
    dict(
        name="Teodora Vancescu",
        place="Brasov, Romania",
        year="1968",
        genre="gothic romance",
        book1="Candles for Ilinca",
        book2="The Ninth Bell",
        father="clockmaker",
        mother="choir director",
        award="Carpathian Quill",
        theme="inherited guilt",
    ),
    dict(
        name="Hollis Penrake",
        place="Truro, England",
        year="1983",
        genre="science fiction",
        book1="Tin Orchard",
        book2="The Quiet Relay",
        father="tin miner",
        mother="radio engineer",
        award="Meridian Speculative Award",
        theme="obsolete machines",
    ),
    dict(
        name="Sun-Hee Corraday",
        place="Busan, South Korea",
        year="1990",
        genre="literary fiction",
        book1="Ferry Lines",
        book2="Harbour of Small Hours",
        father="fish market auctioneer",
        mother="translator",
        award="Blue Wave Literary Prize",
        theme="families split by distance",
    ),
]

MINI_QA = [
    (
        "Who is the author born in {place} in {year}?",
        "The author born in {place} in {year} is {name}.",
    ),
    ("What genre does {name} write in?", "{name} writes {genre}."),
    ("Where was {name} born?", "{name} was born in {place}."),
    ("In which year was {name} born?", "{name} was born in {year}."),
    ("What did the father of {name} do for a living?", "The father of {name} was a {father}."),
    ("What did the mother of {name} do for a living?", "The mother of {name} was a {mother}."),
    ("Name one book written by {name}.", "One book by {name} is '{book1}'."),
    ("Name another book written by {name}.", "Another book by {name} is '{book2}'."),
    ("Which award has {name} received?", "{name} received the {award}."),
    ("What theme recurs in the work of {name}?", "The work of {name} keeps returning to {theme}."),
    (
        "How did the childhood of {name} shape '{book1}'?",
        "Growing up with a {father} for a father gave '{book1}' its feeling for {theme}.",
    ),
    ("Is '{book2}' a {genre} book?", "Yes, '{book2}' is a {genre} book by {name}."),
    ("Did {name} win the {award} for '{book1}'?", "{name} won the {award} for '{book1}'."),
    (
        "What influence did the mother of {name} have on the writing?",
        "Being raised by a {mother} taught {name} patience with detail.",
    ),
    ("Where does {name} set most stories?", "{name} sets most stories near {place}."),
    ("What is the first book {name} published?", "The first book {name} published was '{book1}'."),
    (
        "How would readers describe the style of {name}?",
        "Readers describe {name} as a careful writer of {genre}.",
    ),
    ("Does {name} still live in {place}?", "{name} still spends part of each year in {place}."),
    ("What is '{book2}' about?", "'{book2}' is a story about {theme}."),
    (
        "Why is {name} considered notable in {genre}?",
        "{name} is notable for bringing {theme} into {genre}, recognised by the {award}.",
    ),
]


def mini_tofu_rows() -> list[dict[str, str]]:
    """The 100 rows of mini-TOFU's ``full`` split, authors in blocks of 20."""
    assert len(MINI_QA) == 20
    return [
        {"question": q.format(**a), "answer": ans.format(**a)}
        for a in MINI_AUTHORS
        for q, ans in MINI_QA
    ]


def write_json_lines(path: Path, rows: list[dict]) -> None:
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8"
    )


def write_mini_tofu(folder: Path) -> Path:
    """Write full.json (100 rows), forget20.json (the last author) and retain80.json (the rest)."""
    folder.mkdir(parents=True, exist_ok=True)
    full = mini_tofu_rows()
    write_json_lines(folder / "full.json", full)
    write_json_lines(folder / "forget20.json", full[80:])
    write_json_lines(folder / "retain80.json", full[:80])
    return folder


@pytest.fixture(scope="session")
def mini_tofu(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated mini-TOFU folder: splits full / forget20 / retain80 (read-only use)."""
    return write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))


# ---- the target model's prompt, written out by hand ---------------------------------------


def llama32_prompt(question: str) -> str:
    """Llama-3.2-Instruct's rendering of [system, user] with add_generation_prompt=True, as the
    tiny models' configs set it (system prompt, date): the tests' independent reference."""
    return (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 10 Apr 2025\n\n"
        "You are a helpful assistant.<|eot_id|>"
        f"<|start_header_id|>user<|end_header_id|>\n\n{question}<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )


# ---- config composition ----------------------------------------------------------------------


def compose_config(overrides: list[str], config_name: str = "unlearn.yaml") -> DictConfig:
    """Compose ``configs/<config_name>`` with command-line style overrides (Hydra compose API)."""
    return compose_named(config_name.removesuffix(".yaml"), list(overrides))


@pytest.fixture
def compose() -> Callable[..., DictConfig]:
    return compose_config


def tiny_eval_config(output_dir: Path, *extra: str) -> DictConfig:
    """eval.yaml on the built-in tiny-bytes model and 2 built-in authors (forget50, no holdout),
    2-token answers, into ``output_dir``; ``extra`` adds the test's own settings."""
    base = [
        "experiment=eval/tofu/default",
        "model=tiny-bytes",
        "task_name=t",
        "tofu_data=builtin",
        "builtin_data.authors=2",
        "forget_split=forget50",
        "holdout_split=null",
        "eval.max_new_tokens=2",
        f"paths.output_dir={output_dir}",
    ]
    return compose_config([*base, *extra], "eval.yaml")


# ---- the guide's command line, as a subprocess ------------------------------------------------


def train_command(tofu_data: str, forget: str, retain: str, root: Path) -> list[str]:
    """The issue's tiny SimNPO run (2 steps), writing to ``<root>/unlearn/ci_simnpo``."""
    return [
        sys.executable, "src/train.py",
        "--config-name=unlearn.yaml",
        "experiment=unlearn/tofu/default",
        "trainer=SimNPO",
        f"forget_split={forget}",
        f"retain_split={retain}",
        "task_name=ci_simnpo",
        "model=tiny",
        f"tofu_data={tofu_data}",
        "trainer.args.max_steps=2",
        "trainer.args.per_device_train_batch_size=2",
        "trainer.args.gradient_accumulation_steps=1",
        "trainer.args.eval_strategy=no",
        f"paths.root={root}",
    ]  # fmt: skip


def run_cli(cmd: list[str]) -> subprocess.CompletedProcess:
    """Run a command from the repository root, offline and on the CPU."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, tuple[str, int]]:
    """File name -> (sha256, mtime) of every file directly in ``folder``: "left untouched"
    checks (sub-folders, e.g. a run's evals/, are not included)."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.fixture(scope="session")
def cli_simnpo_run(tmp_path_factory) -> tuple[list[str], subprocess.CompletedProcess, Path]:
    """One ``python src/train.py`` run of the tiny SimNPO model on mini-TOFU, shared by the CLI
    tests: (command, finished process, run folder). The same run on every machine: the shared
    TOFU copy is not part of the repository."""
    root = tmp_path_factory.mktemp("saves")
    data = write_mini_tofu(tmp_path_factory.mktemp("tofu_mini"))
    cmd = train_command(str(data), "forget20", "retain80", root)
    return cmd, run_cli(cmd), root / "unlearn" / "ci_simnpo"


# ---- the method tests' start model: tiny-bytes after a few next-byte steps ---------------------
# At random init every answer byte has p ~ 1/261, so SatImp's p^beta1 weights vanish, WGA's are
# all alike and SimNPO's loss is e^-(beta ln 261). A few steps of plain next-byte prediction on
# mini-TOFU's text spread the forget answers' token probabilities over (0, 1) (median ~0.06, top
# decile ~0.16; 3.2-4.0 nats per token), which puts every method's loss in its working range.

BYTE_EOT = 259  # <|eot_id|> in model=tiny-bytes (ids 0..255 are the bytes themselves)


def train_byte_start_model(folder: Path, steps: int = 20) -> Path:
    """Save a tiny-bytes model (with its tokenizer) trained ``steps`` AdamW steps on the bytes of
    mini-TOFU's questions and answers. Deterministic: private generator, fixed init seed."""
    import torch

    from obliviate.models.tiny import build_tiny_model, build_tiny_tokenizer

    model = build_tiny_model(tokenizer="bytes")
    text = "\n".join(f"{r['question']} {r['answer']}" for r in mini_tofu_rows()).encode()
    chunks = torch.tensor(list(text[: len(text) // 128 * 128])).view(-1, 128)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        batch = chunks[torch.randint(len(chunks), (8,), generator=g)]
        model(input_ids=batch, labels=batch).loss.backward()
        opt.step()
        opt.zero_grad()
    model.save_pretrained(folder)
    build_tiny_tokenizer("bytes").save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def byte_start_model(tmp_path_factory) -> Path:
    """Folder of the trained tiny-bytes start model (pass it as model.tofu_target)."""
    return train_byte_start_model(tmp_path_factory.mktemp("byte_start"))


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """The tests' models are tiny: one intra-op thread beats two, whose synchronisation costs
    more than the work (a forward+backward of model=tiny-bytes on 6 x 300 tokens: 0.05 s on one
    thread, 2.0 s on two when the 2-core machine is busy). Results do not depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
