"""uint16 token storage where the vocabulary fits: half the id bytes, read back as int32 everywhere."""

import json

import numpy as np
import pytest

from corpusforge.loader import ShardDataset, ShardIterator
from corpusforge.loader.reader import open_shard, read_megatron_index, read_stored
from corpusforge.shards.formats import get_format
from corpusforge.shards.index import finalize_shards
from corpusforge.shards.writer import ShardWriter

ROWS = np.random.default_rng(0).integers(16, 60_000, (300, 64)).astype(np.int32)
ROWS[-1, 40:] = 0  # a padded row


def output(root, fmt, compression, token_dtype):
    writer = ShardWriter(root / "_work" / "t000000", 64, 10**9, {}, shard_format=get_format(fmt),
                         compression=compression, token_dtype=token_dtype)
    writer.add(ROWS)
    shards = writer.close()
    finalize_shards(root, [{"train": shards}], ["train"], {"format": fmt, "sequence_length": 64})
    return root, shards[0]


@pytest.mark.parametrize("fmt,compression", [("safetensors", "none"), ("safetensors", "zstd"), ("npy", "none"),
                                             ("npy", "gzip"), ("megatron", "none")])
def test_uint16_shards_hold_half_the_id_bytes_and_load_as_the_int32_ones(tmp_path, fmt, compression):
    wide, wide_shard = output(tmp_path / "wide", fmt, compression, "int32")
    narrow, narrow_shard = output(tmp_path / "narrow", fmt, compression, "uint16")
    if fmt == "megatron":  # rows are rebuilt (as int32) from a uint16 .bin
        assert read_megatron_index(narrow_shard["sidecars"][0]["part"]).dtype == np.uint16
    else:
        assert read_stored(narrow_shard["part"], 64)["input_ids"].dtype == np.uint16
    if compression == "none":
        saved = wide_shard["bytes"] - narrow_shard["bytes"]
        assert saved == 2 * (np.count_nonzero(ROWS) if fmt == "megatron" else ROWS.size)
    np.testing.assert_array_equal(open_shard(narrow_shard["part"], 64)["input_ids"], ROWS)
    a = list(ShardIterator(wide, batch_size=32, seed=1))
    b = list(ShardIterator(narrow, batch_size=32, seed=1))
    for x, y in zip(a, b, strict=True):
        assert x.keys() == y.keys() and y["input_ids"].dtype == np.int32
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert ShardDataset(narrow, batch_size=4)[0]["input_ids"].dtype.is_signed  # torch int32, not uint16


def test_ids_above_the_uint16_range_are_refused_naming_the_shard(tmp_path):
    writer = ShardWriter(tmp_path / "t000000", 8, 10**9, {}, token_dtype="uint16")
    writer.add(np.array([[5, 70_000, 0, 0, 0, 0, 0, 0]], dtype=np.int32))
    with pytest.raises(ValueError, match=r"t000000_0000: token id 70000 does not fit uint16 token storage"):
        writer.close()


@pytest.mark.parametrize("fmt", ["safetensors", "npy", "megatron"])
def test_a_uint16_run_validates_and_loads_as_the_int32_run(tmp_path, fmt):
    from corpusforge.shards.validate import validate_output

    from .conftest import make_shards

    wide = make_shards(tmp_path / "wide", format=fmt)
    narrow = make_shards(tmp_path / "narrow", format=fmt, token_dtype="uint16")
    index = json.loads((narrow / "shard_index.json").read_text())
    assert index["dtypes"]["input_ids"] == "uint16"
    assert validate_output(narrow)[0] == []
    assert index["totals"]["bytes"] < json.loads((wide / "shard_index.json").read_text())["totals"]["bytes"]
    kw = {"batch_size": 50, "shuffle": False, "drop_last": False}  # more samples fit a shard: compare in order
    for x, y in zip(ShardIterator(wide, **kw), ShardIterator(narrow, **kw), strict=True):
        np.testing.assert_array_equal(x["input_ids"], y["input_ids"])
