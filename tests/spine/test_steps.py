"""The spine's minimal steps: exact outputs on small inputs."""

from __future__ import annotations

import pytest

from corpusforge.curate.normalize import Normalize
from corpusforge.curate.quality import QualityThresholds
from corpusforge.document import Document
from corpusforge.errors import RecipeError
from corpusforge.shards.packer import Packer, frame_documents, sample_tensors
from corpusforge.tokenize.special import SPECIAL_TOKENS
from corpusforge.tokenize.text import load_tokenizer, train_bpe


def _doc(text: str) -> Document:
    return Document(text, "id", "mem://x")


def test_normalize_fixes_line_endings_controls_nfc_and_blank_lines():
    text = "Cafe\u0301\r\nline\x07 two   \r\n\n\n\n\nend  "
    assert Normalize().map(_doc(text)).text == "Caf\u00e9\nline two\n\n\nend"


def test_normalize_rules_can_be_switched_off():
    n = Normalize(form="none", max_blank_lines=None, strip=False, strip_trailing_spaces=False)
    assert n.map(_doc("e\u0301 \n\n\n\nx ")).text == "e\u0301 \n\n\n\nx "


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("short", "too_short"),
        ("a" * 60, "too_few_words"),
        ("word " * 30, "low_unique_word_ratio"),
        ("{}[]<>|~^ " * 10 + " ".join(f"w{i}" for i in range(12)), "too_many_special_chars"),
        (" ".join(f"word{i}" for i in range(20)), None),
    ],
)
def test_quality_thresholds_reasons(text, reason):
    assert QualityThresholds().keep(_doc(text)) == reason


def test_packer_concatenates_and_pads_only_the_last_window():
    framed = frame_documents([[20, 21, 22], [30], [40, 41]])
    assert framed.tolist() == [2, 20, 21, 22, 3, 2, 30, 3, 2, 40, 41, 3]
    p = Packer(5)
    p.add(framed)
    assert p.take_full().tolist() == [[2, 20, 21, 22, 3], [2, 30, 3, 2, 40]]
    assert p.finish().tolist() == [[41, 3, 0, 0, 0]]
    t = sample_tensors(p.finish() if False else framed[:10].reshape(2, 5))
    assert t["labels"].tolist() == [[-100, 20, 21, 22, 3], [-100, 30, 3, -100, 40]]  # EOS keeps its label
    assert t["attention_mask"].tolist() == [[1] * 5, [1] * 5]


def test_trained_tokenizer_has_fixed_special_tokens_and_is_deterministic(tmp_path):
    texts = [f"The quick brown fox {i} jumps over the lazy dog number {i * 7}." for i in range(300)]
    a, b = train_bpe(texts, 400), train_bpe(texts, 400)
    assert [a.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(16))
    assert a.to_str() == b.to_str()
    a.save(str(tmp_path / "tok.json"))
    loaded = load_tokenizer(tmp_path / "tok.json")
    assert loaded.encode("quick brown").ids == a.encode("quick brown").ids


def test_loading_a_tokenizer_without_an_eos_is_an_error_and_rtdlm_extends_it(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from corpusforge.tokenize.encoder import load_encoder

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.train_from_iterator(["hello world"] * 10, trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>"]))
    tok.save(str(tmp_path / "t.json"))
    with pytest.raises(RecipeError, match="has no EOS token to end documents with"):
        load_encoder(tmp_path / "t.json")
    enc = load_encoder(tmp_path / "t.json", layout="rtdlm")
    n = tok.get_vocab_size()
    assert enc.special.appended == {t: n + i for i, t in enumerate(SPECIAL_TOKENS)}
    assert (enc.special.bos, enc.special.eos, enc.special.pad) == (n + 2, n + 3, n)
