from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from corpusforge.curate.token_length import TokenLength
from corpusforge.curate.wikitext import WikitextClean, WikitextParagraphs, heading_of
from corpusforge.document import Document
from corpusforge.observe.stats import TaskContext
from tests.conftest import SHARED_DATA

from .conftest import RECIPE, shipped_recipe, wikitext_slice

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
    assert len({p.metadata["article"] for p in got}) == 1 and got[0].metadata["article"]  # what split_by uses


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


def test_clean_cleans_the_title_and_section_like_the_text():
    doc = Document("The class had 1 @,@ 200 men .", "a", "w",
                   metadata={"title": "<unk> @-@ class battleship", "section": "Service in 1914 @-@ 18"})
    assert WikitextClean().keep(doc) is None
    assert doc.metadata == {"title": "-class battleship", "section": "Service in 1914-18"}


def test_the_recipe_file_validates_with_a_local_model_and_points_at_the_shared_data(tiny_qwen3):
    from corpusforge.recipe import load_recipe

    recipe = load_recipe(shipped_recipe(SHARED_DATA / "wikitext-2", tiny_qwen3))
    emb = recipe.embeddings
    assert emb is not None and (emb.pooling, emb.normalize, emb.layout) == ("last_token", True, "splits")
    assert recipe.sharding.splits == {"train": 0.8, "val": 0.1, "test": 0.1} and recipe.sharding.split_by == "article"
    assert recipe.seed == 4 and (Path(recipe.sources[0]["path"]) / "valid.txt").is_file()


def test_a_missing_local_model_is_one_line_naming_the_field():
    from corpusforge.errors import RecipeError
    from corpusforge.recipe import load_recipe

    with pytest.raises(RecipeError, match=r"^embeddings\.model: .*Qwen3-Embedding-0\.6B.* not a local model folder"):
        load_recipe(RECIPE)  # the shipped recipe, before its model is copied beside it


def _tables(out):
    import polars as pl

    from corpusforge.loader.reader import read_safetensors

    for split in ("train", "val", "test"):
        yield split, pl.read_parquet(out / "embeddings" / f"{split}.parquet"), \
            read_safetensors(out / "embeddings" / f"{split}_embeddings.safetensors")["embeddings"]


def test_recipe_writes_seed_004s_files_one_table_and_one_matrix_per_split(wikitext_run):
    from corpusforge.state import read_json

    files = sorted(p.name for p in (wikitext_run / "embeddings").iterdir())
    assert files == ["index.json", "test.parquet", "test_embeddings.safetensors", "train.parquet",
                     "train_embeddings.safetensors", "val.parquet", "val_embeddings.safetensors"]
    index, stats = read_json(wikitext_run / "embeddings" / "index.json"), read_json(wikitext_run / "stats.json")
    assert (index["pooling"], index["normalized"], index["dim"], index["layout"]) == ("last_token", True, 32, "splits")
    assert sum(s["rows"] for s in index["splits"].values()) == stats["documents"]["kept"] > 900
    for split, table, vecs in _tables(wikitext_run):
        assert table.columns == ["text_id", "text", "token_count", "char_count", "metadata"]
        assert vecs.shape == (table.height, 32) == (index["splits"][split]["rows"], 32)
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
        assert table["token_count"].min() >= 100 and table["token_count"].max() <= 2000
        assert not any("@-@" in t or "<unk>" in t or t.lstrip().startswith("= ") for t in table["text"])
        metas = [orjson.loads(m) for m in table["metadata"]]
        assert all("<unk>" not in m["title"] + m["section"] and "@-@" not in m["title"] + m["section"] for m in metas)


def test_last_token_pooling_of_the_local_model_with_left_padding_gives_the_stored_rows(wikitext_run, tiny_qwen3):
    from corpusforge.models.embeddings import SentenceEncoder

    enc = SentenceEncoder(str(tiny_qwen3), pooling="last_token")
    assert enc.tok.padding_side == "left" and enc.max_length == 128
    for _, table, vecs in _tables(wikitext_run):
        texts = table["text"].to_list()[:4]
        assert np.allclose(vecs[:4], enc.encode(texts), atol=1e-5)
        assert np.allclose(vecs[0], enc.encode(texts[:1])[0], atol=1e-5)  # alone = in a padded batch


def test_split_is_by_article_80_10_10_within_half_a_percent_and_shards_agree(wikitext_run):
    from corpusforge.state import read_json

    rows, titles = {}, {}
    for split, table, _ in _tables(wikitext_run):
        rows[split] = table.height
        titles[split] = {orjson.loads(m)["article"] for m in table["metadata"]}
    total = sum(rows.values())
    for split, want in {"train": 0.8, "val": 0.1, "test": 0.1}.items():
        assert abs(rows[split] / total - want) <= 0.005, (split, rows)
    assert not titles["train"] & titles["val"] and not titles["train"] & titles["test"] and not titles["val"] & titles["test"]
    assert len(titles["val"]) >= 5 and len(titles["test"]) >= 5
    shards = read_json(wikitext_run / "stats.json")["splits"]
    assert {s: v["documents"] for s, v in shards.items()} == rows  # tokens and vectors in the same splits


def test_balanced_assignment_keeps_groups_whole_and_is_seeded():
    from corpusforge.shards.group_split import balanced_assignment

    sizes = {f"article {i}": 1 + (i * 7) % 13 for i in range(60)}
    ratios = {"train": 0.8, "val": 0.1, "test": 0.1}
    got = balanced_assignment(sizes, ratios, seed=4)
    assert got == balanced_assignment(dict(reversed(sizes.items())), ratios, seed=4)  # order of input is no matter
    assert got != balanced_assignment(sizes, ratios, seed=5)
    total = sum(sizes.values())
    for split, want in ratios.items():
        assert abs(sum(n for g, n in sizes.items() if got[g] == split) / total - want) <= 0.005


def test_paragraphs_over_the_window_are_counted_in_the_index(wikitext_run):
    from corpusforge.state import read_json

    index = read_json(wikitext_run / "embeddings" / "index.json")
    longer = sum(int((t["token_count"] > 128).sum()) for _, t, _ in _tables(wikitext_run))  # the tiny adds no token
    assert index["over_window"] == longer > 0 and index["max_length"] == 128 and index["long_texts"] == "truncate"
    stage = next(s for s in read_json(wikitext_run / "stats.json")["stages"] if s["name"] == "embeddings")
    assert stage["result"]["over_window"] == longer  # counted in stats.json too


def test_chunk_and_pool_embeds_a_long_text_window_by_window(tiny_qwen3):
    from corpusforge.models.embeddings import SentenceEncoder

    enc = SentenceEncoder(str(tiny_qwen3), pooling="last_token", max_length=16, long_texts="chunk", normalize=False)
    text = " ".join(["the sea river city music war ship king"] * 4 + ["the a"])  # 34 words: windows of 16, 16, 2
    got = enc.encode([text])[0]
    windows = [" ".join(text.split()[i:i + 16]) for i in (0, 16, 32)]
    enc.long_texts = "truncate"
    parts = enc.encode(windows)
    want = (parts * np.array([[16], [16], [2]])).sum(axis=0) / 34  # weighted by their tokens
    assert np.allclose(got, want, atol=1e-5)
    assert enc.over_window(enc.count_tokens([text, windows[2]])) == 1


def test_slice_helper_cuts_at_a_line_end(tmp_path):
    text = (wikitext_slice(tmp_path, 1000) / "valid.txt").read_text()
    assert text.endswith("\n") and 1000 < len(text) < 5000
