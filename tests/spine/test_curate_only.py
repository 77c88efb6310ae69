"""Curate-only runs (``tokenizer: null`` / ``output.shards: false``) and tokenize-only runs over them."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import yaml

from corpusforge import run
from corpusforge.errors import RecipeError
from corpusforge.recipe import load_recipe
from corpusforge.staging import read_documents
from tests.conftest import small_recipe


def _sources(shared_data: Path) -> list[dict]:
    return [{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"},
            {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph"}]


def _recipe(shared_data: Path, **over) -> dict:
    return small_recipe(_sources(shared_data), **over)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True)


def _files(out: Path, *patterns: str) -> dict[str, str]:
    """sha256 of every file under ``out`` matching ``patterns``, by relative path."""
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for pat in patterns for p in sorted(out.glob(pat)) if p.is_file()}


def _docs(out: Path) -> list[tuple[str, str]]:
    return [(d.id, d.text) for f in sorted((out / "documents").glob("part_*")) for d in read_documents(f)]


def _lineage_ids(out: Path) -> set[str]:
    return {i for f in (out / "lineage").glob("*/*.parquet") for i in pq.read_table(f)["doc_id"].to_pylist()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared_data) -> dict[str, Path]:
    """A shard run writing its documents, and curate-only runs of the same recipe in three formats."""
    root = tmp_path_factory.mktemp("curate_only")
    outs = {"shards": root / "shards", "gz": root / "gz", "parquet": root / "parquet", "zst": root / "zst"}
    run(_recipe(shared_data, output={"documents": "jsonl.gz"}), output=str(outs["shards"]), workers=1)
    run(_recipe(shared_data, tokenizer=None, output={"documents": "jsonl.gz"}), output=str(outs["gz"]), workers=1)
    run(_recipe(shared_data, output={"shards": False, "documents": "parquet"}), output=str(outs["parquet"]), workers=1)
    run(_recipe(shared_data, tokenizer=None), output=str(outs["zst"]), workers=1)  # the default format
    return outs


def test_curate_only_writes_documents_and_no_tokenizer_or_shards(runs):
    out = runs["gz"]
    stats = orjson.loads((out / "stats.json").read_bytes())
    assert [s["kind"] for s in stats["stages"]] == ["curate", "decide", "documents", "index"]
    assert not (out / "shard_index.json").exists() and not (out / "tokenizer.json").exists()
    assert not (out / "train").exists() and not (out / "_work" / "shards").exists()
    index = orjson.loads((out / "documents_index.json").read_bytes())
    assert index["format"] == "documents" and index["documents_format"] == "jsonl.gz"
    assert index["totals"]["documents"] == stats["documents"]["kept"] == sum(p["documents"] for p in index["parts"])
    assert stats["tokens"] == 0 and stats["documents"]["kept"] > 1000
    assert {"README.md", "report.html", "version.json", "recipe.yaml"} <= {p.name for p in out.iterdir()}
    assert (out / "lineage" / "documents" / "part_000000.parquet").is_file()


def test_curate_only_documents_are_exactly_those_a_shard_run_keeps(runs):
    kept = _docs(runs["shards"])
    assert kept and {i for i, _ in kept} == _lineage_ids(runs["shards"])  # what the shards hold
    for fmt in ("gz", "parquet", "zst"):
        assert _docs(runs[fmt]) == kept, fmt
    # Same bytes, not only the same documents: one writer serves both kinds of run.
    assert _files(runs["gz"], "documents/*") == _files(runs["shards"], "documents/*")


def test_hf_datasets_reads_curate_only_output_as_the_shard_runs_documents(runs, tmp_path):
    datasets = pytest.importorskip("datasets")
    kept = _docs(runs["shards"])
    for fmt, builder in (("gz", "json"), ("zst", "json"), ("parquet", "parquet")):
        files = sorted(str(p) for p in (runs[fmt] / "documents").glob("part_*"))
        ds = datasets.load_dataset(builder, data_files=files, split="train", cache_dir=str(tmp_path / fmt))
        assert list(zip(ds["id"], ds["text"], strict=True)) == kept, fmt
        assert set(ds.column_names) >= {"id", "text", "metadata"}
    first = datasets.load_dataset("json", data_files=sorted(str(p) for p in (runs["gz"] / "documents").glob("*")),
                                  split="train", cache_dir=str(tmp_path / "meta"))[0]
    assert first["metadata"]["source_name"] == "gutenberg" and first["metadata"]["split"] in ("train", "val", "test")


def test_parts_are_cut_at_part_bytes_and_hold_the_same_documents(runs, tmp_path, shared_data):
    out = tmp_path / "parts"
    run(_recipe(shared_data, tokenizer=None, output={"part_bytes": 100_000, "documents": "jsonl"}), output=str(out),
        workers=1)
    index = orjson.loads((out / "documents_index.json").read_bytes())
    assert _docs(out) == _docs(runs["gz"])
    by_task: dict[str, list[dict]] = {}
    for p in index["parts"]:
        by_task.setdefault(Path(p["path"]).name[:11], []).append(p)
    assert max(len(v) for v in by_task.values()) > 2
    for parts in by_task.values():
        for p in parts[:-1]:  # every part but a task's last is full: at least part_bytes, at most one record over
            lines = (out / p["path"]).read_bytes().splitlines(keepends=True)
            size = sum(map(len, lines))
            assert 100_000 <= size < 100_000 + len(lines[-1]), p["path"]


def test_curate_only_outputs_are_identical_for_one_and_two_workers(runs, tmp_path, shared_data):
    out = tmp_path / "w2"
    run(_recipe(shared_data, tokenizer=None, output={"documents": "jsonl.gz"}), output=str(out), workers=2)
    patterns = ("documents/*", "lineage/*/*", "documents_index.json", "version.json", "README.md")
    assert _files(out, *patterns) == _files(runs["gz"], *patterns)
    assert len(list((out / "documents").glob("*"))) > 3


def test_killed_curate_only_run_resumes_to_identical_documents(tmp_path, shared_data):
    recipe = _recipe(shared_data, tokenizer=None, executor={"task_bytes": 200_000})
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    ref = tmp_path / "ref"
    run(recipe, output=str(ref), workers=2)
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "corpusforge.cli", "run", str(path), "-o", str(out), "-w", "2", "-q"]
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "_state" / "curate").glob("*.json"))) >= 2:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed: " + proc.stderr.read().decode()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "documents_index.json").exists()
    run(recipe, output=str(out), workers=2)
    patterns = ("documents/*", "lineage/*/*", "documents_index.json")
    assert _files(out, *patterns) == _files(ref, *patterns)
    assert _cli("validate", str(out)).returncode == 0


def test_tokenize_only_over_curate_only_gives_the_one_shot_runs_shards(runs, tmp_path, shared_data):
    one_shot = tmp_path / "one_shot"
    run(_recipe(shared_data), output=str(one_shot), workers=1)  # trains its tokenizer on the curated text
    tokenize = small_recipe([{"name": "curated", "type": "corpusforge", "path": str(runs["gz"])}], steps=[])
    out = tmp_path / "tokenized"
    run(tokenize, output=str(out), workers=2)
    shards = _files(one_shot, "train/*", "val/*", "test/*")
    assert len(shards) > 5 and _files(out, "train/*", "val/*", "test/*") == shards
    assert (out / "tokenizer.json").read_bytes() == (one_shot / "tokenizer.json").read_bytes()
    assert _files(out, "lineage/*/*") == _files(one_shot, "lineage/*/*")
    assert _cli("validate", str(out)).returncode == 0
    # A loaded tokenizer too, from the documents of the parquet run (another format, same documents).
    loaded = {"vocab_size": 600, "path": str(one_shot / "tokenizer.json")}
    run(_recipe(shared_data, tokenizer=loaded), output=str(tmp_path / "loaded"), workers=1)
    over_parquet = small_recipe([{"name": "c", "type": "corpusforge", "path": str(runs["parquet"] / "documents")}],
                                steps=[], tokenizer=loaded)
    run(over_parquet, output=str(tmp_path / "tok2"), workers=1)
    assert _files(tmp_path / "tok2", "train/*", "val/*") == _files(tmp_path / "loaded", "train/*", "val/*")


def test_corpusforge_source_quarantines_a_corrupt_line_and_keeps_the_rest(tmp_path, runs):
    docs = tmp_path / "in" / "documents"
    docs.mkdir(parents=True)
    lines = gzip.decompress((runs["gz"] / "documents" / "part_000000.jsonl.gz").read_bytes()).splitlines()[:50]
    lines.insert(10, b'{"id": "x", "text": ')
    (docs / "part_000000.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out"
    stats = run(small_recipe([{"name": "c", "type": "corpusforge", "path": str(tmp_path / "in")}], steps=[],
                             tokenizer=None), output=str(out), workers=1)
    assert stats["documents"] == {"read": 50, "quarantined": 1, "kept": 50}
    (entry,) = [orjson.loads(x) for f in (out / "quarantine").rglob("*.jsonl*")
                for x in (gzip.decompress(f.read_bytes()) if f.suffix == ".gz" else f.read_bytes()).splitlines()]
    assert entry["location"].endswith("part_000000.jsonl line 11") and entry["reason"].startswith("invalid JSON")


def test_corpusforge_source_without_documents_is_one_line_error(tmp_path):
    (tmp_path / "empty").mkdir()
    res = _cli("run", _write(tmp_path, small_recipe([{"name": "c", "type": "corpusforge",
                                                         "path": str(tmp_path / "empty")}], steps=[])),
               "-o", str(tmp_path / "out"), "-q")
    assert res.returncode != 0 and "no documents" in res.stderr and "Traceback" not in res.stderr


def _write(tmp_path: Path, recipe: dict) -> str:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_commands_on_a_curate_only_output(runs, tmp_path):
    out = str(runs["gz"])
    res = _cli("validate", out)
    assert res.returncode == 0 and "document parts" in res.stderr and "curate-only" in res.stderr
    (doc_id, _), *_ = _docs(runs["gz"])
    res = _cli("trace", out, "--doc-id", doc_id, "--json")
    assert res.returncode == 0
    (found,) = [orjson.loads(x) for x in res.stdout.splitlines()]
    assert found["shard"] == "documents/part_000000.jsonl.gz" and found["row"] == 0 and found["doc_id"] == doc_id
    res = _cli("card", out)
    assert res.returncode == 0
    card = (runs["gz"] / "README.md").read_text()
    assert "path: documents/*.jsonl.gz" in card and "curate-only" in card
    assert _cli("diff", out, out).returncode == 0
    for cmd in (("inspect", out), ("erase", out, "--doc-id", doc_id, "--dry-run")):
        res = _cli(*cmd)
        assert res.returncode == 2 and "has no shards, it is a curate-only output" in res.stderr, cmd
        assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) <= 3


def test_validate_finds_a_changed_or_missing_document_part(runs, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(runs["gz"], out)
    part = out / "documents" / "part_000001.jsonl.gz"
    part.write_bytes(gzip.compress(gzip.decompress(part.read_bytes())[:-200]))
    (out / "documents" / "part_000002.jsonl.gz").unlink()
    res = _cli("validate", str(out))
    assert res.returncode == 1
    assert "part_000001.jsonl.gz: checksum differs from the index" in res.stderr.replace("\n", "")
    assert "part_000002.jsonl.gz: missing" in res.stderr.replace("\n", "")


def test_recipe_forms_of_curate_only():
    src = [{"path": "/data"}]
    assert load_recipe({"sources": src, "tokenizer": None}).curate_only
    assert load_recipe({"sources": src, "tokenizer": None}).output.documents == "jsonl.zst"
    r = load_recipe({"sources": src, "preset": "production", "output": {"shards": False, "documents": "parquet"}})
    assert r.curate_only and r.output.documents == "parquet"
    assert not load_recipe({"sources": src}).curate_only
    with pytest.raises(RecipeError, match="curate-only run .* cannot take a media section"):
        load_recipe({"sources": src, "preset": "multimodal", "tokenizer": None})
    with pytest.raises(RecipeError, match="output.documents"):
        load_recipe({"sources": src, "output": {"documents": "csv"}})
    # The new output options enter the fingerprint only when set: existing recipes keep theirs.
    assert load_recipe({"sources": src, "output": {"shards": True, "part_bytes": 256_000_000}}).fingerprint() == \
        load_recipe({"sources": src}).fingerprint()


def test_the_documented_curate_and_tokenize_recipes_run(tmp_path, monkeypatch, shared_data):
    datasets = pytest.importorskip("datasets")
    import re

    text = (Path(__file__).resolve().parents[2] / "docs" / "recipe.md").read_text(encoding="utf-8")
    section = text[text.index("### Curate only"):text.index("## Inputs, bad input and quarantine")]
    curate, tokenize = re.findall(r"```yaml\n(.*?)```", section, re.S)
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    (tmp_path / "books").symlink_to(shared_data / "prose" / "gutenberg")
    (tmp_path / "curate.yaml").write_text(curate)
    (tmp_path / "tokenize.yaml").write_text(tokenize)
    monkeypatch.chdir(tmp_path)
    assert _cli("run", "curate.yaml", "-o", "curated", "-w", "1", "-q").returncode == 0
    assert _cli("run", "tokenize.yaml", "-o", "tokenized", "-w", "1", "-q").returncode == 0
    scope: dict = {}
    exec(compile(example.replace('split="train")', f'split="train", cache_dir="{tmp_path / "hf"}")'), "recipe.md",
                 "exec"), scope)
    stats = orjson.loads((tmp_path / "tokenized" / "stats.json").read_bytes())
    assert len(scope["docs"]) == stats["documents"]["read"] == stats["documents"]["kept"] > 1000
    assert datasets is not None and _cli("validate", "tokenized").returncode == 0


def test_erase_removes_a_document_from_compressed_documents_files(runs, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(runs["shards"], out)
    (doc_id, _), *rest = _docs(out)
    res = _cli("erase", str(out), "--doc-id", doc_id)
    assert res.returncode == 0, res.stderr
    assert _docs(out) == rest  # the erased document's line is gone from documents/*.jsonl.gz, the rest kept
    assert all(p.read_bytes()[:2] == b"\x1f\x8b" for p in (out / "documents").glob("*"))
