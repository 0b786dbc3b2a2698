"""A run's receipt: what produced its numbers (versions, hardware, seed, data checksums)."""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = (
    "obliviate",
    "torch",
    "transformers",
    "accelerate",
    "datasets",
    "hydra-core",
    "rouge-score",
    "scipy",
    "numpy",
)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def hardware() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "hostname": socket.gethostname(),
        "cpu_count": __import__("os").cpu_count(),
        "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["cuda_devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
        info["cuda_version"] = torch.version.cuda
    return info


def rows_sha256(rows: list[dict[str, Any]]) -> str:
    """Content hash of a split's rows, identical whether they came from the Hub or a local file."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False).encode())
        h.update(b"\n")
    return h.hexdigest()


def weights_fingerprint(model_dir: str | Path) -> dict[str, Any] | None:
    """Hash of the weight files' names and sizes in a local model folder (cheap, catches swaps)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return None
    files = sorted(p for p in model_dir.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf"})
    h = hashlib.sha256()
    for p in files:
        h.update(f"{p.name}:{p.stat().st_size}\n".encode())
    return {"files": [p.name for p in files], "sha256_names_sizes": h.hexdigest()}


def code_version() -> dict[str, Any]:
    """The package version and a hash of the code that ran: every ``.py`` and ``.yaml`` file of
    the installed ``obliviate`` package (an edit that the version number does not show still
    changes the hash; sweeps compare it to decide whether a finished point can be reused)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".yaml") and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return {"obliviate": package_versions()["obliviate"], "source_sha256": h.hexdigest()}


def make_receipt(seed: int, data_checksums: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "seed": seed,
        "versions": package_versions(),
        "code": code_version(),
        "hardware": hardware(),
        "data_sha256": data_checksums,
        **extra,
    }
