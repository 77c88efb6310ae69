"""Content hashes of local model folders (embedding models, media encoders, codebooks) for
``version.json`` and the embeddings index: the same folder gives the same hash wherever it lies.

A folder's hash is the sha256 of its files' relative names and sha256s. Weights run to gigabytes,
so each file's sha256 is kept in a cache keyed by its absolute path, size and mtime: a run with an
unchanged model reads none of its bytes.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import orjson

from corpusforge.state import atomic_write_json, file_sha256, read_json


def model_sha256(path: str | os.PathLike[str], cache: Path | None = None) -> str | None:
    """sha256 of a model folder's (or file's) content, None if it does not exist; ``cache`` is a
    JSON file remembering each file's sha256 by (path, size, mtime)."""
    root = Path(path).expanduser()
    if not root.exists():
        return None
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    known: dict[str, str] = {}
    if cache is not None:
        try:
            known = read_json(cache)
        except (OSError, ValueError):
            known = {}
    fresh = dict(known)
    listing = []
    for f in files:
        st = f.stat()
        key = f"{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        if key not in fresh:
            fresh[key] = file_sha256(f)
        listing.append([f.name if f == root else f.relative_to(root).as_posix(), fresh[key]])
    if cache is not None and fresh != known:
        atomic_write_json(cache, fresh)
    return hashlib.sha256(orjson.dumps(listing)).hexdigest()
