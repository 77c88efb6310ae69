"""The Python API (docs/api.md): Recipe, Pipeline, RunStats and create_source over the one engine."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from corpusforge import Pipeline, Recipe, run
from corpusforge.errors import RecipeError
from corpusforge.sources import create_source

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _files(out: Path, *patterns: str) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for pat in patterns for p in sorted(out.glob(pat)) if p.is_file()}


def test_the_documented_examples_run(tmp_path, monkeypatch, shared_data, capsys):
    (tmp_path / "books").symlink_to(shared_data / "prose" / "gutenberg")
    (tmp_path / "wikitext-2").symlink_to(shared_data / "wikitext-2")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 4
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC}[python block {i}]", "exec"), {})
    printed = capsys.readouterr().out
    documented = re.search(r"```text\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    assert printed.startswith(documented), printed[:600]  # the summary shown is the first example's
    # Tokenize later: the shards of curated-then-tokenized are the one-shot run's.
    one_shot = (Pipeline(Recipe.from_preset("production", output={"documents": "parquet"}, steps=[
        {"type": "normalize"}, {"type": "quality_thresholds"}, {"type": "exact_dedup"}, {"type": "gopher_repetition"}],
        tokenizer={"vocab_size": 2000}, sharding={"sequence_length": 512}))
        .add_source("files", name="books", path="books", text_unit="paragraph"))
    stats = one_shot.run(output="one-shot", workers=1)
    assert stats.shards > 0
    assert _files(tmp_path / "one-shot", "documents/*") == _files(tmp_path / "out-curated", "documents/*")


def test_pipeline_run_is_the_recipe_run(tmp_path, shared_data):
    books = {"type": "files", "name": "books", "path": str(shared_data / "prose" / "gutenberg"),
             "text_unit": "paragraph"}
    recipe = {"name": "api", "seed": 3, "tokenizer": {"vocab_size": 600}, "sharding": {"sequence_length": 128, "max_shard_bytes": 200_000}}
    stats = Pipeline(Recipe.from_dict(recipe)).add_source(books).run(output=tmp_path / "api", workers=1)
    plain = run({**recipe, "sources": [books]}, output=str(tmp_path / "plain"), workers=1)
    assert _files(tmp_path / "api", "*/shard_*") == _files(tmp_path / "plain", "*/shard_*")
    assert len(_files(tmp_path / "api", "*/shard_*")) > 3
    assert stats.to_dict()["documents"] == plain["documents"] and stats.tokens == plain["tokens"]
    assert stats.output == str((tmp_path / "api").resolve()) and not stats.curate_only
    lines = stats.summary().splitlines()
    d = plain["documents"]
    assert lines[0] == (f"api: {d['read']:,} documents read, 0 quarantined, {d['kept']:,} kept "
                        f"({d['kept'] / d['read']:.1%})")
    assert f"tokens: {plain['tokens']:,} in {plain['shards']['shards']:,} shards" in lines
    assert list(stats.drops().items())[0] == ("quality_thresholds: too_short", 1600)


def test_recipe_from_preset_yaml_and_dict_agree(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("preset: production\ntokenizer: null\n")
    a, b = Recipe.from_preset("production", tokenizer=None), Recipe.from_yaml(path)
    c = Recipe.from_dict({"preset": "production", "tokenizer": None})
    assert a == b == c and a.curate_only and a.sharding.sequence_length == 4096 and a.sources == []
    with pytest.raises(RecipeError, match="sources: none yet; add one with Pipeline.add_source"):
        Pipeline(a).run(output=tmp_path / "out")
    with pytest.raises(RecipeError, match="at least one source is required"):
        run({"tokenizer": None}, output=str(tmp_path / "out"))


def test_create_source_names_a_catalog_dataset_or_a_source_type():
    assert create_source("wikitext", max_samples=50).to_dict() == {
        "type": "hf_dataset", "name": "wikitext", "split": "train", "dataset": "Salesforce/wikitext",
        "config": "wikitext-103-raw-v1", "text_field": "text", "max_records": 50,
        "metadata": {"dataset": "wikitext", "license": "CC-BY-SA-3.0"}}
    assert create_source("files", path="data", text_unit="line").to_dict() == {
        "type": "files", "name": "files", "path": "data", "text_unit": "line"}
    with pytest.raises(RecipeError, match="did you mean wikitext"):
        create_source("wikitxt")
    with pytest.raises(RecipeError, match="text_unt"):
        create_source("files", path="data", text_unt="line")


def test_add_source_and_add_step_build_the_recipe():
    p = (Pipeline(Recipe.from_preset(steps=[])).add_source("files", path="a").add_source({"type": "files", "path": "b"})
         .add_step("normalize", form="NFKC"))
    r = p.recipe
    assert [s["name"] for s in r.sources] == ["files", "source1"] and r.steps == [{"type": "normalize", "form": "NFKC"}]
    with pytest.raises(RecipeError, match="used twice"):
        _ = Pipeline(r).add_source("files", path="c").recipe
