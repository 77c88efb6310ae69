"""Any tokenizer a user has: its own ids in the shards, its own BOS/EOS/PAD, EOS labelled, text kept as text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from corpusforge import run
from corpusforge.errors import RecipeError
from corpusforge.loader.reader import open_shard, read_stored
from corpusforge.shards.validate import validate_output
from corpusforge.staging import read_documents
from corpusforge.tokenize.special import special_of_index


def _book(shared_data: Path, name: str = "pg84.txt") -> dict:
    return {"name": "book", "path": str(shared_data / "prose" / "gutenberg" / name), "text_unit": "paragraph"}


def _recipe(sources: list[dict], tokenizer: dict, **sharding) -> dict:
    return {"seed": 3, "sources": sources, "tokenizer": tokenizer, "output": {"documents": "parquet"},
            "sharding": {"sequence_length": 64, "max_shard_bytes": 100_000, "splits": {"train": 1.0}, **sharding},
            "executor": {"task_bytes": 150_000}}


def _byte_bpe(texts: list[str], vocab_size: int, specials: list[str]) -> Tokenizer:
    """A GPT-2 style byte-level BPE, trained here on real prose."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False))
    return tok


def _paragraphs(shared_data: Path, name: str) -> list[str]:
    text = (shared_data / "prose" / "gutenberg" / name).read_text(encoding="utf-8")
    return [p for p in text.split("\n\n") if p.strip()]


def _rows(out: Path) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """The index, every train row's input_ids in order, and the tensors of all shards concatenated."""
    index = orjson.loads((out / "shard_index.json").read_bytes())
    special = special_of_index(index)
    parts = [open_shard(out / s["path"], index["sequence_length"], special=special) for s in index["shards"]]
    tensors = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return index, tensors["input_ids"], tensors


def _kept(out: Path) -> list[str]:
    return [d.text for f in sorted((out / "documents").glob("*.parquet")) for d in read_documents(f)]


def _assert_own_encoding(out: Path, encode, bos: int | None, eos: int) -> dict:
    """input_ids are, document after document, [BOS] + the tokenizer's own encode + [EOS], then padding;
    labels are -100 exactly on BOS and padding, attention 0 exactly on padding."""
    index, ids, t = _rows(out)
    special = index["special_ids"]
    pad = special["pad"]
    expected = np.concatenate([np.asarray(([bos] if bos is not None else []) + encode(text) + [eos], np.int64)
                               for text in _kept(out)])
    flat = ids.reshape(-1)
    assert np.array_equal(flat[: len(expected)], expected)
    assert (flat[len(expected):] == pad).all() and len(flat) - len(expected) < index["sequence_length"]
    masked = (ids == pad) | ((ids == bos) if bos is not None else False)
    assert (t["labels"][masked] == -100).all() and np.array_equal(t["labels"][~masked], ids[~masked])
    assert (t["labels"][ids == eos] == eos).all() and (ids == eos).sum() == len(_kept(out))
    assert np.array_equal(t["attention_mask"], (ids != pad).astype(np.int32))
    assert validate_output(out)[0] == []
    return index


