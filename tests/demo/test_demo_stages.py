"""A demo stage's own behaviour, without a model: evaluations run under bf16 autocast when asked
(and only then), the setting is part of the cache key, and a reused stage reports what it cost
when it was made."""

from __future__ import annotations

import json

import pytest
import torch

from obliviate.demo import stages as S


def eval_stage(tmp_path, autocast: bool) -> S.Stage:
    return S.Stage(
        "evaluate", "eval", "eval", ["task_name=t", "model=tiny"], tmp_path / "ev",
        autocast_bf16=autocast,
    )  # fmt: skip


@pytest.mark.parametrize("autocast", [True, False])
def test_evaluation_runs_under_autocast_only_when_asked(tmp_path, monkeypatch, autocast):
    seen = {}

    def fake_run_eval(cfg):
        seen["on"] = torch.is_autocast_enabled("cpu")
        seen["dtype"] = torch.get_autocast_dtype("cpu")
        (tmp_path / "ev").mkdir(parents=True, exist_ok=True)
        (tmp_path / "ev" / "TOFU_EVAL.json").write_text("{}")

    monkeypatch.setattr("obliviate.eval.runner.run_eval", fake_run_eval)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    stage = eval_stage(tmp_path, autocast)
    stage.run(fresh=True)
    assert seen["on"] is autocast
    if autocast:
        assert seen["dtype"] == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")  # switched off again after the stage


def test_autocast_is_part_of_the_cache_key(tmp_path):
    assert eval_stage(tmp_path, True).key != eval_stage(tmp_path, False).key


def test_a_reused_stage_reports_the_cost_recorded_when_it_ran(tmp_path):
    stage = eval_stage(tmp_path, False)
    stage.out.mkdir(parents=True)
    (stage.out / "TOFU_EVAL.json").write_text("{}")
    marker = {"key": stage.key, "seconds": 41.5, "cpu_seconds": 80.25}
    (stage.out / S.MARKER).write_text(json.dumps(marker))
    out, seconds, reused = stage.run()
    assert (out, seconds, reused) == (stage.out, 0.0, True)
    described = S.describe(stage)
    assert described["reused"] is True and described["seconds"] == 0.0
    assert (described["cached_seconds"], described["cached_cpu_seconds"]) == (41.5, 80.25)


def test_the_default_demo_forgets_at_least_40_items_and_keeps_3_authors():
    """The issue's floor for a KS p-value that moves in fine steps, and more than one retain
    author (with one, SimNPO's retain loss made every 'who wrote X' answer that author)."""
    from obliviate.data import builtin as B
    from obliviate.demo.pipeline import DemoOptions

    opts = DemoOptions()
    splits = B.build_splits(opts.authors, seed=opts.seed)
    forget = B.forget_split_name(opts.authors, opts.forget_authors)
    retain = "retain" + f"{100 - int(forget[len('forget') :]):02d}"
    assert len(splits[forget]) >= 40
    assert len(splits[retain]) >= 3 * B.QA_PER_AUTHOR
    assert opts.methods == ("SimNPO", "NPO", "GradDiff", "GradAscent")


def test_method_lr_reaches_only_that_methods_unlearning_stage(tmp_path):
    """--method-lr NPO=3e-5 sets NPO's unlearning lr; the others keep --unlearn-lr 7e-5."""
    from obliviate.demo.cli import parse_method_lr
    from obliviate.demo.pipeline import DemoOptions, demo_stages

    opts = DemoOptions(
        out=tmp_path, unlearn_lr=7e-5, method_lr=parse_method_lr(["NPO=3e-5"]),
        methods=("NPO", "GradDiff"),
    )  # fmt: skip
    opts.validate()
    stages, _ = demo_stages(opts)
    lrs = {
        m: [o for o in stages[f"unlearn:{m}"].overrides if o.startswith("trainer.args.learning_rate=")]
        for m in ("NPO", "GradDiff")
    }
    assert lrs == {
        "NPO": ["trainer.args.learning_rate=3e-05"],
        "GradDiff": ["trainer.args.learning_rate=7e-05"],
    }
    # The finetuning stages keep their own lr (--lr, 2e-4 by default).
    assert "trainer.args.learning_rate=0.0002" in stages["target"].overrides


@pytest.mark.parametrize(
    "item, needle", [("NPO=fast", "use METHOD=LR"), ("NPO=-1e-5", "must be a learning rate > 0"),
                     ("Nope=1e-5", "is not an unlearning method")],
)  # fmt: skip
def test_bad_method_lr_is_one_error(item, needle, tmp_path):
    from obliviate.demo.cli import parse_method_lr
    from obliviate.demo.pipeline import DemoOptions
    from obliviate.errors import ConfigError

    with pytest.raises(ConfigError, match=needle):
        DemoOptions(out=tmp_path, method_lr=parse_method_lr([item])).validate()
