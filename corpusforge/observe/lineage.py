"""Lineage: for every row of every shard, the documents (and token spans) it holds.

Shard tasks write one table per split (``_work/lineage/<split>/t000003.parquet``) with rows counted
within the task; the index stage maps them to the final shards (after ``sharding.shuffle``, by the
same permutation) and writes ``lineage/<split>/shard_00000.parquet`` beside
``<split>/shard_00000.*``. Columns: ``shard`` (index path), ``row``, ``token_start``, ``token_end``
(exclusive, within the row; BOS and EOS included), ``doc_id``, ``source_name``, ``source_uri``,
``offset`` (the record's line, row or byte offset in its source) and ``modified_by`` (the steps
that changed the document's text, in order).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge.document import Document
from corpusforge.errors import CorpusforgeError
from corpusforge.observe.stats import MODIFIED_BY
from corpusforge.state import atomic_path

LINEAGE_DIR = "lineage"

SCHEMA = pa.schema([
    ("shard", pa.string()),
    ("row", pa.int64()),
    ("token_start", pa.int32()),
    ("token_end", pa.int32()),
    ("doc_id", pa.string()),
    ("source_name", pa.string()),
    ("source_uri", pa.string()),
    ("offset", pa.int64()),
    ("modified_by", pa.list_(pa.string())),
])
_TASK_SCHEMA = pa.schema([f for f in SCHEMA if f.name != "shard"])


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


class TaskLineage:
    """The lineage of one split in one shard task: packer placements joined to their documents."""

    def __init__(self) -> None:
        self._parts: list[pa.Table] = []

    def add(self, docs: list[Document], spans: np.ndarray) -> None:
        """Record ``Packer.place`` pieces (document in ``docs``, row, start, end)."""
        which = [docs[k] for k in spans[:, 0].tolist()]
        self._parts.append(pa.table({
            "row": spans[:, 1], "token_start": spans[:, 2].astype(np.int32), "token_end": spans[:, 3].astype(np.int32),
            "doc_id": [d.id for d in which],
            "source_name": [d.metadata.get("source_name", "") for d in which],
            "source_uri": [d.source for d in which],
            "offset": [d.offset for d in which],
            "modified_by": [list(d.metadata.get(MODIFIED_BY, ())) for d in which],
        }, schema=_TASK_SCHEMA))  # fmt: skip

    def add_columns(self, docs: pa.Table, metas: list[dict[str, Any]], meta_index: np.ndarray,
                    spans: np.ndarray) -> None:
        """``add`` for documents as columns: ``docs`` has their ``id``, ``source`` and ``offset``,
        ``metas[meta_index[i]]`` is document i's metadata; no per-piece Python work."""
        k = pa.array(spans[:, 0])
        m = pa.array(meta_index[spans[:, 0]])
        names = pa.array([d.get("source_name", "") for d in metas], pa.string())
        modified = pa.array([list(d.get(MODIFIED_BY, ())) for d in metas], pa.list_(pa.string()))
        self._parts.append(pa.table([
            pa.array(spans[:, 1]), pa.array(spans[:, 2].astype(np.int32)), pa.array(spans[:, 3].astype(np.int32)),
            docs["id"].take(k), names.take(m), docs["source"].take(k), docs["offset"].take(k), modified.take(m),
        ], schema=_TASK_SCHEMA))  # fmt: skip

    def write(self, path: Path) -> None:
        table = (pa.concat_tables(self._parts).combine_chunks() if self._parts
                 else pa.table({f.name: [] for f in _TASK_SCHEMA}, schema=_TASK_SCHEMA))
        _write(table, path)


def task_lineage_path(work: Path, split: str, task: int) -> Path:
    return work / LINEAGE_DIR / split / f"t{task:06d}.parquet"


def finalize_lineage(
    output: Path, work: Path, n_tasks: int, task_rows: dict[str, list[int]], index: dict[str, Any],
    order: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``lineage/<split>/<shard>.parquet`` for every final shard.

    ``task_rows[split][t]`` is how many rows task ``t`` wrote to ``split``; ``order[split]``, when
    the shards were shuffled, is ``shuffle_order``'s permutation of the split's rows.
    """
    for split, rows_per_task in task_rows.items():
        paths = [task_lineage_path(work, split, task) for task in range(n_tasks)]
        if not all(p.is_file() for p in paths):
            # shard tasks finished by a corpusforge without lineage (resumed output): none rather than a partial one
            shutil.rmtree(output / LINEAGE_DIR / split, ignore_errors=True)
            continue
        tables = []
        base = 0
        for task in range(n_tasks):
            t = pq.read_table(paths[task])
            tables.append(t.set_column(0, "row", pa.array(t["row"].to_numpy() + base)))
            base += rows_per_task[task]
        table = pa.concat_tables(tables) if tables else _TASK_SCHEMA.empty_table()
        rows = table["row"].to_numpy()
        if order is not None and split in order:
            inverse = np.empty_like(order[split])
            inverse[order[split]] = np.arange(len(order[split]))
            rows = inverse[rows]
        shards = [s for s in index["shards"] if s["split"] == split]
        first = np.cumsum([0] + [s["samples"] for s in shards])
        which = np.searchsorted(first, rows, side="right") - 1
        folder = output / LINEAGE_DIR / split
        keep = set()
        for k, s in enumerate(shards):
            sel = np.flatnonzero(which == k)
            part = table.take(pa.array(sel)).set_column(0, "row", pa.array(rows[sel] - first[k]))
            part = part.add_column(0, "shard", pa.array([s["path"]] * len(sel), pa.string()))
            part = part.sort_by([("row", "ascending"), ("token_start", "ascending")]).cast(SCHEMA)
            name = f"{Path(s['path']).name.split('.')[0]}.parquet"
            _write(part, folder / name)
            keep.add(name)
        if folder.is_dir():
            for f in folder.glob("*.parquet"):
                if f.name not in keep:
                    f.unlink()


def read_lineage(output: Path, filters: list[tuple[str, str, Any]] | None = None) -> pa.Table:
    """Every split's lineage (optionally filtered, as ``pyarrow.parquet`` filters) as one table."""
    files = sorted((Path(output) / LINEAGE_DIR).glob("*/*.parquet"))
    if not files:
        raise CorpusforgeError(f"{output}: no lineage (lineage/<split>/*.parquet); built by corpusforge run, or before lineage existed (rerun with --fresh)?")
    return pa.concat_tables([pq.read_table(f, filters=filters) for f in files])


def trace_document(output: Path, doc_id: str) -> list[dict[str, Any]]:
    """The shard rows holding document ``doc_id``, in shard and row order."""
    return read_lineage(output, [("doc_id", "=", doc_id)]).sort_by([("shard", "ascending"), ("row", "ascending")]).to_pylist()


def trace_row(output: Path, shard: str, row: int) -> list[dict[str, Any]]:
    """The documents in row ``row`` of ``shard`` (its index path, e.g. ``train/shard_00000.safetensors``)."""
    found = read_lineage(output, [("shard", "=", shard), ("row", "=", row)]).sort_by("token_start").to_pylist()
    if not found:
        raise CorpusforgeError(f"{output}: no row {row} in shard {shard!r} (see shard_index.json for the shard paths)")
    return found
