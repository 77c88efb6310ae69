from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from corpusforge.curate.token_length import TokenLength
from corpusforge.curate.wikitext import WikitextClean, WikitextParagraphs, heading_of
from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext

from .conftest import RECIPE, wikitext_slice

SNIPPET = (" \n = Robert Boulter = \n \n Robert Boulter is an English film actor . \n It was 1 @,@ 000 miles . \n"
           " \n = = Career = = \n \n In 2000 Boulter had a <unk> role . \n \n = = = 2003 @-@ 2005 = = = \n \n"
           " He was 1 @.@ 5 m tall . \n")


def _paragraphs(docs, tmp_path):
    return list(WikitextParagraphs()(iter(docs), TaskContext("t", 0, tmp_path)))


def test_lines_merge_into_paragraphs_between_headings_with_title_and_section(tmp_path):
    got = _paragraphs([Document(SNIPPET, "f", "wiki.txt")], tmp_path)
    assert [(p.text.strip(), p.metadata["title"], p.metadata["section"]) for p in got] == [
        ("= Robert Boulter =", "Robert Boulter", ""),
        ("Robert Boulter is an English film actor . \n It was 1 @,@ 000 miles .", "Robert Boulter", ""),
        ("= = Career = =", "Robert Boulter", "Career"),
        ("In 2000 Boulter had a <unk> role .", "Robert Boulter", "Career"),
        ("= = = 2003 @-@ 2005 = = =", "Robert Boulter", "2003 @-@ 2005"),
        ("He was 1 @.@ 5 m tall .", "Robert Boulter", "2003 @-@ 2005"),
    ]
    assert len({p.id for p in got}) == len(got)


def test_dataset_rows_of_one_line_each_merge_like_the_file(tmp_path):
    whole = _paragraphs([Document(SNIPPET, "f", "wiki.txt")], tmp_path)
    rows = [Document(line + "\n", f"r{i}", "hf://wikitext", i, {"text": line + "\n"})
            for i, line in enumerate(SNIPPET.split("\n"))]
    merged = _paragraphs(rows, tmp_path)
    assert [p.text.strip() for p in merged] == [p.text.strip() for p in whole]
    assert "text" not in merged[1].metadata and merged[1].offset == 3


def test_hf_dataset_rows_read_from_a_local_copy_give_the_file_paragraphs(tmp_path):
    pytest.importorskip("datasets")
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpusforge.sources.hf import HFDatasetSource

    folder = tmp_path / "wikitext-2-v1"
    folder.mkdir()
    pq.write_table(pa.table({"text": [line + "\n" for line in SNIPPET.split("\n")]}), folder / "train.parquet")
    src = HFDatasetSource(name="wikitext2", path=str(folder))
    ctx = TaskContext("t", 0, tmp_path)
    rows = src.read(src.plan(1 << 20)[0], ctx)
    merged = list(WikitextParagraphs()(rows, ctx))
    assert [p.text.strip() for p in merged] == [p.text.strip() for p in _paragraphs([Document(SNIPPET, "f", "w")],
                                                                                     tmp_path)]


def test_heading_levels():
    assert heading_of(" = Robert Boulter = ") == (1, "Robert Boulter")
    assert heading_of(" = = = 2003 @-@ 2005 = = = ") == (3, "2003 @-@ 2005")
    assert heading_of(" a = b = c ") is None and heading_of(" = = unbalanced = ") is None


def test_clean_undoes_wikitext_markup_and_drops_headings():
    step = WikitextClean()
    doc = Document("  It was 1 @,@ 000 miles , 2 @.@ 5 km and 1939 @-@ 45 <unk> long . \n\n  Next   line . ", "a", "w")
    assert step.keep(doc) is None
    assert doc.text == "It was 1,000 miles , 2.5 km and 1939-45 long .\nNext line ."
    assert step.keep(Document(" = = Career = = ", "h", "w")) == "heading"
    assert step.keep(Document(" <unk> <unk> ", "u", "w")) == "empty"
    assert step.keep(Document("1 , 2 , 3 ; 4 : 55 % ( 6 ) abc", "n", "w")) == "mostly_punctuation_or_digits"
    detok = Document("He said , \" yes \" ( twice ) ; it 's 5 % .", "d", "w")
    assert WikitextClean(detokenize=True).keep(detok) is None
    assert detok.text == "He said, \" yes \" (twice); it's 5%."


def test_token_length_counts_the_full_text_with_the_embedding_tokenizer():
    step = TokenLength(min_tokens=100, max_tokens=2000)
    long_doc = Document(" ".join(["lobster"] * 300), "l", "w")
    assert step.keep(long_doc) is None and long_doc.metadata["token_count"] == 300  # not cut at MiniLM's 128
    assert step.keep(Document("a few words", "s", "w")) == "too_few_tokens"
    assert TokenLength(max_tokens=10).keep(long_doc) == "too_many_tokens"


def test_the_recipe_file_validates_and_points_at_the_shared_data():
    from corpusforge.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    assert recipe.embeddings is not None and recipe.sharding.splits == {"train": 0.8, "val": 0.1, "test": 0.1}
    assert (Path(recipe.sources[0]["path"]) / "valid.txt").is_file()


def test_recipe_end_to_end_on_a_slice_writes_aligned_vectors_and_tables(wikitext_run):
    import numpy as np
    import polars as pl

    from corpusforge.loader.reader import read_safetensors
    from corpusforge.models.embeddings import SentenceEncoder
    from corpusforge.pipeline import split_of, split_thresholds
    from corpusforge.state import read_json

    index = read_json(wikitext_run / "embeddings" / "index.json")
    stats = read_json(wikitext_run / "stats.json")
    splits = {"train": 0.8, "val": 0.1, "test": 0.1}
    assert index["dim"] == 384 and index["pooling"] == "mean" and index["dtype"] == "float32"
    assert sum(s["rows"] for s in index["splits"].values()) == stats["documents"]["kept"] > 10
    enc = SentenceEncoder(max_length=128)
    for split, entry in index["splits"].items():
        for part in entry["parts"]:
            vecs = read_safetensors(wikitext_run / "embeddings" / part["path"])["embeddings"]
            table = pl.read_parquet(wikitext_run / "embeddings" / part["table"])
            assert table.columns == ["text_id", "text", "token_count", "char_count", "metadata"]
            assert vecs.shape == (table.height, 384) == (part["rows"], 384)
            assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
            assert table["token_count"].min() >= 100 and table["token_count"].max() <= 2000
            assert table["char_count"].to_list() == [len(t) for t in table["text"]]
            assert not any("@-@" in t or "<unk>" in t or t.lstrip().startswith("= ") for t in table["text"])
            assert all(split_of(i, 4, list(splits), split_thresholds(splits)) == split for i in table["text_id"])
            # row i of the matrix is the embedding of row i of the table
            assert np.allclose(vecs[:3], enc.encode(table["text"].to_list()[:3]), atol=1e-5)
    drops = Counter()
    for stage in stats["stages"]:
        for step in stage.get("steps", []):
            drops.update(step["drops"])
    assert drops["heading"] > 0 and drops["too_few_tokens"] > 0


def test_slice_helper_cuts_at_a_line_end(tmp_path):
    text = (wikitext_slice(tmp_path, 1000) / "valid.txt").read_text()
    assert text.endswith("\n") and 1000 < len(text) < 5000
