import random

import numpy as np

from corpusforge.curate.textstats import _LAST_SPACE, TextStats, hash_order, word_spans


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
    ts = TextStats(" ".join(words), [])
    assert [ts.distinct_words[i] for i in ts.word_ids] == words
    assert dict(zip(ts.distinct_words, ts.word_counts.tolist(), strict=True)) == {
        "the": 3, "cat": 1, "and": 2, "hat": 1, "bat": 1}
    assert ts.word_len.tolist() == [len(w) for w in words]


def test_paragraphs_split_on_runs_of_blank_lines():
    ts = TextStats("\n\na\n\nb\n\n\nc\n\n\n\nd\n\n\n\n\ne\n", [])
    assert ts.paragraphs == ["a", "b", "c", "d", "e"]
    assert TextStats("", []).paragraphs == [""]


def test_word_spans_are_str_split_words():
    # Every kind of whitespace str.split() knows, control characters that are not whitespace,
    # non-ASCII letters, an astral character and a lone surrogate.
    alphabet = ["a", "é", "\U0001f600", "\ud800", "\x00", "\x1b", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c",
                "\x1f", "\x85", "\xa0", "\u1680", "\u2007", "\u2028", "\u202f", "\u205f", "\u3000", "\u200b"]
    rng = random.Random(5)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        _, starts, ends = word_spans(text)
        assert [text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)] == text.split()
    ascii_text = "one  two\tthree\x1cfour\x00five "
    _, starts, ends = word_spans(ascii_text)
    assert [ascii_text[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)] == ascii_text.split()


def test_no_whitespace_above_the_table():
    assert chr(_LAST_SPACE).isspace()
    assert not any(chr(c).isspace() for c in range(_LAST_SPACE + 1, 0x110000))


def test_words_differing_past_position_63_hash_apart():
    head = "x" * 63
    words = [head + "ab", head + "ba", head + "ab"]
    ts = TextStats(" ".join(words), [])
    assert sorted(ts.word_counts.tolist()) == [1, 2]
    assert sorted(ts.distinct_words) == sorted({head + "ab", head + "ba"})
