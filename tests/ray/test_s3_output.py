"""A source read from S3 and the output written to S3 (moto on 127.0.0.1): the same shards as a
local output, resume from the store alone, validate and inspect on the s3:// URL."""

from __future__ import annotations

import orjson
import yaml
from click.testing import CliRunner

from corpusforge import run
from corpusforge.cli import main
from corpusforge.inspect import decoded_samples
from corpusforge.loader.dataset import ShardIterator
from corpusforge.shards.validate import validate_output
from tests.conftest import small_recipe
from tests.ingest.test_s3 import s3_endpoint  # noqa: F401  (the moto server fixture)

OUT = "s3://corpus/out"


def _setup(shared_data, tmp_path, monkeypatch):
    import s3fs

    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "mirror"))
    fs = s3fs.S3FileSystem()
    fs.mkdir("corpus")
    fs.put(str(shared_data / "wikitext-2" / "valid.txt"), "corpus/in/valid.txt")
    recipe = small_recipe([{"name": "wiki", "path": "s3://corpus/in", "text_unit": "paragraph"}],
                          steps=[{"type": "normalize"}, {"type": "minhash_dedup"}])
    return fs, recipe


def test_s3_output_holds_the_same_shards_as_a_local_output_and_validates(s3_endpoint, shared_data,  # noqa: F811
                                                                          tmp_path, monkeypatch):
    fs, recipe = _setup(shared_data, tmp_path, monkeypatch)
    run(recipe, output=OUT, workers=2)
    run(recipe, output=str(tmp_path / "local"), workers=1)
    local = orjson.loads((tmp_path / "local" / "shard_index.json").read_bytes())
    assert orjson.loads(fs.cat_file("corpus/out/shard_index.json")) == local and len(local["shards"]) > 3
    for s in local["shards"]:
        assert fs.cat_file(f"corpus/out/{s['path']}") == (tmp_path / "local" / s["path"]).read_bytes()
    for key in ("stats.json", "tokenizer.json", "recipe.yaml", "_state/shards/000000.json", "_state/index/000000.json"):
        assert fs.exists(f"corpus/out/{key}"), key
    assert not [p for p in fs.find("corpus/out") if ".tmp-" in p]

    result = CliRunner().invoke(main, ["validate", OUT])
    assert result.exit_code == 0, result.output
    assert f"{len(local['shards'])} safetensors shards" in result.output
    assert next(decoded_samples(OUT, "train", 1))[2].strip()
    monkeypatch.setenv("CORPUSFORGE_MIRROR_DIR", str(tmp_path / "reader"))  # a machine that only trains
    remote_batch = next(iter(ShardIterator(OUT, batch_size=4, seed=3)))
    assert (tmp_path / "reader").is_dir() and not list((tmp_path / "reader").rglob("_work"))
    local_batch = next(iter(ShardIterator(tmp_path / "local", batch_size=4, seed=3)))
    assert remote_batch.keys() == local_batch.keys() and all((remote_batch[k] == local_batch[k]).all() for k in local_batch)

    first = local["shards"][0]["path"]
    fs.pipe(f"corpus/out/{first}", b"not a shard")
    faults, _ = validate_output(OUT)
    assert any(f.startswith(first) for f in faults), faults
    assert validate_output("s3://corpus/nothing")[0] == ["s3://corpus/nothing: no such output (nothing stored under it)"]

    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "recipe.yaml"), "-o", OUT, "--fresh", "-q", "-w", "1"])
    assert result.exit_code == 0 and f"output: {OUT}" in result.output, result.output
    assert validate_output(OUT)[0] == []  # --fresh deleted the store's output and its mirror, then rebuilt it


def test_a_run_resumes_from_the_store_when_the_local_mirror_is_gone(s3_endpoint, shared_data,  # noqa: F811
                                                                     tmp_path, monkeypatch):
    import shutil

    fs, recipe = _setup(shared_data, tmp_path, monkeypatch)
    run(recipe, output=OUT, workers=1)
    records = {p: fs.info(p)["ETag"] for p in fs.find("corpus/out/_state") if not p.endswith("plan.json")}
    shutil.rmtree(tmp_path / "mirror")
    run(recipe, output=OUT, workers=1)
    assert records and {p: fs.info(p)["ETag"] for p in records} == records
    assert validate_output(OUT)[0] == []

    # Uploads cut short (a record and a shard part never reached the store): the next run completes them.
    part = next(p for p in fs.find("corpus/out/_work/shards") if p.endswith(".safetensors"))
    fs.rm_file(part)
    fs.rm_file("corpus/out/_state/shards/000000.json")
    run(recipe, output=OUT, workers=1)
    assert fs.exists(part) and fs.exists("corpus/out/_state/shards/000000.json")


def test_a_pull_keeps_a_newer_local_file_and_refreshes_an_older_one(s3_endpoint, tmp_path):  # noqa: F811
    import os
    import time

    import s3fs

    from corpusforge.remote import RemoteOutput

    fs = s3fs.S3FileSystem()
    fs.mkdir("mirror")
    fs.pipe("mirror/out/_work/a.bin", b"store version")
    fs.pipe("mirror/out/_work/b.bin", b"store version")
    fs.pipe("mirror/out/_work/c.bin", b"only in the store")
    out = RemoteOutput("s3://mirror/out", tmp_path / "m")
    (tmp_path / "m" / "_work").mkdir(parents=True)
    (tmp_path / "m" / "_work" / "a.bin").write_bytes(b"written by a task, not yet uploaded")
    (tmp_path / "m" / "_work" / "b.bin").write_bytes(b"left by an earlier run")
    old = time.time() - 3600
    os.utime(tmp_path / "m" / "_work" / "b.bin", (old, old))
    assert out.pull() == 2
    assert (tmp_path / "m" / "_work" / "a.bin").read_bytes() == b"written by a task, not yet uploaded"
    assert (tmp_path / "m" / "_work" / "b.bin").read_bytes() == b"store version"
    assert (tmp_path / "m" / "_work" / "c.bin").read_bytes() == b"only in the store"
