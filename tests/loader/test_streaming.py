"""An output in S3 (a moto server on 127.0.0.1) streamed shard by shard through a cache smaller than it."""

import numpy as np
import pytest

from corpusforge.loader import ShardIterator
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

URL = "s3://corpus/out"
KW = {"batch_size": 8, "seed": 5, "shuffle_block_size": 48, "return_sample_ids": True}


def _upload(shards):
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    fs.put(str(shards) + "/", "corpus/out/", recursive=True)
    return fs


def _dir_bytes(path):
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def test_s3_output_streams_through_a_cache_smaller_than_its_shards(s3_endpoint, shards, tmp_path):  # noqa: F811
    _upload(shards)
    train = [s for s in ShardIterator(shards).shards]
    train_bytes = sum(s["bytes"] for s in train)
    limit = train_bytes // 4
    ds = ShardIterator(URL, cache_dir=tmp_path / "cache", cache_limit=limit, **KW)
    local = list(ShardIterator(shards, **KW))
    peak = 0
    got = []
    for batch in ds:
        got.append(batch)
        peak = max(peak, _dir_bytes(tmp_path / "cache"))
    assert len(got) == len(local) == 1170 // 8
    for a, b in zip(got, local, strict=True):
        for k in b:
            np.testing.assert_array_equal(a[k], b[k])
    assert 0 < peak <= limit < train_bytes
    assert ds.store.fetched_bytes >= train_bytes  # every train shard came through the cache, some twice
    cached = [p.relative_to(tmp_path / "cache").as_posix() for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert cached and all(p.startswith("train/shard_") for p in cached)  # the val split and lineage stay behind


def test_resume_from_s3_reads_only_what_the_resumed_epoch_needs(s3_endpoint, shards, tmp_path):  # noqa: F811
    _upload(shards)
    full = list(ShardIterator(shards, **KW))
    first = ShardIterator(URL, cache_dir=tmp_path / "a", **KW)
    it = iter(first)
    for _ in range(100):
        next(it)
    state = first.state_dict()
    resumed = ShardIterator(URL, cache_dir=tmp_path / "b", **KW)
    resumed.load_state_dict(state)
    batch = next(iter(resumed))
    np.testing.assert_array_equal(batch["input_ids"], full[100]["input_ids"])


def test_cache_too_small_for_one_shard_names_the_limit(s3_endpoint, shards, tmp_path):  # noqa: F811
    _upload(shards)
    with pytest.raises(OSError, match=r"cache_limit 10 bytes in .* cannot hold train/shard_\d+\.safetensors"):
        ShardIterator(URL, cache_dir=tmp_path / "c", cache_limit=10, **KW)


def test_file_url_reads_the_output_in_place(shards):
    a = list(ShardIterator(f"file://{shards}", **KW))
    b = list(ShardIterator(shards, **KW))
    assert len(a) == len(b) and all(np.array_equal(x["input_ids"], y["input_ids"]) for x, y in zip(a, b, strict=True))


def test_dataloader_workers_stream_from_s3_with_their_own_fetchers(s3_endpoint, shards, tmp_path):  # noqa: F811
    from corpusforge.loader import ShardDataset

    _upload(shards)
    limit = sum(s["bytes"] for s in ShardIterator(shards).shards) // 3
    got = list(ShardDataset(URL, cache_dir=tmp_path / "w", cache_limit=limit, **KW).loader(num_workers=2))
    local = list(ShardIterator(shards, **KW))
    assert len(got) == len(local)
    for a, b in zip(got, local, strict=True):
        np.testing.assert_array_equal(a["sample_id"].numpy(), b["sample_id"])
        np.testing.assert_array_equal(a["input_ids"].numpy(), b["input_ids"])


def test_http_output_streams_like_the_local_one(shards, tmp_path):
    from tests.ingest.loopback import Server

    server = Server("127.0.0.1")
    try:
        def route(handler, path, query):
            f = shards / path.lstrip("/")
            return (200, {}, f.read_bytes()) if f.is_file() else (404, {}, b"")

        server.route(route)
        got = list(ShardIterator(f"{server.base}/", cache_dir=tmp_path / "h", **KW))
        fetched = {p for _, p, _, _ in server.httpd.seen}
    finally:
        server.close()
    local = list(ShardIterator(shards, **KW))
    assert len(got) == len(local)
    for a, b in zip(got, local, strict=True):
        np.testing.assert_array_equal(a["input_ids"], b["input_ids"])
    assert "/shard_index.json" in fetched and not [p for p in fetched if p.startswith("/val/")]
