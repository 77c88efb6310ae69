"""The shard-format contract: formats are registered classes whose write, read and capability flags
the recipe, the writer, the loader and validate ask; a format registered the documented way runs."""

import re
from pathlib import Path

import numpy as np
import pytest

from corpusforge.errors import RecipeError
from corpusforge.loader import ShardIterator, validate_epoch
from corpusforge.loader.reader import open_shard, read_stored
from corpusforge.recipe import load_recipe
from corpusforge.registry import SHARD_FORMATS
from corpusforge.shards.formats import ShardFormat, format_class, format_names, shard_kind
from corpusforge.shards.validate import validate_output
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

from .conftest import DATA, make_shards

BUILT_IN = ["megatron", "npy", "parquet", "safetensors", "webdataset"]


@pytest.fixture
def registry(monkeypatch):
    """SHARD_FORMATS as it is, restored after the test: formats a test registers do not outlive it."""
    SHARD_FORMATS.names()  # the built-ins first, so the copy holds them
    monkeypatch.setattr(SHARD_FORMATS, "_items", dict(SHARD_FORMATS._items))
    return SHARD_FORMATS


def register_raw_rows(registry, name="raw_rows", **flags):
    """A format in a dozen lines: input_ids as raw little-endian int32 rows, the other tensors derived."""

    @registry.register(name)
    class RawRows(ShardFormat):
        suffixes = (".i32",)
        stores_masks = False

        def encode(self, tensors, metadata):
            return {".i32": np.ascontiguousarray(tensors["input_ids"], dtype="<i4").tobytes()}

        @classmethod
        def read(cls, path, sequence_length, pad):
            return {"input_ids": np.fromfile(path, dtype="<i4").reshape(-1, sequence_length)}

    for flag, value in flags.items():
        setattr(RawRows, flag, value)
    return RawRows


def sources():
    return [{"path": str(DATA / "prose" / "gutenberg" / "pg26184.txt")}]


def test_the_built_in_formats_and_their_capability_flags():
    flags = {n: (c.suffixes, c.compressible, c.stores_masks, c.random_access, c.loader_readable)
             for n in format_names() if (c := format_class(n))}
    assert flags == {
        "megatron": ((".bin", ".idx"), False, False, False, True),
        "npy": ((".npy",), True, False, True, True),
        "parquet": ((".parquet",), False, True, False, True),
        "safetensors": ((".safetensors",), True, True, True, True),
        "webdataset": ((".tar",), True, True, False, True),
    }
    assert [shard_kind(f"shard_00000{format_class(n).suffixes[0]}") for n in BUILT_IN] == [(n, "none") for n in BUILT_IN]
    assert shard_kind("train/shard_00003.tar.zst") == ("webdataset", "zstd")


def test_an_unknown_format_is_one_line_listing_the_registered_ones():
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": sources(), "sharding": {"format": "tfrecord"}})
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == ("sharding.format: value 'tfrecord' is invalid: Value error, unknown shard format; registered: "
                   "'megatron', 'npy', 'parquet', 'safetensors', 'webdataset'")


def test_a_format_registered_the_documented_way_is_accepted_written_read_and_validated(registry, tmp_path):
    register_raw_rows(registry)
    assert "raw_rows" in format_names()
    assert load_recipe({"sources": sources(), "sharding": {"format": "raw_rows"}}).sharding.format == "raw_rows"
    out = make_shards(tmp_path / "out", format="raw_rows")
    shards = [s for s in (out / "train").iterdir()]
    assert shards and {p.suffix for p in shards} == {".i32"}
    assert validate_output(out)[0] == []
    first = sorted(shards)[0]
    assert list(read_stored(first, 32)) == ["input_ids"]  # stores_masks False: only the ids are on disk
    tensors = open_shard(first, 32)
    assert sorted(tensors) == ["attention_mask", "input_ids", "labels", "modality_mask"]
    np.testing.assert_array_equal(tensors["attention_mask"], (tensors["input_ids"] != 0).astype(np.int32))
    report = validate_epoch(ShardIterator(out, batch_size=5, drop_last=False))
    assert report["ok"] and report["tokens_match"]


