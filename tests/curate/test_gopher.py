from collections import Counter

import pytest

from corpusforge.curate.gopher import GopherQuality, GopherRepetition
from corpusforge.curate.textstats import duplicate_ngram_chars, stats, top_ngram_chars
from corpusforge.document import Document

from .conftest import DATA

SENTENCE = "The quick brown fox jumps over the lazy dog and runs to the old barn with the farmer."
PROSE = " ".join([SENTENCE] * 4)  # 72 words


def test_gopher_quality_keeps_ordinary_prose(doc):
    assert GopherQuality().keep(doc(PROSE)) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("The cat sat on the mat.", "too_few_words"),
        ("word " * 100_001, "too_many_words"),
        ("to of be " * 20, "mean_word_length_too_short"),
        ("extraordinarily " * 60, "mean_word_length_too_long"),
        (PROSE + " #a #b #c #d #e #f #g #h #i #j", "hash_ratio"),
        (PROSE + " wait... " * 10, "ellipsis_ratio"),
        ("\n".join(["- " + SENTENCE] * 5), "bullet_lines_ratio"),
        ("\n".join([SENTENCE] * 3 + [SENTENCE[:-1] + "..."] * 2), "ellipsis_lines_ratio"),
        (PROSE + " 1999" * 20, "alpha_words_ratio"),
        ("Cats sleep quietly during warm afternoons while dogs bark loudly outside. " * 6, "too_few_stop_words"),
    ],
)
def test_gopher_quality_reports_the_failed_rule(doc, text, reason):
    assert GopherQuality().keep(doc(text)) == reason


def test_gopher_quality_one_stop_word_repeated_is_not_enough(doc):
    text = "Cats sleep quietly during the warm afternoons while the dogs bark loudly outside. " * 6
    assert GopherQuality().keep(doc(text)) == "too_few_stop_words"


def test_gopher_quality_annotate_keeps_and_stores_signals(doc):
    d = doc("The cat sat on the mat.")
    assert GopherQuality(mode="annotate").keep(d) is None
    sig = d.metadata["gopher_quality"]
    assert sig["reason"] == "too_few_words"
    assert sig["words"] == 6
    assert sig["stop_words"] == 1  # "the" twice counts once
    assert sig["mean_word_length"] == pytest.approx(17 / 6, abs=1e-4)


def test_gopher_quality_both_stores_and_drops(doc):
    d = doc("The cat sat on the mat.")
    assert GopherQuality(mode="both").keep(d) == "too_few_words"
    assert d.metadata["gopher_quality"]["reason"] == "too_few_words"


def test_invalid_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        GopherQuality(mode="drop")  # type: ignore[arg-type]


def test_gopher_repetition_keeps_ordinary_prose(doc):
    text = (DATA / "html" / "scrapinghub" / "14cc2a0ca59c62a8c9f205a171e9ccf4ef4cf69b0c642f51c8c65c051b39024f.gold.txt")
    assert GopherRepetition().keep(doc(text.read_text(encoding="utf-8"))) is None


def _filler(n: int, tag: str) -> str:
    return " ".join(f"{tag}{i}x" for i in range(n))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("One two three.\n\nOne two three.\n\nFour five six.", "dup_para_frac"),
        ("L" * 100 + "\n\n" + "L" * 100 + "\n\naaaa\n\nbbbb\n\ncccc", "dup_para_char_frac"),
        ("alpha beta\nalpha beta\ngamma delta", "dup_line_frac"),
        ("L" * 100 + "\n" + "L" * 100 + "\naaaa\nbbbb\ncccc", "dup_line_char_frac"),
        (" ".join(f"foo bar a{i}" for i in range(10)), "top_2_gram"),
        (" ".join(f"x y {'z' * 20} alpha{i} beta{i}" for i in range(5)), "top_3_gram"),
        (_filler(20, "s") + " " + _filler(20, "s") + " " + _filler(20, "u"), "duplicated_5_grams"),
    ],
)
def test_gopher_repetition_reports_the_failed_rule(doc, text, reason):
    assert GopherRepetition().keep(doc(text)) == reason


def test_gopher_repetition_annotate_measures_every_signal(doc):
    d = doc("alpha beta\nalpha beta\ngamma delta")
    GopherRepetition(mode="annotate").keep(d)
    sig = d.metadata["gopher_repetition"]
    assert sig["reason"] == "dup_line_frac"
    assert sig["dup_line_frac"] == pytest.approx(1 / 3, abs=1e-4)
    assert sig["dup_line_char_frac"] == pytest.approx(10 / 33, abs=1e-4)
    assert set(sig) >= {f"top_{n}_gram_char_frac" for n in (2, 3, 4)} | {
        f"duplicated_{n}_grams_char_frac" for n in range(5, 11)
    }


def _naive_top(words: list[str], n: int) -> int:
    grams = [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0
    gram, count = Counter(grams).most_common(1)[0]
    return len(gram) * count


def _naive_dup(words: list[str], n: int) -> int:
    seen: set[str] = set()
    total = i = 0
    while i < len(words) - n + 1:
        gram = "".join(words[i : i + n])
        if gram in seen:
            total += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return total


def test_vectorised_ngram_statistics_equal_the_plain_definition_on_real_text():
    text = (DATA / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:60_000]
    # Repetitive verse plus a synthetic block with overlapping repeats (skip-ahead edge cases).
    texts = [text, "a b a b a b a b a b a b a b c d a b a b a b a b a b", "x y z " * 30 + "x y"]
    for t in texts:
        d = Document(t, id="t", source="s")
        ts = stats(d)
        for n in (2, 3, 4):
            assert top_ngram_chars(ts, n) == _naive_top(d.words, n)
        for n in range(5, 11):
            assert duplicate_ngram_chars(ts, n) == _naive_dup(d.words, n)
