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

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpusforge import layout as layout_names
from corpusforge.document import Document
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.observe.stats import MODIFIED_BY
from corpusforge.state import atomic_path

LINEAGE_DIR = layout_names.LINEAGE

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


ROW_GROUP_ROWS = 1 << 16  # lineage rows a shard task holds before writing them out as one row group


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


class TaskLineage:
    """The lineage of one split in one shard task: packer placements joined to their documents.

    Written to ``path`` a row group (``ROW_GROUP_ROWS`` rows) at a time under a temporary name, so a
    task holds one row group of lineage, not all of it; ``close`` renames the file into place."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._parts: list[pa.Table] = []
        self._rows = 0
        self._open = contextlib.ExitStack()
        self._writer: pq.ParquetWriter | None = None

    def add(self, docs: list[Document], spans: np.ndarray) -> None:
        """Record ``Packer.place`` pieces (document in ``docs``, row, start, end)."""
        which = [docs[k] for k in spans[:, 0].tolist()]
        self._append(pa.table({
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
        self._append(pa.table([
            pa.array(spans[:, 1]), pa.array(spans[:, 2].astype(np.int32)), pa.array(spans[:, 3].astype(np.int32)),
            docs["id"].take(k), names.take(m), docs["source"].take(k), docs["offset"].take(k), modified.take(m),
        ], schema=_TASK_SCHEMA))  # fmt: skip

    def close(self) -> None:
        """Write what is held and move the file into place (an empty task: a table with no rows)."""
        with self._open:
            self._flush()

    def _append(self, part: pa.Table) -> None:
        self._parts.append(part)
        self._rows += len(part)
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._writer is None:
            tmp = self._open.enter_context(atomic_path(self.path))
            self._writer = self._open.enter_context(pq.ParquetWriter(tmp, _TASK_SCHEMA, compression="zstd"))
        if self._parts:
            self._writer.write_table(pa.concat_tables(self._parts), row_group_size=max(self._rows, 1))
        self._parts, self._rows = [], 0


def finalize_lineage(
    output: Path, work: Path, n_tasks: int, task_rows: dict[str, list[int]], index: dict[str, Any],
    order: dict[str, np.ndarray] | None = None,
) -> None:
    """Write ``lineage/<split>/<shard>.parquet`` for every final shard.

    ``task_rows[split][t]`` is how many rows task ``t`` wrote to ``split``; ``order[split]``, when
    the shards were shuffled, is ``shuffle_order``'s permutation of the split's rows. Memory is about
    one final shard's lineage plus one task row group, whatever the corpus size: unshuffled, the task
    tables are read in order and cut at shard ends; shuffled, each task's rows are first bucketed by
    final shard into a spill file under ``work``, then every shard reads its buckets back.
    """
    layout, work_layout = OutputLayout(output), OutputLayout(Path(work).parent)
    for split, rows_per_task in task_rows.items():
        paths = [work_layout.task_lineage(split, task) for task in range(n_tasks)]
        if not all(p.is_file() for p in paths):
            # shard tasks finished by a corpusforge without lineage (resumed output): none rather than a partial one
            shutil.rmtree(layout.lineage_split(split), ignore_errors=True)
            continue
        shards = [s for s in index["shards"] if s["split"] == split]
        first = np.cumsum([0] + [s["samples"] for s in shards])
        base = np.cumsum([0] + list(rows_per_task))
        folder = layout.lineage_split(split)
        if order is not None and split in order:
            keep = _write_shuffled(paths, base, first, shards, order[split], folder, work_layout.lineage_spill(split))
        else:
            keep = _write_in_order(paths, base, first, shards, folder)
        if folder.is_dir():
            for f in folder.glob("*.parquet"):
                if f.name not in keep:
                    f.unlink()


def _write_in_order(paths: list[Path], base: np.ndarray, first: np.ndarray, shards: list[dict[str, Any]],
                    folder: Path) -> set[str]:
    """Unshuffled: task ``t``'s rows are the split's rows from ``base[t]``; a shard is written as soon as
    no row group still to be read (by its ``row`` statistics) can hold one of its rows."""
    pending: dict[int, list[pa.Table]] = {}
    keep: set[str] = set()
    for t, path in enumerate(paths):
        for table, later in _row_groups(path):
            for k, piece in _by_shard(table, table["row"].to_numpy() + base[t], first):
                if k < len(keep):
                    raise CorpusforgeError(f"{path}: a lineage row of {shards[k]['path']} after that shard was written")
                pending.setdefault(k, []).append(piece)
            low = min(base[t] + later, base[t + 1])  # no row still to be read is below this
            while len(keep) < len(shards) and first[len(keep) + 1] <= low:
                keep.add(_write_shard(pending.pop(len(keep), []), shards[len(keep)], folder))
    while len(keep) < len(shards):
        keep.add(_write_shard(pending.pop(len(keep), []), shards[len(keep)], folder))
    return keep


def _write_shuffled(paths: list[Path], base: np.ndarray, first: np.ndarray, shards: list[dict[str, Any]],
                    order: np.ndarray, folder: Path, spill: Path) -> set[str]:
    """Shuffled: every shard draws rows from every task. Pass 1 writes each task row group's rows, by
    final shard, as IPC record batches to ``spill/t<task>``; pass 2 reads each shard's batches back."""
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    shutil.rmtree(spill, ignore_errors=True)
    spill.mkdir(parents=True)
    try:
        spilled = []  # per task: (schema, shard of each batch, byte offset, size), sorted by shard
        for t, path in enumerate(paths):
            which, at, size = [], [], []
            with open(spill / f"t{t:06d}", "wb") as fh:
                schema = pq.read_schema(path)
                for table, _ in _row_groups(path):
                    for k, piece in _by_shard(table, inverse[table["row"].to_numpy() + base[t]], first):
                        for batch in piece.to_batches():
                            buf = batch.serialize()
                            which.append(k)
                            at.append(fh.tell())
                            size.append(buf.size)
                            fh.write(buf)
            by = np.argsort(np.array(which, dtype=np.int64), kind="stable")  # a shard's batches stay in row order
            spilled.append((schema, np.array(which, dtype=np.int64)[by], np.array(at, dtype=np.int64)[by],
                            np.array(size, dtype=np.int64)[by]))
        del inverse
        keep = set()
        for k, shard in enumerate(shards):
            pieces = []
            for t, (schema, which, at, size) in enumerate(spilled):
                lo, hi = np.searchsorted(which, [k, k + 1])
                if hi > lo:
                    with open(spill / f"t{t:06d}", "rb") as fh:
                        batches = []
                        for a, n in zip(at[lo:hi].tolist(), size[lo:hi].tolist(), strict=True):
                            fh.seek(a)
                            batches.append(pa.ipc.read_record_batch(pa.py_buffer(fh.read(n)), schema))
                    pieces.append(pa.Table.from_batches(batches, schema))
            keep.add(_write_shard(pieces, shard, folder))
        return keep
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        with contextlib.suppress(OSError):
            spill.parent.rmdir()  # the last split's spill gone: no empty lineage_spill left in _work


