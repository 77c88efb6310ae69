from __future__ import annotations

import random

import numpy as np
import pytest

from corpusforge.dedup import shingles
from corpusforge.dedup.minhash import MinHashDedup, optimal_bands
from corpusforge.dedup.shingles import normalize_words, shingle_hashes

from .helpers import audit, doc, run_step


def _shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    w = normalize_words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def _jaccard(a: str, b: str) -> float:
    x, y = _shingles(a), _shingles(b)
    return len(x & y) / len(x | y)


def test_normalization_ignores_case_punctuation_and_spacing():
    assert normalize_words("Hello,   World!\n\tIt's  ME") == ["hello", "world", "it", "s", "me"]
    h1, _ = shingle_hashes(["Hello, World! it is me today"], 3)
    h2, _ = shingle_hashes(["hello world   IT IS ME -- today."], 3)
    assert np.array_equal(h1, h2)


def test_short_documents_get_one_shingle_and_empty_ones_none():
    hashes, doc_of = shingle_hashes(["one two", "", "a b c d e f"], 5)
    assert doc_of.tolist() == [0, 2, 2]
    assert len(set(hashes.tolist())) == 3


def test_optimal_bands_for_default_thresholds():
    assert optimal_bands(0.8, 128) == (9, 13)
    assert optimal_bands(0.85, 128) == (8, 16)
    b, r = optimal_bands(0.5, 64)
    assert b * r <= 64 and b > 1


@pytest.mark.parametrize("signature", ["one_permutation", "permutations"])
def test_signature_agreement_estimates_true_jaccard(wiki_paragraphs, signature):
    step = MinHashDedup(signature=signature)
    rnd = random.Random(7)
    errors = []
    for p in wiki_paragraphs[:150]:
        words = p.split()
        q = " ".join(words[: rnd.randint(len(words) // 2, len(words))])
        sig, _ = step.sign([p, q])
        errors.append((sig[0] == sig[1]).mean() - _jaccard(p, q))
    assert abs(np.mean(errors)) < 0.01
    assert np.std(errors) < 0.05


def test_signatures_do_not_depend_on_batching(wiki_paragraphs):
    step = MinHashDedup()
    whole, keys = step.sign(wiki_paragraphs[:20])
    first = wiki_paragraphs[:20]
    parts = np.concatenate([step.sign(first[i : i + 3])[0] for i in range(0, 20, 3)])
    assert np.array_equal(whole, parts)
    assert keys.shape == (step.bands, 20)


def test_near_duplicates_form_one_cluster_kept_at_earliest(wiki_paragraphs, tmp_path):
    a, b, c = wiki_paragraphs[:3]
    tasks = [
        [doc("a", a), doc("b", b)],
        [doc("a-copy", a.upper()), doc("c", c), doc("b-edit", b + " One more closing sentence.")],
    ]
    removed = run_step(MinHashDedup(), tasks, tmp_path)
    assert removed == {0: {}, 1: {0: "near_duplicate", 2: "near_duplicate"}}
    got = {(r["id"], r["cluster"], r["kept"], r["duplicate_of"]) for r in audit(tmp_path)}
    assert got == {("a", 0, True, None), ("a-copy", 0, False, "a"),
                   ("b", 1, True, None), ("b-edit", 1, False, "b")}


def test_keeper_is_highest_quality_score_then_source_order(wiki_paragraphs, tmp_path):
    a = wiki_paragraphs[5]
    tasks = [[doc("x", a, quality_score=0.2), doc("y", a), doc("z", a + " .", quality_score=0.9),
              doc("w", a, quality_score=0.9)]]
    removed = run_step(MinHashDedup(), tasks, tmp_path)
    assert removed == {0: {0: "near_duplicate", 1: "near_duplicate", 3: "near_duplicate"}}
    assert {r["id"]: r["duplicate_of"] for r in audit(tmp_path)} == {"x": "z", "y": "z", "z": None, "w": "z"}


def test_keeper_quality_key_is_configurable(wiki_paragraphs, tmp_path):
    a = wiki_paragraphs[6]
    tasks = [[doc("x", a, quality_score=0.9, lm=0.1), doc("y", a, quality_score=0.1, lm=0.5)]]
    assert run_step(MinHashDedup(quality_key="lm"), tasks, tmp_path) == {0: {0: "near_duplicate"}}


def test_unrelated_documents_are_kept(wiki_paragraphs, tmp_path):
    tasks = [[doc(str(i), p) for i, p in enumerate(wiki_paragraphs[:200])]]
    assert run_step(MinHashDedup(), tasks, tmp_path) == {0: {}}
    assert audit(tmp_path) == []


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="bands x rows"):
        MinHashDedup(bands=20, rows=10)
    with pytest.raises(ValueError, match="both bands and rows"):
        MinHashDedup(bands=20)
    with pytest.raises(ValueError, match="threshold"):
        MinHashDedup(threshold=1.5)


def test_finalize_redoes_partitions_that_saw_an_older_index(wiki_paragraphs, tmp_path):
    a, b = wiki_paragraphs[70], wiki_paragraphs[71]
    index = str(tmp_path / "index")
    run_step(MinHashDedup(index_dir=index), [[doc("a", a)]], tmp_path / "first")
    late = MinHashDedup(index_dir=index)
    late.bind(tmp_path / "second")
    from corpusforge.observe.stats import TaskContext

    list(late(iter([doc("a-again", a), doc("b", b)]), TaskContext("curate", 0, tmp_path)))
    late.decide(0, 1)  # partition 0 decides before a concurrent run publishes b
    run_step(MinHashDedup(index_dir=index), [[doc("b-elsewhere", b)]], tmp_path / "third")
    for p in range(1, late.partitions()):
        late.decide(p, 1)
    late.finalize(1)
    assert late.removed(0) == {0: "near_duplicate", 1: "near_duplicate"}


def test_non_ascii_text_normalizes_like_ascii_text():
    assert normalize_words("Ça, c'est «bien» — VRAIMENT\u2028fini") == ["ça", "c", "est", "bien", "vraiment", "fini"]
    h1, _ = shingle_hashes(["Ça c est bien vraiment"], 3)
    h2, _ = shingle_hashes(["«ÇA», c'est BIEN... vraiment!"], 3)
    assert np.array_equal(h1, h2) and len(h1) == 3


def _reference_word_hash(word: bytes) -> int:
    """fmix64 of sum (byte + 1) * R[min(position, 63)], in Python integers."""
    m = (1 << 64) - 1
    x = sum((b + 1) * int(shingles._R[min(i, 63)]) for i, b in enumerate(word)) & m
    for c in (0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53, None):
        x ^= x >> 33
        if c is not None:
            x = (x * c) & m
    return x


def test_word_hashes_match_the_position_weighted_byte_sum():
    # Words shorter and longer than the 64 distinct position multipliers, across a batch.
    texts = ["a " + "b" * 63 + " " + "c" * 64, "", "d" * 65 + " éé " + "e" * 200, "x"]
    wh, counts = shingles.word_hashes(texts)
    words = [w.encode() for t in texts for w in normalize_words(t)]
    assert counts.tolist() == [3, 0, 3, 1]
    assert wh.tolist() == [_reference_word_hash(w) for w in words]
