"""What ``corpusforge validate`` checks in a multimodal output: the joint vocabulary layout and its
codebook files, and in every shard row that ``modality_mask`` agrees with ``input_ids`` and media
codes sit inside their markers (``<IMG> codes <IMG_END>``, nothing else inside; a span cut by a
row boundary may open before the row or close after it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.media.sequence import MARKERS, modality_mask_of
from corpusforge.state import file_sha256

_TAG = {"image": "IMG", "audio": "AUDIO", "video": "VIDEO"}


def check_layout(output: Path, layout: dict[str, Any], text_vocab: int | None) -> list[str]:
    """Faults of the index's ``media`` layout: ranges that overlap or leave gaps, codebooks that
    are missing, changed or of another size."""
    faults = []
    start = layout.get("text_vocab_size")
    if text_vocab is not None and start != text_vocab:
        faults.append(f"media.text_vocab_size {start} differs from the tokenizer's {text_vocab}")
    for m, r in sorted(layout.get("media", {}).items(), key=lambda kv: kv[1].get("offset", 0)):
        if r.get("offset") != start:
            faults.append(f"media.{m}: ids start at {r.get('offset')}, expected {start} (ranges follow each other)")
        start = r.get("offset", 0) + r.get("size", 0)
        for rel, sha in r.get("codebook", {}).get("files", {}).items():
            path = output / rel
            if not path.exists():
                faults.append(f"{rel}: {m} codebook file missing")
            elif file_sha256(path) != sha:
                faults.append(f"{rel}: checksum differs from the index")
    if layout.get("vocab_size") != start:
        faults.append(f"media.vocab_size {layout.get('vocab_size')} differs from the ranges' end {start}")
    return faults


def check_rows(name: str, ids: np.ndarray, mask: np.ndarray, layout: dict[str, Any]) -> list[str]:
    """Faults of one shard's (samples, length) ``ids`` and ``mask`` against the layout."""
    faults = []
    expected = modality_mask_of(ids, layout)
    bad = np.argwhere(expected != mask)
    if len(bad):
        r, c = (int(x) for x in bad[0])
        faults.append(f"{name}: modality_mask disagrees with input_ids at {len(bad)} positions (first: row {r}, "
                      f"position {c}: mask {int(mask[r, c])}, ids say {int(expected[r, c])})")
    n, length = ids.shape
    cols = np.broadcast_to(np.arange(length), ids.shape)
    rows = np.arange(n)[:, None]
    for m, rng in layout.get("media", {}).items():
        lo, hi = rng["offset"], rng["offset"] + rng["size"]
        codes = (ids >= lo) & (ids < hi)
        if not codes.any():
            continue
        # A span is <M> codes <M_END> with nothing else inside, so each run of codes must be bounded
        # by its open marker (or the row's start) on the left and its close marker (or the row's end)
        # on the right; markers of the row do not suffice (a code after <IMG_END> text <AUDIO_END>).
        before = np.maximum.accumulate(np.where(codes, -1, cols), axis=1)
        after = np.flip(np.minimum.accumulate(np.flip(np.where(codes, length, cols), axis=1), axis=1), axis=1)
        left_ok = (before < 0) | (ids[rows, np.maximum(before, 0)] == MARKERS[m][0])
        right_ok = (after >= length) | (ids[rows, np.minimum(after, length - 1)] == MARKERS[m][1])
        stray = np.argwhere(codes & ~(left_ok & right_ok))
        if len(stray):
            r, c = (int(x) for x in stray[0])
            faults.append(f"{name}: {len(stray)} {m} codes outside <{_TAG[m]}> ... <{_TAG[m]}_END> "
                          f"(first: row {r}, position {c})")
    return faults
