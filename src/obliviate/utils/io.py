"""Small file helpers: atomic writes and the "never overwrite results silently" guard."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from obliviate.errors import ConfigError


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old file or the whole new one.

    A crash (or a full disk) mid-write leaves only a temp file behind, never a truncated result
    that looks complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(
        path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"
    )


def _json_default(obj: Any) -> Any:
    # numpy scalars / arrays and Paths show up in metric dicts and receipts.
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def guard_output_dir(path: str | os.PathLike, markers: Iterable[str], overwrite: bool) -> Path:
    """Refuse to write into ``path`` if it already holds any of ``markers`` (result files).

    Called before any model is loaded, so a forgotten ``overwrite=true`` costs nothing.
    """
    path = Path(path)
    found = [m for m in markers if (path / m).exists()]
    if found and not overwrite:
        raise ConfigError(
            f"output directory '{path}' already holds results ({', '.join(found)}); "
            "pass overwrite=true to replace them, or choose another task_name / paths.output_dir"
        )
    return path


#: the file ``check_writable`` creates and removes (other ranks may glimpse it)
WRITE_PROBE = ".write_test"


def check_writable(path: str | os.PathLike) -> None:
    """Fail early (before training) if the output directory cannot be created or written."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / WRITE_PROBE
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError(
            f"output directory '{path}' is not writable ({e.strerror}); choose another paths.output_dir"
        ) from e


def read_json_lines(path: Path, hint: str = "expected JSON lines") -> list[dict[str, Any]]:
    """Rows of a JSON-lines file (blank lines skipped); a bad line is a ConfigError naming the
    file and line, followed by ``hint`` (what the file should be)."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{n} is not valid JSON ({e.msg}); {hint}") from e
    return rows
