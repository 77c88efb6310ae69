"""Pack ``[BOS] doc [EOS]`` token streams into ``sequence_length`` rows.

Modes: ``concat`` (default) concatenates documents and cuts windows; ``pad`` gives every document
rows of its own (a long one is split over several), padded; ``truncate`` keeps one row per
document and counts the tokens cut off in ``truncated_tokens``, so nothing is lost silently.

With ``whole_spans`` (multimodal runs) a media span ``<IMG> codes <IMG_END>`` never crosses a row
boundary in any mode: a span that would is moved to the next row start, the rest of the row padded
(PAD inside the document: no label, no attention). A span longer than a row is cut into whole spans
of one row each (``<AUDIO> codes <AUDIO_END>`` repeated; ``split_long``), or else is a ``RecipeError``
naming the document and the sequence length it needs. No row is left without a token to train on:
when the row so far holds only special tokens (a document's BOS, the EOS before it), a span that
does not fit is cut instead, its first whole piece filling the row (``filled_rows``); in
``truncate`` mode audio and video spans are cut that way too, so a document keeps the start of its
clip rather than losing it whole. Video spans are cut at frame boundaries (``frame_tokens``) when a
frame fits. Without media the packing is unchanged.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain
from typing import Any

import numpy as np

from corpusforge.errors import RecipeError
from corpusforge.tokenize.special import BOS, EOS, IGNORE_INDEX, NUM_SPECIAL, PAD

SPAN_OPEN = (4, 6, 8)  # <IMG>, <AUDIO>, <VIDEO> (corpusforge.media.sequence.MARKERS)
SPAN_CLOSE = (5, 7, 9)
IMAGE_OPEN, VIDEO_OPEN = 4, 8


def frame_documents(ids: Sequence[Sequence[int]]) -> np.ndarray:
    """One flat int32 array: BOS, doc 0's ids, EOS, BOS, doc 1's ids, EOS, ..."""
    lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
    return frame_flat(flat_ids(ids, lengths), lengths)


def flat_ids(ids: Sequence[Sequence[int]], lengths: np.ndarray) -> np.ndarray:
    """The documents' ids back to back as one int32 array (``lengths``: their lengths).

    ``np.fromiter`` over the chained lists converts each int once, at C speed, with no
    intermediate Python list."""
    return np.fromiter(chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))


def gather_segments(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Segments ``flat[starts[i] : starts[i] + lengths[i]]`` back to back, in one vectorised take."""
    out_starts = np.cumsum(lengths) - lengths
    return flat[np.arange(int(lengths.sum())) + np.repeat(starts - out_starts, lengths)]


