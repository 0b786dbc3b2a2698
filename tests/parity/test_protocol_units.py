"""The pieces of ``protocol=open-unlearning``, each against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import compose_config
from obliviate.data.collate import PairCollator, pad_batch
from obliviate.errors import ConfigError
from obliviate.eval import metrics as M
from obliviate.eval import ou_metrics as OU
from obliviate.protocol import Protocol, protocol_from
from obliviate.training import preflight


def test_mask_id_hides_that_token_wherever_it_occurs():
    items = [{"input_ids": [7, 5, 8, 5]}, {"input_ids": [5, 9]}]
    plain = pad_batch(items, pad_id=0)
    assert plain["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    ou = pad_batch(items, pad_id=0, mask_id=5)  # 5 plays the end-of-turn = pad token
    assert ou["attention_mask"].tolist() == [[1, 0, 1, 0], [0, 1, 0, 0]]
    assert torch.equal(ou["input_ids"], plain["input_ids"])
    left = pad_batch(items, pad_id=0, side="left", mask_id=5)
    assert left["attention_mask"].tolist() == [[1, 0, 1, 0], [0, 0, 0, 1]]
    parts = PairCollator(pad_id=0, mask_id=5)([{"forget": it} for it in items])
    assert parts["forget"]["attention_mask"].tolist() == ou["attention_mask"].tolist()


def test_protocol_flags_and_mask_id():
    ob, ou = Protocol(), protocol_from("open-unlearning", "eval.protocol")
    assert ou.name == "open-unlearning" and ou.pad_id_masked
    assert ob.mask_id(42) is None and ou.mask_id(42) == 42
    assert ob.epsilon == 0.0 and ou.epsilon == 1e-10
    assert not ob.generation_per_split and ou.generation_per_split
    assert protocol_from(None, "eval.protocol") == ob


def test_extraction_strength_boundary():
    # last token wrong: no suffix matches; metrics.md says 0, open-unlearning's loop 1/N
    pred, lab = torch.tensor([1, 2, 3]), torch.tensor([1, 2, 4])
    assert M.extraction_strength(pred, lab) == 0.0
    assert OU.extraction_strength(pred, lab) == pytest.approx(1 / 3)
    # first token wrong only: k = 1 in both, 1 - 1/3
    pred = torch.tensor([9, 2, 4])
    assert M.extraction_strength(pred, lab) == pytest.approx(2 / 3)
    assert OU.extraction_strength(pred, lab) == pytest.approx(2 / 3)
    assert OU.extraction_strength(lab, lab) == 1.0
    assert OU.extraction_strength(torch.tensor([]), torch.tensor([])) == 0.0


def test_open_unlearning_denominators():
    # P_true = 0.5, perturbed P = 0.25 and 0.0625: geometric mean 0.125, R = 0.125 / 0.5 = 0.25
    true, false = np.array([math.log(2)]), np.array([[math.log(4), math.log(16)]])
    r = OU.truth_ratio(true, false)
    assert r[0] == pytest.approx(0.125 / (0.5 + 1e-10), rel=1e-15)
    assert M.truth_ratio(true, false)[0] == pytest.approx(0.25, rel=1e-12)
    # a true answer with P = 1e-12: the 1e-10 dominates, R is 100x smaller than P_false / P_true
    tiny = np.array([-math.log(1e-12)])
    ratio = OU.truth_ratio(tiny, false)[0] / M.truth_ratio(tiny, false)[0]
    assert ratio == pytest.approx(1e-12 / (1e-12 + 1e-10), rel=1e-6)
    assert OU.truth_ratio_closer_to_1(np.array([4.0, 0.5])) == pytest.approx(
        (1 / (4 + 1e-10) + 0.5) / 2
    )
    # normalised: 0.5 / (0.5 + 0.25 + 0.0625)
    assert OU.normalised_probability(true, false)[0] == pytest.approx(0.5 / 0.8125)


def test_bad_protocol_is_a_one_line_error(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer.protocol='OU'.*obliviate, open-unlearning"):
        preflight(
            compose_config(
                [
                    "model=tiny-bytes",
                    "task_name=t",
                    "tofu_data=builtin",
                    "trainer.protocol=OU",
                    f"paths.output_dir={tmp_path / 'run'}",
                ]
            )
        )


def test_clean_up_spaces_is_transformers_4s():
    from obliviate.eval.scoring import clean_up_spaces

    text = "He said , \"I do n't know .\" She 's here ; they 're not ! Why ?"
    assert clean_up_spaces(text) == "He said, \"I don't know.\" She's here ; they're not! Why?"
    assert clean_up_spaces("a ' b") == "a'b"  # the quote case of transformers 4's clean-up
