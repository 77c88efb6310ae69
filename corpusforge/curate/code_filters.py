"""NeMo Curator's ``code`` filters for source files, with its defaults (StarCoder's rules).

Comment ratio (Python through ``tokenize`` and ``ast``; C-family, shell and other languages by a
small lexer that skips string literals), lines of code, characters per tokenizer token, XML
headers in files with a wrong extension, the alphabetic share, and HTML that is mostly markup.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from corpusforge.curate.nemo import ScoreFilter, unicode_regex
from corpusforge.curate.signals import Mode
from corpusforge.document import Document
from corpusforge.registry import register

# Docstrings count for modules, classes and (non-async) functions, as in NeMo Curator.
_DOC_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef)


def python_comment_chars(source: str) -> int | None:
    """Characters of the comments and docstrings of Python ``source`` (docstrings cleaned by
    ``ast.get_docstring`` and joined by newlines); None if it does not parse or tokenize."""
    try:
        tree = ast.parse(source)
        docs = [d for node in ast.walk(tree) if isinstance(node, _DOC_NODES) and (d := ast.get_docstring(node))]
        comments = sum(
            len(tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type == tokenize.COMMENT
        )
    except (SyntaxError, ValueError, tokenize.TokenError, RecursionError, MemoryError):
        return None
    return comments + sum(map(len, docs)) + max(len(docs) - 1, 0)


# Comment syntax per language: line-comment markers, block (open, close) pairs, string quotes.
_C_LIKE = (("//",), (("/*", "*/"),), ('"', "'"))
COMMENT_SYNTAX: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str], ...], tuple[str, ...]]] = {
    "c": _C_LIKE, "cpp": _C_LIKE, "java": _C_LIKE, "javascript": (("//",), (("/*", "*/"),), ('"', "'", "`")),
    "go": (("//",), (("/*", "*/"),), ('"', "'", "`")), "rust": _C_LIKE, "csharp": _C_LIKE,
    "shell": (("#",), (), ('"', "'")), "ruby": (("#",), (("=begin", "=end"),), ('"', "'")),
    "html": ((), (("<!--", "-->"),), ()),
}


def comment_texts(source: str, language: str) -> list[str]:
    """The text of every comment (markers excluded) in ``source``, skipping string literals."""
    lines, blocks, quotes = COMMENT_SYNTAX[language]
    out: list[str] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c in quotes:
            j = i + 1
            while j < n and source[j] != c and (c == "`" or source[j] != "\n"):
                j += 2 if source[j] == "\\" else 1
            i = j + 1
            continue
        for marker in lines:
            if source.startswith(marker, i):
                end = source.find("\n", i)
                end = n if end < 0 else end
                out.append(source[i + len(marker) : end])
                i = end
                break
        else:
            for open_, close in blocks:
                if source.startswith(open_, i):
                    end = source.find(close, i + len(open_))
                    end = n if end < 0 else end
                    out.append(source[i + len(open_) : end])
                    i = end + len(close)
                    break
            else:
                i += 1
    return out


@register("comment_ratio")
class CommentRatio(ScoreFilter):
    """Keep source files whose comments are 1%-85% of the characters (``language``: ``python``,
    ``c``, ``cpp``, ``java``, ``javascript``, ``go``, ``rust``, ``csharp``, ``shell``, ``ruby``,
    ``html``). Python counts comments and docstrings, and a file that does not parse scores 0."""

    reason = "comment_ratio"
    empty_reason = "empty"

    def __init__(
        self,
        language: str = "python",
        min_comment_to_code_ratio: float = 0.01,
        max_comment_to_code_ratio: float = 0.85,
        mode: Mode = "filter",
    ):
        super().__init__(low=min_comment_to_code_ratio, high=max_comment_to_code_ratio, mode=mode)
        if language != "python" and language not in COMMENT_SYNTAX:
            raise ValueError(f"language must be python or one of {sorted(COMMENT_SYNTAX)}, not {language!r}")
        self.language = language

    def score(self, doc: Document) -> float | None:
        source = doc.text
        if not source:
            return None
        if self.language == "python":
            chars = python_comment_chars(source)
            return 0.0 if chars is None else chars / len(source)
        comments = comment_texts(source, self.language)
        return len(" ".join(comments)) / len(source)


@register("lines_of_code")
class LinesOfCode(ScoreFilter):
    """Keep source files of 10-20,000 lines (newlines + 1)."""

    reason = "num_lines"

    def __init__(self, min_lines: int = 10, max_lines: int = 20_000, mode: Mode = "filter"):
        super().__init__(low=min_lines, high=max_lines, mode=mode)

    def score(self, doc: Document) -> int:
        return doc.text.count("\n") + 1


@lru_cache(maxsize=4)
def _load_tokenizer(path: str) -> Any:
    if not Path(path).is_file():
        raise ValueError(f"tokenizer: no such file {path!r}")
    if path.endswith(".json"):
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(path)
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    try:
        import sentencepiece
    except ImportError as e:  # pragma: no cover - sentencepiece is in the formats extra
        raise ImportError("a SentencePiece tokenizer needs pip install 'corpusforge[formats]'") from e
    sp = sentencepiece.SentencePieceProcessor(model_file=path)
    return lambda text: len(sp.encode(text, out_type=str))


@register("tokenizer_fertility")
class TokenizerFertility(ScoreFilter):
    """Keep files with at least 2.5 characters per token of ``tokenizer`` (a SentencePiece ``.model``,
    as in NeMo Curator, or a HuggingFace ``tokenizer.json``); few characters per token is noise."""

    reason = "tokenizer_fertility"

    def __init__(self, tokenizer: str, min_char_to_token_ratio: float = 2.5, mode: Mode = "filter"):
        super().__init__(low=min_char_to_token_ratio, mode=mode)
        self.tokenizer = tokenizer
        _load_tokenizer(tokenizer)  # a missing or broken model fails at validation, not mid-run

    def score(self, doc: Document) -> float:
        n = _load_tokenizer(self.tokenizer)(doc.text)
        return len(doc.text) / n if n else -1.0


@register("xml_header")
class XmlHeader(ScoreFilter):
    """Drop files with ``<?xml version=`` in their first 100 characters (XML behind a code extension)."""

    reason = "xml_header"

    def __init__(self, char_prefix_search_length: int = 100, mode: Mode = "filter"):
        super().__init__(high=0, mode=mode)
        self.char_prefix_search_length = char_prefix_search_length

    def score(self, doc: Document) -> int:
        return int("<?xml version=" in doc.text[: self.char_prefix_search_length])


@register("alpha")
class Alpha(ScoreFilter):
    """Keep files where at least 25% of characters are alphabetic (drops tensors and tables as text)."""

    reason = "alpha_filter"
    empty_reason = "empty"

    def __init__(self, min_alpha_ratio: float = 0.25, mode: Mode = "filter"):
        super().__init__(low=min_alpha_ratio, mode=mode)
        self._alpha = unicode_regex().compile("[[:alpha:]]")

    def score(self, doc: Document) -> float | None:
        text = doc.text
        if not text:
            return None
        n = sum(1 for _ in self._alpha.finditer(text)) if not text.isascii() else sum(map(str.isalpha, text))
        return n / len(text)


_ASCII_SPACE = str.maketrans("", "", " \n\t\f\r")


class _TextOfHtml(HTMLParser):
    """The text of an HTML page without its script and style elements; a run of ASCII whitespace
    between tags counts as one newline (or one space), as an HTML parse tree keeps it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in ("pre", "textarea"):
            self._pre += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in ("pre", "textarea") and self._pre:
            self._pre -= 1

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._pre and not data.translate(_ASCII_SPACE):
            data = "\n" if "\n" in data else " "
        self.parts.append(data)


_TAG = re.compile(r"<[A-Za-z!/?]")


@register("html_boilerplate")
class HtmlBoilerplate(ScoreFilter):
    """Keep HTML files whose visible text is at least 20% of the characters and 100 characters long."""

    reason = "html_boilerplate"
    empty_reason = "empty"

    def __init__(self, min_lang_content_ratio: float = 0.2, min_lang_content_num_chars: int = 100, mode: Mode = "filter"):
        super().__init__(low=min_lang_content_ratio, mode=mode)
        self.min_lang_content_num_chars = min_lang_content_num_chars

    def score(self, doc: Document) -> float | None:
        source = doc.text
        if not source:
            return None
        if not _TAG.search(source):
            text = source
        else:
            parser = _TextOfHtml()
            parser.feed(source)
            parser.close()
            text = "".join(parser.parts)
        if len(text) < self.min_lang_content_num_chars:
            return 0.0
        return len(text) / len(source)
