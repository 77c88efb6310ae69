"""Every model path, device and credential is checked at run start: one line each, exit code 2, no work done."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from corpusforge.cli import main
from corpusforge.models.checks import model_problems
from corpusforge.recipe import load_recipe

from .tiny import word_tokenizer

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

CORPUS = ["the cat sat on the mat", "a dog ran in the park"]


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory) -> Path:
    """A tiny causal LM (GPT2LMHeadModel) saved with its tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("gpt2")
    tok = word_tokenizer(path, CORPUS)
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_embd=16, n_layer=1, n_head=2, n_positions=32,
                               eos_token_id=2, bos_token_id=2)).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def classifier_without_pad(tmp_path_factory) -> Path:
    """A GPT-2 sequence classifier whose tokenizer and config name no pad token (as GPT-2's own do)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("gpt2cls")
    tk = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.train_from_iterator(CORPUS, trainers.WordLevelTrainer(special_tokens=["[UNK]", "[EOS]"]))
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="[EOS]").save_pretrained(path)
    GPT2ForSequenceClassification(GPT2Config(vocab_size=tk.get_vocab_size(), n_embd=16, n_layer=1, n_head=2,
                                             n_positions=32, num_labels=1)).save_pretrained(path)
    return path


def recipe(tmp_path: Path, steps: list[dict], **sections) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "a.txt").write_text("Some text that a model would score.\n", encoding="utf-8")
    path = tmp_path / "r.yaml"
    path.write_text(orjson.dumps({"sources": [{"path": str(data)}], "steps": steps, **sections}).decode(),
                    encoding="utf-8")
    return path


def fails_at_start(tmp_path: Path, path: Path) -> list[str]:
    """The error lines of ``corpusforge run`` on ``path``; asserts exit 2, in seconds, before any work."""
    t0 = time.monotonic()
    res = CliRunner().invoke(main, ["run", str(path), "-o", str(tmp_path / "out"), "-q"])
    assert res.exit_code == 2, res.output
    assert time.monotonic() - t0 < 20 and not (tmp_path / "out" / "_work").exists()
    assert "Traceback" not in res.output
    return res.output.strip().removeprefix("error: ").splitlines()


def test_a_wrong_local_path_of_each_model_step_is_one_line(tmp_path):
    lines = fails_at_start(tmp_path, recipe(tmp_path, [
        {"type": "perplexity", "model_path": "/nope/gpt2"},
        {"type": "perplexity", "model_path": "/nope/en3.arpa"},
        {"type": "classifier", "model_path": "/nope/fineweb-edu-classifier"},
        {"type": "back_translation", "model_path": "/nope/opus-mt-en-de", "reverse_model_path": "/nope/opus-mt-de-en"},
    ]))
    fix = "give a local model folder (config.json, weights, tokenizer, as save_pretrained writes); nothing is downloaded"
    assert lines == [
        f"steps[0] (perplexity).model_path: /nope/gpt2 does not exist; {fix}",
        "steps[1] (perplexity).model_path: /nope/en3.arpa does not exist; give an ARPA (.arpa, .arpa.gz) or KenLM "
        "binary file, or a local causal LM folder",
        f"steps[2] (classifier).model_path: /nope/fineweb-edu-classifier does not exist; {fix}",
        f"steps[3] (back_translation).model_path: /nope/opus-mt-en-de does not exist; {fix}",
        f"steps[3] (back_translation).reverse_model_path: /nope/opus-mt-de-en does not exist; {fix}",
    ]


def test_a_causal_lm_as_classifier_or_translator_is_named(tmp_path, gpt2):
    lines = fails_at_start(tmp_path, recipe(tmp_path, [
        {"type": "classifier", "model_path": str(gpt2)},
        {"type": "back_translation", "model_path": str(gpt2), "reverse_model_path": str(gpt2)},
    ]))
    assert lines[0] == (f"steps[0] (classifier).model_path: {gpt2} is a causal language model (GPT2LMHeadModel), "
                        "not a sequence classifier; give a *ForSequenceClassification folder (e.g. FineWeb-Edu's "
                        "classifier)")
    assert lines[1] == (f"steps[1] (back_translation).model_path: {gpt2} is a GPT2LMHeadModel, not a seq2seq "
                        "translation model; give a seq2seq translation model folder") and len(lines) == 3


def test_a_classifier_without_a_pad_token_is_named(tmp_path, classifier_without_pad):
    lines = fails_at_start(tmp_path, recipe(tmp_path, [{"type": "classifier", "model_path": str(classifier_without_pad)}]))
    assert lines == [f"steps[0] (classifier).model_path: {classifier_without_pad} has no pad token, so batches cannot "
                     "be padded; set pad_token in its tokenizer_config.json (or pad_token_id in config.json)"]


def test_a_folder_without_weights_or_config_is_named(tmp_path, gpt2):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.json").write_text("{}", encoding="utf-8")
    problems = model_problems(load_recipe({"sources": [{"path": str(tmp_path)}], "steps": [
        {"type": "perplexity", "model_path": str(empty)}, {"type": "perplexity", "model_path": str(tmp_path)}]}))
    assert problems[0].startswith(f"steps[0] (perplexity).model_path: {empty} holds no weights")
    assert problems[1].startswith(f"steps[1] (perplexity).model_path: {tmp_path} has no config.json")
    assert model_problems(load_recipe({"sources": [{"path": str(tmp_path)}],
                                       "steps": [{"type": "perplexity", "model_path": str(gpt2)}]})) == []


def test_a_missing_api_key_env_is_named_before_any_work(tmp_path, monkeypatch):
    from .llm_server import ChatServer

    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    with ChatServer() as srv:
        lines = fails_at_start(tmp_path, recipe(tmp_path, [{"type": "llm_judge", "base_url": srv.base_url, "model": "m",
                                                            "api_key_env": "NO_SUCH_JUDGE_KEY"}]))
    assert lines == ["steps[0] (llm_judge).api_key_env: the environment variable NO_SUCH_JUDGE_KEY is not set; export it "
                     "(the key itself never goes in the recipe) or set api_key_env: null for a server without one"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_device_cuda_without_a_gpu_is_named(tmp_path, gpt2):
    lines = fails_at_start(tmp_path, recipe(tmp_path, [{"type": "perplexity", "model_path": str(gpt2),
                                                        "device": "cuda"}],
                                            embeddings={"model": str(gpt2), "device": "cuda:1"}))
    assert lines == [
        "steps[0] (perplexity).device: cuda but no CUDA GPU is visible here; use device: cpu or leave device unset (auto)",
        "embeddings.device: cuda:1 but no CUDA GPU is visible here; use device: cpu or leave device unset (auto)"]


def test_a_bad_media_encoder_path_fails_before_curation(tmp_path):
    lines = fails_at_start(tmp_path, recipe(tmp_path, [], media={"encoders": {"image": "/nope/clip-vit"}}))
    assert lines == ["media.encoders.image: /nope/clip-vit does not exist; give a local model folder (config.json, "
                     "weights, tokenizer, as save_pretrained writes); nothing is downloaded"]


def test_a_wrong_embeddings_model_is_one_line_at_validation(tmp_path):
    lines = fails_at_start(tmp_path, recipe(tmp_path, [], embeddings={"model": "/nope/Qwen3-Embedding-0.6B"}))
    assert len(lines) == 1 and lines[0].startswith("embeddings.model: ")
    assert "/nope/Qwen3-Embedding-0.6B' is not a local model folder (no config.json)" in lines[0]
