import pytest

from corpusforge.curate.c4 import C4Quality
from corpusforge.curate.fineweb import FineWebQuality
from corpusforge.curate.gopher import GopherQuality, GopherRepetition


@pytest.mark.parametrize(
    ("step", "reason"),
    [
        (GopherQuality, "too_few_words"),
        (GopherRepetition, None),
        (C4Quality, "too_few_sentences"),
        (FineWebQuality, "empty"),
    ],
)
@pytest.mark.parametrize("text", ["", " \n\n\t "])
def test_empty_documents_get_a_reason_not_an_exception(doc, step, reason, text):
    d = doc(text)
    assert step(mode="annotate").keep(d) is None
    assert step().keep(doc(text)) == reason
