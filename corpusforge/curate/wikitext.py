"""WikiText (Merity et al. 2016) into clean paragraphs: merge its lines, drop headings, undo its tokenization.

WikiText has one Wikipedia paragraph per line, article titles as `` = Title = `` and section headings
as `` = = Heading = = `` between blank lines, number separators written `` @-@ ``, `` @.@ ``, `` @,@ ``
and out-of-vocabulary words as ``<unk>``. The Hugging Face copy (``Salesforce/wikitext``) has the same
lines as rows, so both the raw files and the dataset rows go through the same two steps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from corpusforge.document import Document, make_doc_id
from corpusforge.registry import register
from corpusforge.step import Filter, Step

if TYPE_CHECKING:
    from corpusforge.observe.stats import TaskContext

_NUMBER_SEPARATOR = re.compile(r"\s*@([-.,])@\s*")
_UNK = re.compile(r"<unk>")
# Spaces the WikiText tokenizer put around punctuation and clitics.
_SPACE_BEFORE = re.compile(r" ([,.;:!?)\]}%]|'s\b|'re\b|'ve\b|'ll\b|'d\b|n't\b)")
_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def heading_of(line: str) -> tuple[int, str] | None:
    """``(level, title)`` of a heading line: `` = = History = = `` is level 2; None for other lines."""
    s = line.strip()
    if not (s.startswith("= ") and s.endswith(" =")):
        return None
    left = 0
    while s.startswith("= "):
        s, left = s[2:], left + 1
    right = 0
    while s.endswith(" ="):
        s, right = s[:-2], right + 1
    if left != right or not s.strip():
        return None
    return left, s.strip()


@register("wikitext_paragraphs")
class WikitextParagraphs(Step):
    """Merge WikiText lines into paragraphs: the non-blank lines between two blank or heading lines.

    Works on whole files (``text_unit: file``) and on one-line rows (``Salesforce/wikitext``). A heading
    stays a paragraph of its own (``wikitext_clean`` drops it); every paragraph gets the article title
    and section it is under as ``metadata.title`` / ``metadata.section``, and ``metadata.article``, an id
    of the article's heading line (titles repeat: WikiText has several `` = <unk> = ``), which
    ``sharding.split_by: article`` splits by. Ids derive from the first line's document id and line;
    lines are joined with ``joiner``.
    """

    def __init__(self, joiner: str = "\n"):
        self.joiner = joiner

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        lines: list[str] = []
        first: tuple[Document, int] | None = None
        title = section = article = ""
        source: str | None = None

        def flush() -> Iterator[Document]:
            nonlocal lines, first
            if first is not None:
                doc, at = first
                text = self.joiner.join(lines)
                meta: dict[str, Any] = {k: v for k, v in doc.metadata.items() if k != "text"}
                meta.update(title=title, section=section, article=article)
                yield Document(text, make_doc_id(doc.id, at, text), doc.source, doc.offset + at, meta)
            lines, first = [], None

        for doc in docs:
            if doc.source != source:
                yield from flush()
                source, title, section, article = doc.source, "", "", ""
            text = doc.text[:-1] if doc.text.endswith("\n") else doc.text  # a row's own line end is no blank line
            for i, line in enumerate(text.split("\n")):
                if not line.strip():
                    yield from flush()
                    continue
                head = heading_of(line)
                if head is not None:
                    yield from flush()
                    level, name = head
                    if level == 1:
                        title, section, article = name, "", make_doc_id(doc.id, i, name)
                    else:
                        section = name
                    first, lines = (doc, i), [line]
                    yield from flush()
                    continue
                if first is None:
                    first = (doc, i)
                lines.append(line)
        yield from flush()


@register("wikitext_clean")
class WikitextClean(Filter):
    """Drop heading paragraphs and undo WikiText's markup: `` @-@ ``→``-``, `` @.@ ``→``.``, `` @,@ ``→``,``.

    ``<unk>`` tokens are removed and whitespace collapsed (one space inside a line, blank lines dropped).
    ``detokenize``: also remove the spaces WikiText put before punctuation and clitics (`` , `` → ``, ``).
    ``metadata.title`` and ``section`` are cleaned the same way. Then a paragraph whose non-space characters are less than ``min_letter_ratio`` letters (tables of
    numbers, punctuation runs) is dropped. Reasons: ``heading``, ``empty``, ``mostly_punctuation_or_digits``.
    """

    def __init__(self, min_letter_ratio: float = 0.5, detokenize: bool = False, drop_unk: bool = True):
        if not 0.0 <= min_letter_ratio <= 1.0:
            raise ValueError("min_letter_ratio must be in [0, 1]")
        self.min_letter_ratio, self.detokenize, self.drop_unk = min_letter_ratio, detokenize, drop_unk

    def clean(self, text: str) -> str:
        """The text with WikiText's markup undone and whitespace collapsed."""
        text = _NUMBER_SEPARATOR.sub(r"\1", text)
        if self.drop_unk:
            text = _UNK.sub(" ", text)
        lines = (" ".join(line.split()) for line in text.split("\n"))
        text = "\n".join(line for line in lines if line)
        if self.detokenize:
            text = _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", text))
        return text

    def keep(self, doc: Document) -> str | None:
        if "\n" not in doc.text.strip() and heading_of(doc.text) is not None:
            return "heading"
        text = self.clean(doc.text)
        if not text:
            return "empty"
        chars = len(text) - text.count(" ") - text.count("\n")
        letters = sum(ch.isalpha() for ch in text)
        if letters < self.min_letter_ratio * chars:
            return "mostly_punctuation_or_digits"
        if text != doc.text:
            doc.text = text
        for key in ("title", "section"):  # the article and section names carry the same markup
            value = doc.metadata.get(key)
            if isinstance(value, str) and value:
                doc.metadata[key] = self.clean(value)
        return None
