"""Cut document spans out of written shards: compact the rows, re-derive every tensor, re-encode.

A row keeps the tokens of its other documents, shifted left in their order, and is padded at the
end; ``labels``, ``attention_mask``, ``position_ids`` and ``document_ids`` are derived again from
``input_ids`` by ``sample_tensors``, exactly as the writer made them. A row left with no tokens is
removed. Lineage moves with the tokens: starts and ends shift by the tokens cut before them in the
row, rows renumber past the removed ones.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from corpusforge.errors import CorpusforgeError
from corpusforge.shards.formats import COMPRESSION_SUFFIX, get_format, shard_kind, write_shard
from corpusforge.shards.packer import OPTIONAL_TENSORS, TEXT_TENSORS, sample_tensors
from corpusforge.shards.reader import open_shard
from corpusforge.shards.writer import TOKEN_DTYPES
from corpusforge.tokenize.special import RTDLM, SpecialIds, special_of_index

# Tensors that sample_tensors re-derives; a shard holding any other cannot be rebuilt from input_ids.
DERIVED = {*TEXT_TENSORS, *OPTIONAL_TENSORS}


@dataclass
class ShardEdit:
    """One shard with some lineage pieces cut out: its new rows and lineage, and what was cut."""

    input_ids: np.ndarray  # (rows kept, sequence_length) int32
    lineage: pa.Table  # the shard's lineage without the cut pieces, rows and spans renumbered
    tokens_removed: int
    rows_removed: int
    copies_removed: dict[str, int]  # source_name -> document copies cut (pieces that began with BOS)
    tokens_by_source: dict[str, int]  # source_name -> tokens cut


def compression_of(path: str) -> str:
    """``zstd`` for ``train/shard_00000.safetensors.zst``, ``none`` for an uncompressed shard."""
    return shard_kind(path)[1]


def check_rebuildable(path: Path, tensors: dict[str, np.ndarray]) -> None:
    """Raise unless every tensor of the shard is one ``sample_tensors`` derives from ``input_ids``."""
    extra = sorted(set(tensors) - DERIVED)
    if extra:
        raise CorpusforgeError(f"{path}: holds tensors {extra} that erase cannot rebuild from input_ids")
    if "modality_mask" in tensors and np.any(tensors["modality_mask"]):
        raise CorpusforgeError(f"{path}: has non-text tokens (modality_mask > 0); erase supports text shards only")


def cut_pieces(input_ids: np.ndarray, lineage: pa.Table, cut: np.ndarray, special: SpecialIds = RTDLM) -> ShardEdit:
    """Remove the lineage pieces where ``cut`` is True from ``input_ids`` (one shard's rows).

    ``lineage`` is the shard's table (columns ``row``, ``token_start``, ``token_end``, ``source_name``);
    ``special`` the output's special ids (``special_of_index``).
    """
    rows = lineage["row"].to_numpy()
    lo = lineage["token_start"].to_numpy().astype(np.int64)
    hi = lineage["token_end"].to_numpy().astype(np.int64)
    n, length = input_ids.shape
    keep = input_ids != special.pad
    # mark the cut spans with a +1/-1 difference array per row, then cumulate along the row
    delta = np.zeros((n, length + 1), dtype=np.int32)
    np.add.at(delta, (rows[cut], lo[cut]), 1)
    np.add.at(delta, (rows[cut], hi[cut]), -1)
    keep &= np.cumsum(delta[:, :length], axis=1) == 0
    counts = keep.sum(axis=1)
    out = np.full((n, length), special.pad, dtype=np.int32)
    r, c = np.nonzero(keep)
    out[r, (np.cumsum(keep, axis=1) - 1)[r, c]] = input_ids[r, c]
    alive = counts > 0
    new_row = np.cumsum(alive) - 1
    # per kept piece: the tokens cut before it in its row
    order = np.lexsort((lo, rows))
    width = np.where(cut, hi - lo, 0)[order]
    row_sorted = rows[order]
    cum = np.cumsum(width) - width
    before = np.empty_like(cum)
    before[order] = cum - cum[np.searchsorted(row_sorted, row_sorted, side="left")]
    kept_idx = np.flatnonzero(~cut)
    new_lineage = lineage.take(pa.array(kept_idx))
    new_lineage = new_lineage.set_column(new_lineage.schema.get_field_index("row"), "row",
                                         pa.array(new_row[rows[kept_idx]], pa.int64()))
    for name, values in (("token_start", lo), ("token_end", hi)):
        new_lineage = new_lineage.set_column(new_lineage.schema.get_field_index(name), name,
                                             pa.array((values - before)[kept_idx], pa.int32()))
    sources = np.asarray(lineage["source_name"].to_pylist(), dtype=object)
    if special.bos is not None:  # one copy per piece that opens a document (its BOS), or ends one (EOS)
        starts_doc = input_ids[rows, np.minimum(lo, length - 1)] == special.bos
    else:
        starts_doc = input_ids[rows, np.clip(hi - 1, 0, length - 1)] == special.eos
    copies: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for k in np.flatnonzero(cut):
        src = sources[k]
        tokens[src] = tokens.get(src, 0) + int(hi[k] - lo[k])
        copies[src] = copies.get(src, 0) + int(starts_doc[k])
    return ShardEdit(out[alive], new_lineage, int((hi - lo)[cut].sum()), int(n - alive.sum()), copies, tokens)


def read_input_ids(path: Path, sequence_length: int, special: SpecialIds = RTDLM) -> np.ndarray:
    """A shard's ``input_ids`` (any format), after checking that erase can rebuild its other tensors."""
    try:
        tensors = open_shard(path, sequence_length, special=special)
    except (OSError, ValueError) as exc:
        raise CorpusforgeError(f"{path}: cannot read the shard ({exc})") from None
    check_rebuildable(path, tensors)
    return np.array(tensors["input_ids"], dtype=np.int32)


def shard_metadata(path: Path, split: str, index: dict[str, Any]) -> dict[str, str]:
    """The header metadata to write into a rewritten shard: the old SafeTensors header's, else the writer's."""
    if path.name.endswith(".safetensors"):
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            return dict(json.loads(fh.read(size)).get("__metadata__", {}))
    return {"format": "corpusforge", "sequence_length": str(index["sequence_length"]),
            "recipe_sha256": index["recipe_sha256"], "split": split,
            "pad_id": str(special_of_index(index).pad)}


def write_shard_files(
    rows: np.ndarray, main: Path, targets: dict[str, Path], index: dict[str, Any], metadata: dict[str, str],
) -> None:
    """Write ``rows`` as the shard whose main file is ``main``; each file goes to ``targets[suffix]``.

    ``targets`` maps every suffix the format writes (``.bin``, ``.idx`` for Megatron) to a path.
    """
    fmt = get_format(index["format"])
    compression = compression_of(main.name)
    dtypes = index.get("dtypes", {})
    fmt.token_dtype = np.dtype(TOKEN_DTYPES[dtypes.get("input_ids", "int32")])  # as the run stored them
    pos, docs = "position_ids" in dtypes, "document_ids" in dtypes
    special = special_of_index(index)
    write_shard(fmt, rows, lambda block, names: sample_tensors(block, pos, docs, names=names, special=special),
                metadata,
                compression, targets.__getitem__, atomic=False)


def shard_files(index: dict[str, Any], main: str) -> dict[str, str]:
    """Every file of the shard whose index path is ``main``: ``{format suffix: path}``, main first."""
    fmt = get_format(index["format"])
    ext = COMPRESSION_SUFFIX.get(compression_of(main), "")
    stem = main[: len(main) - len(fmt.suffixes[0] + ext)]
    return {s: f"{stem}{s}{ext}" for s in fmt.suffixes}
