"""Check an output folder against its own index, for every shard format and compression.

Per shard: its files (the main one and any sidecar, like Megatron's ``.idx``) exist with the
index's bytes and sha256; each file keeps its format's rules (the format's ``check``, then its
``read`` through ``corpusforge.shards.reader``, the one reader the loader uses too: for Megatron
also the ``.idx`` sizes, pointers and ``doc_idx`` against the ``.bin``); the stored tensors are the index's ``dtypes`` with (samples,
sequence_length) shapes; and their values agree with ``input_ids``: ids inside the vocabulary,
``attention_mask``, ``labels``, ``position_ids``, ``document_ids`` and ``modality_mask`` as the
writer derives them, non-pad tokens as the index counts them. Then the split and total counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson

from corpusforge.errors import CorpusforgeError
from corpusforge.layout import TOKENIZER_HF, OutputLayout
from corpusforge.remote import is_url
from corpusforge.shards.formats import format_class, format_names, shard_kind
from corpusforge.shards.packer import sample_tensors
from corpusforge.shards.reader import read_stored
from corpusforge.state import file_sha256
from corpusforge.tokenize.special import SpecialIds, special_of_index

# The tensors of an index written before it listed its dtypes.
REQUIRED = {"input_ids": "int32", "attention_mask": "int32", "modality_mask": "uint8", "labels": "int32"}
ENTRY_KEYS = ("split", "path", "samples", "tokens", "bytes", "sha256")
_DERIVED_MEANING = {
    "attention_mask": "is not 1 exactly on non-pad tokens",
    "labels": "differ from input_ids with -100 on padding and the masked special tokens",  # IGNORE_INDEX
    "position_ids": "do not count from 0 at each row start and document start (0 on padding)",
    "document_ids": "do not number the row's documents from 0 (-1 on padding)",
}



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
    lay = OutputLayout(out)
    index_path = lay.index
    if not index_path.exists():
        from corpusforge.staging import validate_documents

        if lay.documents_index.is_file():  # a curate-only output: documents, no shards
            return validate_documents(out)
        return [f"{index_path}: missing (is this a corpusforge output folder?)"], {}
    try:
        index = orjson.loads(index_path.read_bytes())
    except orjson.JSONDecodeError as exc:
        return [f"{index_path}: not valid JSON ({exc})"], {}
    fmt = index.get("format", "safetensors")
    if fmt not in format_names():
        return [f"{index_path}: format {fmt!r} is unknown; known: {', '.join(format_names())}"], {}
    tok = index.get("tokenizer", {})
    vocab = tok.get("vocab_size")
    tok_path = lay.tokenizer(tok.get("path", TOKENIZER_HF))
    if not tok_path.exists():
        faults.append(f"{tok_path}: tokenizer missing")
    elif tok.get("sha256") and file_sha256(tok_path) != tok["sha256"]:
        faults.append(f"{tok_path}: checksum differs from the index")
    layout = index.get("media")
    if layout is not None:
        from corpusforge.media.check import check_layout

        vocab = layout.get("vocab_size", vocab)
        faults += check_layout(out, layout, tok.get("vocab_size"))
    totals = {"shards": 0, "samples": 0, "tokens": 0, "bytes": 0}
    per_split: dict[str, dict[str, int]] = {}
    listed = set()
    for k, entry in enumerate(index.get("shards", [])):
        missing = [key for key in ENTRY_KEYS if key not in entry]
        if missing:
            faults.append(f"shards[{k}] ({entry.get('path')}): index entry lacks {missing}")
            continue
        listed.update([entry["path"], *(side["path"] for side in entry.get("sidecars", []))])
        s = per_split.setdefault(entry["split"], {"shards": 0, "samples": 0, "tokens": 0, "bytes": 0})
        for agg in (s, totals):
            agg["shards"] += 1
            for key in ("samples", "tokens", "bytes"):
                agg[key] += entry[key]
        file_faults = _check_files(out, entry)
        faults += file_faults or check_shard(out, entry, index, vocab)
    for split, agg in per_split.items():
        if index.get("splits", {}).get(split) != agg:
            faults.append(f"splits.{split}: index says {index.get('splits', {}).get(split)}, shards add up to {agg}")
    if index.get("totals") != totals:
        faults.append(f"totals: index says {index.get('totals')}, shards add up to {totals}")
    for split in per_split:
        for f in sorted(lay.split_dir(split).glob("shard_*")):
            if f"{split}/{f.name}" not in listed:
                faults.append(f"{split}/{f.name}: shard file not in the index")
    from corpusforge.embeddings.check import check_embeddings

    faults += check_embeddings(out)
    if not totals["samples"]:
        # An output with nothing to train on is not a valid dataset, however consistent its index.
        faults.append(f"{index_path}: the output holds no samples ({totals['shards']} shards); "
                      "see stats.json for what was read, dropped and quarantined")
    summary = {"shards": totals["shards"], "samples": totals["samples"], "tokens": totals["tokens"], "format": fmt}
    return faults, summary


def _check_files(out: Path, entry: dict[str, Any]) -> list[str]:
    """Faults of a shard's files as files: presence, total bytes, each file's sha256."""
    files = [(entry["path"], entry["sha256"]), *((s["path"], s["sha256"]) for s in entry.get("sidecars", []))]
    absent = [name for name, _ in files if not (out / name).exists()]
    if absent:
        return [f"{name}: listed in the index but missing" for name in absent]
    faults = []
    size = sum((out / name).stat().st_size for name, _ in files)
    if size != entry["bytes"]:
        what = "bytes" if len(files) == 1 else f"bytes in {len(files)} files"
        faults.append(f"{entry['path']}: {size} {what}, index says {entry['bytes']}")
    faults += [f"{name}: sha256 differs from the index" for name, sha in files if file_sha256(out / name) != sha]
    return faults


def check_shard(out: Path, entry: dict[str, Any], index: dict[str, Any], vocab: int | None) -> list[str]:
    """Faults of one shard's content (its files already match their checksums): format, schema, values."""
    name, path = entry["path"], out / entry["path"]
    length, fmt = index.get("sequence_length"), index.get("format", "safetensors")
    try:
        kind, _ = shard_kind(path)
    except ValueError:
        return [f"{name}: not a shard file name of any format ({', '.join(format_names())})"]
    if kind != fmt:
        return [f"{name}: a {kind} file, but the index says format {fmt!r}"]
    dtypes = index.get("dtypes", REQUIRED)
    contract = format_class(kind)
    faults = contract.check(path, entry, length, np.dtype(dtypes["input_ids"]))
    if faults:
        return faults
    try:
        stored = read_stored(path, length, special_of_index(index).pad)
    except Exception as exc:  # decompressors, pyarrow and numpy raise their own error types for damaged files
        reason = str(exc).replace(f"{path}: ", "").replace(f"{out}/", "")
        return [f"{name}: not a readable {kind} shard ({reason})"]
    expected = contract.stored_dtypes(dtypes)
    faults = _check_schema(name, stored, expected, (entry["samples"], length))
    return faults or _check_values(name, stored, entry, vocab, index.get("media"), special_of_index(index))


