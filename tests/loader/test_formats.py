import json
import struct

import numpy as np
import pytest

from corpusforge.errors import RecipeError
from corpusforge.loader import ShardIterator
from corpusforge.loader.reader import read_safetensors
from corpusforge.tokenize.special import PAD

from .conftest import make_shards

TEN_ROWS = {"max_tokens_per_shard": 320, "max_shard_bytes": 1_000_000}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("ref") / "out", **TEN_ROWS)


def index_of(out):
    return json.loads((out / "shard_index.json").read_text())


def train_rows(out):
    return np.concatenate([read_safetensors(out / s["path"])["input_ids"]
                           for s in index_of(out)["shards"] if s["split"] == "train"])


def same_stream(a, b):
    for x, y in zip(ShardIterator(a, batch_size=7, seed=11), ShardIterator(b, batch_size=7, seed=11), strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])


def test_max_tokens_per_shard_caps_samples_per_shard(reference):
    samples = [s["samples"] for s in index_of(reference)["shards"]]
    assert max(samples) == 10 and sum(samples) == 1170 + 127


@pytest.mark.parametrize("fmt,suffix", [("npy", ".npy"), ("parquet", ".parquet"), ("megatron", ".bin")])
def test_every_format_loads_as_the_same_stream(reference, tmp_path, fmt, suffix):
    out = make_shards(tmp_path / "out", format=fmt, **TEN_ROWS)
    assert {s["path"][-len(suffix):] for s in index_of(out)["shards"]} == {suffix}
    same_stream(out, reference)


@pytest.mark.parametrize("compression,suffix", [("zstd", ".zst"), ("gzip", ".gz"), ("lz4", ".lz4")])
def test_compressed_shards_load_transparently(reference, tmp_path, compression, suffix):
    out = make_shards(tmp_path / "out", compression=compression, **TEN_ROWS)
    assert all(s["path"].endswith(".safetensors" + suffix) for s in index_of(out)["shards"])
    same_stream(out, reference)


def test_parquet_shards_read_with_hf_datasets(reference, tmp_path):
    from datasets import load_dataset

    out = make_shards(tmp_path / "out", format="parquet", **TEN_ROWS)
    files = [str(out / s["path"]) for s in index_of(out)["shards"] if s["split"] == "train"]
    ds = load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / "hf"))
    assert ds.column_names == ["input_ids", "attention_mask", "modality_mask", "labels"]
    np.testing.assert_array_equal(np.array(ds["input_ids"], dtype=np.int32), train_rows(reference))


def read_megatron_from_spec(prefix):
    """An independent reader of Megatron-LM's MMapIndexedDataset (.idx version 1 + .bin)."""
    idx = (prefix.with_suffix(".idx")).read_bytes()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    (version,) = struct.unpack("<Q", idx[9:17])
    (dtype_code,) = struct.unpack("<B", idx[17:18])
    seq_count, doc_count = struct.unpack("<QQ", idx[18:34])
    dtype = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 6: np.float64, 7: np.float32,
             8: np.uint16}[dtype_code]
    off = 34
    sizes = np.frombuffer(idx, np.int32, seq_count, off)
    off += 4 * seq_count
    pointers = np.frombuffer(idx, np.int64, seq_count, off)
    off += 8 * seq_count
    doc_idx = np.frombuffer(idx, np.int64, doc_count, off)
    assert off + 8 * doc_count == len(idx)
    data = prefix.with_suffix(".bin").read_bytes()
    seqs = [np.frombuffer(data, dtype, int(n), int(p)) for n, p in zip(sizes, pointers, strict=True)]
    return version, seqs, doc_idx


def test_megatron_shards_match_the_spec(reference, tmp_path):
    out = make_shards(tmp_path / "out", format="megatron", **TEN_ROWS)
    seqs = []
    for s in index_of(out)["shards"]:
        if s["split"] != "train":
            continue
        assert [side["path"] for side in s["sidecars"]] == [s["path"][:-4] + ".idx"]
        version, these, doc_idx = read_megatron_from_spec(out / s["path"])
        assert version == 1 and doc_idx.tolist() == list(range(len(these) + 1))
        seqs += these
    rows = train_rows(reference)
    assert len(seqs) == len(rows)
    for seq, row in zip(seqs, rows, strict=True):
        np.testing.assert_array_equal(seq, row[row != PAD])


def test_compression_is_refused_for_megatron(tmp_path):
    with pytest.raises(RecipeError, match="does not apply to format 'megatron'"):
        make_shards(tmp_path / "out", format="megatron", compression="zstd")


def test_safetensors_shards_are_byte_identical_across_runs(reference, tmp_path):
    again = make_shards(tmp_path / "out", **TEN_ROWS)
    assert [s["sha256"] for s in index_of(again)["shards"]] == [s["sha256"] for s in index_of(reference)["shards"]]
    assert (again / "shard_index.json").read_bytes() == (reference / "shard_index.json").read_bytes()
