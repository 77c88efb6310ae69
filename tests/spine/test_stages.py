"""Stage kinds: every stage a recipe plans resolves to a registered class, and the typed task results
write the completion records runs wrote before stages were objects, which a later run resumes from."""

from __future__ import annotations

import hashlib

import orjson
import pytest

from corpusforge import Document, run
from corpusforge.errors import CorpusforgeError, RecipeError
from corpusforge.observe.stats import TaskContext
from corpusforge.pipeline import Pipeline, run_task
from corpusforge.recipe import load_recipe
from corpusforge.splits import mixture_copies, sample_hash, split_of, split_thresholds
from corpusforge.stages import STAGE_KINDS, Stage, stage_kind
from corpusforge.stages.base import StageBase
from corpusforge.stages.shards import columns_of, selected, split_numbers
from corpusforge.staging import DocumentWriter, read_document_columns
from corpusforge.state import CompletionRecords
from tests.conftest import small_recipe

ALL_KINDS = {"curate", "decide", "finalize", "embeddings", "tokenizer", "mixture", "shards", "documents", "index"}


def _kinds(recipe: dict, tmp_path) -> list[tuple[str, str]]:
    pipe = Pipeline(load_recipe(recipe), tmp_path / "out", plan=[])
    return [(s.name, s.kind) for s in pipe.stages()]


def test_every_stage_of_recipes_with_dedup_embeddings_mixture_and_curate_only_resolves_to_a_registered_kind(
        tmp_path):
    src = [{"name": "books", "path": str(tmp_path)}]
    recipes = {
        "dedup": small_recipe(src, steps=[{"type": "exact_dedup"}, {"type": "word_count"}, {"type": "minhash_dedup"}]),
        "embeddings": small_recipe(src, embeddings={}),
        "mixture": small_recipe(src, sharding={"max_records": {"books": 10}, "mixture": {"books": 2.0}}),
        "curate_only": small_recipe(src, tokenizer=None),
    }
    seen = set()
    for name, recipe in recipes.items():
        for stage, kind in _kinds(recipe, tmp_path / name):
            resolved = stage_kind(kind)
            assert isinstance(resolved, STAGE_KINDS.get(kind)) and resolved.name == kind, (name, stage)
            seen.add(kind)
    assert seen == ALL_KINDS == set(STAGE_KINDS.names())
    assert _kinds(recipes["dedup"], tmp_path / "d")[:5] == [
        ("curate", "curate"), ("exact_dedup_0", "decide"), ("curate_1", "curate"), ("minhash_dedup_1", "decide"),
        ("minhash_dedup_1_finalize", "finalize")]
    assert [k for _, k in _kinds(recipes["curate_only"], tmp_path / "c")][-2:] == ["documents", "index"]


def test_driver_and_per_input_kinds_are_the_ones_the_runner_and_schedule_treat_so():
    assert {k for k in ALL_KINDS if stage_kind(k).in_driver} == {"tokenizer", "index"}
    assert {k for k in ALL_KINDS if stage_kind(k).writes_in_driver} == {"tokenizer", "index", "embeddings"}
    assert {k for k in ALL_KINDS if stage_kind(k).per_input} == {"curate", "embeddings", "shards", "documents"}


def test_an_unknown_stage_kind_is_a_one_line_error_naming_it_and_the_allowed_kinds(tmp_path):
    with pytest.raises(RecipeError) as err:
        stage_kind("shardz")
    msg = str(err.value)
    assert "\n" not in msg and "unknown stage kind 'shardz'" in msg and "did you mean 'shards'" in msg
    assert "Allowed: curate, decide, documents, embeddings, finalize, index, mixture, shards, tokenizer" in msg
    recipe = load_recipe(small_recipe([{"name": "books", "path": str(tmp_path)}]))
    payload = {"recipe": recipe.model_dump(mode="json"), "plan": [], "output": str(tmp_path / "out"),
               "fingerprint": recipe.fingerprint(), "task": 0, "key": "k",
               "stage": {"name": "x", "kind": "shardz", "n_tasks": 1, "segment": 0}}
    with pytest.raises(RecipeError, match="unknown stage kind 'shardz'"):
        run_task(payload)


def test_a_driver_stage_asked_to_run_as_a_task_and_a_task_stage_asked_to_run_in_the_driver_say_so(tmp_path):
    pipe = Pipeline(load_recipe(small_recipe([{"name": "books", "path": str(tmp_path)}])), tmp_path / "out", plan=[])
    with pytest.raises(CorpusforgeError, match=r"stage 'tokenizer' \(tokenizer\) runs in the driver, not as tasks"):
        stage_kind("tokenizer").run_task(pipe, Stage("tokenizer", "tokenizer", 1), 0, TaskContext("t", 0, tmp_path))
    with pytest.raises(CorpusforgeError, match=r"stage 'shards' \(shards\) runs as tasks, not in the driver"):
        stage_kind("shards").run_driver(None, Stage("shards", "shards", 1), CompletionRecords(tmp_path, "shards"))


