from collections import Counter

import orjson
import pyarrow.parquet as pq
import pytest

from corpusforge import run
from corpusforge.document import Document
from corpusforge.errors import RecipeError
from corpusforge.models.augment import (
    SENTENCE_END,
    ParagraphExtraction,
    RandomEdit,
    SentenceShuffle,
    TokenNoise,
    copy_id,
    paragraphs,
)
from corpusforge.observe.stats import TaskContext
from corpusforge.recipe import Recipe
from tests.conftest import SHARED_DATA

TEXT = ("The river rises in the hills. It flows east for forty miles. Mills once lined its banks.\n\n"
        "Trade grew in the town. Merchants built a bridge in 1820! Was it the first? Nobody knows.\n\n"
        "Today the mills are museums. Visitors walk the old towpath.")


def wiki(n: int) -> list[str]:
    """``n`` WikiText-2 articles' first paragraphs, several sentences each."""
    lines = (SHARED_DATA / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if len(ln.split()) > 60 and not ln.strip().startswith("=")][:n]


def augment(step, docs: list[Document], task: int = 0, tmp_path=None) -> tuple[list[Document], TaskContext]:
    ctx = TaskContext("curate", task, tmp_path or __import__("pathlib").Path("/nonexistent"))
    step.setup(ctx)
    return list(step(iter(docs), ctx)), ctx


def doc(text: str, i: str = "a", **meta) -> Document:
    return Document(text, id=i, source="mem://x", offset=7, metadata=dict(meta))


def test_copies_follow_their_original_with_new_ids_and_traceable_metadata():
    out, ctx = augment(SentenceShuffle(factor=2, seed=3), [doc(TEXT, "a", source_name="s"), doc("One only.", "b")])
    assert [d.id for d in out] == ["a", copy_id("a", "sentence_shuffle", 3, 0), copy_id("a", "sentence_shuffle", 3, 1),
                                   "b"]  # a one-sentence document has no other order: no copy
    for copy in out[1:3]:
        assert copy.metadata == {"source_name": "s", "augmented_from": "a", "augmentation": "sentence_shuffle",
                                 "modified_by": ["sentence_shuffle"]}
        assert (copy.source, copy.offset) == ("mem://x", 7) and copy.text != TEXT
    assert "modified_by" not in out[0].metadata  # the original's metadata is not shared with its copies
    stats = next(iter(ctx.step_stats.values()))
    assert stats.counts == {"augmented": 2, "unchanged": 2} and stats.modified == 2


def test_copies_depend_on_the_document_id_and_seed_only():
    texts = wiki(6)
    docs = [doc(t, f"id{i}") for i, t in enumerate(texts)]
    one, _ = augment(SentenceShuffle(seed=1), [Document(d.text, d.id, d.source) for d in docs])
    # another task, the documents in reverse order, one at a time: the same copies
    rev = []
    for d in reversed(docs):
        rev += augment(SentenceShuffle(seed=1), [Document(d.text, d.id, d.source)], task=5)[0]
    by_id = {d.id: d.text for d in rev}
    assert all(by_id[d.id] == d.text for d in one)
    other, _ = augment(SentenceShuffle(seed=2), [Document(d.text, d.id, d.source) for d in docs])
    assert [d.text for d in other[1::2]] != [d.text for d in one[1::2]]


def test_sentence_shuffle_permutes_sentences_within_each_paragraph():
    out, _ = augment(SentenceShuffle(seed=0), [doc(TEXT)])
    orig, new = TEXT.split("\n\n"), out[1].text.split("\n\n")
    assert len(new) == 3 and new != orig
    for a, b in zip(orig, new, strict=True):
        assert sorted(SENTENCE_END.split(a)) == sorted(SENTENCE_END.split(b))
    whole, _ = augment(SentenceShuffle(scope="document", seed=0), [doc(TEXT)])
    assert "\n\n" not in whole[1].text and Counter(whole[1].text.split()) == Counter(TEXT.split())


def test_paragraph_extraction_takes_a_run_of_consecutive_paragraphs():
    out, _ = augment(ParagraphExtraction(max_paragraphs=2, min_chars=10, factor=4, seed=9), [doc(TEXT)])
    paras = paragraphs(TEXT)
    runs = {"\n\n".join(paras[i : i + n]) for n in (1, 2) for i in range(len(paras) - n + 1)}
    assert len(out) > 2 and all(c.text in runs for c in out[1:])
    assert len(augment(ParagraphExtraction(min_chars=1000), [doc(TEXT)])[0]) == 1  # every run is too short


