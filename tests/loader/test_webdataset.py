"""The WebDataset shard format (``sharding.format: webdataset``) on real text: one tar per shard,
``<key>.<tensor>.npy`` members per packed row, read back by ``tarfile`` + numpy, by the
``webdataset`` package and by our loader, with the same rows and tokens as the SafeTensors output."""

import io
import json
import tarfile

import numpy as np
import pytest

from corpusforge.loader import ShardIterator, validate_epoch
from corpusforge.loader.reader import open_shard, read_safetensors, read_stored
from corpusforge.shards.validate import validate_output

from .conftest import make_shards

TEN_ROWS = {"max_tokens_per_shard": 320, "max_shard_bytes": 1_000_000}
TENSORS = ["attention_mask", "input_ids", "labels", "modality_mask"]


def index_of(out):
    return json.loads((out / "shard_index.json").read_text())


def rows_by_tarfile(path):
    """{tensor: (samples, length) array} of one tar shard, with nothing but tarfile and numpy."""
    keys, columns = [], {}
    with tarfile.open(path) as tar:
        for member in tar:
            key, _, field = member.name.partition(".")
            if not keys or keys[-1] != key:
                keys.append(key)
            columns.setdefault(field.removesuffix(".npy"), []).append(np.load(io.BytesIO(tar.extractfile(member).read())))
    assert keys == [f"{k:08d}" for k in range(len(keys))]
    return {name: np.stack(col) for name, col in columns.items()}


@pytest.fixture(scope="module")
def safetensors_out(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("st") / "out", **TEN_ROWS)


@pytest.fixture(scope="module")
def tar_out(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("wds") / "out", format="webdataset", **TEN_ROWS)


def test_each_shard_is_one_tar_of_key_tensor_npy_members_in_sample_order(tar_out):
    index = index_of(tar_out)
    assert index["format"] == "webdataset"
    assert {s["path"][-4:] for s in index["shards"]} == {".tar"} and all("sidecars" not in s for s in index["shards"])
    first = tar_out / index["shards"][0]["path"]
    with tarfile.open(first) as tar:
        names = tar.getnames()
        assert names[:5] == ["00000000.attention_mask.npy", "00000000.input_ids.npy", "00000000.labels.npy",
                             "00000000.modality_mask.npy", "00000001.attention_mask.npy"]
        assert {(m.mtime, m.uid, m.gid, m.mode) for m in tar.getmembers()} == {(0, 0, 0, 0o644)}
    assert len(names) == 4 * index["shards"][0]["samples"]


def test_tar_shards_hold_the_safetensors_rows_and_tokens(tar_out, safetensors_out):
    tar_index, st_index = index_of(tar_out), index_of(safetensors_out)
    assert tar_index["totals"]["tokens"] == st_index["totals"]["tokens"]
    assert tar_index["splits"]["train"]["samples"] == st_index["splits"]["train"]["samples"]
    assert [s["samples"] for s in tar_index["shards"]] == [s["samples"] for s in st_index["shards"]]
    for tar_shard, st_shard in zip(tar_index["shards"], st_index["shards"], strict=True):
        plain = rows_by_tarfile(tar_out / tar_shard["path"])
        want = read_safetensors(safetensors_out / st_shard["path"])
        assert sorted(plain) == TENSORS
        for name in TENSORS:
            np.testing.assert_array_equal(plain[name], want[name])
            assert plain[name].dtype == want[name].dtype
        assert int(np.count_nonzero(plain["attention_mask"])) == tar_shard["tokens"]


def test_the_webdataset_package_reads_the_samples(tar_out):
    import webdataset as wds

    index = index_of(tar_out)
    train = [s for s in index["shards"] if s["split"] == "train"]
    urls = [str(tar_out / s["path"]) for s in train]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert len(samples) == index["splits"]["train"]["samples"]
    ids = np.concatenate([read_stored(tar_out / s["path"])["input_ids"] for s in train])
    np.testing.assert_array_equal(np.stack([s["input_ids.npy"] for s in samples]), ids)
    assert samples[0]["__key__"] == "00000000" and samples[0]["__url__"] == urls[0]
    assert {k for k in samples[0] if not k.startswith("__")} == {f"{t}.npy" for t in TENSORS}


