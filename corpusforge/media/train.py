"""Train a modality's codebook from media files found by content under the given paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.errors import CorruptInput
from corpusforge.media.decode import media_kind
from corpusforge.media.sequence import media_features
from corpusforge.media.vq import Codebook


def media_files(paths: Sequence[Path], modality: str) -> Iterator[Path]:
    """Files under ``paths`` (sorted) whose content is ``modality``; other files are skipped."""
    for p in paths:
        for f in sorted(p.rglob("*")) if p.is_dir() else [p]:
            if not f.is_file():
                continue
            try:
                if media_kind(f) == modality:
                    yield f
            except CorruptInput:
                continue


def train_codebook(modality: str, paths: Sequence[Path], size: int, cfg: dict[str, Any], seed: int = 0,
                   iterations: int = 20, on_skip: Callable[[str, str], None] | None = None
                   ) -> tuple[Codebook, int, dict[str, float]]:
    """The codebook, how many files fed it, and its reconstruction MSE/PSNR on the training rows.

    Images and video frames are patches in [0, 1] (PSNR peak 1); audio is log-mel or MFCC (peak =
    its range). A file that fails to decode (truncated, a decompression bomb) is skipped and passed
    to ``on_skip`` with the reason, so one bad file does not stop the training.
    """
    rows, files = [], 0
    for f in media_files(paths, modality):
        try:
            rows.extend(r for m, r in media_features(f, modality, cfg) if m == modality)
        except CorruptInput as exc:
            if on_skip is not None:
                on_skip(str(f), exc.reason)
            continue
        files += 1
    if not files:
        raise ValueError(f"no {modality} files under {', '.join(map(str, paths))}")
    x = np.concatenate(rows)
    book = Codebook.train(modality, x, size, seed=seed, iterations=iterations, config=cfg)
    peak = 1.0 if modality != "audio" else float(x.max() - x.min())
    return book, files, book.reconstruction(x, peak)
