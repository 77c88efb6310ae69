import pytest

from corpusforge.document import Document
from corpusforge.models.arpa import ArpaModel
from corpusforge.models.perplexity import Perplexity

ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-1.0\t<s>\t-0.5
-0.5\ta\t-0.3
-0.7\tb
-0.6\t</s>
-2.0\t<unk>

\\2-grams:
-0.2\t<s> a
-0.1\ta b
-0.4\tb </s>

\\end\\
"""


@pytest.fixture
def arpa(tmp_path):
    path = tmp_path / "tiny.arpa"
    path.write_text(ARPA, encoding="utf-8")
    return path


def test_seen_bigrams_and_back_off_are_scored_as_katz(arpa):
    lm = ArpaModel(arpa)
    assert lm.order == 2
    assert lm.sentence_log10(["a", "b"]) == pytest.approx(-0.2 - 0.1 - 0.4)
    # b|<s>: bo(<s>) + p(b); a|b: bo(b)=0 + p(a); </s>|a: bo(a) + p(</s>)
    assert lm.sentence_log10(["b", "a"]) == pytest.approx((-0.5 - 0.7) + (-0.5) + (-0.3 - 0.6))
    assert lm.word_log10(("<s>",), "zebra") == pytest.approx(-0.5 - 2.0)


def test_document_perplexity_is_per_line_as_ccnet(arpa):
    lm = ArpaModel(arpa)
    assert lm.perplexity("a b\n\nb a") == pytest.approx(10 ** ((0.7 + 2.6) / 6))
    assert lm.perplexity("   \n") == float("inf")


def test_perplexity_step_takes_an_arpa_path(arpa):
    good, odd = Document("a b", id="g", source="t"), Document("b a", id="o", source="t")
    step = Perplexity(model_path=str(arpa), max_perplexity=2.0)
    assert step.keep(good) is None
    assert step.keep(odd) == "high_perplexity"
    assert good.metadata["perplexity"] == pytest.approx(10 ** (0.7 / 3), abs=1e-4)


def test_malformed_arpa_names_the_file_and_line(tmp_path):
    bad = tmp_path / "bad.arpa"
    bad.write_text("\\data\\\nngram 1=1\n\n\\1-grams:\nminus-one a\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.arpa:5: not a number"):
        ArpaModel(bad)
    with pytest.raises(ValueError, match="cannot read ARPA model"):
        ArpaModel(tmp_path / "missing.arpa")
