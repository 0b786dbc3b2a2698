"""``obliviate compare <sweep folder>`` along the CLI: rows from the points' files, the rule's
choice, attack and cost columns, and the written table, JSON and plot."""

from __future__ import annotations

import json
from pathlib import Path

from obliviate import cli


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def make_sweep(root: Path) -> Path:
    """Three finished points (the hand-worked case of test_select.py) and a target."""
    sweep = root / "saves/sweep/grid"
    points = []
    for beta, fq, mu, auc, seconds in (
        ("2.5", 0.5, 0.55, 0.61, 10.0),
        ("3.5", 0.9, 0.52, 0.55, 12.0),
        ("4.5", 0.2, 0.60, 0.70, 8.0),
    ):
        name = f"trainer.method_args.beta={beta}"
        write_json(
            sweep / name / "evals/TOFU_SUMMARY.json",
            {"forget_quality": fq, "model_utility": mu, "privleak": -5.0},
        )
        write_json(sweep / name / "evals/ATTACK_loss.json", {"summary": {"auc": auc}})
        eff = {"train_seconds": seconds, "seconds_per_step": seconds / 4, "tokens_per_second": 100.0,
               "peak_memory_mib": 512.0, "train_flops_estimate": 1.5e12}  # fmt: skip
        write_json(sweep / name / "receipt.json", {"efficiency": eff})
        points.append({"name": name, "overrides": [name], "run_dir": name, "status": "complete"})
    write_json(
        sweep / "sweep.json",
        {"task_name": "grid", "swept": ["trainer.method_args.beta"], "points": points},
    )
    write_json(root / "target/TOFU_SUMMARY.json", {"forget_quality": 1e-5, "model_utility": 0.56})
    return sweep


def test_compare_a_sweep_folder_marks_the_rules_choice(tmp_path, capsys):
    sweep = make_sweep(tmp_path)
    assert cli_compare([str(sweep), "--target", str(tmp_path / "target")]) == 0
    out = capsys.readouterr().out
    report = json.loads((sweep / "compare/comparison.json").read_text())
    # floor 0.95 x 0.56 = 0.532: beta=3.5 forgets best but keeps 0.52; beta=2.5 wins
    assert report["selected"] == "beta=2.5" and "**beta=2.5** ◀ selected" in out
    assert "model_utility >= 95% of the target's (0.532)" in out
    assert "attack/loss/auc" in report["columns"] and "s/step" in report["columns"]
    rows = {r["name"]: r for r in report["rows"]}
    assert rows["beta=3.5"]["attack/loss/auc"] == 0.55 and rows["beta=3.5"]["s/step"] == 3.0
    assert rows["target"]["kind"] == "target" and not rows["target"].get("selected")
    assert (sweep / "compare/comparison.png").stat().st_size > 1000
    assert "| target (reference) |" in (sweep / "compare/comparison.md").read_text()


def test_compare_sweep_errors_are_one_line(tmp_path, capsys):
    sweep = make_sweep(tmp_path)
    assert cli_compare([str(sweep), "--rule", "max:__import__('os')"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: --rule expression")


def cli_compare(args: list[str]) -> int:
    try:
        cli.main(["compare", *args])
    except SystemExit as e:
        return int(e.code or 0)
    return 0
