import pytest

from corpusforge.document import Document
from corpusforge.models.augment import copy_id
from corpusforge.observe.stats import TaskContext

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.models.test_perplexity_classifier import wikitext_paragraphs  # noqa: E402
from tests.models.tiny import word_tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def marian_pair(tmp_path_factory):
    """Two tiny Marian translation models with random weights (a forward and a reverse direction)."""
    from transformers import MarianConfig, MarianMTModel

    paths = []
    for seed in (0, 1):
        path = tmp_path_factory.mktemp(f"marian{seed}")
        tok = word_tokenizer(path, wikitext_paragraphs(30))
        torch.manual_seed(seed)
        config = MarianConfig(vocab_size=len(tok), d_model=16, encoder_layers=1, decoder_layers=1,
                              encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                              decoder_ffn_dim=32, max_position_embeddings=64, pad_token_id=tok.pad_token_id,
                              eos_token_id=tok.eos_token_id, decoder_start_token_id=tok.pad_token_id)
        MarianMTModel(config).save_pretrained(path)
        paths.append(str(path))
    return paths


def translate(path: str, line: str, max_length: int) -> str:
    """Greedy translation of one line, straight through transformers."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSeq2SeqLM.from_pretrained(path).eval()
    enc = tok([line], truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=max_length, num_beams=1)
    return tok.batch_decode(out, skip_special_tokens=True)[0].strip()


def run_step(step, docs):
    ctx = TaskContext("curate", 0, __import__("pathlib").Path("/nonexistent"))
    step.setup(ctx)
    return list(step(iter(docs), ctx))


def test_round_trip_translates_each_line_through_both_models(marian_pair):
    from corpusforge.models.back_translation import BackTranslation

    fwd, rev = marian_pair
    a, b = (" ".join(p.split()[:10]) for p in wikitext_paragraphs(2))
    text = f"{a}\n\n{b}"
    out = run_step(BackTranslation(model_path=fwd, reverse_model_path=rev, max_length=12), [Document(text, "d", "m")])
    expected = "\n".join(translate(rev, translate(fwd, ln, 12), 12) if ln else "" for ln in text.split("\n"))
    assert len(out) == 2 and out[1].text == expected
    assert out[1].id == copy_id("d", "back_translation", 0, 0)
    assert out[1].metadata["augmentation"] == "back_translation" and out[1].metadata["augmented_from"] == "d"


def test_sampled_copies_are_reproducible_per_document(marian_pair):
    from corpusforge.models.back_translation import BackTranslation

    fwd, rev = marian_pair
    texts = [" ".join(p.split()[:8]) for p in wikitext_paragraphs(2)]

    def copies(order):
        step = BackTranslation(model_path=fwd, reverse_model_path=rev, max_length=10, sample=True, factor=2, seed=4)
        out = run_step(step, [Document(texts[i], f"id{i}", "m") for i in order])
        return {d.id: d.text for d in out if "augmented_from" in d.metadata}

    first, again = copies([0, 1]), copies([1, 0])
    assert first == again and len(first) == 4
    assert len(set(first.values())) == len(first)


def test_options_and_bad_paths_are_reported(tmp_path):
    from corpusforge.models.back_translation import BackTranslation

    with pytest.raises(ValueError, match="sample: true"):
        BackTranslation(model_path="a", reverse_model_path="b", factor=2)
    with pytest.raises(ValueError, match=str(tmp_path)):
        run_step(BackTranslation(model_path=str(tmp_path), reverse_model_path=str(tmp_path)),
                 [Document("some words", "d", "m")])
