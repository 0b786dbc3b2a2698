"""What makes a finished sweep stage reusable: its config hash (without the keys that only say
where files go), the code version, the data hashes, and its files."""

from __future__ import annotations

from omegaconf import OmegaConf

from obliviate.sweep.record import WHERE_KEYS, config_sha256, reuse_problem

CFG = {"seed": 0, "overwrite": False, "paths": {"output_dir": "a"},
       "trainer": {"args": {"learning_rate": 1e-5, "output_dir": "${paths.output_dir}"}}}  # fmt: skip


def test_config_hash_ignores_where_files_go_but_not_what_runs():
    base = config_sha256(OmegaConf.create(CFG), WHERE_KEYS)
    moved = OmegaConf.create(CFG)
    moved.paths.output_dir, moved.overwrite = "elsewhere", True
    assert config_sha256(moved, WHERE_KEYS) == base
    changed = OmegaConf.create(CFG)
    changed.trainer.args.learning_rate = 2e-5
    assert config_sha256(changed, WHERE_KEYS) != base
    assert config_sha256(OmegaConf.create(CFG), ()) != base  # the dropped keys did count


def test_reuse_problem_names_what_differs(tmp_path):
    (tmp_path / "model.safetensors").write_text("w")
    want = {"config_sha256": "c", "code": {"source_sha256": "s"}, "data_sha256": {"full": "d"}}
    saved = {**want, "done": True, "files": ["model.safetensors"]}
    assert reuse_problem(saved, want, tmp_path) is None
    assert reuse_problem(None, want, tmp_path) == "not finished"
    assert reuse_problem({**saved, "done": False}, want, tmp_path) == "not finished"
    assert (
        reuse_problem({**saved, "files": ["model.safetensors", "receipt.json"]}, want, tmp_path)
        == "files missing (receipt.json)"
    )
    assert reuse_problem({**saved, "config_sha256": "x"}, want, tmp_path) == "config changed"
    assert (
        reuse_problem({**saved, "code": {"source_sha256": "t"}}, want, tmp_path) == "code changed"
    )
    assert reuse_problem({**saved, "data_sha256": {"full": "e"}}, want, tmp_path) == "data changed"
