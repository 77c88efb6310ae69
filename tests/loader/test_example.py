import importlib.util
from pathlib import Path

import pytest

from .conftest import make_shards

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_tiny_gpt.py"


def load_example():
    spec = importlib.util.spec_from_file_location("train_tiny_gpt", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_training_resumed_mid_epoch_matches_the_uninterrupted_run(tmp_path):
    ex = load_example()
    shards = make_shards(tmp_path / "out", position_ids=True, document_ids=True)
    whole = ex.train(shards, 400, 32, 0, 12, tmp_path / "whole.pt", workers=0)
    first = ex.train(shards, 400, 32, 0, 6, tmp_path / "ckpt.pt", workers=2)
    second = ex.train(shards, 400, 32, 6, 12, tmp_path / "ckpt.pt", workers=1)
    assert first + second == pytest.approx(whole, rel=1e-6)
    assert sum(whole[-3:]) < sum(whole[:3])
