"""Fixtures: tiny random encoder/decoder models made here, and one WikiText-2 recipe run on a slice."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_DATA

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "wikitext2-embeddings.yaml"

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("polars")

WORDS = ("the a lobster sea river city music war ship king church game film song road bridge year first "
         "is was has of in on and to by with from as at it he she they blue red green large small").split()


def _word_tokenizer(path: Path, padding_side: str):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[EOS]", *WORDS])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]",
                                   cls_token="[CLS]", padding_side=padding_side)
    fast.save_pretrained(path)
    return fast


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT encoder with random weights (absolute positions, right padding)."""
    from transformers import BertConfig, BertModel

    path = tmp_path_factory.mktemp("tiny_bert")
    tok = _word_tokenizer(path, "right")
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64, pad_token_id=0)).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_qwen3(tmp_path_factory) -> Path:
    """A 2-layer Qwen3 decoder with random weights (rotary positions, causal attention)."""
    from transformers import Qwen3Config, Qwen3Model

    path = tmp_path_factory.mktemp("tiny_qwen3")
    tok = _word_tokenizer(path, "left")
    torch.manual_seed(0)
    Qwen3Model(Qwen3Config(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=8, intermediate_size=64, max_position_embeddings=128,
                           pad_token_id=0, eos_token_id=3)).save_pretrained(path)
    return path


def wikitext_slice(path: Path, chars: int) -> Path:
    """The first ``chars`` characters of the shared valid.txt, cut at a line end."""
    text = (SHARED_DATA / "wikitext-2" / "valid.txt").read_text(encoding="utf-8")
    cut = text.index("\n", chars) + 1
    path.mkdir(parents=True, exist_ok=True)
    (path / "valid.txt").write_text(text[:cut], encoding="utf-8")
    return path


def shipped_recipe(data: Path, model: Path) -> dict:
    """recipes/wikitext2-embeddings.yaml as shipped, reading ``data`` and embedding with the local ``model``
    (where the recipe names its Qwen3-Embedding copy); nothing else changed."""
    import yaml

    recipe = yaml.safe_load(RECIPE.read_text(encoding="utf-8"))
    assert recipe["embeddings"]["model"] == recipe["steps"][2]["tokenizer"] == "../models/Qwen3-Embedding-0.6B"
    recipe["sources"][0]["path"] = str(data)
    recipe["embeddings"]["model"] = recipe["steps"][2]["tokenizer"] = str(model)
    return recipe


@pytest.fixture(scope="session")
def wikitext_run(tmp_path_factory, tiny_qwen3) -> Path:
    """recipes/wikitext2-embeddings.yaml run on the whole shared WikiText-2 (valid.txt and test.txt) with a tiny
    random Qwen3 as the local embedding model (window 128 tokens) and a 1000-token BPE for the shards."""
    from corpusforge import run

    base = tmp_path_factory.mktemp("wikitext")
    data = shipped_recipe(SHARED_DATA / "wikitext-2", tiny_qwen3)
    data["tokenizer"]["vocab_size"] = 1000
    run(data, output=str(base / "out"), workers=1, progress=False)
    return base / "out"