# The fields of every stage's completion record as runs wrote them before stages were objects
# (commit 201a45b, a run of the recipe below): a resumed run reads these records back.
PRE_REFACTOR_FIELDS = {
    "curate": {"key", "lengths_read", "peak_rss_mb", "quarantine_reasons", "quarantined", "steps", "timing"},
    "exact_dedup": {"cluster_sizes", "documents", "duplicates", "key", "peak_rss_mb", "timing"},
    "mixture": {"available", "key", "max_hash", "peak_rss_mb", "timing"},
    "tokenizer": {"key", "path", "peak_rss_mb", "sha256", "source", "special_ids", "timing", "vocab_size"},
    "shards": {"counts", "documents", "documents_by_source", "key", "languages", "lengths_curated", "licenses",
               "peak_rss_mb", "shards", "steps", "timing", "tokens_by_source"},
    "index": {"key", "totals"},
}


def _output_hashes(out) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and "_state" not in p.parts
            and p.name not in ("stats.json", "README.md", "report.html")}


def test_completion_records_keep_their_fields_and_a_finished_run_resumes_from_them_without_work(
        shared_data, tmp_path, monkeypatch):
    sources = [{"name": "prose", "path": str(shared_data / "prose" / "gutenberg"), "text_unit": "paragraph"}]
    recipe = small_recipe(sources, sharding={"max_records": {"prose": 200}}, output={"documents": "jsonl"},
                          executor={"task_bytes": 2_000_000})
    out = tmp_path / "out"
    run(recipe, output=str(out), workers=1, progress=False)
    for stage, fields in PRE_REFACTOR_FIELDS.items():
        records = sorted((out / "_state" / stage).glob("*.json"))
        assert records, stage
        for rec in records:
            assert set(orjson.loads(rec.read_bytes())) == fields, (stage, rec.name)
    before, stats = _output_hashes(out), orjson.loads((out / "stats.json").read_bytes())

    def no_work(self, *args, **kwargs):
        raise AssertionError(f"stage kind {self.name!r} ran a task although its record was there")

    for kind in ALL_KINDS:
        monkeypatch.setattr(STAGE_KINDS.get(kind), "run_task", no_work)
    assert STAGE_KINDS.get("shards").run_task is not StageBase.run_task
    again = run(recipe, output=str(out), workers=1, progress=False)
    assert _output_hashes(out) == before
    assert again["splits"] == stats["splits"] and again["documents"] == stats["documents"]
    assert again["tokens_by_source"] == stats["tokens_by_source"] and again["shards"] == stats["shards"]


def test_document_batches_become_the_columns_a_staged_file_read_gives(tmp_path):
    docs = [Document(f"text {i} " * (i + 1), f"id{i}", f"src{i % 2}", i, {"source_name": f"s{i % 3}"})
            for i in range(7)]
    w = DocumentWriter(tmp_path / "staged.parquet")
    for d in docs:
        w.write(d)
    w.close()
    (read,) = read_document_columns(tmp_path / "staged.parquet", 10**9)
    built = columns_of(docs)
    assert built.texts == read.texts and built.chars.tolist() == read.chars.tolist()
    assert built.docs.to_pylist() == read.docs.to_pylist() and built.docs.schema == read.docs.schema
    assert [built.metas[m] for m in built.meta_index] == [read.metas[m] for m in read.meta_index]


def test_caps_mixture_and_splits_over_a_batch_are_the_per_document_rules():
    docs = [Document(f"d{i}", f"doc-{i}", "x", i, {"source_name": "web" if i % 2 else "books"}) for i in range(400)]
    c, ids, seed = columns_of(docs), [d.id for d in docs], 11
    web_hashes = sorted(sample_hash(d.id, seed) for d in docs if d.metadata["source_name"] == "web")
    max_hash = {"web": web_hashes[49]}  # max_records: web 50
    rows, copies = selected(ids, c, max_hash, {"books": 1.5}, seed)
    expected = [(r, mixture_copies(ids[r], seed, 1.5) if docs[r].metadata["source_name"] == "books" else 1)
                for r in range(len(docs))
                if docs[r].metadata["source_name"] == "books" or sample_hash(ids[r], seed) <= max_hash["web"]]
    expected = [(r, n) for r, n in expected if n]
    assert list(zip(rows.tolist(), copies.tolist(), strict=True)) == expected
    assert sum(docs[r].metadata["source_name"] == "web" for r in rows.tolist()) == 50
    assert set(copies.tolist()) == {1, 2}
    names, cuts = ["train", "val"], split_thresholds({"train": 0.9, "val": 0.1})
    at = split_numbers(ids, rows, c, names, lambda i, meta: split_of(i, seed, names, cuts))
    assert [names[k] for k in at.tolist()] == [split_of(ids[r], seed, names, cuts) for r in rows.tolist()]
