import pytest

from corpusforge.curate.langid import LanguageId

from .conftest import DATA

GOLD = DATA / "html" / "scrapinghub"
PAGES = {
    "20b2b64916b00b25203c9f1bf14248922f4d522f18328e9f876cce116df0083e": "it",
    "21486419bb109c5a62a68957f528e6ff29c92f58d8d3c1f2837c86ff3f3e11f9": "id",
    "23aaecd14171f96cfd201a8a46666097e286ad71f74f29347a78c5ecba50da1e": "pt",
    "0ec95c7261d122f304728e90c983450ef1ce1e0b423546835c397d50aaf0d0f2": "ko",
    "14cc2a0ca59c62a8c9f205a171e9ccf4ef4cf69b0c642f51c8c65c051b39024f": "en",
}


def gold(page: str) -> str:
    return (GOLD / f"{page}.gold.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("backend", ["fasttext_lite", "py3langid"])
def test_identifies_real_articles_in_five_languages(doc, backend):
    step = LanguageId(backend=backend)
    for page, lang in PAGES.items():
        d = doc(gold(page))
        assert step.keep(d) is None
        assert d.metadata["language"] == lang
        assert 0.5 < d.metadata["language_score"] <= 1.0


def test_drops_languages_not_allowed(doc):
    step = LanguageId(allowed_languages=["en", "pt"])
    reasons = {lang: step.keep(doc(gold(page))) for page, lang in PAGES.items()}
    assert reasons == {"it": "language_not_allowed", "id": "language_not_allowed", "pt": None,
                       "ko": "language_not_allowed", "en": None}


def test_drops_low_confidence(doc):
    d = doc("ok ok hello bonjour hola ciao")
    assert LanguageId().keep(d) is None  # allowed_languages null: annotate only
    lang, score = d.metadata["language"], d.metadata["language_score"]
    assert score < 0.99
    assert LanguageId(allowed_languages=[lang], min_score=0.99).keep(doc(d.text)) == "language_low_score"


def test_max_chars_limits_what_is_read(doc):
    text = gold("14cc2a0ca59c62a8c9f205a171e9ccf4ef4cf69b0c642f51c8c65c051b39024f")
    mixed = text[:300] + "\n" + gold("20b2b64916b00b25203c9f1bf14248922f4d522f18328e9f876cce116df0083e") * 3
    head, whole = doc(mixed), doc(mixed)
    LanguageId(max_chars=300).keep(head)
    LanguageId(max_chars=None).keep(whole)
    assert (head.metadata["language"], whole.metadata["language"]) == ("en", "it")


def test_bad_threshold_is_rejected():
    with pytest.raises(ValueError, match="min_score"):
        LanguageId(min_score=1.5)
