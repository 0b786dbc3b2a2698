"""run_training's start-up guards (``preflight``: offline, nothing loaded, nothing written): run
folders are never mixed, and a method meets the data its config mode makes (forget/retain pairs
for unlearning, plain QA for finetuning) and builds its own training set; a plain run on a
multi-GPU machine trains on one GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TINY_TRAIN, compose_config, write_mini_tofu
from obliviate.errors import ConfigError
from obliviate.training import TrainerLogFile, preflight, prepare_output_dir, run_training


@pytest.fixture
def no_model_loading(monkeypatch):
    def boom(*args, **kwargs):
        pytest.fail("a model/tokenizer was loaded before the config error was raised")

    monkeypatch.setattr("obliviate.training.load_model", boom)
    monkeypatch.setattr("obliviate.training.load_tokenizer", boom)


@pytest.mark.parametrize(
    ("config_name", "overrides", "pattern"),
    [
        ("unlearn.yaml", ["experiment=unlearn/tofu/default", "trainer=finetune"], "train.yaml"),
        (
            "train.yaml",
            ["experiment=finetune/tofu/default", "trainer=SimNPO", "train_split=forget20"],
            "unlearn.yaml",
        ),
    ],
)
def test_method_and_config_mode_must_match(
    tmp_path, no_model_loading, config_name, overrides, pattern
):
    data = write_mini_tofu(tmp_path / "tofu")
    cfg = compose_config(
        [
            *overrides,
            *TINY_TRAIN,
            "forget_split=forget20",
            "retain_split=retain80",
            "task_name=t",
            f"tofu_data={data}",
            f"paths.output_dir={tmp_path / 'run'}",
        ],
        config_name=config_name,
    )
    with pytest.raises(ConfigError, match=pattern):
        run_training(cfg)
    assert not (tmp_path / "run").exists()  # nothing half-made to trip over on the next run


def test_new_and_empty_run_folders_are_accepted(tmp_path):
    assert prepare_output_dir(tmp_path / "a" / "b", overwrite=False, resume=None).is_dir()
    (tmp_path / "empty").mkdir()
    assert (
        prepare_output_dir(tmp_path / "empty", overwrite=False, resume=None) == tmp_path / "empty"
    )


def test_non_empty_run_folder_needs_overwrite(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.safetensors").write_text("old")
    with pytest.raises(ConfigError, match="overwrite=true"):
        prepare_output_dir(out, overwrite=False, resume=None)
    assert (out / "model.safetensors").read_text() == "old"


def test_overwrite_clears_the_old_run(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-100").mkdir(parents=True)
    (out / "trainer_log.txt").write_text("step=1 loss=3\n")
    prepare_output_dir(out, overwrite=True, resume=None)
    assert out.is_dir() and list(out.iterdir()) == []


def test_resuming_keeps_the_folder(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint-100").mkdir(parents=True)
    prepare_output_dir(out, overwrite=False, resume=str(out / "checkpoint-100"))
    assert (out / "checkpoint-100").is_dir()


def test_trainer_log_file_puts_losses_first(tmp_path):
    from transformers import TrainerState

    state = TrainerState()
    state.global_step, state.epoch = 3, 0.15
    state.is_world_process_zero = True
    log = TrainerLogFile(tmp_path / "trainer_log.txt")
    log.on_log(
        None,
        state,
        None,
        logs={
            "grad_norm": 1.5,
            "retain_loss": 2.0,
            "loss": 0.25,
            "forget_loss": -1.0,
            "learning_rate": 1e-5,
            "epoch": 0.15,
        },
    )
    assert (tmp_path / "trainer_log.txt").read_text() == (
        "step=3 epoch=0.15 loss=0.25 forget_loss=-1 retain_loss=2 learning_rate=1e-05 grad_norm=1.5\n"
    )


# ---- preflight: the one pre-load check that run_training and the documentation tests call ------

GUIDE_SIMNPO = [
    "experiment=unlearn/tofu/default",
    "trainer=SimNPO",
    "forget_split=forget10",
    "retain_split=retain90",
    "task_name=tofu_SimNPO_forget10_v1",
    "trainer.args.per_device_train_batch_size=2",
    "trainer.args.gradient_accumulation_steps=8",
]


@pytest.fixture
def nothing_loaded(monkeypatch, no_model_loading):
    """Offline, and any data or model loading fails the test."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def boom(*args, **kwargs):
        pytest.fail("preflight loaded data")

    monkeypatch.setattr("obliviate.data.tofu.TofuSource.load", boom)
    monkeypatch.setattr("obliviate.data.builtin.materialise", boom)


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_preflight_takes_the_guides_hub_names_offline_and_touches_nothing(
    tmp_path, monkeypatch, nothing_loaded
):
    monkeypatch.chdir(tmp_path)  # the run folder would be ./saves/unlearn/...
    (tmp_path / "keep.txt").write_text("x")
    plan = preflight(compose_config(GUIDE_SIMNPO))
    assert files_under(tmp_path) == ["keep.txt"]  # no run folder, no probe, no data cache
    assert plan.method_cls.__name__ == "SimNPO" and plan.mode == "unlearn"
    assert plan.splits == ["forget10", "retain90", "full"]
    assert plan.out == Path("saves/unlearn/tofu_SimNPO_forget10_v1")
    # TOFU on the Hub: forget10 = 10% of 200 authors x 20 questions = 400 rows; one warm-up
    # epoch at 2 rows x 8 accumulation per step = ceil(400 / 16) = 25 steps
    assert plan.n_train == 400
    assert plan.training_args.warmup_steps == 25


