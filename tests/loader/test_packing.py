import json

import numpy as np
import pytest

from corpusforge.loader import ShardIterator
from corpusforge.loader.reader import read_safetensors
from corpusforge.recipe import load_recipe
from corpusforge.shards.packer import Packer, sample_tensors
from corpusforge.tokenize.special import BOS, EOS, PAD

from .conftest import make_shards


def test_pad_mode_gives_each_document_its_own_rows_and_splits_long_ones():
    p = Packer(4, "pad")
    p.add_documents([[20, 21], [30, 31, 32, 33, 34], []])
    rows = p.finish()
    assert rows.tolist() == [
        [BOS, 20, 21, EOS],
        [BOS, 30, 31, 32], [33, 34, EOS, PAD],
        [BOS, EOS, PAD, PAD],
    ]  # fmt: skip


def test_truncate_mode_keeps_one_row_per_document_and_counts_the_cut():
    p = Packer(4, "truncate")
    p.add_documents([[20], [30, 31, 32, 33, 34]])
    assert p.finish().tolist() == [[BOS, 20, EOS, PAD], [BOS, 30, 31, 32]]
    assert p.truncated_tokens == 3


def test_concat_mode_is_unchanged():
    p = Packer(4)
    p.add_documents([[20, 21], [30, 31, 32]])
    assert p.finish().tolist() == [[BOS, 20, 21, EOS], [BOS, 30, 31, 32], [EOS, PAD, PAD, PAD]]


def test_unknown_packing_mode_is_refused():
    with pytest.raises(ValueError, match="allowed: concat, pad, truncate"):
        Packer(4, "bucket")


def test_position_and_document_ids_restart_at_every_document():
    t = sample_tensors(np.array([[40, EOS, BOS, 50, 51, EOS, BOS, 60], [61, EOS, PAD, PAD, PAD, PAD, PAD, PAD]]),
                       position_ids=True, document_ids=True)
    assert t["position_ids"].tolist() == [[0, 1, 0, 1, 2, 3, 0, 1], [0, 1, 0, 0, 0, 0, 0, 0]]
    assert t["document_ids"].tolist() == [[0, 0, 1, 1, 1, 1, 2, 2], [0, 0, -1, -1, -1, -1, -1, -1]]
    assert t["position_ids"].dtype == t["document_ids"].dtype == np.int32


def test_default_options_keep_the_recipe_fingerprint():
    base = {"sources": [{"path": "x"}]}
    same = load_recipe({**base, "sharding": {"packing": "concat", "position_ids": False, "document_ids": False}})
    assert load_recipe(base).fingerprint() == same.fingerprint()
    assert load_recipe({**base, "sharding": {"packing": "pad"}}).fingerprint() != same.fingerprint()


@pytest.fixture(scope="module", params=["concat", "pad", "truncate"])
def packed(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "out"
    make_shards(out, packing=request.param, position_ids=True, document_ids=True)
    return request.param, out


def test_no_token_is_lost_in_any_packing_mode(packed):
    mode, out = packed
    stats = json.loads((out / "stats.json").read_text())
    index = json.loads((out / "shard_index.json").read_text())
    for split, counts in stats["splits"].items():
        written = sum(int(np.count_nonzero(read_safetensors(out / s["path"])["input_ids"] != PAD))
                      for s in index["shards"] if s["split"] == split)
        assert written + counts.get("truncated_tokens", 0) == counts["tokens"]
        assert written == index["splits"][split]["tokens"]
    assert ("truncated_tokens" in stats["splits"]["train"]) == (mode == "truncate")


def test_every_document_starts_at_position_zero(packed):
    _, out = packed
    index = json.loads((out / "shard_index.json").read_text())
    assert index["dtypes"]["position_ids"] == index["dtypes"]["document_ids"] == "int32"
    t = read_safetensors(out / index["shards"][0]["path"])
    assert np.all(t["position_ids"][t["input_ids"] == BOS] == 0)
    assert np.all(t["document_ids"][t["input_ids"] == PAD] == -1)


def test_pad_mode_rows_hold_one_document_each(tmp_path):
    out = make_shards(tmp_path / "out", packing="pad", document_ids=True)
    index = json.loads((out / "shard_index.json").read_text())
    t = read_safetensors(out / index["shards"][0]["path"])
    assert np.all(t["document_ids"] <= 0) and np.count_nonzero(t["input_ids"] == PAD) > 0


def test_token_budget_batches_trim_padded_rows(tmp_path):
    out = make_shards(tmp_path / "out", packing="pad", position_ids=True)
    batches = list(ShardIterator(out, max_tokens=48, drop_last=False, seed=1))
    assert {b["input_ids"].shape[1] for b in batches} > {32}
    for b in batches:
        assert b["input_ids"].size <= 48 or len(b["input_ids"]) == 1
        assert b["position_ids"].shape == b["input_ids"].shape
        assert b["attention_mask"].sum(axis=1).max() == b["input_ids"].shape[1]
