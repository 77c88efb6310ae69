import pytest

from corpusforge.curate.toxicity import Toxicity

CLEAN = "Thank you for the lovely dinner, we had a wonderful evening with your family."
ABUSIVE = "Shut up, you stupid fucking idiot."


def test_profanity_model_drops_abuse_and_keeps_polite_text(doc):
    step = Toxicity()
    clean, abusive = doc(CLEAN), doc(ABUSIVE)
    assert step.keep(clean) is None
    assert step.keep(abusive) == "toxic"
    assert clean.metadata["toxicity"] < 0.5 <= abusive.metadata["toxicity"]


def test_threshold_is_configurable(doc):
    d = doc(ABUSIVE)
    Toxicity(drop=False).keep(d)
    assert Toxicity(threshold=min(1.0, d.metadata["toxicity"] + 1e-3)).keep(doc(ABUSIVE)) is None


def test_line_unit_catches_one_abusive_line_in_a_long_page(doc):
    page = "\n".join([CLEAN] * 40 + [ABUSIVE])
    by_line = doc(page)
    assert Toxicity(unit="line").keep(by_line) == "toxic"
    assert by_line.metadata["toxicity"] >= 0.5


def test_annotate_only_keeps_everything(doc):
    d = doc(ABUSIVE)
    assert Toxicity(drop=False).keep(d) is None
    assert d.metadata["toxicity"] >= 0.5


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A randomly initialised 1-layer BERT classifier with its own WordPiece vocabulary."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny_tox")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"thank you for the lovely dinner shut up stupid idiot".split()]
    (path / "vocab.txt").write_text("\n".join(words) + "\n", encoding="utf-8")
    tok = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=2,
        id2label={0: "neutral", 1: "toxic"}, label2id={"neutral": 0, "toxic": 1},
    )
    BertForSequenceClassification(config).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_local_huggingface_model_scores_with_the_named_label(doc, tiny_model):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    step = Toxicity(model_path=str(tiny_model), label="toxic", threshold=0.0, max_length=32)
    d = doc(ABUSIVE)
    assert step.keep(d) == "toxic"
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model).eval()
    with torch.inference_mode():
        expected = torch.softmax(model(**tok([ABUSIVE], return_tensors="pt")).logits, -1)[0, 1].item()
    assert d.metadata["toxicity"] == pytest.approx(expected, abs=1e-4)
    assert Toxicity(model_path=str(tiny_model), threshold=1.0).keep(doc(ABUSIVE)) is None


def test_unknown_label_of_a_local_model_is_an_error(doc, tiny_model):
    with pytest.raises(ValueError, match="no label 'hate'"):
        Toxicity(model_path=str(tiny_model), label="hate").keep(doc(CLEAN))
