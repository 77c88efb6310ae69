"""One interface over HF ``tokenizers`` and SentencePiece: find, load, train, encode in batches.

A run stores its tokenizer as ``tokenizer.json`` (HF) or ``tokenizer.model`` (SentencePiece);
``stored_name`` says which from the recipe alone, so shard tasks need no other state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge import layout
from corpusforge.errors import RecipeError
from corpusforge.tokenize.special import DEFAULT_MASKED, RTDLM, SpecialIds

HF_NAME, SPM_NAME = layout.TOKENIZER_HF, layout.TOKENIZER_SPM
# Characters per encode_batch call inside encode_flat (and the most in one piece of a long text).
# The library builds its per-token objects (token strings, offsets, masks, alignments) for a whole
# call before returning, and the heap keeps what they took: encoding Gutenberg's five books grew the
# process by 94 MB at 256K characters a call, 41 MB at 64K and 20 MB at 16K, in the same time at
# 64K as at 256K (16K was 13% slower).
ENCODE_CHUNK_CHARS = 1 << 16
UNREACHABLE = "\x00\ue000"  # prefixed to special pieces of a Unigram model so text cannot spell them


class HFEncoder:
    """``encode_batch`` over a ``tokenizers.Tokenizer``; special tokens are framed by the packer.

    ``encode_special_tokens`` is on: a document that spells ``<|endoftext|>`` or ``<PAD>`` is
    encoded as ordinary text, so special ids enter a shard only where the packer puts them."""

    def __init__(self, tok: Any, special: SpecialIds | None = None):
        self.tok = tok
        tok.encode_special_tokens = True
        self.vocab_size = tok.get_vocab_size()
        self.special = special or RTDLM
        self._encoder = _text_only(tok)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self._encoder.encode_batch_fast(texts, add_special_tokens=False)]

    def special_tokens(self) -> dict[str, int]:
        """Every special token of the vocabulary, by string."""
        return {t.content: i for i, t in self.tok.get_added_tokens_decoder().items() if t.special}

    def token_id(self, token: str) -> int | None:
        return self.tok.token_to_id(token)

    def append(self, tokens: list[str]) -> dict[str, int]:
        """Add ``tokens`` as special tokens after the vocabulary; their new ids."""
        from tokenizers import AddedToken

        self.tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in tokens])
        self.vocab_size = self.tok.get_vocab_size()
        self._encoder = _text_only(self.tok)
        return {t: self.tok.token_to_id(t) for t in tokens}

    def to_bytes(self) -> bytes:
        self.tok.encode_special_tokens = False  # a stored tokenizer behaves as its users expect
        try:
            return self.tok.to_str(pretty=True).encode()
        finally:
            self.tok.encode_special_tokens = True


def _text_only(tok: Any) -> Any:
    """``tok`` itself, or for a Unigram model a copy in which text cannot reach a special piece:
    a Unigram vocabulary holds its special tokens as pieces too (score 0, the best there is), so
    the model would pick ``<SEP>`` out of a text that spells it. The copy renames those pieces to
    strings no text holds (ids, scores and so every other encoding unchanged)."""
    import orjson
    from tokenizers import Tokenizer

    if tok.model.__class__.__name__ != "Unigram":
        return tok
    specials = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    data = orjson.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    unk = data["model"].get("unk_id")
    if not any(piece in specials for i, (piece, _) in enumerate(vocab) if i != unk):
        return tok
    data["model"]["vocab"] = [[UNREACHABLE + p if p in specials and i != unk else p, sc]
                              for i, (p, sc) in enumerate(vocab)]
    data["added_tokens"] = [t for t in data.get("added_tokens", []) if not t.get("special")]
    out = Tokenizer.from_str(orjson.dumps(data).decode())
    out.encode_special_tokens = True
    return out


def resolve_path(path: str | Path) -> Path:
    """The tokenizer file behind ``tokenizer.path``: a tokenizer.json, a SentencePiece .model, or
    an HF tokenizer directory (its tokenizer.json, else its single ``*.model``)."""
    p = Path(path).expanduser()
    if p.is_dir():
        if (p / HF_NAME).exists():
            return p / HF_NAME
        models = sorted(p.glob("*.model"))
        if len(models) == 1:
            return models[0]
        raise RecipeError(f"tokenizer.path: {str(path)!r} holds neither tokenizer.json nor one *.model file")
    if not p.exists():
        raise RecipeError(f"tokenizer.path: {str(path)!r} does not exist")
    return p


def stored_name(cfg: Any) -> str:
    """``tokenizer.model`` for SentencePiece (trained or loaded), else ``tokenizer.json``."""
    if cfg.path:
        return SPM_NAME if resolve_path(cfg.path).suffix == ".model" else HF_NAME
    return SPM_NAME if cfg.type.startswith("sentencepiece") else HF_NAME


def pieces(text: str, max_chars: int = ENCODE_CHUNK_CHARS) -> Iterator[str]:
    """``text`` in consecutive pieces of at most ``max_chars`` characters, for bounded memory.

    A piece ends just before a space that has a non-space character on both sides (``"word| next"``):
    every built-in pre-tokenizer (GPT-2 byte-level regex, Metaspace, BERT whitespace) and
    SentencePiece start a new pre-token at such a space, so the pieces encode to the same ids as
    the whole text. A stretch of ``max_chars`` characters without one is cut at any whitespace,
    else at ``max_chars``: only then may the tokens at the cut differ from an uncut encode."""
    if len(text) <= max_chars:
        yield text
        return
    lo, n = 0, len(text)
    while n - lo > max_chars:
        hi = lo + max_chars
        cut = _space_cut(text, lo + max_chars // 2, hi)
        if cut <= lo:
            cut = max(text.rfind(ws, lo + 1, hi) for ws in (" ", "\n", "\t"))
        if cut <= lo:
            cut = hi
        yield text[lo:cut]
        lo = cut
    yield text[lo:]


def _space_cut(text: str, lo: int, hi: int) -> int:
    """The last position in (lo, hi) of a space with non-space characters on both sides, or -1."""
    at = text.rfind(" ", lo, hi)
    while at > lo:
        if not text[at - 1].isspace() and at + 1 < len(text) and not text[at + 1].isspace():
            return at
        at = text.rfind(" ", lo, at)
    return -1


def encode_flat(enc: Any, texts: list[str], chunk_chars: int = ENCODE_CHUNK_CHARS) -> tuple[np.ndarray, np.ndarray]:
    """The ids of ``texts`` back to back as one int32 array, and each text's number of ids.

    ``enc.encode_batch`` gets about ``chunk_chars`` characters at a time and each call's id lists
    are turned into the array at once, so neither the library's per-token objects nor Python's int
    lists exist for more than one chunk. A longer text is encoded in ``pieces`` (same ids, see
    there), so one huge document costs its int32 ids, not the library's objects for all of them."""
    ids: list[np.ndarray] = []
    counts = np.zeros(len(texts), np.int64)
    batch: list[str] = []
    owners: list[int] = []
    size = 0

    def encode() -> None:
        lists = enc.encode_batch(batch)
        n = np.fromiter(map(len, lists), np.int64, len(lists))
        ids.append(np.fromiter(chain.from_iterable(lists), np.int32, int(n.sum())))
        np.add.at(counts, owners, n)
        batch.clear()
        owners.clear()

    for i, text in enumerate(texts):
        for piece in (text,) if len(text) <= chunk_chars else pieces(text, chunk_chars):
            batch.append(piece)
            owners.append(i)
            size += len(piece)
            if size >= chunk_chars:  # a chunk closes at the text that reaches chunk_chars
                encode()
                size = 0
    if batch:
        encode()
    if not ids:
        return np.zeros(0, np.int32), counts
    return (ids[0] if len(ids) == 1 else np.concatenate(ids)), counts


