"""Concatenate ``[BOS] doc [EOS]`` token streams and cut them into ``sequence_length`` windows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from corpusforge.tokenize.special import BOS, EOS, IGNORE_INDEX, NUM_SPECIAL, PAD


def frame_documents(ids: Sequence[Sequence[int]]) -> np.ndarray:
    """One flat int32 array: BOS, doc 0's ids, EOS, BOS, doc 1's ids, EOS, ...

    ``list.extend`` runs at C speed, so one Python list then one array conversion beats any
    per-token work.
    """
    flat: list[int] = []
    append, extend = flat.append, flat.extend
    for x in ids:
        append(BOS)
        extend(x)
        append(EOS)
    return np.array(flat, dtype=np.int32)


class Packer:
    """Accumulates framed token streams; hands out full windows, pads only the very last one."""

    def __init__(self, sequence_length: int):
        self.length = sequence_length
        self._chunks: list[np.ndarray] = []
        self._size = 0

    def add(self, tokens: np.ndarray) -> None:
        if len(tokens):
            self._chunks.append(tokens)
            self._size += len(tokens)

    def take_full(self) -> np.ndarray:
        """All complete windows as an (n, sequence_length) array; the remainder stays buffered."""
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


def sample_tensors(input_ids: np.ndarray) -> dict[str, np.ndarray]:
    """The four tensors of a text shard from its (samples, sequence_length) ``input_ids``.

    ``labels`` equal ``input_ids`` (unshifted, as HuggingFace causal LMs expect) with -100 on
    padding and on the fixed special tokens; ``modality_mask`` is 0 (text) everywhere.
    """
    input_ids = np.ascontiguousarray(input_ids, dtype=np.int32)
    labels = input_ids.copy()
    labels[input_ids < NUM_SPECIAL] = IGNORE_INDEX
    return {
        "input_ids": input_ids,
        "attention_mask": (input_ids != PAD).astype(np.int32),
        "modality_mask": np.zeros(input_ids.shape, dtype=np.uint8),
        "labels": labels,
    }
