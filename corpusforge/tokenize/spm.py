"""SentencePiece tokenizers (unigram or BPE) with the 16 fixed special tokens at ids 0-15.

PAD/UNK/BOS/EOS take SentencePiece's own control slots 0-3 and the other twelve are control
symbols, which SentencePiece numbers next, in order. Control symbols are never produced from
text (user-defined ones would be), so a document that spells ``<IMG>`` encodes as ordinary text. ``byte_fallback`` keeps
unseen characters encodable without UNK. Needs the ``sentencepiece`` package (extra ``formats``).
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from corpusforge.errors import RecipeError
from corpusforge.tokenize.special import RTDLM, SPECIAL_TOKENS, SpecialIds

# SentencePiece skips longer sentences; documents are fed line by line.
MAX_SENTENCE_BYTES = 16_384


def _spm() -> Any:
    try:
        import sentencepiece
    except ImportError:
        raise ImportError("SentencePiece tokenizers need sentencepiece: pip install 'corpusforge[formats]'") from None
    return sentencepiece


def _lines(texts: Iterable[str]) -> Iterator[str]:
    for text in texts:
        for line in text.splitlines():
            if line.strip():
                yield line[:MAX_SENTENCE_BYTES // 4]


def train_sentencepiece(
    texts: Iterable[str], vocab_size: int, model_type: str = "unigram", extra_special_tokens: Iterable[str] = ()
) -> bytes:
    """A trained SentencePiece model (the bytes of a ``.model`` file)."""
    spm = _spm()
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=_lines(texts), model_writer=out, vocab_size=vocab_size, model_type=model_type,
        pad_id=0, unk_id=1, bos_id=2, eos_id=3,
        pad_piece=SPECIAL_TOKENS[0], unk_piece=SPECIAL_TOKENS[1], bos_piece=SPECIAL_TOKENS[2],
        eos_piece=SPECIAL_TOKENS[3], control_symbols=[*SPECIAL_TOKENS[4:], *extra_special_tokens],
        byte_fallback=True, hard_vocab_limit=False, max_sentence_length=MAX_SENTENCE_BYTES,
        num_threads=1, minloglevel=2,
    )  # fmt: skip
    model = out.getvalue()
    check_sentencepiece(SentencePieceEncoder(model).sp, "trained tokenizer")
    return model


def check_sentencepiece(sp: Any, where: str) -> None:
    wrong = [f"{name} is id {sp.piece_to_id(name)}, must be {i}" for i, name in enumerate(SPECIAL_TOKENS)
             if sp.piece_to_id(name) != i]
    if wrong:
        raise RecipeError(f"{where}: the tokenizer lacks the fixed special tokens at ids 0-15: " + "; ".join(wrong))


class SentencePieceEncoder:
    """``encode_batch`` over a SentencePiece model given as ``.model`` bytes.

    A loaded model's user-defined symbols are matched in text by SentencePiece itself (it has no
    switch for that); its control symbols, BOS/EOS/PAD among them, never are."""

    def __init__(self, model: bytes, special: SpecialIds | None = None):
        self.sp = _spm().SentencePieceProcessor(model_proto=model)
        self.vocab_size = self.sp.get_piece_size()
        self.special = special or RTDLM
        self._model = model

    def token_id(self, token: str) -> int | None:
        i = self.sp.piece_to_id(token)
        return i if self.sp.id_to_piece(i) == token else None

    def special_tokens(self) -> dict[str, int]:
        """Every control symbol and the unknown piece, by string (user-defined symbols are text)."""
        sp = self.sp
        return {sp.id_to_piece(i): i for i in range(self.vocab_size) if sp.is_control(i) or sp.is_unknown(i)}

    def default_role(self, role: str) -> str | None:
        """The piece SentencePiece itself holds for ``role`` (None where its id is -1)."""
        i = getattr(self.sp, f"{role}_id")()
        return self.sp.id_to_piece(i) if i >= 0 else None

    def to_bytes(self) -> bytes:
        return self._model

    @classmethod
    def from_file(cls, path: str | Path) -> SentencePieceEncoder:
        return cls(Path(path).read_bytes())

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        return self.sp.encode(texts, out_type=int)
