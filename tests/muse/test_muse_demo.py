"""The MUSE demo's report: verdicts say what the numbers show, the table holds every row."""

from __future__ import annotations

import pytest

from obliviate.demo import muse_report as R
from obliviate.demo.muse import MuseDemoOptions, stage_overrides
from obliviate.errors import ConfigError


def row(name, verbmem, knowmem_f, knowmem_r, privleak=None):
    return {
        "name": name,
        "forget_verbmem_ROUGE": verbmem,
        "forget_knowmem_ROUGE": knowmem_f,
        "retain_knowmem_ROUGE": knowmem_r,
        "extraction_strength": 0.1,
        "mia_min_k": 0.6,
        "privleak": privleak,
    }


def test_verdicts_compare_each_method_with_the_target():
    rows = [
        row("target", 0.9, 0.5, 0.5, -80.0),
        row("retain", 0.2, 0.1, 0.5),
        row("SimNPO", 0.3, 0.1, 0.4, -5.0),
        row("NPO", 0.95, 0.5, 0.5, -81.0),
    ]
    lines = R.verdicts(rows)
    assert lines[0].startswith(
        "target memorises the forget articles: verbmem 0.900 vs the retain model's 0.200 (yes)"
    )
    assert lines[1] == (
        "SimNPO: verbmem 0.900 -> 0.300, knowmem forget 0.500 -> 0.100, knowmem retain 0.500 -> 0.400"
    )
    assert lines[2].endswith("(verbmem NOT lowered)")
    report = R.build(rows, {"title": "t", "model": "m", "data": "d", "wall_seconds": 1.0})
    table = R.markdown(report)
    assert "| SimNPO | 0.300 | 0.100 | 0.400 | 0.100 | 0.600 | -5.000 |" in table
    assert "| retain | 0.200 | 0.100 | 0.500 | 0.100 | 0.600 | null |" in table


def test_options_are_checked_and_reach_every_stage():
    with pytest.raises(ConfigError, match="--articles 3 must be >= 4"):
        MuseDemoOptions(articles=3).validate()
    with pytest.raises(ConfigError, match="--method-lr RMU=LR"):
        MuseDemoOptions(methods=("RMU",)).validate()
    ov = stage_overrides(MuseDemoOptions(articles=5, seed=2, bf16="off"))
    assert {"muse_data=builtin", "builtin_muse.forget=5", "builtin_muse.seed=2"} <= set(
        ov["common"]
    )
    assert "trainer.args.bf16=false" in ov["training"]
