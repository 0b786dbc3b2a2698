"""Bad input fails fast: one ``error:`` line naming the value, exit status 2, and no result
file created or changed. Each case goes through the same launcher as ``src/train.py`` /
``src/eval.py`` (in-process, so the table stays fast)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from conftest import write_json_lines, write_mini_tofu
from obliviate.eval.runner import run_eval
from obliviate.launch import run
from obliviate.training import run_training

TRAIN_BASE = {
    "experiment": "unlearn/tofu/default",
    "trainer": "SimNPO",
    "model": "tiny",
    "forget_split": "forget20",
    "retain_split": "retain80",
    "task_name": "bad",
    "trainer.args.max_steps": "1",
    "trainer.args.per_device_train_batch_size": "2",
    "trainer.args.gradient_accumulation_steps": "1",
}


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def argv(config: str, base: dict[str, str], change: dict[str, str | None]) -> list[str]:
    merged = {**base, **change}
    return [f"--config-name={config}"] + [f"{k}={v}" for k, v in merged.items() if v is not None]


def expect_one_line_error(capsys, fn, config, args, needle: str, root: Path) -> None:
    before = snapshot(root)
    with pytest.raises(SystemExit) as exc:
        run(fn, default_config=config.removesuffix(".yaml"), argv=args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert needle in err[0], f"{needle!r} not in {err[0]!r}"
    assert snapshot(root) == before  # nothing new, nothing changed


@pytest.fixture
def world(tmp_path):
    """A mini-TOFU folder, a results root with one finished run, and some broken inputs."""
    data = write_mini_tofu(tmp_path / "tofu")
    root = tmp_path / "saves"
    done = root / "unlearn" / "done"
    done.mkdir(parents=True)
    (done / "model.safetensors").write_bytes(b"weights")
    (done / "trainer_log.txt").write_text("step=1 loss=1\n")
    empty_model = tmp_path / "empty_model"
    empty_model.mkdir()
    broken = tmp_path / "broken"
    write_mini_tofu(broken)
    rows = [json.loads(line) for line in (broken / "forget20.json").read_text().splitlines()]
    write_json_lines(broken / "forget20.json", [{"question": r["question"]} for r in rows])
    empty = tmp_path / "empty_answers"
    write_mini_tofu(empty)
    write_json_lines(empty / "retain80.json", [{"question": "Who?", "answer": "  "}] * 80)
    (tmp_path / "a_file").write_text("not a folder")
    return {
        "tmp": tmp_path,
        "data": data,
        "root": root,
        "empty_model": empty_model,
        "broken": broken,
        "empty": empty,
    }


TRAIN_CASES = [
    # (id, overrides, text the error line must contain)
    ("unknown trainer", {"trainer": "SimNOP"}, "trainer=SimNOP"),
    ("unknown model", {"model": "llama-1b"}, "model=llama-1b"),
    ("unknown experiment", {"experiment": "unlearn/tofu/defualt"}, "unlearn/tofu/defualt"),
    ("method arg typo", {"trainer.method_args.bta": "2"}, "bta"),
    ("beta zero", {"trainer.method_args.beta": "0"}, "beta=0"),
    ("gamma negative", {"trainer.method_args.gamma": "-1"}, "gamma=-1"),
    ("alpha negative", {"trainer.method_args.alpha": "-0.5"}, "alpha=-0.5"),
    ("retain loss type", {"trainer.method_args.retain_loss_type": "KLD"}, "KLD"),
    ("unknown forget split", {"forget_split": "forgot20"}, "forgot20"),
    ("mismatched splits", {"retain_split": "retain95"}, "retain95"),
    ("missing task_name", {"task_name": None}, "task_name"),
    ("max_steps zero", {"trainer.args.max_steps": "0"}, "max_steps=0"),
    ("trainer.args typo", {"trainer.args.learnig_rate": "1e-5"}, "learnig_rate"),
    ("unknown config key", {"forget_splt": "forget20"}, "forget_splt"),
    ("effective batch", {"trainer.effective_batch_size": "15"}, "effective_batch_size=15"),
    ("fuse flag", {"trainer.fuse_accumulation": "maybe"}, "maybe"),
    ("fuse count", {"trainer.fuse_accumulation": "3"}, "fuse_accumulation=3"),
    ("finetune under unlearn", {"trainer": "finetune"}, "train.yaml"),
    ("resume without checkpoints", {"trainer.args.resume_from_checkpoint": "true"}, "checkpoint"),
    # every numeric setting: a negative length, a zero batch, a step count below 1, ...
    ("negative max_length", {"data.max_length": "-1"}, "data.max_length=-1"),
    ("zero max_length", {"data.max_length": "0"}, "data.max_length=0"),
    ("zero batch", {"trainer.args.per_device_train_batch_size": "0"}, "per_device_train_batch_size=0"),
    ("zero eval batch", {"trainer.args.per_device_eval_batch_size": "0"}, "per_device_eval_batch_size=0"),
    ("zero accumulation", {"trainer.args.gradient_accumulation_steps": "0"}, "gradient_accumulation_steps=0"),
    ("max_steps below -1", {"trainer.args.max_steps": "-2"}, "max_steps=-2"),
    ("fractional max_steps", {"trainer.args.max_steps": "1.5"}, "max_steps=1.5"),
    ("logging_steps zero", {"trainer.args.logging_steps": "0"}, "logging_steps=0"),
    ("eval_steps zero", {"trainer.args.eval_steps": "0"}, "eval_steps=0"),
    ("save_steps negative", {"trainer.args.save_steps": "-5"}, "save_steps=-5"),
    ("negative epochs", {"trainer.args.num_train_epochs": "-1"}, "num_train_epochs=-1"),
    ("zero epochs", {"trainer.args.num_train_epochs": "0"}, "num_train_epochs=0"),
    ("negative warm-up epochs", {"trainer.args.warmup_epochs": "-1"}, "warmup_epochs=-1"),
    ("negative warm-up steps", {"trainer.args.warmup_epochs": None, "+trainer.args.warmup_steps": "-3"}, "warmup_steps=-3"),
    ("zero learning rate", {"trainer.args.learning_rate": "0"}, "learning_rate=0"),
    ("negative weight decay", {"trainer.args.weight_decay": "-0.1"}, "weight_decay=-0.1"),
    ("negative grad norm", {"trainer.args.max_grad_norm": "-1"}, "max_grad_norm=-1"),
    ("eval max_items zero", {"eval.max_items": "0"}, "eval.max_items=0"),
    ("eval utility_items zero", {"eval.utility_items": "0"}, "eval.utility_items=0"),
    ("eval negative new tokens", {"eval.max_new_tokens": "-1"}, "eval.max_new_tokens=-1"),
    ("eval batch zero", {"eval.batch_size": "0"}, "eval.batch_size=0"),
    ("eval generation batch zero", {"eval.generation_batch_size": "0"}, "eval.generation_batch_size=0"),
]


@pytest.mark.parametrize(("case", "change", "needle"), TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_bad_training_input(world, capsys, case, change, needle):
    base = {**TRAIN_BASE, "tofu_data": str(world["data"]), "paths.root": str(world["root"])}
    expect_one_line_error(
        capsys,
        run_training,
        "unlearn.yaml",
        argv("unlearn.yaml", base, change),
        needle,
        world["tmp"],
    )


@pytest.mark.parametrize(
    ("case", "change", "needle"),
    [
        ("existing run folder", {"task_name": "done"}, "overwrite=true"),
        (
            "model path missing",
            {"model.model_args.pretrained_model_name_or_path": "/nonexistent/model"},
            "/nonexistent/model",
        ),
        (
            "model folder without weights",
            {"model.model_args.pretrained_model_name_or_path": "EMPTY"},
            "no weights",
        ),
        ("tofu folder missing files", {"tofu_data": "TMP"}, "forget20"),
        ("rows without answer", {"tofu_data": "BROKEN"}, "'answer'"),
        ("empty answers", {"tofu_data": "EMPTY_ANSWERS"}, "'answer' is empty"),
        ("unwritable output", {"paths.root": "A_FILE"}, "not writable"),
        ("unknown config file", {}, "unlern"),
    ],
    ids=lambda x: x if isinstance(x, str) else None,
)
def test_bad_training_input_with_files(world, capsys, case, change, needle):
    subst = {
        "EMPTY": str(world["empty_model"]),
        "TMP": str(world["tmp"] / "nowhere_data"),
        "BROKEN": str(world["broken"]),
        "EMPTY_ANSWERS": str(world["empty"]),
        "A_FILE": str(world["tmp"] / "a_file" / "sub"),
    }
    (world["tmp"] / "nowhere_data").mkdir()
    change = {k: subst.get(v, v) for k, v in change.items()}
    base = {**TRAIN_BASE, "tofu_data": str(world["data"]), "paths.root": str(world["root"])}
    config = "unlern.yaml" if case == "unknown config file" else "unlearn.yaml"
    expect_one_line_error(
        capsys, run_training, "unlearn.yaml", argv(config, base, change), needle, world["tmp"]
    )


@pytest.fixture(scope="module")
def eval_data(tmp_path_factory) -> Path:
    """obliviate's built-in fictitious authors (5 authors: forget20 / holdout20 and the
    evaluation splits), written once outside the folders whose contents the tests compare."""
    from obliviate.data import builtin

    cache = tmp_path_factory.mktemp("builtin")
    return builtin.materialise(builtin.BuiltinOptions(cache_dir=str(cache)))


EVAL_CASES = [
    ({"holdout_split": "holdout40"}, "holdout40"),
    ({"retain_logs_path": "OTHER"}, "forget05"),
    ({"retain_logs_path": "MISSING"}, "missing.json"),
    ({"paths.output_dir": "OLD"}, "already holds results"),
    ({"forget_split": "forget02", "holdout_split": "holdout02"}, "forget02_perturbed"),
    ({"eval.max_new_tokens": "-1"}, "eval.max_new_tokens=-1"),
    ({"eval.max_new_tokens": "0"}, "eval.max_new_tokens=0"),
    ({"eval.batch_size": "0"}, "eval.batch_size=0"),
    ({"eval.generation_batch_size": "0"}, "eval.generation_batch_size=0"),
    ({"eval.max_items": "0"}, "eval.max_items=0"),
    ({"eval.utility_items": "-2"}, "eval.utility_items=-2"),
    ({"data.max_length": "-1"}, "data.max_length=-1"),
]


@pytest.mark.parametrize(("change", "needle"), EVAL_CASES, ids=[c[1] for c in EVAL_CASES])
def test_bad_evaluation_input(tmp_path, capsys, eval_data, change, needle):
    root = tmp_path
    old = root / "old_eval"
    old.mkdir()
    (old / "TOFU_EVAL.json").write_text("{}")
    other_split = root / "other.json"
    other_split.write_text(
        json.dumps(
            {
                "eval_info": {"forget_split": "forget05"},
                "forget_truth_ratio": {"value_by_index": {"0": {"score": 1.0}}},
            }
        )
    )
    base = {
        "experiment": "eval/tofu/default",
        "model": "tiny",
        "tofu_data": str(eval_data),
        "forget_split": "forget20",
        "holdout_split": "holdout20",
        "task_name": "e",
        "paths.output_dir": str(root / "new_eval"),
    }
    subst = {"OTHER": str(other_split), "MISSING": str(root / "missing.json"), "OLD": str(old)}
    change = {k: subst.get(v, v) for k, v in change.items()}
    expect_one_line_error(
        capsys, run_eval, "eval.yaml", argv("eval.yaml", base, change), needle, root
    )
