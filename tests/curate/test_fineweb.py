import pytest

from corpusforge.curate.fineweb import FineWebQuality

LONG = [
    "The committee met on Tuesday to discuss the budget for next year.",
    "Several members raised concerns about the cost of the new library.",
    "A final vote on the proposal is expected early next month.",
    "Residents may send written comments to the town clerk before then.",
]


def test_keeps_ordinary_paragraphs(doc):
    assert FineWebQuality().keep(doc("\n".join(LONG))) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("   \n\n ", "empty"),
        ("\n".join(ln.rstrip(".") for ln in LONG * 2), "line_punct_ratio"),
        ("\n".join(["It rains.", "The sun is out.", "Wind from the west.", LONG[0]]), "short_line_ratio"),
        ("\n".join([*LONG, LONG[0]]), "char_dup_ratio"),
        (
            "\n".join(
                [
                    "Antidisestablishmentarianism notwithstanding.",
                    "Incomprehensibilities notwithstanding.",
                    "Counterrevolutionaries everywhere.",
                    "Uncharacteristically magnanimous.",
                ]
            ),
            "list_ratio",
        ),
    ],
)
def test_reports_the_failed_rule(doc, text, reason):
    assert FineWebQuality().keep(doc(text)) == reason


def test_lines_without_punctuation_pass_when_exclude_zero_is_set(doc):
    text = "\n".join(ln.rstrip(".") for ln in LONG)
    assert FineWebQuality(line_punct_exclude_zero=True).keep(doc(text)) is None


def test_annotate_records_all_four_ratios(doc):
    d = doc("\n".join([*LONG, LONG[0]]))
    assert FineWebQuality(mode="annotate").keep(d) is None
    sig = d.metadata["fineweb_quality"]
    assert sig["reason"] == "char_dup_ratio"
    assert sig["line_punct_ratio"] == 1.0
    assert sig["short_line_ratio"] == 0.0
    assert sig["char_dup_ratio"] == pytest.approx(len(LONG[0]) / sum(len(x) for x in [*LONG, LONG[0]]), abs=1e-4)
    assert set(sig) == {"line_punct_ratio", "short_line_ratio", "char_dup_ratio", "list_ratio", "reason"}