def load_encoder(
    path: str | Path,
    roles: Mapping[str, str | None] | None = None,
    layout: str = "auto",
    masked: Iterable[str] = DEFAULT_MASKED,
    media: bool = False,
) -> HFEncoder | Any:
    """An encoder for a tokenizer file with its run's special ids (``.special``): the roles the
    recipe names (``roles``), else the ones the files beside it name, else the tokenizer's own;
    ``layout: rtdlm`` asks for the 16 fixed special tokens (see ``roles.resolve_special``)."""
    from corpusforge.tokenize.roles import resolve_special

    p = Path(path)
    if p.suffix == ".model":
        from corpusforge.tokenize.spm import SentencePieceEncoder

        try:
            enc = SentencePieceEncoder.from_file(p)
        except RuntimeError as exc:
            raise RecipeError(f"tokenizer.path: {str(p)!r} is not a SentencePiece model ({exc})") from None
    else:
        from corpusforge.tokenize.text import load_tokenizer

        enc = HFEncoder(load_tokenizer(p))
    enc.special = resolve_special(enc, p, roles, layout, masked, media)
    return enc


def train_to_bytes(cfg: Any, texts: Any) -> bytes:
    """Train the tokenizer ``cfg.type`` names; the bytes of its stored file. Texts longer than
    ``ENCODE_CHUNK_CHARS`` reach the trainer in ``pieces``: the trainers pre-tokenize a whole text
    at once (a 50 MB one took over 1 GB), and BPE and WordPiece count the same words either way."""
    texts = (p for t in texts for p in ((t,) if len(t) <= ENCODE_CHUNK_CHARS else pieces(t)))
    if cfg.type.startswith("sentencepiece"):
        from corpusforge.tokenize.spm import train_sentencepiece

        return train_sentencepiece(texts, cfg.vocab_size, cfg.type.split("_", 1)[1], cfg.extra_special_tokens)
    from corpusforge.tokenize import text

    if cfg.type == "unigram":
        tok = text.train_unigram(texts, cfg.vocab_size, cfg.extra_special_tokens)
    elif cfg.type == "wordpiece":
        tok = text.train_wordpiece(texts, cfg.vocab_size, cfg.min_frequency, cfg.extra_special_tokens)
    else:
        tok = text.train_bpe(texts, cfg.vocab_size, cfg.min_frequency, cfg.extra_special_tokens)
    return tok.to_str(pretty=True).encode()
