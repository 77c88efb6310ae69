import json

import numpy as np
import pytest

from corpusforge.loader import ShardIterator, validate_epoch

from .conftest import make_shards


def split_rows(out, split="train"):
    ds = ShardIterator(out, split=split, batch_size=1000, shuffle=False, drop_last=False, prefetch=0)
    return np.concatenate([b["input_ids"] for b in ds])


def sorted_rows(rows):
    return rows[np.lexsort(rows.T[::-1])]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("plain") / "out")


def test_global_shuffle_reorders_rows_and_keeps_every_one(plain, tmp_path):
    out = make_shards(tmp_path / "out", shuffle=True)
    index = json.loads((out / "shard_index.json").read_text())
    assert index["shuffled"] is True
    for split in ("train", "val"):
        a, b = split_rows(plain, split), split_rows(out, split)
        assert not np.array_equal(a, b)
        np.testing.assert_array_equal(sorted_rows(a), sorted_rows(b))
    assert index["totals"] == json.loads((plain / "shard_index.json").read_text())["totals"]
    assert validate_epoch(ShardIterator(out, batch_size=10, drop_last=False))["ok"]


def test_global_shuffle_is_fixed_by_the_seed(tmp_path):
    a = make_shards(tmp_path / "a", shuffle=True, format="megatron")
    b = make_shards(tmp_path / "b", shuffle=True, format="megatron")
    np.testing.assert_array_equal(split_rows(a), split_rows(b))
    index = json.loads((a / "shard_index.json").read_text())
    assert all((a / s["path"]).exists() and (a / s["sidecars"][0]["path"]).exists() for s in index["shards"])
