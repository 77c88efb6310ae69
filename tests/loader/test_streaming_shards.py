"""Shards of every format are written in row blocks: the same content, a fraction of the memory."""

from __future__ import annotations

import gzip
import hashlib
import tracemalloc

import lz4.frame
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from safetensors.numpy import load_file

from corpusforge.loader.reader import open_shard
from corpusforge.shards.formats import COMPRESSION_SUFFIX, get_format, safetensors_bytes, write_shard
from corpusforge.shards.packer import sample_tensors
from corpusforge.shards.writer import ShardWriter

DECOMPRESS = {"none": lambda b: b, "zstd": lambda b: zstandard.ZstdDecompressor().decompress(b),
              "gzip": gzip.decompress, "lz4": lz4.frame.decompress}


def _rows(n: int, length: int = 64) -> np.ndarray:
    rows = np.random.default_rng(n).integers(16, 5000, (n, length)).astype(np.int32)  # no special ids
    rows[-1, length // 2 :] = 0  # a padded last row
    return rows


@pytest.mark.parametrize("n", [1, 7, 4096, 4097, 10_000])
@pytest.mark.parametrize("extra", [False, True])
def test_streaming_bytes_equal_the_in_memory_file(tmp_path, n, extra):
    rows = _rows(n)
    tensors_of = lambda block, names=None: sample_tensors(block, extra, extra, names=names)  # noqa: E731
    ((path, size, sha),) = write_shard(get_format("safetensors"), rows, tensors_of, {"split": "train"}, "none",
                                       lambda suffix: tmp_path / f"s{suffix}")
    data = path.read_bytes()
    assert data == safetensors_bytes(tensors_of(rows), {"split": "train"})
    assert sha == hashlib.sha256(data).hexdigest() and size == len(data)


# Every format with every compression it takes (Megatron and Parquet take none from outside).
FORMAT_COMPRESSIONS = [(name, c) for name in ("safetensors", "npy", "megatron", "parquet")
                       for c in ("none", "zstd", "gzip", "lz4") if c == "none" or get_format(name).compressible]


@pytest.mark.parametrize("name,compression", FORMAT_COMPRESSIONS)
@pytest.mark.parametrize("n", [1, 300, 2049])
def test_every_format_streams_what_it_encodes(tmp_path, name, compression, n):
    fmt = get_format(name)
    rows = _rows(n)
    tensors_of = lambda block, names=None: sample_tensors(block, names=names)  # noqa: E731
    ext = COMPRESSION_SUFFIX.get(compression, "")
    written = write_shard(fmt, rows, tensors_of, {"split": "train"}, compression,
                          lambda suffix: tmp_path / f"shard_00000{suffix}{ext}")
    whole = fmt.encode(tensors_of(rows), {"split": "train"})
    assert [p.name for p, _, _ in written] == [f"shard_00000{s}{ext}" for s in whole]
    for (path, size, sha), expected in zip(written, whole.values(), strict=True):
        data = path.read_bytes()
        assert size == len(data) and sha == hashlib.sha256(data).hexdigest()
        if compression == "zstd":  # the size is in the frame, as a one-shot compress writes it
            assert zstandard.frame_content_size(data) == len(expected)
        if name == "parquet":  # the same row groups and values; the footer may differ
            assert pq.read_table(path).equals(pq.read_table(pa.BufferReader(expected)))
            assert pq.ParquetFile(path).metadata.num_row_groups == -(-n // fmt.ROW_GROUP)
        else:
            assert DECOMPRESS[compression](data) == expected
    assert np.array_equal(open_shard(written[0][0], 64)["input_ids"], rows)


@pytest.mark.parametrize("name,compression", FORMAT_COMPRESSIONS)
def test_an_empty_shard_streams_what_it_encodes(tmp_path, name, compression):
    fmt = get_format(name)
    rows = np.zeros((0, 64), dtype=np.int32)
    tensors_of = lambda block, names=None: sample_tensors(block, names=names)  # noqa: E731
    written = write_shard(fmt, rows, tensors_of, {}, compression, lambda suffix: tmp_path / f"s{suffix}")
    for (path, _, _), expected in zip(written, fmt.encode(tensors_of(rows), {}).values(), strict=True):
        if name == "parquet":
            assert pq.read_table(path).equals(pq.read_table(pa.BufferReader(expected)))
        else:
            assert DECOMPRESS[compression](path.read_bytes()) == expected


@pytest.mark.parametrize("name,compression", [("safetensors", "none"), ("safetensors", "zstd"), ("npy", "gzip"),
                                              ("megatron", "none"), ("parquet", "none")])
def test_every_format_peaks_far_below_its_shard(tmp_path, name, compression):
    def make(prefix: str) -> ShardWriter:
        return ShardWriter(tmp_path / prefix, 256, 10**10, {}, shard_format=get_format(name), compression=compression)

    warm = make("warm")  # a small shard first: the format's lazy imports are not the shard's memory
    warm.add(_rows(10, 256))
    warm.close()
    rows = _rows(40_000, 256)  # 41 MB of input_ids
    writer = make("t000000")
    writer.add(rows)
    tracemalloc.start()
    writer.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.25 * rows.nbytes, f"{name}/{compression}: {peak / 1e6:.1f} MB traced while writing"


def test_writer_shard_reads_back_with_safetensors_and_matches_its_checksum(tmp_path):
    rows = _rows(9000)
    writer = ShardWriter(tmp_path / "t000000", 64, 10**9, {"split": "train"}, position_ids=True)
    writer.add(rows)
    (record,) = writer.close()
    data = open(record["part"], "rb").read()
    assert record["sha256"] == hashlib.sha256(data).hexdigest() and record["bytes"] == len(data)
    loaded = load_file(record["part"])
    assert np.array_equal(loaded["input_ids"], rows)
    assert np.array_equal(loaded["labels"], sample_tensors(rows)["labels"])
    assert record["tokens"] == int(np.count_nonzero(rows))


def test_streaming_shard_peaks_far_below_its_tensors(tmp_path):
    rows = _rows(40_000, 256)  # 41 MB of input_ids; 133 MB of tensors in the file
    writer = ShardWriter(tmp_path / "t000000", 256, 10**9, {})
    writer.add(rows)
    tracemalloc.start()
    writer.close()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    file_bytes = writer.shards[0]["bytes"]
    assert file_bytes > 130e6
    assert peak < 0.25 * file_bytes
