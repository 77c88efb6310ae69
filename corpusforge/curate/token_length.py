"""Length in tokens of a model's own tokenizer, so a corpus fits the model that will read it."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from corpusforge.document import Document
from corpusforge.registry import register
from corpusforge.step import Filter

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext


def load_counting_tokenizer(path: str | None) -> Any:
    """A ``tokenizers.Tokenizer`` from a model folder or ``tokenizer.json``, without truncation or padding.

    ``None`` is the bundled all-MiniLM-L6-v2 (whose ``tokenizer.json`` truncates at 128 tokens, which a
    length count must not do).
    """
    from tokenizers import Tokenizer

    if path is None:
        from corpusforge.models.embeddings import default_model_path

        path = default_model_path()
    p = Path(path).expanduser()
    file = p / "tokenizer.json" if p.is_dir() else p
    if not file.is_file():
        raise ValueError(f"token_length: no tokenizer.json at {path} (give a model folder or a tokenizer.json)")
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as e:  # tokenizers raises a bare Exception for a malformed file
        raise ValueError(f"token_length: {file} is not a Hugging Face tokenizer file: {e}") from e
    tok.no_truncation()
    tok.no_padding()
    return tok


@register("token_length")
class TokenLength(Filter):
    """Keep documents of ``min_tokens`` to ``max_tokens`` tokens; the count goes in ``metadata[key]``.

    ``tokenizer``: a local model folder or ``tokenizer.json`` (default: the bundled all-MiniLM-L6-v2,
    the default embedding model). Tokens are counted without special tokens. Reasons:
    ``too_few_tokens``, ``too_many_tokens``.
    """

    def __init__(self, tokenizer: str | None = None, min_tokens: int = 0, max_tokens: int | None = None,
                 key: str = "token_count", batch_docs: int = 512):
        if min_tokens < 0 or (max_tokens is not None and max_tokens < min_tokens):
            raise ValueError("min_tokens must be >= 0 and max_tokens >= min_tokens")
        self.tokenizer_path, self.min_tokens, self.max_tokens = tokenizer, min_tokens, max_tokens
        self.key, self.batch_docs = key, batch_docs
        self._tok: Any = None

    def setup(self, ctx: object) -> None:
        if self._tok is None:
            self._tok = load_counting_tokenizer(self.tokenizer_path)

    def counts(self, texts: list[str]) -> list[int]:
        """Tokens in each text (one batched tokenizer call)."""
        self.setup(None)
        return [len(e.ids) for e in self._tok.encode_batch(texts, add_special_tokens=False)]

    def decide(self, doc: Document, n: int) -> str | None:
        doc.metadata[self.key] = n
        if n < self.min_tokens:
            return "too_few_tokens"
        if self.max_tokens is not None and n > self.max_tokens:
            return "too_many_tokens"
        return None

    def keep(self, doc: Document) -> str | None:
        return self.decide(doc, self.counts([doc.text])[0])

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        self.setup(ctx)
        it = iter(docs)
        while batch := list(islice(it, self.batch_docs)):
            for doc, n in zip(batch, self.counts([d.text for d in batch]), strict=True):
                reason = self.decide(doc, n)
                if reason is None:
                    yield doc
                else:
                    ctx.drop(self, doc, reason, n)
