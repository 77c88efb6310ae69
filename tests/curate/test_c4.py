import pytest

from corpusforge.curate.c4 import C4Quality

GOOD = [
    "Paris is the capital and largest city of France.",
    "It has been a centre of finance and diplomacy for centuries.",
    "The city is known for its museums and its architecture.",
    "More than two million people live inside its city limits.",
    "The river Seine flows through the middle of the city.",
]


def text(*extra: str) -> str:
    return "\n".join([*GOOD, *extra])


def test_keeps_five_sentences_and_removes_lines_without_terminal_punctuation(doc):
    d = doc(text("Share this page", "Read more..."))
    assert C4Quality().keep(d) is None
    assert d.text == "\n".join(GOOD)


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ("Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "lorem_ipsum"),
        ("The function body is { return x; } in this example.", "curly_bracket"),
        ("Some people say this fucking city is too expensive.", "bad_words"),
    ],
)
def test_page_rules_report_the_failed_rule(doc, extra, reason):
    assert C4Quality().keep(doc(text(extra))) == reason


def test_four_sentences_are_too_few(doc):
    assert C4Quality().keep(doc("\n".join(GOOD[:4]))) == "too_few_sentences"


def test_javascript_and_policy_lines_are_removed_not_the_page(doc):
    d = doc(text("Please enable JavaScript to view the comments.", "This site uses cookies to improve your visit."))
    assert C4Quality().keep(d) is None
    assert d.text == "\n".join(GOOD)


def test_lines_with_fewer_than_three_words_do_not_count_as_sentences(doc):
    assert C4Quality().keep(doc("\n".join([*GOOD[:4], "Yes.", "Yes indeed."]))) == "too_few_sentences"


def test_citation_markers_are_removed_before_the_punctuation_check(doc):
    d = doc(text("It hosted the Olympic Games in 1900 and 1924.[1]"))
    assert C4Quality().keep(d) is None
    assert d.text.endswith("It hosted the Olympic Games in 1900 and 1924.")


def test_curly_bracket_in_a_removed_line_does_not_drop_the_page(doc):
    # As in C4: the brace rule only sees lines that survived the line rules.
    assert C4Quality().keep(doc(text("function f() { return 1 }"))) is None


def test_custom_bad_words_file(doc, tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("# comment\nseine\n", encoding="utf-8")
    assert C4Quality(bad_words=str(words)).keep(doc(text())) == "bad_words"
    assert C4Quality(bad_words=None).keep(doc(text("Some say this fucking city is too dear."))) is None


def test_bad_words_match_whole_words_only(doc):
    assert C4Quality().keep(doc(text("The cocktail bar in Scunthorpe serves a fine drink."))) is None


def test_missing_bad_words_file_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="bad_words"):
        C4Quality(bad_words=str(tmp_path / "nope.txt"))


def test_annotate_mode_keeps_text_and_records_signals(doc):
    original = text("Share this page")
    d = doc(original)
    assert C4Quality(mode="annotate").keep(d) is None
    assert d.text == original
    sig = d.metadata["c4_quality"]
    assert sig["reason"] is None
    assert sig["sentences"] == 5
    assert sig["lines_kept"] == 5
    assert sig["lines_removed"]["no_terminal_punct"] == 1


def test_removing_lines_is_counted_as_a_modification(doc, tmp_path):
    from corpusforge.observe.stats import TaskContext

    ctx = TaskContext("curate", 0, tmp_path)
    step = C4Quality()
    docs = [doc(text("Share this page")), doc(text()), doc("\n".join(GOOD[:4]))]
    kept = list(step(iter(docs), ctx))
    stats = ctx.stats_for(step)
    assert [d.text for d in kept] == ["\n".join(GOOD)] * 2
    assert stats.modified == 1
    assert dict(stats.drops) == {"too_few_sentences": 1}


@pytest.mark.parametrize(
    ("line", "n"),
    [
        ("Mr. Darcy came. He left!", 2),
        ("J. R. R. Tolkien wrote books. Many of them.", 2),
        ("It works, e.g. here. And “there.” Yes", 3),
        ("No end", 1),
        ("", 0),
    ],
)
def test_sentence_count_skips_titles_and_initials(line, n):
    from corpusforge.curate.textstats import count_sentences

    assert count_sentences(line) == n


def test_policy_hints_cover_every_policy_substring():
    from corpusforge.curate.c4 import _POLICY_HINTS, POLICY_SUBSTRINGS

    assert all(any(h in p for h in _POLICY_HINTS) for p in POLICY_SUBSTRINGS)
