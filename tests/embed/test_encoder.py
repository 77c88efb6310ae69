from __future__ import annotations

import numpy as np
import pytest

from corpusforge.models.embeddings import SentenceEncoder, pool

torch = pytest.importorskip("torch")

TEXTS = ["the lobster is blue", "a small red ship was on the sea with the king and the first war",
         "music", "they road to the large city by the river bridge"]


@pytest.fixture(scope="module")
def minilm() -> SentenceEncoder:
    return SentenceEncoder(device="cpu")


def _single_hidden(path, text: str):
    """The model's last hidden state for ``text`` alone: no padding anywhere."""
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    with torch.inference_mode():
        return model(**tok([text], return_tensors="pt")).last_hidden_state[0].numpy()


def test_bundled_minilm_puts_a_paraphrase_closer_than_an_unrelated_sentence(minilm):
    a, b, c = minilm.encode(["A man is playing a guitar on stage.", "Someone performs a song on an acoustic guitar.",
                             "The central bank raised interest rates again."])
    assert minilm.pooling == "mean" and minilm.dim == 384
    assert a @ b > 0.5 > a @ c
    assert np.allclose(np.linalg.norm([a, b, c], axis=1), 1.0, atol=1e-5)


def test_bundled_minilm_gives_the_sentence_transformers_vectors(minilm):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(minilm.model_path, device="cpu").encode(TEXTS, normalize_embeddings=True)
    assert np.abs(minilm.encode(TEXTS) - ref).max() < 1e-5


def test_mean_pooling_of_a_padded_batch_equals_each_text_alone(tiny_bert):
    enc = SentenceEncoder(str(tiny_bert), pooling="mean", normalize=False, batch_size=4)
    got = enc.encode(TEXTS)
    for text, row in zip(TEXTS, got, strict=True):
        assert np.allclose(row, _single_hidden(tiny_bert, text).mean(axis=0), atol=1e-5)


def test_cls_pooling_is_the_first_position(tiny_bert):
    enc = SentenceEncoder(str(tiny_bert), pooling="cls", normalize=False)
    for text, row in zip(TEXTS, enc.encode(TEXTS), strict=True):
        assert np.allclose(row, _single_hidden(tiny_bert, text)[0], atol=1e-5)


def test_last_token_pooling_with_left_padding_equals_the_unpadded_single_input(tiny_qwen3):
    enc = SentenceEncoder(str(tiny_qwen3), pooling="last_token", normalize=False, batch_size=4)
    assert enc.tok.padding_side == "left"
    got = enc.encode(TEXTS)
    for text, row in zip(TEXTS, got, strict=True):
        assert np.allclose(row, _single_hidden(tiny_qwen3, text)[-1], atol=1e-4)
    assert not np.allclose(got[0], got[1], atol=1e-3)


def test_last_token_pool_finds_the_last_real_token_of_right_padded_rows():
    hidden = torch.arange(2 * 3 * 2, dtype=torch.float32).reshape(2, 3, 2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert pool(hidden, mask, "last_token").tolist() == [[2.0, 3.0], [10.0, 11.0]]


def test_matryoshka_dimensions_keep_the_first_components_renormalised(tiny_bert):
    full = SentenceEncoder(str(tiny_bert), normalize=False).encode(TEXTS)
    cut = SentenceEncoder(str(tiny_bert), dimensions=8).encode(TEXTS)
    assert cut.shape == (len(TEXTS), 8)
    assert np.allclose(np.linalg.norm(cut, axis=1), 1.0, atol=1e-6)
    assert np.allclose(cut, full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True), atol=1e-5)
    with pytest.raises(ValueError, match="hidden size 32"):
        SentenceEncoder(str(tiny_bert), dimensions=33)


class _OOMAbove(torch.nn.Module):
    """The model, except that a batch of more than ``k`` rows raises CUDA's out-of-memory error."""

    def __init__(self, model, k: int):
        super().__init__()
        self.inner, self.k, self.calls = model, k, []
        self.config = model.config

    def forward(self, **inputs):
        self.calls.append(len(inputs["input_ids"]))
        if len(inputs["input_ids"]) > self.k:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.inner(**inputs)


def test_out_of_memory_halves_the_batch_and_gives_the_same_vectors(tiny_bert):
    texts = TEXTS * 5
    want = SentenceEncoder(str(tiny_bert), batch_size=16).encode(texts)
    enc = SentenceEncoder(str(tiny_bert), batch_size=16)
    enc.model = wrapper = _OOMAbove(enc.model, k=5)
    got = enc.encode(texts)
    assert wrapper.calls[:3] == [16, 8, 4] and enc.batch_size == 4
    assert sum(c for c in wrapper.calls if c <= 5) == len(texts)
    assert np.allclose(got, want, atol=1e-5)


def test_out_of_memory_at_batch_one_and_other_errors_are_raised(tiny_bert):
    enc = SentenceEncoder(str(tiny_bert), batch_size=2)
    enc.model = _OOMAbove(enc.model, k=0)
    with pytest.raises(torch.OutOfMemoryError):
        enc.encode(TEXTS)
    assert enc.batch_size == 1


def test_instruction_and_prefix_are_put_before_the_text(tiny_qwen3):
    enc = SentenceEncoder(str(tiny_qwen3), pooling="last_token", instruction="Find the article")
    assert enc.prepare(["sea"]) == ["Instruct: Find the article\nQuery:sea"]
    assert SentenceEncoder(str(tiny_qwen3), prefix="passage: ").prepare(["sea"]) == ["passage: sea"]


def test_a_folder_without_a_model_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        SentenceEncoder(str(tmp_path))
