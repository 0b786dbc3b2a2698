"""The ``obliviate`` command's own answers (its train/eval doors: test_docs_commands.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from obliviate import cli


def test_configs_prints_the_folder_of_the_shipped_configs(capsys):
    cli.main(["configs"])
    folder = Path(capsys.readouterr().out.strip())
    # What accelerate launch --config_file "$(obliviate configs)/accelerate/..." needs.
    assert (folder / "unlearn.yaml").is_file()
    assert (folder / "accelerate" / "default_config.yaml").is_file()


def test_an_unknown_command_is_one_error_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["unlearnn", "task_name=t"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown command 'unlearnn'") and "\n" not in err
    assert "train" in err and "eval" in err


def test_a_bad_override_through_obliviate_train_is_one_error_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--config-name=unlearn.yaml", "trainer=SimNPOO", "task_name=t"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: trainer=SimNPOO") and "SimNPO" in err and "\n" not in err
    assert not any(tmp_path.iterdir())  # nothing written
