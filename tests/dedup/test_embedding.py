from __future__ import annotations

import numpy as np
import pytest

from corpusforge.dedup.clusters import _save
from corpusforge.dedup.embedding import EmbeddingDedup

from .helpers import audit, doc, run_step


@pytest.fixture(scope="module")
def step_model():
    step = EmbeddingDedup()
    step._load_model()
    return step._model


def _paraphrase(text: str) -> str:
    words = text.split()
    for i in range(5, len(words), 25):
        words[i] = "the"
    return " ".join(words)


@pytest.mark.parametrize("index", ["flat", "ivf"])
def test_semantic_duplicates_are_removed_and_others_kept(wiki_paragraphs, tmp_path, step_model, index):
    p = wiki_paragraphs[80:88]
    tasks = [[doc(f"p{i}", t) for i, t in enumerate(p[:4])],
             [doc("p1-edit", _paraphrase(p[1])), *(doc(f"p{i}", t) for i, t in enumerate(p[4:], start=4))]]
    step = EmbeddingDedup(index=index, pq_bytes=8)
    step._model = step_model
    assert run_step(step, tasks, tmp_path) == {0: {}, 1: {0: "semantic_duplicate"}}
    assert [(r["id"], r["duplicate_of"]) for r in audit(tmp_path)] == [("p1", None), ("p1-edit", "p1")]


def test_bad_embedding_settings_are_rejected():
    with pytest.raises(ValueError, match="k must be"):
        EmbeddingDedup(k=1)
    with pytest.raises(ValueError, match="threshold"):
        EmbeddingDedup(threshold=0)


def test_ivfpq_index_finds_planted_near_copies_among_12k_vectors(tmp_path):
    rng = np.random.default_rng(3)
    vecs = rng.standard_normal((12_000, 32)).astype(np.float32)
    copies = np.arange(0, 12_000, 120)  # every 120th vector gets a near copy appended
    near = vecs[copies] + 0.05 * rng.standard_normal((len(copies), 32)).astype(np.float32)
    allv = np.concatenate([vecs, near])
    allv /= np.linalg.norm(allv, axis=1, keepdims=True)
    step = EmbeddingDedup(index="ivfpq", pq_bytes=8, nprobe=16, threshold=0.98)
    step.bind(tmp_path)
    name = "task_000000.npy"
    _save(tmp_path / "sig" / name, allv)
    _save(tmp_path / "keys" / name, np.empty((0, len(allv)), np.uint64))
    _save(tmp_path / "quality" / name, np.full(len(allv), np.nan, np.float32))
    _save(tmp_path / "ids" / name, np.array([str(i) for i in range(len(allv))]))
    step.decide(0, 1)
    step.finalize(1)
    removed = step.removed(0)
    assert set(removed) <= set(range(12_000, len(allv)))  # only the appended copies go
    assert len(removed) >= 0.97 * len(copies)


def test_embedding_dedup_runs_in_the_pipeline(wiki_paragraphs, tmp_path):
    from corpusforge import run

    from .helpers import write_jsonl

    p = wiki_paragraphs[90:94]
    write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": t} for t in [*p, _paraphrase(p[2])]])
    recipe = {"sources": [{"path": str(tmp_path / "in")}], "steps": [{"type": "embedding_dedup"}],
              "tokenizer": {"vocab_size": 500}, "sharding": {"sequence_length": 64, "splits": {"train": 1.0}}}
    stats = run(recipe, output=str(tmp_path / "out"), workers=1, progress=False)
    shards = next(s for s in stats["stages"] if s["name"] == "shards")
    assert shards["steps"][0]["drops"] == {"semantic_duplicate": 1}
    assert stats["documents"]["kept"] == 4
