import json
import shutil

import numpy as np
import pytest
from tokenizers import Tokenizer, models

from corpusforge.errors import RecipeError
from corpusforge.loader.reader import read_safetensors
from corpusforge.tokenize.encoder import load_encoder
from corpusforge.tokenize.special import BOS, EOS, PAD, SPECIAL_TOKENS

from .conftest import run_recipe

TYPES = {"bpe": "tokenizer.json", "unigram": "tokenizer.json", "wordpiece": "tokenizer.json",
         "sentencepiece_unigram": "tokenizer.model", "sentencepiece_bpe": "tokenizer.model"}


@pytest.fixture(scope="module", params=list(TYPES))
def trained(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "out"
    run_recipe(out, tokenizer={"type": request.param, "vocab_size": 600})
    return request.param, out


def test_every_tokenizer_type_has_the_special_tokens_at_ids_0_to_15(trained):
    kind, out = trained
    index = json.loads((out / "shard_index.json").read_text())
    assert index["tokenizer"]["path"] == TYPES[kind]
    assert not (out / ("tokenizer.json" if TYPES[kind] == "tokenizer.model" else "tokenizer.model")).exists()
    enc = load_encoder(out / TYPES[kind])
    assert 300 < enc.vocab_size <= 600 and index["tokenizer"]["vocab_size"] == enc.vocab_size
    assert [enc.token_id(t) for t in SPECIAL_TOKENS] == list(range(16))
    assert SPECIAL_TOKENS.index("<SEP>") not in enc.encode_batch(["the <SEP> end"])[0]  # text is text


def test_shards_hold_every_token_of_every_document(trained):
    kind, out = trained
    index = json.loads((out / "shard_index.json").read_text())
    stats = json.loads((out / "stats.json").read_text())
    rows = np.concatenate([read_safetensors(out / s["path"])["input_ids"] for s in index["shards"]])
    assert np.count_nonzero(rows != PAD) == stats["tokens"]
    assert np.count_nonzero(rows == BOS) == np.count_nonzero(rows == EOS) == stats["documents"]["kept"]
    assert rows.max() < index["tokenizer"]["vocab_size"]


def test_a_sentencepiece_model_file_loads_by_path(tmp_path):
    first = run_recipe(tmp_path / "a", tokenizer={"type": "sentencepiece_unigram", "vocab_size": 600})
    second = run_recipe(tmp_path / "b", tokenizer={"path": str(first / "tokenizer.model")})
    for name in ("tokenizer.model", "train/shard_00000.safetensors"):
        a, b = read_bytes_or_tensors(first / name), read_bytes_or_tensors(second / name)
        assert a == b


def read_bytes_or_tensors(path):
    if path.suffix == ".safetensors":
        return {k: v.tolist() for k, v in read_safetensors(path).items()}
    return path.read_bytes()


def test_an_hf_tokenizer_directory_loads_by_path(tmp_path):
    first = run_recipe(tmp_path / "a", tokenizer={"type": "wordpiece", "vocab_size": 600})
    folder = tmp_path / "hf_tok"
    folder.mkdir()
    shutil.copy(first / "tokenizer.json", folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text("{}")
    second = run_recipe(tmp_path / "b", tokenizer={"path": str(folder)})
    assert (second / "tokenizer.json").read_bytes() == (first / "tokenizer.json").read_bytes()


def test_a_tokenizer_without_an_eos_is_refused_before_curation(tmp_path):
    path = tmp_path / "tokenizer.json"
    Tokenizer(models.WordLevel({"a": 0, "<UNK>": 1}, unk_token="<UNK>")).save(str(path))
    with pytest.raises(RecipeError, match="has no EOS token to end documents with; name one in the recipe"):
        run_recipe(tmp_path / "out", tokenizer={"path": str(path)})
    assert not (tmp_path / "out").exists()