def test_preflight_knows_the_builtin_sizes_without_writing_them(tmp_path, nothing_loaded):
    cache = tmp_path / "cache"
    cfg = compose_config(
        [
            *GUIDE_SIMNPO,
            "tofu_data=builtin",
            "builtin_data.authors=10",
            f"+builtin_data.cache_dir={cache}",
            "forget_split=forget20",
            "retain_split=retain80",
            f"paths.root={tmp_path / 'saves'}",
        ]
    )
    plan = preflight(cfg)
    assert not cache.exists() and not (tmp_path / "saves").exists()
    assert plan.n_train == 10 * 20 * 20 // 100  # 2 of 10 authors, 20 questions each
    # 2.5 of 10 authors is no split of the built-in set
    odd = ["tofu_data=builtin", "builtin_data.authors=10", "forget_split=forget25"]
    with pytest.raises(ConfigError, match="no split forget25, retain75; it has forget10, forget20"):
        preflight(compose_config([*GUIDE_SIMNPO, *odd, "retain_split=retain75"]))


def test_preflight_refuses_a_used_run_folder_and_leaves_it(tmp_path, nothing_loaded):
    out = tmp_path / "run"
    out.mkdir()
    (out / "trainer_log.txt").write_text("step=1 loss=1\n")
    cfg = compose_config([*GUIDE_SIMNPO, f"paths.output_dir={out}"])
    with pytest.raises(ConfigError, match="overwrite=true"):
        preflight(cfg)
    # overwrite=true passes preflight but clears nothing: run_training does that after the data
    preflight(compose_config([*GUIDE_SIMNPO, f"paths.output_dir={out}", "overwrite=true"]))
    assert files_under(tmp_path) == ["run", "run/trainer_log.txt"]


def test_preflight_refuses_an_output_folder_below_a_file(tmp_path, nothing_loaded):
    (tmp_path / "a_file").write_text("x")
    cfg = compose_config([*GUIDE_SIMNPO, f"paths.output_dir={tmp_path / 'a_file' / 'run'}"])
    with pytest.raises(ConfigError, match="not writable.*is a file"):
        preflight(cfg)


def test_local_data_size_is_a_placeholder_until_loaded(tmp_path, nothing_loaded):
    data = write_mini_tofu(tmp_path / "tofu")
    cfg = compose_config(
        [*GUIDE_SIMNPO, f"tofu_data={data}", "forget_split=forget20", "retain_split=retain80"]
    )
    assert preflight(cfg).n_train is None
    # the caller may state the size: 20 rows / (2 x 8) per step -> ceil(20 / 16) = 2 steps
    assert preflight(cfg, n_train=20).training_args.warmup_steps == 2


# ---- one GPU without a launcher, without writing CUDA_VISIBLE_DEVICES ---------------------------


def two_gpu_training_args(*args, **kwargs):
    """CPU TrainingArguments that report two GPUs, as a plain run on a 2-GPU machine would."""
    from transformers import TrainingArguments

    targs = TrainingArguments(output_dir="unused", use_cpu=True, report_to="none")
    targs._n_gpu = 2
    return targs


