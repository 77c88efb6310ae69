"""``corpusforge validate`` for sentence embeddings: ``embeddings/index.json`` against its files.

Per part: both files exist, the matrix has the index's sha256, its one tensor is (rows, dim) of the
index's dtype with rows equal to the table's, every value is finite, and with ``normalized`` every
row has unit L2 norm; per split the parts add up to the split's rows. An output whose recipe has an
``embeddings:`` section must have the index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from corpusforge.embeddings.store import EMBEDDINGS_DIR, INDEX_NAME, TENSOR
from corpusforge.layout import OutputLayout
from corpusforge.state import file_sha256, read_json

_NORM_TOLERANCE = {"float32": 1e-3, "float16": 1e-2}  # float16 keeps ~3 decimal digits per component


def _recipe_embeds(out: Path) -> bool:
    try:
        recipe = yaml.safe_load(OutputLayout(out).recipe.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(recipe, dict) and recipe.get("embeddings") is not None


def check_embeddings(out: Path) -> list[str]:
    """Every fault of ``out``'s sentence embeddings (none when it has none and its recipe asks for none)."""
    layout = OutputLayout(out)
    index_path = layout.embeddings_index
    if not index_path.is_file():
        return [f"{index_path}: missing, but the recipe has an embeddings section"] if _recipe_embeds(out) else []
    try:
        index = read_json(index_path)
        splits = index["splits"]
        dim, dtype = int(index["dim"]), str(index.get("dtype", "float32"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return [f"{index_path}: not a readable embeddings index ({type(exc).__name__}: {exc})"]
    faults: list[str] = []
    for split, entry in splits.items():
        parts = entry.get("parts", [])
        total = sum(int(p.get("rows", 0)) for p in parts)
        if total != entry.get("rows"):
            faults.append(f"{index_path}: split {split} says {entry.get('rows')} rows, its parts add up to {total}")
        for part in parts:
            faults += _check_part(layout.embeddings, part, dim, dtype, bool(index.get("normalized")))
    return faults


def _check_part(base: Path, part: dict[str, Any], dim: int, dtype: str, normalized: bool) -> list[str]:
    from corpusforge.loader.reader import read_safetensors

    matrix, table = base / part["path"], base / part["table"]
    missing = [f"{p.relative_to(base.parent)}: listed in {EMBEDDINGS_DIR}/{INDEX_NAME} but missing"
               for p in (matrix, table) if not p.is_file()]
    if missing:
        return missing
    where = matrix.relative_to(base.parent)
    faults = []
    if part.get("sha256") and file_sha256(matrix) != part["sha256"]:
        faults.append(f"{where}: sha256 differs from {EMBEDDINGS_DIR}/{INDEX_NAME}")
    try:
        tensors = read_safetensors(matrix)
    except (OSError, ValueError) as exc:
        return [*faults, f"{where}: not a readable SafeTensors file ({exc})"]
    if set(tensors) != {TENSOR}:
        return [*faults, f"{where}: holds tensors {sorted(tensors)}, expected only {TENSOR!r}"]
    vecs = tensors[TENSOR]
    import pyarrow.parquet as pq

    rows = pq.read_metadata(table).num_rows
    if vecs.shape != (part["rows"], dim) or rows != part["rows"]:
        faults.append(f"{where}: shape {vecs.shape}, table {rows} rows; the index says ({part['rows']}, {dim})")
    if vecs.dtype != np.dtype(dtype):
        faults.append(f"{where}: dtype {vecs.dtype}, the index says {dtype}")
    if vecs.ndim != 2 or not len(vecs):
        return faults
    values = vecs.astype(np.float32)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        faults.append(f"{where}: row {int(np.flatnonzero(bad)[0])} holds NaN or infinity ({int(bad.sum())} rows)")
    if normalized:
        off = ~bad & (np.abs(np.linalg.norm(np.where(bad[:, None], 0, values), axis=1) - 1.0)
                      > _NORM_TOLERANCE.get(dtype, 1e-3))
        if off.any():
            r = int(np.flatnonzero(off)[0])
            faults.append(f"{where}: row {r} has L2 norm {float(np.linalg.norm(values[r])):.4f}, but the vectors are "
                          f"normalized ({int(off.sum())} rows off)")
    return faults
