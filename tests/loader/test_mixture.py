import json

import numpy as np
import pytest

from corpusforge import run
from corpusforge.errors import RecipeError
from corpusforge.loader import ShardIterator

from .conftest import DATA

BOOKS = DATA / "prose" / "gutenberg"


def run_mixture(out, mixture):
    return run({
        "sources": [{"name": "small", "path": str(BOOKS / "pg26184.txt"), "text_unit": "paragraph"},
                    {"name": "big", "path": str(BOOKS / "pg1513.txt"), "text_unit": "paragraph"}],
        "steps": [],
        "tokenizer": {"vocab_size": 400},
        "sharding": {"sequence_length": 64, "splits": {"train": 1.0}, "mixture": mixture},
    }, output=str(out), workers=1)  # fmt: skip


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return run_mixture(tmp_path_factory.mktemp("plain") / "out", {})


def test_weights_upsample_and_downsample_sources(plain, tmp_path):
    stats = run_mixture(tmp_path / "out", {"small": 2.0, "big": 0.5})
    before, after = plain["tokens_by_source"], stats["tokens_by_source"]
    assert after["small"]["tokens"] == 2 * before["small"]["tokens"]
    assert 0.35 < after["big"]["tokens"] / before["big"]["tokens"] < 0.65
    index = json.loads((tmp_path / "out" / "shard_index.json").read_text())
    assert index["mixture"] == {"small": 2.0, "big": 0.5}
    assert index["tokens_by_source"] == after
    assert after["small"]["share"] + after["big"]["share"] == pytest.approx(1.0)


def test_mixture_writes_every_token_it_counts(tmp_path):
    stats = run_mixture(tmp_path / "out", {"small": 1.5})
    rows = np.concatenate([b["input_ids"] for b in ShardIterator(tmp_path / "out", batch_size=100, drop_last=False)])
    assert np.count_nonzero(rows) == stats["tokens"] == sum(s["tokens"] for s in stats["tokens_by_source"].values())


def test_mixture_naming_an_unknown_source_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"sharding.mixture names unknown sources \['web'\]"):
        run_mixture(tmp_path / "out", {"web": 1.0})