def test_two_visible_gpus_without_a_launcher_train_on_one(monkeypatch, caplog):
    import os

    from obliviate import training as T

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr("obliviate.config.training_arguments", two_gpu_training_args)
    before = dict(os.environ)
    with caplog.at_level("WARNING", logger="obliviate"):
        targs, _ = T.training_arguments(compose_config([*TINY_TRAIN, "task_name=t"]), 20)
    assert targs.n_gpu == 1  # Trainer wraps the model in DataParallel only when n_gpu > 1
    assert "2 GPUs are visible" in caplog.text and "Training on one GPU" in caplog.text
    assert dict(os.environ) == before  # nothing written after CUDA started


def test_a_launched_run_keeps_its_gpus(monkeypatch):
    from obliviate.training import one_gpu_unless_launched

    targs = two_gpu_training_args()
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it: each process has its own GPU
    one_gpu_unless_launched(targs)
    assert targs.n_gpu == 2


# ---- the method builds its training set --------------------------------------------------------


def fake_data(rows, retain, scored):
    """TrainData whose 'tokeniser' keeps the answer text and whose reference scores each item
    by its answer's length (and records what it scored)."""
    from obliviate.methods.base import TrainData

    def encode(rs):
        return [{"answer": r["answer"], "index": i} for i, r in enumerate(rs)]

    def reference(items):
        scored.extend(it["answer"] for it in items)
        return [-float(len(it["answer"])) for it in items]

    return TrainData(rows, retain, encode, reference, seed=0)


def test_idkdpo_pairs_each_forget_question_with_a_scored_refusal():
    from obliviate.data.idk import REFUSALS
    from obliviate.methods.idk_dpo import IdkDPO, IdkDPOArgs

    rows = [{"question": f"q{i}?", "answer": f"answer number {i}"} for i in range(6)]
    scored: list[str] = []
    ds = IdkDPO.build_train_dataset(fake_data(rows, rows[:2], scored), IdkDPOArgs())
    assert len(ds) == 6 and len(ds.alternate) == 6
    for i in range(6):
        item = ds[i]
        assert item["forget"]["answer"] == f"answer number {i}"
        assert item["alternate"]["answer"] in REFUSALS
        # both answers carry the reference's score of that very answer
        assert item["forget"]["ref_logp"] == -len(f"answer number {i}")
        assert item["alternate"]["ref_logp"] == -len(item["alternate"]["answer"])
    assert len(scored) == 12  # forget and refusal answers, each once; never the retain ones


def test_methods_without_a_reference_never_score_and_finetune_reads_plain_qa():
    from obliviate.methods.args import MethodArgs
    from obliviate.methods.finetune import Finetune
    from obliviate.methods.npo import NPO, NPOArgs
    from obliviate.methods.simnpo import SimNPO, SimNPOArgs

    rows = [{"question": "q?", "answer": "a b c"}, {"question": "r?", "answer": "d"}]
    scored: list[str] = []
    ds = SimNPO.build_train_dataset(fake_data(rows, rows, scored), SimNPOArgs())
    assert scored == [] and ds.alternate is None and "ref_logp" not in ds[0]["forget"]
    ds = NPO.build_train_dataset(fake_data(rows, rows, scored), NPOArgs())
    assert scored == ["a b c", "d"] and ds[0]["forget"]["ref_logp"] == -5.0
    qa = Finetune.build_train_dataset(fake_data(rows, None, scored), MethodArgs())
    assert [qa[i]["train"]["answer"] for i in range(2)] == ["a b c", "d"]


# ---- rank and world size as the launcher set them -----------------------------------------------


def test_launched_reads_the_launchers_environment(monkeypatch):
    from obliviate.utils.dist import launched

    for var in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert launched() == (0, 1)  # a plain `python` run
    monkeypatch.setenv("LOCAL_RANK", "1")  # accelerate on one node sets LOCAL_RANK too
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launched() == (1, 2)
    monkeypatch.setenv("RANK", "3")  # the global rank wins on several nodes
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert launched() == (3, 4)


def test_only_rank_zero_clears_an_overwritten_run_folder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    (out / "trainer_log.txt").write_text("old\n")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    prepare_output_dir(out, overwrite=True, resume=None)
    assert (out / "trainer_log.txt").read_text() == "old\n"  # rank 1 leaves it to rank 0
    monkeypatch.setenv("RANK", "0")
    prepare_output_dir(out, overwrite=True, resume=None)
    assert list(out.iterdir()) == []