def frame_flat(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``tokens`` (documents of ``lengths`` back to back) framed as BOS doc EOS, vectorised."""
    ends = np.cumsum(lengths + 2)
    starts = ends - lengths - 2
    out = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.int32)
    content = np.ones(len(out), dtype=bool)
    content[starts] = content[ends - 1] = False
    out[content] = tokens
    out[starts], out[ends - 1] = BOS, EOS
    return out


PACKING_MODES = ("concat", "pad", "truncate")


class Packer:
    """Accumulates framed token streams; hands out full windows, pads only the very last one."""

    def __init__(self, sequence_length: int, mode: str = "concat", whole_spans: bool = False,
                 split_long: bool = True, frame_tokens: int = 0):
        if mode not in PACKING_MODES:
            raise ValueError(f"packing mode {mode!r} is unknown; allowed: {', '.join(PACKING_MODES)}")
        self.length, self.mode, self.whole_spans, self.split_long = sequence_length, mode, whole_spans, split_long
        self.frame_tokens = frame_tokens  # codes per video frame (0: unknown, cut video spans anywhere)
        self.span_padding = 0  # PAD tokens placed so that media spans start on a fresh row
        self.split_spans = 0  # spans cut into whole pieces (longer than a row, or filling one)
        self.filled_rows = 0  # rows a span's first piece filled, which padding would have left untrainable
        self._live = -1  # stream position of the last token a row can train on (concat)
        self._chunks: list[np.ndarray] = []
        self._size = 0
        self._rows: list[np.ndarray] = []
        self.truncated_tokens = 0
        self._stream = 0  # framed tokens seen (concat): where the next document starts
        self._next_row = 0  # rows handed to documents so far (pad, truncate)

    def add_documents(self, ids: Sequence[Sequence[int]], names: Sequence[str] | None = None) -> np.ndarray:
        """Frame and pack one batch of documents' token ids; returns where they landed (``place``).

        ``names`` (one per document) are what a ``whole_spans`` error calls the documents."""
        if self.whole_spans:
            ids = self._fit_spans(ids, names)
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        return self.add_flat(flat_ids(ids, lengths), lengths)

    def add_flat(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """``add_documents`` for ids already flat: ``tokens`` holds documents of ``lengths`` back to
        back (no media spans to fit); returns where they landed (``place``)."""
        sizes = lengths + 2
        spans = self.place(sizes)
        flat = frame_flat(tokens, lengths)
        if self.mode == "concat":
            self.add(flat)
            return spans
        n = self.length
        offset = np.arange(len(flat), dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        if self.mode == "truncate":
            keep = offset < n
            self.truncated_tokens += int(np.count_nonzero(flat[~keep] != PAD))  # span padding is not content
            rows_per_doc = np.ones(len(sizes), dtype=np.int64)
            flat, offset, sizes_kept = flat[keep], offset[keep], np.minimum(sizes, n)
        else:
            rows_per_doc = -(-sizes // n)
            sizes_kept = sizes
        first_row = np.cumsum(rows_per_doc) - rows_per_doc
        out = np.full((int(rows_per_doc.sum()), n), PAD, dtype=np.int32)
        out[np.repeat(first_row, sizes_kept) + offset // n, offset % n] = flat
        self._rows.append(out)
        return spans

    def _fit_spans(self, ids: Sequence[Sequence[int]], names: Sequence[str] | None) -> list[Sequence[int]]:
        """``ids`` with PAD inserted before every media span that would cross a row boundary, and
        spans cut into whole pieces where they must be (or an error, without ``split_long``).

        Documents start where ``place`` will put them: concat continues the stream, pad and
        truncate start each document on a row of its own."""
        concat = self.mode == "concat"
        at = self._stream if concat else 0
        out: list[Sequence[int]] = []
        for d, x in enumerate(ids):
            arr = np.asarray(x, dtype=np.int64)
            opens = np.flatnonzero(np.isin(arr, SPAN_OPEN))
            if len(opens):
                closes = np.flatnonzero(np.isin(arr, SPAN_CLOSE))
                ends = closes[np.minimum(np.searchsorted(closes, opens), len(closes) - 1)] if len(closes) else opens
                fitted = self._fit_document(arr, opens.tolist(), np.maximum(ends, opens).tolist(), at,
                                            names[d] if names is not None else f"document {d} of the batch",
                                            self._live if concat else -1)
                if fitted is not None:
                    x, arr = fitted, np.asarray(fitted, dtype=np.int64)
            if concat:
                live = np.flatnonzero(arr >= NUM_SPECIAL)
                if len(live):
                    self._live = at + 1 + int(live[-1])
                at += len(x) + 2
            out.append(x)
        return out

    def _fit_document(self, arr: np.ndarray, opens: list[int], ends: list[int], at: int, name: str,
                      live: int = -1) -> list[int] | None:
        """One document's ids with its spans fitted into rows (it starts at stream position ``at``;
        ``live``: where the last trainable token before it sits), or None when every span already
        fits where it is."""
        n = self.length
        pieces: list[Any] = []
        pos, prev, changed = at + 1, 0, False  # pos: where the next token lands (+1: the BOS)

        def pad_row() -> None:
            nonlocal pos, changed
            gap = n - pos % n
            pieces.append(np.full(gap, PAD, np.int64))
            self.span_padding += gap
            pos += gap
            changed = True

        for s, e in zip(opens, ends, strict=True):
            text = arr[prev:s]
            pieces.append(text)
            trained = np.flatnonzero(text >= NUM_SPECIAL)
            if len(trained):
                live = pos + int(trained[-1])
            pos += s - prev
            prev = e + 1
            span, col = e - s + 1, pos % n
            if span <= n - col:
                pieces.append(arr[s : e + 1])
                live, pos = (pos + span - 2 if span > 2 else live), pos + span
                continue
            dead = live < pos - col  # the row so far holds nothing to train on (BOS, EOS)
            clip = self.mode == "truncate" and arr[s] != IMAGE_OPEN
            if span > n and not self.split_long:
                raise RecipeError(f"{name}: a media span of {span} tokens does not fit in a row of "
                                  f"sharding.sequence_length {n}; it needs sequence_length >= {span} "
                                  "(or media.long_spans: split, or fewer media tokens)")
            if col and dead and not self.split_long:
                raise RecipeError(f"{name}: a media span of {span} tokens does not fit in a row of "
                                  f"sharding.sequence_length {n} after the {col} special tokens before it, and "
                                  f"padding would leave that row with nothing to train on; it needs "
                                  f"sequence_length >= {col + span} (or media.long_spans: split)")
            if col and (n - col < 3 or not (dead or (clip and self.split_long))):
                pad_row()
                col = 0
                if span <= n:
                    pieces.append(arr[s : e + 1])
                    live, pos = (pos + span - 2 if span > 2 else live), pos + span
                    continue
            # whole pieces <M> codes <M_END>, the first filling the rest of this row
            if col:
                self.filled_rows += 1
            codes, done = arr[s + 1 : e], 0
            while done < len(codes):
                k = self._take(int(arr[s]), len(codes) - done, n - pos % n - 2, done)
                pieces.append(np.concatenate([[arr[s]], codes[done : done + k], [arr[e]]]))
                live, pos, done = pos + k, pos + k + 2, done + k
                if done < len(codes) and pos % n:
                    pad_row()  # a video piece cut at a frame boundary leaves a gap
            self.split_spans += 1
            changed = True
        if not changed:
            return None
        pieces.append(arr[prev:])
        return np.concatenate(pieces).tolist()

    def _take(self, opener: int, left: int, room: int, done: int) -> int:
        """How many of a span's ``left`` codes (``done`` already placed) go in a piece with ``room``
        code slots: all that fit; for video, up to the last frame boundary within reach when that
        keeps at least one whole frame (else the piece fills the room)."""
        if left <= room:
            return left
        f = self.frame_tokens
        if opener == VIDEO_OPEN and f:
            k = (done + room) // f * f - done
            if k >= f:
                return k
        return room

    def place(self, sizes: np.ndarray) -> np.ndarray:
        """Lineage of a batch of framed documents of ``sizes`` tokens: an (pieces, 4) int64 array of
        (document in batch, row counted from this packer's first row, token start, token end) with
        the end exclusive, one piece per row a document touches. Advances the packer's position."""
        n = self.length
        if self.mode == "concat":
            start = self._stream + np.cumsum(sizes) - sizes
            self._stream += int(sizes.sum())
            first = start // n
            last = (start + sizes - 1) // n
        else:
            if self.mode == "truncate":
                sizes = np.minimum(sizes, n)
            rows = -(-sizes // n)
            first = self._next_row + np.cumsum(rows) - rows
            self._next_row += int(rows.sum())
            start, last = first * n, first + rows - 1
        pieces = last - first + 1
        within = np.arange(int(pieces.sum()), dtype=np.int64) - np.repeat(np.cumsum(pieces) - pieces, pieces)
        row = np.repeat(first, pieces) + within
        lo = np.maximum(np.repeat(start, pieces), row * n) - row * n
        hi = np.minimum(np.repeat(start + sizes, pieces), (row + 1) * n) - row * n
        doc = np.repeat(np.arange(len(sizes), dtype=np.int64), pieces)
        return np.stack([doc, row, lo, hi], axis=1)

    def add(self, tokens: np.ndarray) -> None:
        if len(tokens):
            self._chunks.append(tokens)
            self._size += len(tokens)

    def take_full(self) -> np.ndarray:
        """All complete windows as an (n, sequence_length) array; the remainder stays buffered."""
        if self._rows:
            rows = np.concatenate(self._rows) if len(self._rows) > 1 else self._rows[0]
            self._rows = []
            return rows
        n = self._size // self.length
        if n == 0:
            return np.empty((0, self.length), dtype=np.int32)
        flat = np.concatenate(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
        cut = n * self.length
        rest = flat[cut:]
        self._chunks, self._size = ([rest.copy()] if len(rest) else []), len(rest)
        return flat[:cut].reshape(n, self.length)

    def finish(self) -> np.ndarray:
        """Full windows plus the remainder padded with PAD to one last window."""
        full = self.take_full()
        if not self._size:
            return full
        last = np.full((1, self.length), PAD, dtype=np.int32)
        last[0, : self._size] = np.concatenate(self._chunks)
        self._chunks, self._size = [], 0
        return np.concatenate([full, last])


# What every text shard holds; position_ids and document_ids are optional (sharding.position_ids...).
TEXT_TENSORS = ("input_ids", "attention_mask", "modality_mask", "labels")
OPTIONAL_TENSORS = ("position_ids", "document_ids")


def sample_tensors(
    input_ids: np.ndarray, position_ids: bool = False, document_ids: bool = False,
    media_layout: dict[str, Any] | None = None, names: Collection[str] | None = None,
) -> dict[str, np.ndarray]:
    """The tensors of a text shard from its (samples, sequence_length) ``input_ids``; only those in
    ``names`` when given (a streaming writer asks for one tensor at a time).

    ``labels`` equal ``input_ids`` (unshifted, as HuggingFace causal LMs expect) with -100 on
    padding and on the fixed special tokens (media markers included); ``modality_mask`` is 0 (text)
    everywhere, or with a multimodal run's ``media_layout`` follows from the ids (1 image, 2 audio,
    3 video: ``corpusforge.media.sequence.modality_mask_of``). Optional
    ``document_ids`` number the documents inside each row from 0 (-1 on padding) and
    ``position_ids`` restart at 0 at each row start and each BOS (0 on padding), so a trainer can
    keep attention inside documents.
    """
    want = set(TEXT_TENSORS) | ({"position_ids"} if position_ids else set()) | (
        {"document_ids"} if document_ids else set())
    if names is not None:
        want &= set(names)
    input_ids = np.ascontiguousarray(input_ids, dtype=np.int32)
    out: dict[str, np.ndarray] = {}
    if "input_ids" in want:
        out["input_ids"] = input_ids
    if "attention_mask" in want:
        out["attention_mask"] = (input_ids != PAD).astype(np.int32)
    if "modality_mask" in want:
        if media_layout is not None:
            from corpusforge.media.sequence import modality_mask_of

            out["modality_mask"] = modality_mask_of(input_ids, media_layout)
        else:
            out["modality_mask"] = np.zeros(input_ids.shape, dtype=np.uint8)
    if "labels" in want:
        labels = input_ids.copy()
        labels[input_ids < NUM_SPECIAL] = IGNORE_INDEX
        out["labels"] = labels
    if want & {"position_ids", "document_ids"}:
        pad = input_ids == PAD
        start = input_ids == BOS
        start[:, :1] = True
        if "document_ids" in want:
            doc = np.cumsum(start, axis=1, dtype=np.int32) - 1
            doc[pad] = -1
            out["document_ids"] = doc
        if "position_ids" in want:
            col = np.broadcast_to(np.arange(input_ids.shape[1], dtype=np.int32), input_ids.shape)
            pos = col - np.maximum.accumulate(np.where(start, col, 0), axis=1)
            pos[pad] = 0
            out["position_ids"] = np.ascontiguousarray(pos, dtype=np.int32)
    return out
