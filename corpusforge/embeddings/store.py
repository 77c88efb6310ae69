"""Embeddings at rest: per part a SafeTensors matrix and a Parquet table of the same rows, plus an index.

``embeddings/<split>/part_NNNNN.safetensors`` holds one tensor ``embeddings`` of shape (rows, dim),
float32 or float16; ``part_NNNNN.parquet`` (written with polars) holds ``text_id``, ``text``,
``token_count``, ``char_count`` and ``metadata`` (JSON) for row i of the matrix in its row i.
``embeddings/index.json`` lists every part with its rows and checksum. Part ``NNNNN`` is the task
that wrote it, so a re-run rewrites exactly its own files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge import layout as layout_names
from corpusforge.layout import OutputLayout
from corpusforge.shards.formats import _safetensors_header
from corpusforge.state import atomic_path, atomic_write_json, read_json

EMBEDDINGS_DIR = layout_names.EMBEDDINGS
INDEX_NAME = Path(layout_names.EMBEDDINGS_INDEX).name  # inside EMBEDDINGS_DIR
TENSOR = "embeddings"
MEDIA_FOLDERS = frozenset({"image", "audio", "video"})  # the media encoders' vectors (media/encoders.py)


def _polars() -> Any:
    try:
        import polars as pl
    except ImportError as e:
        raise ImportError("embedding tables are written with polars: pip install 'corpusforge[embed]'") from e
    return pl


def part_stem(task: int) -> str:
    return f"part_{task:05d}"


class EmbeddingPartWriter:
    """Rows of one task and split. Vectors go to a scratch file as they come (memory stays one batch);
    ``close`` writes the SafeTensors header and copies them behind it, then the table, each atomically."""

    def __init__(self, folder: Path, task: int, dim: int, dtype: str, metadata: dict[str, str]):
        self.folder, self.stem, self.dim = Path(folder), part_stem(task), dim
        self.dtype = np.dtype(dtype)
        self.metadata = metadata
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, raw = tempfile.mkstemp(prefix=f".{self.stem}.", suffix=".raw.tmp", dir=self.folder)
        self._raw_path = Path(raw)
        self._raw = os.fdopen(fd, "wb")
        self.rows = 0
        self._cols: dict[str, list[Any]] = {"text_id": [], "text": [], "token_count": [], "char_count": [],
                                            "metadata": []}

    def add(self, vectors: np.ndarray, ids: list[str], texts: list[str], token_counts: list[int],
            metadata: list[str]) -> None:
        """Append rows: ``vectors`` (n, dim) and the documents they embed."""
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected vectors of shape ({len(ids)}, {self.dim}), got {vectors.shape}")
        self._raw.write(np.ascontiguousarray(vectors, dtype=self.dtype.newbyteorder("<")).data)
        self.rows += len(ids)
        c = self._cols
        c["text_id"] += ids
        c["text"] += texts
        c["token_count"] += token_counts
        c["char_count"] += [len(t) for t in texts]
        c["metadata"] += metadata

    def close(self) -> dict[str, Any]:
        """Write both files; returns the part's index entry (paths relative to the split folder)."""
        pl = _polars()
        self._raw.close()
        try:
            table = self.folder / f"{self.stem}.parquet"
            with atomic_path(table) as tmp:
                pl.DataFrame(self._cols, schema={"text_id": pl.String, "text": pl.String, "token_count": pl.Int32,
                                                 "char_count": pl.Int32, "metadata": pl.String}
                             ).write_parquet(tmp, compression="zstd")
            matrix = self.folder / f"{self.stem}.safetensors"
            digest = hashlib.sha256()
            with atomic_path(matrix) as tmp, open(tmp, "wb") as out, open(self._raw_path, "rb") as raw:
                head = _safetensors_header([(TENSOR, self.dtype, (self.rows, self.dim))], self.metadata)
                out.write(head)
                digest.update(head)
                while block := raw.read(1 << 22):
                    out.write(block)
                    digest.update(block)
        finally:
            self._raw_path.unlink(missing_ok=True)
        return {"path": matrix.name, "table": table.name, "rows": self.rows, "sha256": digest.hexdigest()}

    def abort(self) -> None:
        self._raw.close()
        self._raw_path.unlink(missing_ok=True)


def remove_part(folder: Path, task: int) -> None:
    """Delete a task's part in ``folder`` (left by an earlier run in which it had rows there)."""
    for suffix in (".safetensors", ".parquet"):
        (Path(folder) / f"{part_stem(task)}{suffix}").unlink(missing_ok=True)


