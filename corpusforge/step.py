"""Steps: small classes that decide (Filter) or transform (Mapper) documents.

The pipeline wraps every step's output to count documents, bytes and seconds, so a step author
writes only the decision. ``CorpusStep`` marks steps that need the whole corpus (deduplication):
they sign documents inside a task and decide in a stage of their own.

Documents carrying media (images, audio, video at U+FFFC placeholders) meet each step as its
``media_policy`` says; the pipeline applies it in one place, ``run_step``:

- ``as_is``: the step sees the document unchanged (extraction, normalization, dedup, redaction
  and augmentation, which edit the text between placeholders themselves: ``media.items.segments``).
- ``skip``: media documents go around the step unjudged (``Filter``'s default: heuristic filters
  are tuned on prose and would drop every image, which has no text, and most captions).
- ``text``: the step judges the text part (placeholders removed, e.g. a caption) and its verdict
  holds for the document; a media document without text goes around it, so it is never dropped
  for its empty text (toxicity, classifier, perplexity, llm_judge). The text is restored after.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from corpusforge.document import Document

if TYPE_CHECKING:
    from corpusforge.observe.stats import StepStats, TaskContext


MediaPolicy = Literal["as_is", "skip", "text"]


class Step(ABC):
    """A named stage of per-document processing; config is the constructor's arguments."""

    name: ClassVar[str] = "step"
    media_policy: ClassVar[MediaPolicy] = "as_is"  # how documents carrying media meet it (module docstring)

    def setup(self, ctx: TaskContext) -> None:
        """Load models or tables once per task process (called before the first document)."""

    @abstractmethod
    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        """Consume documents and yield the ones that go on."""


class Filter(Step):
    """A step that decides: ``keep`` returns None to keep, or the reason to drop.

    A filter that also trims what it keeps (C4 removes failing lines) is counted as a modification.
    Documents carrying media pass unjudged (``media_policy = "skip"``): text filters are tuned on
    prose, and would drop every image file (no text) and most captions (a few words).
    """

    media_policy: ClassVar[MediaPolicy] = "skip"

    @abstractmethod
    def keep(self, doc: Document) -> str | None:
        """None to keep the document, or a short reason (``too_few_words``) to drop it."""

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        keep = self.keep
        for doc in docs:
            before = doc.text
            reason = keep(doc)
            if reason is None:
                if doc.text is not before:
                    ctx.modified(self, doc)
                yield doc
            else:
                ctx.drop(self, doc, reason)


class ScoringFilter(Filter):
    """A filter that scores documents in batches (a model) and decides on each score.

    Subclasses give ``scores`` (one model call per batch) and ``decide`` (the reason to drop, or
    None; it also writes the score into the metadata). ``batch_size`` documents are scored per
    call, ``score_chunk`` batches at a time, so a scorer may sort a chunk by length.
    """

    batch_size: int = 32
    score_chunk: ClassVar[int] = 1

    @abstractmethod
    def scores(self, docs: list[Document]) -> list[float]:
        """One score per document."""

    @abstractmethod
    def decide(self, doc: Document, score: float) -> str | None:
        """Record ``score`` in the metadata; None to keep, or the reason to drop."""

    def keep(self, doc: Document) -> str | None:
        return self.decide(doc, self.scores([doc])[0])

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        self.setup(ctx)
        it = iter(docs)
        while batch := list(islice(it, self.batch_size * self.score_chunk)):
            for doc, score in zip(batch, self.scores(batch), strict=True):
                reason = self.decide(doc, score)
                if reason is None:
                    yield doc
                else:
                    ctx.drop(self, doc, reason, score)


