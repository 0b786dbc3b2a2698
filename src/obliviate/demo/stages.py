"""One step of a demo or comparison: a composed config run by the project's own entry code.

A :class:`Stage` is a config name plus Hydra overrides, exactly what ``src/train.py`` or
``src/eval.py`` would get on the command line. It runs through ``run_training`` / ``run_eval``
and leaves a ``demo_stage.json`` marker keyed on its inputs; a later run with the same inputs
finds the marker and the result and skips the work (models and evaluations are cached).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from obliviate.config import CONFIG_DIR  # noqa: F401  (re-exported for the demo)
from obliviate.launch import compose  # noqa: F401  (the one way to compose a config)
from obliviate.utils.io import atomic_write_json

MARKER = "demo_stage.json"
#: the file whose presence means a stage's result is complete
RESULT = {"train": "model.safetensors", "eval": "TOFU_EVAL.json"}


def _version() -> str:
    try:
        return metadata.version("obliviate")
    except metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class Stage:
    """A training run (``kind="train"``, config train/unlearn) or an evaluation (``"eval"``)."""

    label: str  # shown in the progress lines
    kind: str  # "train" or "eval"
    config_name: str  # "train", "unlearn" or "eval"
    overrides: list[str]
    out: Path  # paths.output_dir
    upstream: list[Stage] = field(default_factory=list)  # the stages whose output it reads
    #: fingerprints of the data files it reads (so regenerated data is never mistaken for old)
    inputs: dict[str, str] = field(default_factory=dict)
    overwrite: bool = True  # replace an old result in `out` when the inputs changed
    #: overrides that change only what is shown (progress bars), not the result: not in the key
    display: list[str] = field(default_factory=list)
    #: run an evaluation under bfloat16 autocast (weights stay float32; matrix products in bf16):
    #: about 2x faster on a CPU with native bf16, and part of the key (the numbers differ slightly)
    autocast_bf16: bool = False
    #: the file whose presence means an evaluation is complete (None = RESULT[kind])
    result_file: str | None = None
    cpu_seconds: float = field(default=0.0, init=False)  # of the last run
    seconds: float = field(default=0.0, init=False)  # wall time of the last run
    reused: bool = field(default=False, init=False)  # the last run found a cached result
    #: (seconds, CPU seconds) the cached result took when it was made, read from its marker
    cached_cost: tuple[float, float] | None = field(default=None, init=False)

    @property
    def key(self) -> str:
        blob = json.dumps(
            [
                self.kind,
                self.config_name,
                sorted(self.overrides),
                [u.key for u in self.upstream],
                self.inputs,
                _version(),
                *(["autocast_bf16"] if self.autocast_bf16 else []),
            ],
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def config(self) -> DictConfig:
        extra = [f"paths.output_dir={self.out}"]
        if self.overwrite:
            extra.append("overwrite=true")
        return compose(self.config_name, self.overrides + self.display + extra)

    def is_done(self) -> bool:
        marker = self.out / MARKER
        result = self.result_file or RESULT[self.kind]
        if not (marker.is_file() and (self.out / result).is_file()):
            return False
        try:
            return json.loads(marker.read_text()).get("key") == self.key
        except json.JSONDecodeError:
            return False

    def run(self, fresh: bool = False) -> tuple[Path, float, bool]:
        """Run (or reuse) the stage: ``(output folder, seconds, reused)``. The CPU seconds it
        used are in ``self.cpu_seconds`` (wall time alone misleads on a shared machine)."""
        self.cpu_seconds, self.seconds, self.reused = 0.0, 0.0, False
        if not fresh and self.is_done():
            self.reused = True
            marker = json.loads((self.out / MARKER).read_text())
            self.cached_cost = (marker.get("seconds", 0.0), marker.get("cpu_seconds", 0.0))
            return self.out, 0.0, True
        cfg = self.config()
        cpu0 = _cpu_seconds()
        t0 = time.perf_counter()
        if self.kind == "train":
            from obliviate.training import run_training

            run_training(cfg)
        else:
            from obliviate.eval.runner import run_eval

            with _autocast(self.autocast_bf16):
                run_eval(cfg)
        seconds = self.seconds = time.perf_counter() - t0
        self.cpu_seconds = _cpu_seconds() - cpu0
        atomic_write_json(
            self.out / MARKER,
            {
                "key": self.key,
                "label": self.label,
                "config_name": self.config_name,
                "overrides": self.overrides,
                "seconds": round(seconds, 1),
                "cpu_seconds": round(self.cpu_seconds, 1),
            },
        )
        return self.out, seconds, False


def _autocast(on: bool) -> Any:
    """bfloat16 autocast on this process's device type, or nothing."""
    import contextlib

    import torch

    if not on:
        return contextlib.nullcontext()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.autocast(device, dtype=torch.bfloat16)


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    import resource

    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def describe(stage: Stage) -> dict[str, Any]:
    """The stage as the command that reproduces it (for the report)."""
    # `obliviate train|eval` take src/train.py's / src/eval.py's arguments and work from any folder.
    command = "obliviate eval" if stage.kind == "eval" else "obliviate train"
    return {
        "label": stage.label,
        "reused": stage.reused,
        "seconds": round(stage.seconds, 1),
        "cpu_seconds": round(stage.cpu_seconds, 1),
        **(
            {"cached_seconds": stage.cached_cost[0], "cached_cpu_seconds": stage.cached_cost[1]}
            if stage.reused and stage.cached_cost
            else {}
        ),
        "command": f"{command} --config-name={stage.config_name}.yaml "
        + " ".join(stage.overrides + [f"paths.output_dir={stage.out}"]),
        **({"autocast": "bfloat16 (run by the demo in-process)"} if stage.autocast_bf16 else {}),
    }


def file_fingerprints(folder: str | Path | None, splits: list[str]) -> dict[str, str]:
    """sha256 (first 16 hex digits) of ``<folder>/<split>.json`` for each split that exists."""
    if folder is None:
        return {}
    out = {}
    for split in splits:
        path = Path(folder) / f"{split}.json"
        if path.is_file():
            out[split] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return out
