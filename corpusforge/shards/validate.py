"""Check an output folder against its own index: files, checksums, schema, dtypes, shapes, values."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from safetensors import safe_open

from corpusforge.errors import CorpusforgeError
from corpusforge.remote import is_url
from corpusforge.shards.index import INDEX_NAME
from corpusforge.tokenize.special import IGNORE_INDEX, NUM_SPECIAL, PAD

REQUIRED = {"input_ids": "int32", "attention_mask": "int32", "modality_mask": "uint8", "labels": "int32"}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def validate_output(output: str | Path) -> tuple[list[str], dict[str, Any]]:
    """Every fault found (empty when valid) and a summary of what was checked.

    ``output`` may be an fsspec URL (``s3://...``): its files (not ``_work``/``_state``) are
    downloaded to a temporary folder first, since every byte is read for the checksums anyway.
    """
    if is_url(output):
        import tempfile

        from corpusforge.remote import local_copy

        url = str(output).rstrip("/")
        with tempfile.TemporaryDirectory(prefix="corpusforge-validate-") as tmp:
            try:
                local_copy(url, tmp)
            except CorpusforgeError as exc:
                return [str(exc)], {}
            faults, summary = _validate_folder(Path(tmp))
            return [f.replace(tmp, url) for f in faults], summary
    return _validate_folder(Path(output))


def _validate_folder(out: Path) -> tuple[list[str], dict[str, Any]]:
    faults: list[str] = []
    index_path = out / INDEX_NAME
    if not index_path.exists():
        return [f"{index_path}: missing (is this a corpusforge output folder?)"], {}
    try:
        index = orjson.loads(index_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [f"{index_path}: not valid JSON ({exc})"], {}
    length = index.get("sequence_length")
    tok = index.get("tokenizer", {})
    vocab = tok.get("vocab_size")
    tok_path = out / tok.get("path", "tokenizer.json")
    if not tok_path.exists():
        faults.append(f"{tok_path}: tokenizer missing")
    elif tok.get("sha256") and _sha256(tok_path) != tok["sha256"]:
        faults.append(f"{tok_path}: checksum differs from the index")
    layout = index.get("media")
    if layout is not None:
        from corpusforge.media.check import check_layout

        vocab = layout.get("vocab_size", vocab)
        faults += check_layout(out, layout, tok.get("vocab_size"))
    totals = {"shards": 0, "samples": 0, "tokens": 0, "bytes": 0}
    per_split: dict[str, dict[str, int]] = {}
    listed = set()
    for entry in index.get("shards", []):
        path = out / entry["path"]
        listed.add(entry["path"])
        name = entry["path"]
        if not path.exists():
            faults.append(f"{name}: listed in the index but missing")
            continue
        if path.stat().st_size != entry["bytes"]:
            faults.append(f"{name}: {path.stat().st_size} bytes, index says {entry['bytes']}")
        if _sha256(path) != entry["sha256"]:
            faults.append(f"{name}: sha256 differs from the index")
            continue
        faults += _check_tensors(path, name, entry, length, vocab, layout)
        s = per_split.setdefault(entry["split"], {"shards": 0, "samples": 0, "tokens": 0, "bytes": 0})
        for agg in (s, totals):
            agg["shards"] += 1
            agg["samples"] += entry["samples"]
            agg["tokens"] += entry["tokens"]
            agg["bytes"] += entry["bytes"]
    for split, agg in per_split.items():
        if index.get("splits", {}).get(split) != agg:
            faults.append(f"splits.{split}: index says {index.get('splits', {}).get(split)}, shards add up to {agg}")
    if index.get("totals") != totals:
        faults.append(f"totals: index says {index.get('totals')}, shards add up to {totals}")
    for split in per_split:
        for f in sorted((out / split).glob("shard_*")):
            if f"{split}/{f.name}" not in listed:
                faults.append(f"{split}/{f.name}: shard file not in the index")
    return faults, {"shards": totals["shards"], "samples": totals["samples"], "tokens": totals["tokens"]}


def _check_tensors(path: Path, name: str, entry: dict[str, Any], length: int, vocab: int | None,
                   layout: dict[str, Any] | None = None) -> list[str]:
    faults: list[str] = []
    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = set(f.keys())
            missing = set(REQUIRED) - keys
            if missing:
                return [f"{name}: missing tensors {sorted(missing)}"]
            t = {k: f.get_tensor(k) for k in REQUIRED}
    except Exception as exc:  # safetensors raises its own error types for a damaged header
        return [f"{name}: not a readable SafeTensors file ({exc})"]
    for k, dtype in REQUIRED.items():
        if str(t[k].dtype) != dtype:
            faults.append(f"{name}: {k} has dtype {t[k].dtype}, expected {dtype}")
        if t[k].shape != (entry["samples"], length):
            faults.append(f"{name}: {k} has shape {t[k].shape}, expected ({entry['samples']}, {length})")
    if faults:
        return faults
    ids = t["input_ids"]
    if int(np.count_nonzero(ids != PAD)) != entry["tokens"]:
        faults.append(f"{name}: {np.count_nonzero(ids != PAD)} non-pad tokens, index says {entry['tokens']}")
    if ids.min() < 0 or (vocab is not None and ids.max() >= vocab):
        faults.append(f"{name}: input_ids outside [0, {vocab})")
    if not np.array_equal(t["attention_mask"], (ids != PAD).astype(np.int32)):
        faults.append(f"{name}: attention_mask is not 1 exactly on non-pad tokens")
    expected_labels = np.where(ids < NUM_SPECIAL, IGNORE_INDEX, ids)
    if not np.array_equal(t["labels"], expected_labels):
        faults.append(f"{name}: labels differ from input_ids with -100 on padding and special tokens")
    if t["modality_mask"].max(initial=0) > 3:
        faults.append(f"{name}: modality_mask has values outside 0-3")
    elif layout is not None:
        from corpusforge.media.check import check_rows

        faults += check_rows(name, ids, t["modality_mask"], layout)
    elif t["modality_mask"].any():
        faults.append(f"{name}: modality_mask is not 0 everywhere, but the index has no media layout")
    return faults