def test_the_loader_reads_tar_shards_as_the_safetensors_stream(tar_out, safetensors_out):
    for x, y in zip(ShardIterator(tar_out, batch_size=7, seed=11), ShardIterator(safetensors_out, batch_size=7, seed=11),
                    strict=True):
        assert x.keys() == y.keys()
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    report = validate_epoch(ShardIterator(tar_out, batch_size=7, seed=3, drop_last=False))
    assert report["ok"] and report["tokens_match"]


def test_validate_accepts_the_output_and_names_a_tar_missing_a_member(tar_out, tmp_path):
    assert validate_output(tar_out)[0] == []
    shard = tar_out / index_of(tar_out)["shards"][0]["path"]
    broken = tmp_path / "shard_00000.tar"
    with tarfile.open(shard) as src, tarfile.open(broken, "w", format=tarfile.USTAR_FORMAT) as dst:
        for member in src:
            if member.name != "00000001.labels.npy":
                dst.addfile(member, src.extractfile(member))
    with pytest.raises(ValueError, match=r"shard_00000.tar: sample 00000002 holds labels twice, or an earlier sample"):
        read_stored(broken, 32)
    cut = tmp_path / "cut" / "shard_00000.tar"
    cut.parent.mkdir()
    cut.write_bytes(shard.read_bytes()[:3000])
    with pytest.raises(ValueError, match=r"cut/shard_00000.tar: not a readable tar \("):
        read_stored(cut, 32)


def test_rerun_gives_byte_identical_tars(tar_out, tmp_path):
    again = make_shards(tmp_path / "again", format="webdataset", **TEN_ROWS)
    assert [s["sha256"] for s in index_of(again)["shards"]] == [s["sha256"] for s in index_of(tar_out)["shards"]]


def test_gzip_tars_with_uint16_ids_read_back_as_the_plain_ones(tar_out, tmp_path):
    import webdataset as wds

    narrow = make_shards(tmp_path / "u16", format="webdataset", token_dtype="uint16", compression="gzip", **TEN_ROWS)
    first, plain = index_of(narrow)["shards"][0]["path"], index_of(tar_out)["shards"][0]["path"]
    assert first == plain + ".gz"
    assert rows_by_tarfile(narrow / first)["input_ids"].dtype == np.dtype("<u2")
    np.testing.assert_array_equal(open_shard(narrow / first)["input_ids"], open_shard(tar_out / plain)["input_ids"])
    sample = next(iter(wds.WebDataset(str(narrow / first), shardshuffle=False).decode()))
    np.testing.assert_array_equal(sample["labels.npy"], open_shard(tar_out / plain)["labels"][0])
    assert validate_output(narrow)[0] == []


def test_write_time_shuffle_and_inspect_read_tar_shards(tar_out, tmp_path):
    from corpusforge.inspect import decoded_samples

    shuffled = make_shards(tmp_path / "shuffled", format="webdataset", shuffle=True, **TEN_ROWS)
    assert index_of(shuffled)["shuffled"] and validate_output(shuffled)[0] == []
    assert index_of(shuffled)["splits"] == index_of(tar_out)["splits"]
    def train_ids(out):
        return np.concatenate([read_stored(out / s["path"])["input_ids"] for s in index_of(out)["shards"]
                               if s["split"] == "train"])

    plain, mixed = train_ids(tar_out), train_ids(shuffled)
    assert not np.array_equal(mixed, plain)
    assert sorted(map(tuple, mixed.tolist())) == sorted(map(tuple, plain.tolist()))  # the same rows, reordered
    texts = [t for _, _, t in decoded_samples(tar_out, "train", 3)]
    assert len(texts) == 3 and all(t.strip() for t in texts)


@pytest.mark.parametrize("fmt", ["safetensors", "npy", "parquet", "megatron", "webdataset"])
def test_the_specification_reader_reads_every_format_as_corpusforge_does(fmt, tmp_path, monkeypatch):
    """docs/format.md's reader, with nothing of corpusforge, gives the tensors ``read_stored`` gives."""
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "format.md").read_text()
    block = re.search(r"## Reading a folder without corpusforge.*?```python\n(.*?)```", doc, re.S).group(1)
    out = make_shards(tmp_path / "out", format=fmt, position_ids=True, **TEN_ROWS)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(block, "docs/format.md", "exec"), scope)
    index = index_of(out)
    for entry in index["shards"][:3]:
        got = scope["read_shard"](out, entry, index)
        want = read_stored(out / entry["path"], 32, 0)
        assert sorted(got) == sorted(want)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])
