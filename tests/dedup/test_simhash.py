from __future__ import annotations

import numpy as np

from corpusforge.dedup.minhash import MinHashDedup
from corpusforge.dedup.simhash import SimHashDedup, popcount64

from .helpers import doc, run_step


def test_popcount_counts_set_bits():
    x = np.array([0, 1, 0xFF, 0xFFFFFFFFFFFFFFFF, 1 << 63], dtype=np.uint64)
    assert popcount64(x).tolist() == [0, 1, 8, 64, 1]


def test_fingerprints_of_reformatted_text_are_equal_and_of_other_text_far(wiki_paragraphs):
    step = SimHashDedup()
    a, b = wiki_paragraphs[40], wiki_paragraphs[41]
    sig, keys = step.sign([a, a.upper().replace(" , ", ", "), b])
    assert sig[0, 0] == sig[1, 0]
    assert popcount64(sig[:1, 0] ^ sig[2:, 0])[0] > 10
    assert keys.shape == (4, 3)


def test_one_word_edit_in_a_long_paragraph_stays_within_three_bits(wiki_paragraphs):
    step = SimHashDedup()
    longest = max(wiki_paragraphs[:200], key=len)
    words = longest.split()
    words[len(words) // 2] = "zebra"
    sig, _ = step.sign([longest, " ".join(words)])
    assert popcount64(sig[:1, 0] ^ sig[1:, 0])[0] <= 3


def test_simhash_clusters_near_duplicates_with_the_shared_keeper_rule(wiki_paragraphs, tmp_path):
    a, b = wiki_paragraphs[50], wiki_paragraphs[51]
    tasks = [[doc("a", a, quality_score=0.1), doc("b", b)], [doc("a2", a + " !", quality_score=0.5)]]
    assert run_step(SimHashDedup(), tasks, tmp_path) == {0: {0: "near_duplicate"}, 1: {}}


def test_tasks_without_documents_sign_and_decide(wiki_paragraphs, tmp_path):
    a = wiki_paragraphs[60]
    for i, step in enumerate((MinHashDedup(), SimHashDedup())):
        tasks = [[], [doc("a", a), doc("a2", a)], []]
        assert run_step(step, tasks, tmp_path / str(i)) == {0: {}, 1: {1: "near_duplicate"}, 2: {}}