class Mapper(Step):
    """A step that only transforms: ``map`` returns the (possibly changed) document, or None to drop."""

    drop_reason: ClassVar[str] = "mapped_to_nothing"

    @abstractmethod
    def map(self, doc: Document) -> Document | None:
        """The transformed document, or None to drop it."""

    def __call__(self, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
        fn = self.map
        for doc in docs:
            before = doc.text
            out = fn(doc)
            if out is None:
                ctx.drop(self, doc, self.drop_reason)
                continue
            if out.text is not before and out.text != before:
                ctx.modified(self, out)
            yield out


class CorpusStep(Step):
    """A step that needs the whole corpus, such as deduplication.

    Inside the task that runs the steps before it, ``__call__`` passes documents through and
    records a signature for each (row ``r`` is the r-th document it yields). Then a stage of its
    own runs ``decide`` once per partition in ``partitions()``, reading every task's signatures
    from ``stage_dir``, then ``finalize`` once if the step overrides it. Finally the next per-task stage asks ``removed(task)`` which rows of that
    task's staged output to drop, and why. The pipeline calls ``bind`` with the step's own folder.
    """

    stage_dir: Path = Path(".")

    def bind(self, stage_dir: Path) -> None:
        self.stage_dir = stage_dir

    def partitions(self) -> int:
        """How many independent decide tasks this step's stage has (e.g. hash buckets)."""
        return 1

    @abstractmethod
    def decide(self, partition: int, n_tasks: int) -> dict[str, Any]:
        """Decide which rows to drop in one partition; write the result under ``stage_dir``."""

    def finalize(self, n_tasks: int) -> dict[str, Any]:
        """Optional: runs once after every ``decide`` partition has finished, before ``removed``.

        Override it when partitions only gather evidence that must then be combined corpus-wide
        (e.g. clustering the candidate pairs that band partitions found). The pipeline gives an
        overriding step a one-task stage ``<stage>_finalize`` of its own.
        """
        return {}

    def has_finalize(self) -> bool:
        return type(self).finalize is not CorpusStep.finalize

    @abstractmethod
    def removed(self, task: int) -> dict[int, str]:
        """Rows of ``task``'s staged output to drop, mapped to the reason."""


def run_step(step: Step, docs: Iterator[Document], ctx: TaskContext) -> Iterator[Document]:
    """``step`` over ``docs``, with documents carrying media handled as its ``media_policy`` says.

    Documents that go around the step come out in input order among the step's own output, so the
    step must yield its documents in input order (every built-in step does). A corpus-wide step
    sees every document (its rows are the staged rows): ``text`` only swaps the text in and out."""
    policy = getattr(step, "media_policy", "as_is")
    if policy == "as_is":
        return step(docs, ctx)
    return _media_routed(step, docs, ctx, policy, bypass=not isinstance(step, CorpusStep))


def _media_routed(step: Step, docs: Iterator[Document], ctx: TaskContext, policy: str, bypass: bool
                  ) -> Iterator[Document]:
    from corpusforge.media.items import text_only

    around: deque[tuple[int, Document]] = deque()  # (input position, document) that skip the step
    inside: deque[tuple[int, Document, str | None]] = deque()  # in the step: position, doc, its own text
    held: dict[int, Document] = {}  # id() -> document, for those in ``inside`` (held, so ids stay unique)

    def feed() -> Iterator[Document]:
        for i, doc in enumerate(docs):
            original = None
            if doc.media:
                view = text_only(doc.text) if policy == "text" else ""
                if bypass and (policy == "skip" or not view.strip()):
                    around.append((i, doc))
                    continue
                if policy == "text":
                    original, doc.text = doc.text, view
            inside.append((i, doc, original))
            held[id(doc)] = doc
            yield doc

    for out in step(feed(), ctx):
        if held.get(id(out)) is out:
            while True:  # documents the step held before ``out`` and did not yield were dropped
                i, doc, original = inside.popleft()
                del held[id(doc)]
                if original is not None:
                    doc.text = original
                if doc is out:
                    break
            while around and around[0][0] < i:
                yield around.popleft()[1]
        yield out
    for _, doc, original in inside:
        if original is not None:
            doc.text = original
    for _, doc in around:
        yield doc


def timed(it: Iterator[Document], stats: StepStats) -> Iterator[Document]:
    """Count documents, bytes and cumulative seconds spent producing ``it``'s items.

    The pipeline subtracts the upstream step's cumulative time to get each step's own time.
    """
    clock = time.perf_counter
    t0 = clock()
    for doc in it:
        stats.seconds_cum += clock() - t0
        stats.docs_out += 1
        stats.chars_out += len(doc.text)
        yield doc
        t0 = clock()
    stats.seconds_cum += clock() - t0


def rows_to_mask(n: int, removed: dict[int, str]) -> np.ndarray:
    """Boolean keep-mask of length ``n`` with ``removed`` rows set to False."""
    mask = np.ones(n, dtype=bool)
    if removed:
        mask[np.fromiter(removed.keys(), dtype=np.int64)] = False
    return mask