def split_files(split: str) -> tuple[str, str]:
    """The (matrix, table) names of a split merged into one pair (``layout: splits``, seed 004's layout)."""
    return f"{split}_embeddings.safetensors", f"{split}.parquet"


def merge_splits(root: Path, parts_dir: Path, task_parts: list[dict[str, dict[str, Any]]], splits: list[str]
                 ) -> dict[str, dict[str, Any]]:
    """Concatenate every task's part of each split, in task order, into ``embeddings/<split>.parquet``
    and ``embeddings/<split>_embeddings.safetensors`` (each written atomically); returns their entries."""
    import pyarrow.parquet as pq
    from safetensors import safe_open

    layout = OutputLayout(root)
    base = layout.embeddings
    base.mkdir(parents=True, exist_ok=True)
    try:
        before = read_json(layout.embeddings_index)["splits"]
    except (OSError, ValueError, KeyError, TypeError):
        before = {}
    out: dict[str, dict[str, Any]] = {}
    for split in splits:
        parts = [p[split] for p in task_parts if split in p]
        matrix_name, table_name = split_files(split)
        if not parts:
            for name in (matrix_name, table_name):
                (base / name).unlink(missing_ok=True)
            continue
        sources = [p["sha256"] for p in parts]
        old = (before.get(split) or {}).get("parts") or [{}]
        if old[0].get("from") == sources and (base / matrix_name).is_file() and (base / table_name).is_file():
            out[split] = {**old[0], "flat": True}  # the same parts merged before: nothing to rewrite
            continue
        files = [Path(parts_dir) / split / p["path"] for p in parts]
        with safe_open(str(files[0]), "np") as f:
            meta, first = f.metadata() or {}, f.get_slice(TENSOR)
            dtype, dim = first.get_dtype(), first.get_shape()[1]
        np_dtype = np.dtype({"F32": "<f4", "F16": "<f2"}[dtype])
        rows = sum(p["rows"] for p in parts)
        digest = hashlib.sha256()
        with atomic_path(base / matrix_name) as tmp, open(tmp, "wb") as sink:
            head = _safetensors_header([(TENSOR, np_dtype, (rows, dim))], meta)
            sink.write(head)
            digest.update(head)
            for f in files:
                with open(f, "rb") as src:
                    src.seek(8 + int.from_bytes(src.read(8), "little"))
                    while block := src.read(1 << 22):
                        sink.write(block)
                        digest.update(block)
        with atomic_path(base / table_name) as tmp:
            tables = [pq.read_table(Path(parts_dir) / split / p["table"]) for p in parts]
            writer = pq.ParquetWriter(tmp, tables[0].schema, compression="zstd")
            try:
                for t in tables:
                    writer.write_table(t)
            finally:
                writer.close()
        out[split] = {"path": matrix_name, "table": table_name, "rows": rows, "sha256": digest.hexdigest(),
                      "from": sources, "flat": True}
    return out


def write_index(root: Path, header: dict[str, Any], task_parts: list[dict[str, dict[str, Any]]],
                splits: list[str]) -> dict[str, Any]:
    """``embeddings/index.json`` from every task's parts, in task order; files no part names are removed
    (the per-task folders once splits are merged, the merged files once parts are kept)."""
    layout = OutputLayout(root)
    base = layout.embeddings
    index: dict[str, Any] = {**header, "splits": {}}
    flat = any(p.get("flat") for parts in task_parts for p in parts.values())
    for split in splits:
        parts = [p[split] for p in task_parts if split in p]
        index["splits"][split] = {"rows": sum(p["rows"] for p in parts), "parts": [
            {k: v for k, v in p.items() if k != "flat"} if flat else
            {**p, "path": f"{split}/{p['path']}", "table": f"{split}/{p['table']}"} for p in parts]}
        keep = {p["path"] for p in parts} | {p["table"] for p in parts}
        folder = base / split
        if folder.is_dir() and not flat:
            for f in folder.iterdir():
                if f.name.startswith("part_") and f.name not in keep:
                    f.unlink()
        if not flat:
            for name in split_files(split):
                (base / name).unlink(missing_ok=True)
    if base.is_dir():
        for d in base.iterdir():
            if d.is_dir() and d.name not in MEDIA_FOLDERS and (flat or d.name not in splits):
                shutil.rmtree(d)  # a split the recipe no longer has, or parts now merged
    atomic_write_json(layout.embeddings_index, index)
    return index
