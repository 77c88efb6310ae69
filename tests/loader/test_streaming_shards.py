"""Uncompressed SafeTensors shards are written in row blocks: same bytes, a fraction of the memory."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

import numpy as np
import pytest
from safetensors.numpy import load_file

from corpusforge.shards.formats import safetensors_bytes, write_safetensors_streaming
from corpusforge.shards.packer import sample_tensors
from corpusforge.shards.writer import ShardWriter


def _rows(n: int, length: int = 64) -> np.ndarray:
    rows = np.random.default_rng(n).integers(0, 5000, (n, length)).astype(np.int32)
    rows[-1, length // 2 :] = 0  # a padded last row
    return rows


@pytest.mark.parametrize("n", [1, 7, 4096, 4097, 10_000])
@pytest.mark.parametrize("extra", [False, True])
def test_streaming_bytes_equal_the_in_memory_file(n, extra):
    rows = _rows(n)
    tensors_of = lambda block, names=None: sample_tensors(block, extra, extra, names=names)  # noqa: E731
    buf = io.BytesIO()
    sha = write_safetensors_streaming(buf, rows, tensors_of, {"split": "train"})
    assert buf.getvalue() == safetensors_bytes(tensors_of(rows), {"split": "train"})
    assert sha == hashlib.sha256(buf.getvalue()).hexdigest()


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
