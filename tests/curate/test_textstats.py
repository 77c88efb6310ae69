import numpy as np

from corpusforge.curate.textstats import TextStats, hash_order


def test_hash_order_groups_equal_hashes_by_position():
    h = np.array([7, 3, 7, 9, 3, 7], dtype=np.uint64)
    sorted_pos, starts = hash_order(h, np.arange(6, dtype=np.int64))
    groups = [sorted_pos[a:b].tolist() for a, b in zip(starts, [*starts[1:], len(h)], strict=True)]
    assert sorted(groups) == [[0, 2, 5], [1, 4], [3]]


def test_hash_order_separates_hashes_that_share_their_top_bits():
    # Positions 0..3 take 2 bits, so 4 and 5 (and 6) agree above them: the exact fallback splits them.
    h = np.array([5, 4, 5, 6], dtype=np.uint64)
    sorted_pos, starts = hash_order(h, np.arange(4, dtype=np.int64))
    assert sorted_pos.tolist() == [1, 0, 2, 3] and starts.tolist() == [0, 1, 3]


def test_distinct_words_and_counts_cover_every_word():
    words = "the cat and the hat and the bat".split()
    ts = TextStats(" ".join(words), words, [])
    assert [ts.distinct_words[i] for i in ts.word_ids] == words
    assert dict(zip(ts.distinct_words, ts.word_counts.tolist(), strict=True)) == {
        "the": 3, "cat": 1, "and": 2, "hat": 1, "bat": 1}
    assert ts.word_len.tolist() == [len(w) for w in words]


def test_paragraphs_split_on_runs_of_blank_lines():
    ts = TextStats("\n\na\n\nb\n\n\nc\n\n\n\nd\n\n\n\n\ne\n", [], [])
    assert ts.paragraphs == ["a", "b", "c", "d", "e"]
    assert TextStats("", [], []).paragraphs == [""]
