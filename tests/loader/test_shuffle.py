import hashlib
import json

import numpy as np
import pytest

from corpusforge.loader import ShardIterator, validate_epoch
from corpusforge.shards.shuffle import shuffle_split
from corpusforge.shards.writer import ShardWriter

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


def test_shuffled_shards_do_not_depend_on_how_many_rows_a_step_gathers(tmp_path):
    rng = np.random.default_rng(0)
    parts = []
    for task in range(3):
        writer = ShardWriter(tmp_path / "parts" / f"t{task}", 16, 10_000, {})
        writer.add(rng.integers(10, 500, (40 + task, 16), dtype=np.int32))
        parts += writer.close()
    written = {}
    for chunk_bytes in (1, 16 * 4 * 7, 8 << 20):  # one row, 7 rows, every row per step
        shards = shuffle_split(parts, 7, 16, ShardWriter(tmp_path / str(chunk_bytes) / "s", 16, 10_000, {}),
                               chunk_bytes)
        written[chunk_bytes] = [hashlib.sha256(open(s["part"], "rb").read()).hexdigest() for s in shards]
    assert len(written[1]) > 1
    assert written[1] == written[16 * 4 * 7] == written[8 << 20]


def _parts(tmp_path, shard_format, compression, tasks=3, rows=40, length=16):
    from corpusforge.shards.formats import get_format

    rng = np.random.default_rng(0)
    parts = []
    for task in range(tasks):
        writer = ShardWriter(tmp_path / shard_format / compression / f"t{task}", length, 10**9, {},
                             shard_format=get_format(shard_format), compression=compression)
        writer.add(rng.integers(16, 500, (rows + task, length), dtype=np.int32))
        parts += writer.close()
    return parts


@pytest.mark.parametrize("shard_format,compression", [("megatron", "none"), ("parquet", "none"),
                                                      ("safetensors", "zstd"), ("npy", "gzip")])
def test_every_format_shuffles_to_the_rows_of_uncompressed_safetensors(tmp_path, shard_format, compression):
    from corpusforge.loader.reader import open_shard

    def shuffled(parts, name):
        shards = shuffle_split(parts, 7, 16, ShardWriter(tmp_path / name / "s", 16, 10_000, {}), 16 * 4 * 5)
        assert not (tmp_path / name / ".unpacked").exists()
        return np.concatenate([open_shard(s["part"], 16)["input_ids"] for s in shards])

    expected = shuffled(_parts(tmp_path, "safetensors", "none"), "ref")
    np.testing.assert_array_equal(shuffled(_parts(tmp_path, shard_format, compression), "got"), expected)


def test_shuffle_holds_one_part_in_memory_not_the_split(tmp_path):
    """Parts that cannot be memory-mapped (Megatron rows are rebuilt) are unpacked to disk one at a time."""
    import tracemalloc

    parts = _parts(tmp_path, "megatron", "none", tasks=8, rows=5000, length=256)  # 5 MB of ids each, 41 MB in all
    total = sum(p["samples"] for p in parts) * 256 * 4
    tracemalloc.start()
    shuffle_split(parts, 7, 256, ShardWriter(tmp_path / "out" / "s", 256, 10**9, {}), 1 << 20)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 0.6 * total, f"{peak / 1e6:.1f} MB traced for {total / 1e6:.1f} MB of input_ids"
