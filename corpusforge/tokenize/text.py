"""Train HF ``tokenizers`` models (byte-level BPE, Unigram, WordPiece) or load a tokenizer.json.

Every vocabulary trained here starts with the 16 fixed special tokens at ids 0-15: the trainers
are handed them first, which gives them the lowest ids in order. A loaded one may have any.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from corpusforge.errors import RecipeError
from corpusforge.layout import TOKENIZER_HF
from corpusforge.tokenize.special import SPECIAL_TOKENS, UNK


def check_special_tokens(tok: Tokenizer, where: str) -> None:
    """Raise RecipeError unless the 16 fixed special tokens sit at ids 0-15."""
    wrong = [
        f"{name} is id {tok.token_to_id(name)}, must be {i}"
        for i, name in enumerate(SPECIAL_TOKENS)
        if tok.token_to_id(name) != i
    ]
    if wrong:
        raise RecipeError(f"{where}: the tokenizer lacks the fixed special tokens at ids 0-15: " + "; ".join(wrong))


def train_bpe(
    texts: Iterable[str],
    vocab_size: int,
    min_frequency: int = 2,
    extra_special_tokens: Iterable[str] = (),
) -> Tokenizer:
    """Byte-level BPE (GPT-2 style pre-tokenization) with the special tokens at ids 0-15.

    Special tokens are handed to the trainer first, which gives them the lowest ids in order.
    """
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *extra_special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    check_special_tokens(tok, "trained tokenizer")
    return tok


def train_unigram(
    texts: Iterable[str], vocab_size: int, extra_special_tokens: Iterable[str] = ()
) -> Tokenizer:
    """Unigram LM (Kudo 2018) over Metaspace pre-tokenization, as SentencePiece does."""
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size,
        special_tokens=[*SPECIAL_TOKENS, *extra_special_tokens],
        unk_token=SPECIAL_TOKENS[UNK],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    check_special_tokens(tok, "trained tokenizer")
    return tok


def train_wordpiece(
    texts: Iterable[str], vocab_size: int, min_frequency: int = 2, extra_special_tokens: Iterable[str] = ()
) -> Tokenizer:
    """BERT-style WordPiece: NFKC, split on whitespace and punctuation, ``##`` continuations."""
    tok = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS[UNK]))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *extra_special_tokens],
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    check_special_tokens(tok, "trained tokenizer")
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a local tokenizer.json (or a directory holding one); any special tokens."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / TOKENIZER_HF
    if not p.exists():
        raise RecipeError(f"tokenizer.path: {str(path)!r} does not exist (expected a tokenizer.json)")
    try:
        tok = Tokenizer.from_file(str(p))
    except Exception as exc:  # the Rust side raises a bare Exception for a malformed file
        raise RecipeError(f"tokenizer.path: {str(p)!r} is not a valid tokenizer.json ({exc})") from None
    return tok