def _row_groups(path: Path) -> Iterator[tuple[pa.Table, float]]:
    """Each row group of a task lineage file, with the least ``row`` of the row groups after it."""
    with pq.ParquetFile(path) as f:
        meta = f.metadata
        least = []
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(0).statistics  # column 0 is ``row``
            least.append(stats.min if stats is not None and stats.has_min_max else 0)
        later = np.minimum.accumulate([np.inf, *least[::-1]])[::-1][1:]  # later[i]: min of least[i + 1:]
        for i in range(meta.num_row_groups):
            yield f.read_row_group(i), later[i]


def _by_shard(table: pa.Table, rows: np.ndarray, first: np.ndarray) -> Iterator[tuple[int, pa.Table]]:
    """``table``'s rows by the final shard their ``rows`` (rows of the split) fall in, in table order
    within each, with ``row`` counted within the shard; rows past the last shard are dropped."""
    which = np.searchsorted(first, rows, side="right") - 1
    by = np.argsort(which, kind="stable")
    which = which[by]
    ks = np.arange(len(first) - 1)
    starts, ends = np.searchsorted(which, ks, side="left"), np.searchsorted(which, ks, side="right")
    sorted_table = table.take(pa.array(by))
    local = rows[by]
    for k in np.flatnonzero(ends > starts).tolist():
        lo, hi = int(starts[k]), int(ends[k])
        yield k, sorted_table.slice(lo, hi - lo).set_column(0, "row", pa.array(local[lo:hi] - first[k]))


def _write_shard(pieces: list[pa.Table], shard: dict[str, Any], folder: Path) -> str:
    """One final shard's lineage (``pieces`` in task order, rows within the shard), sorted, in one file."""
    part = pa.concat_tables(pieces) if pieces else _TASK_SCHEMA.empty_table()
    part = part.add_column(0, "shard", pa.array([shard["path"]] * len(part), pa.string()))
    part = part.sort_by([("row", "ascending"), ("token_start", "ascending")]).cast(SCHEMA)
    name = f"{Path(shard['path']).name.split('.')[0]}.parquet"
    _write(part, folder / name)
    return name


def read_lineage(output: Path, filters: list[tuple[str, str, Any]] | None = None,
                 columns: list[str] | None = None) -> pa.Table:
    """Every split's lineage (optionally filtered, as ``pyarrow.parquet`` filters, and only
    ``columns``) as one table."""
    files = sorted(OutputLayout(output).lineage.glob("*/*.parquet"))
    if not files:
        raise CorpusforgeError(f"{output}: no lineage (lineage/<split>/*.parquet); built by corpusforge run, or before lineage existed (rerun with --fresh)?")
    return pa.concat_tables([pq.read_table(f, filters=filters, columns=columns) for f in files])


def trace_document(output: Path, doc_id: str) -> list[dict[str, Any]]:
    """The shard rows holding document ``doc_id``, in shard and row order."""
    return read_lineage(output, [("doc_id", "=", doc_id)]).sort_by([("shard", "ascending"), ("row", "ascending")]).to_pylist()


def trace_row(output: Path, shard: str, row: int) -> list[dict[str, Any]]:
    """The documents in row ``row`` of ``shard`` (its index path, e.g. ``train/shard_00000.safetensors``)."""
    found = read_lineage(output, [("shard", "=", shard), ("row", "=", row)]).sort_by("token_start").to_pylist()
    if not found:
        raise CorpusforgeError(f"{output}: no row {row} in shard {shard!r} (see {layout_names.INDEX} for the shard paths)")
    return found