def test_token_noise_edits_words_but_keeps_the_white_space():
    text = "alpha beta\ngamma   delta\n\nepsilon"
    out, _ = augment(TokenNoise(p=1.0, seed=4), [doc(text)])
    new = out[1].text
    assert [ln.count(" ") for ln in new.split("\n")] == [ln.count(" ") for ln in text.split("\n")]
    pairs = list(zip(text.split(), new.split(), strict=True))
    assert all(abs(len(a) - len(b)) <= 1 for a, b in pairs)  # one character edit per word at most
    assert sum(a != b for a, b in pairs) >= 4  # a replacement may draw the same letter, rarely


def is_subsequence(small: list[str], big: list[str]) -> bool:
    it = iter(big)
    return all(w in it for w in small)


def test_random_edit_deletes_swaps_and_inserts_line_by_line():
    text = wiki(1)[0] + "\nsecond line of words to edit here"
    lines = text.split("\n")
    deleted = augment(RandomEdit(insertion=0, swap=0, deletion=0.3, seed=1), [doc(text)])[0][1].text.split("\n")
    assert all(is_subsequence(n.split(), o.split()) and len(n.split()) < len(o.split())
               for o, n in zip(lines, deleted, strict=True))
    swapped = augment(RandomEdit(insertion=0, deletion=0, swap=0.2, seed=1), [doc(text)])[0][1].text.split("\n")
    assert all(Counter(o.split()) == Counter(n.split()) for o, n in zip(lines, swapped, strict=True))
    inserted = augment(RandomEdit(insertion=0.2, deletion=0, swap=0, seed=1), [doc(text)])[0][1].text.split("\n")
    assert all(is_subsequence(o.split(), n.split()) for o, n in zip(lines, inserted, strict=True))
    assert sum(len(n.split()) - len(o.split()) for o, n in zip(lines, inserted, strict=True)) > 0
    assert set(" ".join(inserted).split()) <= set(text.split())


def test_fraction_and_replacing_originals():
    docs = [doc(t, f"id{i}") for i, t in enumerate(wiki(20))]
    out, _ = augment(SentenceShuffle(fraction=0.5, seed=0), [Document(d.text, d.id, d.source) for d in docs])
    copies = [d for d in out if "augmented_from" in d.metadata]
    assert 4 <= len(copies) <= 16 and len(out) == 20 + len(copies)
    replaced, ctx = augment(TokenNoise(p=0.5, keep_original=False), [doc(TEXT, "a"), doc("", "empty")])
    assert [d.metadata.get("augmented_from") for d in replaced] == ["a", None]  # nothing to noise: it stays
    assert next(iter(ctx.step_stats.values())).drops == {"replaced_by_augmentation": 1}


def test_options_are_validated_in_the_recipe():
    with pytest.raises(RecipeError, match="factor"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [{"type": "token_noise", "factor": 0}]})
    with pytest.raises(RecipeError, match="at least one"):
        Recipe.model_validate({"sources": [{"path": "."}], "steps": [
            {"type": "random_edit", "insertion": 0, "deletion": 0, "swap": 0}]})


def test_pipeline_shards_the_copies_and_lineage_names_the_augmentation(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    texts = wiki(8)
    for f in range(2):
        rows = [{"text": t} for t in texts[4 * f : 4 * f + 4]]
        (src / f"part_{f}.jsonl").write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
    recipe = {"sources": [{"path": str(src)}], "tokenizer": {"vocab_size": 400},
              "steps": [{"type": "sentence_shuffle", "factor": 2, "seed": 5}, {"type": "exact_dedup"}],
              "sharding": {"sequence_length": 64, "splits": {"train": 1.0}}, "output": {"documents": "jsonl"},
              "executor": {"task_bytes": 3000}}
    stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    shuffle = stats["stages"][0]["steps"][1]
    made = shuffle["counts"]["augmented"]
    assert made + shuffle["counts"].get("unchanged", 0) == 16 and made >= 14  # 3-sentence texts may repeat an order
    assert shuffle["name"] == "sentence_shuffle" and shuffle["docs_in"] == 8 and shuffle["docs_out"] == 8 + made
    assert stats["documents"]["kept"] == 8 + made
    out = [orjson.loads(line) for p in sorted((tmp_path / "out" / "documents").glob("*.jsonl"))
           for line in p.read_bytes().splitlines()]
    copies = [d for d in out if "augmented_from" in d["metadata"]]
    originals = {d["id"] for d in out} - {d["id"] for d in copies}
    assert len(copies) == made and {d["metadata"]["augmented_from"] for d in copies} == originals
    lineage = pq.read_table(tmp_path / "out" / "lineage" / "train").to_pylist()
    by_id = {r["doc_id"]: r["modified_by"] for r in lineage}
    assert all(by_id[d["id"]] == ["sentence_shuffle"] for d in copies)
    assert all(by_id[i] == [] for i in originals)