def test_compression_is_refused_where_the_format_says_it_does_not_apply(registry):
    register_raw_rows(registry, "raw_plain", compressible=False, no_compression_reason="raw rows are mapped")
    with pytest.raises(RecipeError) as err:
        load_recipe({"sources": sources(), "sharding": {"format": "raw_plain", "compression": "zstd"}})
    assert ("compression 'zstd' does not apply to format 'raw_plain': raw rows are mapped; formats that take it: "
            "npy, safetensors, webdataset") in str(err.value)
    with pytest.raises(RecipeError, match="does not apply to format 'parquet': parquet compresses internally"):
        load_recipe({"sources": sources(), "sharding": {"format": "parquet", "compression": "gzip"}})
    assert load_recipe({"sources": sources(), "sharding": {"format": "webdataset", "compression": "lz4"}})


def test_a_write_only_format_is_written_but_refused_by_the_loader_and_validate(registry, tmp_path):
    @registry.register("raw_write_only")
    class WriteOnly(ShardFormat):  # no read: the contract's default raises, naming the file
        suffixes = (".w32",)
        loader_readable = False

        def encode(self, tensors, metadata):
            return {".w32": np.ascontiguousarray(tensors["input_ids"], dtype="<i4").tobytes()}

    out = make_shards(tmp_path / "out", format="raw_write_only")
    with pytest.raises(ValueError, match=re.escape("shard format 'raw_write_only' is write-only (loader_readable is "
                                                   "False); the loader reads megatron, npy, parquet, safetensors")):
        ShardIterator(out)
    faults, _ = validate_output(out)
    assert faults and all(re.fullmatch(r"(train|val)/shard_\d{5}\.w32: not a readable raw_write_only shard \(shard "
                                       r"format 'raw_write_only' is write-only \(loader_readable is False\)\)", f)
                          for f in faults), faults[:2]


def test_a_format_with_sidecars_streams_from_s3_through_a_cache_smaller_than_the_split(s3_endpoint, tmp_path):  # noqa: F811
    """The store pins and fetches every file an index entry lists (Megatron's .idx beside its .bin)."""
    import s3fs

    out = make_shards(tmp_path / "out", format="megatron", max_tokens_per_shard=320, max_shard_bytes=1_000_000)
    fs = s3fs.S3FileSystem()
    fs.mkdir("formats")
    fs.put(str(out) + "/", "formats/out/", recursive=True)
    kw = {"batch_size": 8, "seed": 5, "shuffle_block_size": 48}
    train_bytes = sum(s["bytes"] for s in ShardIterator(out).shards)
    remote = ShardIterator("s3://formats/out", cache_dir=tmp_path / "cache", cache_limit=train_bytes // 4, **kw)
    got, want = list(remote), list(ShardIterator(out, **kw))
    assert len(got) == len(want) > 0
    for a, b in zip(got, want, strict=True):
        for k in b:
            np.testing.assert_array_equal(a[k], b[k])
    assert remote.store.fetched_bytes >= train_bytes
    pinned = remote.store.pinned  # the shards still open: each with its .idx, both in the cache
    assert pinned and {p[:-4] for p in pinned if p.endswith(".bin")} == {p[:-4] for p in pinned if p.endswith(".idx")}
    assert all((tmp_path / "cache" / p).is_file() for p in pinned)


def test_shards_never_import_the_loader():
    shards = Path(__file__).resolve().parents[2] / "corpusforge" / "shards"
    offenders = [p.name for p in shards.glob("*.py") if "corpusforge.loader" in p.read_text()]
    assert offenders == []


def test_parquet_with_uint16_ids_stores_uint16_and_validates_with_the_tokens_of_int32(tmp_path):
    import pyarrow.parquet as pq

    wide = make_shards(tmp_path / "i32", format="parquet")
    narrow = make_shards(tmp_path / "u16", format="parquet", token_dtype="uint16")
    first = sorted((narrow / "train").glob("*.parquet"))[0]
    assert str(pq.read_schema(first).field("input_ids").type) == "list<element: uint16>"
    assert validate_output(narrow)[0] == []
    def ids(out: Path) -> np.ndarray:  # all rows in order: shards cut by bytes hold more uint16 rows
        return np.concatenate([open_shard(p, 32)["input_ids"] for p in sorted((out / "train").glob("*.parquet"))])

    np.testing.assert_array_equal(ids(wide), ids(narrow))