def test_a_gpt2_style_tokenizer_gives_its_own_ids_with_eos_labelled_and_a_pad_appended(tmp_path, shared_data):
    tok = _byte_bpe(_paragraphs(shared_data, "pg1342.txt"), 3000, ["<|endoftext|>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    eot = tok.token_to_id("<|endoftext|>")
    out = tmp_path / "out"
    run(_recipe([_book(shared_data)], {"path": str(tmp_path / "tokenizer.json")}), output=str(out), workers=1)
    index = _assert_own_encoding(out, lambda t: tok.encode(t, add_special_tokens=False).ids, None, eot)
    n = tok.get_vocab_size()
    assert index["special_ids"]["appended"] == {"<|pad|>": n} and index["special_ids"]["pad"] == n
    assert index["special_ids"]["bos"] is None and index["tokenizer"]["vocab_size"] == n + 1
    stats = orjson.loads((out / "stats.json").read_bytes())
    tok_stage = next(s for s in stats["stages"] if s["name"] == "tokenizer")
    assert tok_stage["result"]["special_ids"]["appended"] == {"<|pad|>": n}  # reported

    # The columns path (no documents output), as shuffled Megatron shards, writes the same rows.
    plain = _recipe([_book(shared_data)], {"path": str(tmp_path / "tokenizer.json")}, format="megatron", shuffle=True)
    del plain["output"]
    run(plain, output=str(tmp_path / "plain"), workers=2)
    assert validate_output(tmp_path / "plain")[0] == []
    a, b = _rows(tmp_path / "plain")[1], _rows(out)[1]
    assert np.array_equal(a[np.lexsort(a.T[::-1])], b[np.lexsort(b.T[::-1])])

    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(out))
    assert (hf.eos_token, hf.pad_token, hf.bos_token, hf.pad_token_id) == ("<|endoftext|>", "<|pad|>", None, n)


def test_a_saved_transformers_folder_gives_its_bos_eos_pad_from_its_config(tmp_path, shared_data):
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    names = {"bos_token": "<|begin|>", "eos_token": "<|end|>", "pad_token": "<|fill|>", "unk_token": "<|unk|>"}
    tok = _byte_bpe(_paragraphs(shared_data, "pg1342.txt"), 2500, list(names.values()))
    folder = tmp_path / "my-model"
    PreTrainedTokenizerFast(tokenizer_object=tok, **names).save_pretrained(str(folder))
    hf = AutoTokenizer.from_pretrained(str(folder))
    out = tmp_path / "out"
    run(_recipe([_book(shared_data)], {"path": str(folder)}, packing="pad"), output=str(out), workers=1)
    index, ids, _ = _rows(out)
    special = index["special_ids"]
    assert (special["bos"], special["eos"], special["pad"]) == (hf.bos_token_id, hf.eos_token_id, hf.pad_token_id)
    assert special["appended"] == {} and special["masked"] == sorted([hf.bos_token_id, hf.pad_token_id])
    # pad packing: every document on rows of its own, [BOS] + its own encode + [EOS], then padding.
    rows = [r[r != hf.pad_token_id].tolist() for r in ids]
    docs, k = [], 0
    for text in _kept(out):
        want = [hf.bos_token_id, *hf.encode(text, add_special_tokens=False), hf.eos_token_id]
        got = []
        while len(got) < len(want):
            got += rows[k]
            k += 1
        docs.append(got == want)
    assert all(docs) and k == len(rows)
    labels = np.concatenate([read_stored(out / s["path"])["labels"] for s in index["shards"]])
    masked = np.isin(ids, [hf.bos_token_id, hf.pad_token_id])
    assert (labels[masked] == -100).all() and np.array_equal(labels[~masked], ids[~masked])
    assert validate_output(out)[0] == []
    reloaded = AutoTokenizer.from_pretrained(str(out))
    assert (reloaded.bos_token, reloaded.eos_token, reloaded.pad_token) == ("<|begin|>", "<|end|>", "<|fill|>")


def test_a_peer_bpe_32k_with_pad_unk_bos_eos_at_0_to_3_runs_through_the_cli(tmp_path, shared_data):
    texts = [p for name in ("pg1342.txt", "pg2701.txt", "pg84.txt") for p in _paragraphs(shared_data, name)]
    texts += (shared_data / "wikitext-2" / "valid.txt").read_text(encoding="utf-8").split("\n\n")
    tok = _byte_bpe(texts, 32_000, ["<PAD>", "<UNK>", "<BOS>", "<EOS>"])
    assert tok.get_vocab_size() > 20_000
    tok.save(str(tmp_path / "peer.json"))
    recipe = _recipe([{"name": "wiki", "path": str(shared_data / "wikitext-2" / "test.txt"), "text_unit": "paragraph"}],
                     {"path": str(tmp_path / "peer.json")}, sequence_length=256, max_shard_bytes=1_000_000)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "out"
    cli = [sys.executable, "-m", "corpusforge.cli"]
    subprocess.run([*cli, "run", str(tmp_path / "recipe.yaml"), "-o", str(out), "-q"], check=True)
    done = subprocess.run([*cli, "validate", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and "valid: " in done.stderr, done.stdout + done.stderr
    index = _assert_own_encoding(out, lambda t: tok.encode(t, add_special_tokens=False).ids, 2, 3)
    assert (index["special_ids"]["pad"], index["special_ids"]["unk"], index["special_ids"]["appended"]) == (0, 1, {})


def test_a_vocabulary_beyond_65535_keeps_its_ids_in_shards_validate_and_the_loader(tmp_path, shared_data):
    from corpusforge.loader.dataset import ShardIterator

    text = (shared_data / "prose" / "gutenberg" / "pg84.txt").read_text(encoding="utf-8")
    words = sorted(set(text.split()))
    fillers = [f"<reserved_{i}>" for i in range(66_000)]
    vocab = {t: i for i, t in enumerate(["<PAD>", "<UNK>", "<BOS>", "<EOS>", *fillers, *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<UNK>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<PAD>", "<UNK>", "<BOS>", "<EOS>"])
    tok.save(str(tmp_path / "big.json"))
    assert tok.get_vocab_size() > 70_000
    out = tmp_path / "out"
    run(_recipe([_book(shared_data)], {"path": str(tmp_path / "big.json")}, format="megatron"), output=str(out),
        workers=1)
    _assert_own_encoding(out, lambda t: tok.encode(t, add_special_tokens=False).ids, 2, 3)
    _, ids, _ = _rows(out)
    assert ids.max() > 65_535
    batch = next(iter(ShardIterator(out, batch_size=4, shuffle=False)))
    assert batch["input_ids"].dtype == np.int32 and batch["input_ids"].max() > 65_535


LITERALS = "He wrote <PAD> and <BOS>, then <EOS> and <|endoftext|> and <IMG> in the margin."


def test_text_that_spells_special_tokens_is_encoded_as_text(tmp_path, shared_data):
    paragraphs = [p for p in _paragraphs(shared_data, "pg1513.txt") if len(p) > 200][:300]
    docs = [{"id": f"d{i}", "text": f"{p}\n{LITERALS} {i}" if i % 3 == 0 else p} for i, p in enumerate(paragraphs)]
    src = tmp_path / "docs.jsonl"
    src.write_bytes(b"\n".join(orjson.dumps(d) for d in docs))
    outs = {}
    for fmt in ("safetensors", "megatron"):
        outs[fmt] = tmp_path / fmt
        run(_recipe([{"name": "d", "path": str(src)}], {"vocab_size": 800}, format=fmt), output=str(outs[fmt]),
            workers=1)
        assert validate_output(outs[fmt])[0] == []
    index, ids, t = _rows(outs["safetensors"])
    kept = len(_kept(outs["safetensors"]))
    assert sum(LITERALS in d for d in _kept(outs["safetensors"])) >= 50
    assert (ids == 2).sum() == (ids == 3).sum() == kept  # BOS and EOS only where the packer put them
    assert not np.isin(ids, list(range(4, 16))).any()
    assert (ids == 0).sum() < index["sequence_length"]  # padding only at the end
    assert np.array_equal(_rows(outs["megatron"])[1], ids)  # Megatron rows equal SafeTensors rows
    stats = orjson.loads((outs["safetensors"] / "stats.json").read_bytes())
    assert stats["tokens"] == index["totals"]["tokens"] == int((ids != 0).sum())
    # A GPT-2 style tokenizer: <|endoftext|> in the text is text, the id only ends documents.
    tok = _byte_bpe(_paragraphs(shared_data, "pg1342.txt"), 2000, ["<|endoftext|>"])
    tok.save(str(tmp_path / "gpt2.json"))
    out = tmp_path / "gpt2"
    run(_recipe([{"name": "d", "path": str(src)}], {"path": str(tmp_path / "gpt2.json")}), output=str(out), workers=1)
    _, ids, _ = _rows(out)
    assert (ids == tok.token_to_id("<|endoftext|>")).sum() == len(_kept(out))


def test_a_tokenizer_the_run_cannot_use_is_refused_before_curation(tmp_path, shared_data):
    tok = _byte_bpe(_paragraphs(shared_data, "pg1342.txt"), 1000, ["<s>"])
    tok.save(str(tmp_path / "t.json"))
    out = tmp_path / "out"
    with pytest.raises(RecipeError, match=r"has no EOS token .* tokenizer: \{eos: '<\|endoftext\|>'\}"):
        run(_recipe([_book(shared_data)], {"path": str(tmp_path / "t.json")}), output=str(out), workers=1)
    with pytest.raises(RecipeError, match="tokenizer.eos '</s>' is not in the tokenizer's vocabulary"):
        run(_recipe([_book(shared_data)], {"path": str(tmp_path / "t.json"), "eos": "</s>"}), output=str(out))
    with pytest.raises(RecipeError, match="sharding.mask_special: 'sep' is neither a role nor a special token"):
        run(_recipe([_book(shared_data)], {"path": str(tmp_path / "t.json"), "eos": "<s>"}, mask_special=["sep"]),
            output=str(out))
    assert not out.exists()


def test_rtdlm_on_a_foreign_tokenizer_appends_the_missing_special_tokens(tmp_path, shared_data):
    tok = _byte_bpe(_paragraphs(shared_data, "pg1342.txt"), 1500, ["<|endoftext|>"])
    tok.save(str(tmp_path / "t.json"))
    out = tmp_path / "out"
    run(_recipe([_book(shared_data)], {"path": str(tmp_path / "t.json"), "special_tokens": "rtdlm"}),
        output=str(out), workers=1)
    n = tok.get_vocab_size()
    index = orjson.loads((out / "shard_index.json").read_bytes())
    special = index["special_ids"]
    assert special["appended"]["<PAD>"] == n and special["appended"]["<THINK>"] == n + 15
    assert (special["pad"], special["bos"], special["eos"]) == (n, n + 2, n + 3)
    _assert_own_encoding(out, lambda t: tok.encode(t, add_special_tokens=False).ids, n + 2, n + 3)
    stored = Tokenizer.from_file(str(out / "tokenizer.json"))
    assert stored.token_to_id("<EOS>") == n + 3 and stored.get_vocab_size() == n + 16


def test_a_sentencepiece_model_without_pad_is_refused_until_one_is_named(tmp_path, shared_data):
    import io

    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(_paragraphs(shared_data, "pg1342.txt")), model_writer=model,
                                   vocab_size=800, pad_id=-1, unk_id=0, bos_id=1, eos_id=2, byte_fallback=True,
                                   minloglevel=2)  # Llama's layout: <unk> <s> </s>, no pad
    (tmp_path / "llama.model").write_bytes(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    with pytest.raises(RecipeError, match=r"padding needs a token .* tokenizer: \{pad: '<unk>'\}"):
        run(_recipe([_book(shared_data)], {"path": str(tmp_path / "llama.model")}), output=str(tmp_path / "no"))
    out = tmp_path / "out"
    run(_recipe([_book(shared_data)], {"path": str(tmp_path / "llama.model"), "pad": "<unk>"}), output=str(out),
        workers=1)
    index = _assert_own_encoding(out, lambda t: sp.encode(t), 1, 2)
    assert (index["special_ids"]["pad"], index["special_ids"]["bos"]) == (0, 1)


def test_the_documented_own_tokenizer_example_runs(tmp_path, shared_data):
    import re

    from transformers import PreTrainedTokenizerFast

    doc = (Path(__file__).resolve().parents[2] / "docs" / "loader.md").read_text()
    recipe = yaml.safe_load(re.search(r"#### Your own tokenizer\n\n```yaml\n(.*?)```", doc, re.S).group(1))
    tok = _byte_bpe(_paragraphs(shared_data, "pg1342.txt"), 2000, ["<|endoftext|>"])
    PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>").save_pretrained(str(tmp_path / "my-model"))
    recipe["sources"][0]["path"] = str(shared_data / "prose" / "gutenberg" / "pg26184.txt")
    recipe["tokenizer"]["path"] = str(tmp_path / "my-model")
    run(recipe, output=str(tmp_path / "out"), workers=1)
    index = orjson.loads((tmp_path / "out" / "shard_index.json").read_bytes())
    n = tok.get_vocab_size()
    assert index["special_ids"]["pad"] == n and index["special_ids"]["eos"] == tok.token_to_id("<|endoftext|>")
    assert validate_output(tmp_path / "out")[0] == []