def _check_schema(name: str, stored: dict[str, np.ndarray], expected: dict[str, str],
                  shape: tuple[int, int]) -> list[str]:
    """Faults of the stored tensors' names, dtypes and shapes against the index."""
    faults = []
    missing, extra = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing:
        faults.append(f"{name}: missing tensors {missing}")
    if extra:
        faults.append(f"{name}: holds tensors {extra} that the index's dtypes do not list")
    for k in sorted(set(expected) & set(stored)):
        if str(stored[k].dtype) != expected[k]:
            faults.append(f"{name}: {k} has dtype {stored[k].dtype}, expected {expected[k]}")
        if stored[k].shape != shape:
            faults.append(f"{name}: {k} has shape {stored[k].shape}, expected {shape}")
    return faults


def _first_difference(got: np.ndarray, want: np.ndarray) -> str | None:
    """``"at 3 positions (first: row r, position c: 5, expected 7)"``, or None when equal."""
    bad = np.argwhere(got != want)
    if not len(bad):
        return None
    r, c = (int(x) for x in bad[0])
    return f"at {len(bad)} positions (first: row {r}, position {c}: {got[r, c]}, expected {want[r, c]})"


def _check_values(name: str, stored: dict[str, np.ndarray], entry: dict[str, Any], vocab: int | None,
                  layout: dict[str, Any] | None, special: SpecialIds) -> list[str]:
    """Faults of the values: ids in range, token count, every stored derived tensor equal to its derivation."""
    faults = []
    ids = np.asarray(stored["input_ids"])
    tokens = int(np.count_nonzero(ids != special.pad))
    if tokens != entry["tokens"]:
        faults.append(f"{name}: {tokens} non-pad tokens, index says {entry['tokens']}")
    outside = (ids < 0) | (ids >= vocab) if vocab is not None else ids < 0
    if outside.any():
        r, c = (int(x) for x in np.argwhere(outside)[0])
        faults.append(f"{name}: input_ids outside [0, {vocab}) at {int(outside.sum())} positions "
                      f"(first: row {r}, position {c}: {ids[r, c]})")
    want = sample_tensors(ids, "position_ids" in stored, "document_ids" in stored, special=special)
    for k, meaning in _DERIVED_MEANING.items():
        diff = _first_difference(np.asarray(stored[k]), want[k]) if k in stored else None
        if diff:
            faults.append(f"{name}: {k} {meaning}: wrong {diff}")
    mask = stored.get("modality_mask")
    if mask is None and layout is not None:
        from corpusforge.media.sequence import modality_mask_of

        mask = modality_mask_of(ids, layout)  # id-only formats: still checks media codes sit inside markers
    if mask is None:
        return faults
    mask = np.asarray(mask)
    if mask.max(initial=0) > 3:
        faults.append(f"{name}: modality_mask has values outside 0-3")
    elif layout is not None:
        from corpusforge.media.check import check_rows

        faults += check_rows(name, ids, mask, layout)
    elif mask.any():
        faults.append(f"{name}: modality_mask is not 0 everywhere, but the index has no media layout")
    return faults
