"""A content-addressed version record of an output, and what changed between two of them.

``version.json`` holds the recipe hash, the input manifest (source, key, content hash, size of
every input file), the sha256 of every output file a consumer reads (shards and sidecars,
``tokenizer.json``; lineage tables without their absolute ``source_uri``; sentence embeddings and
their tables, media encoders' vectors, VQ codebooks), what the embeddings are (model and its
content hash, pooling, dim, dtype, rows per split), the content hashes of the models that made
them (``models``: the embedding model, media encoders), and the totals per split; ``version`` is
the sha256 of all of that, so two outputs with equal versions hold the same bytes from the same
recipe and inputs, wherever those inputs were read from.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson

from corpusforge import layout as layout_names
from corpusforge.embeddings.store import MEDIA_FOLDERS
from corpusforge.errors import CorpusforgeError
from corpusforge.layout import OutputLayout
from corpusforge.redact_urls import redact_text
from corpusforge.sources.manifest import load_manifest
from corpusforge.state import atomic_write_json, file_sha256, read_json

VERSION_NAME = layout_names.VERSION



def lineage_sha256(path: Path) -> str:
    """Hex sha256 of a lineage table without its ``source_uri`` column (the input's absolute
    location): the same data read from another folder gives the same digest. Document ids,
    source names and offsets, all derived from root-relative paths, still enter it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = [c for c in pq.read_schema(path).names if c != "source_uri"]  # not read only to be dropped
    table = pq.read_table(path, columns=columns).replace_schema_metadata(None)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def build_version(output: Path) -> dict[str, Any]:
    """The version record of ``output`` from its index, manifest and files (not written)."""
    output = Path(output)
    layout = OutputLayout(output)
    curate_only = not layout.index.is_file() and layout.documents_index.is_file()
    index = read_json(layout.documents_index if curate_only else layout.index)
    # Keys redacted (a key of a URL input may hold an api_key): the content hash identifies the input.
    inputs = sorted(({"source": m["source"], "key": redact_text(m["key"]), "hash": m["hash"], "size": m["size"]}
                     for m in load_manifest(output).values()), key=lambda m: (m["source"], m["key"]))
    files: dict[str, str] = {}
    for part in index.get("parts", []):  # a curate-only output's documents
        files[part["path"]] = part["sha256"]
    for shard in index.get("shards", []):
        files[shard["path"]] = shard["sha256"]
        for side in shard.get("sidecars", []):
            files[side["path"]] = side["sha256"]
    tok = layout.tokenizer(layout_names.TOKENIZER_HF)
    if tok.is_file():
        files[layout.rel(tok)] = file_sha256(tok)
    for table in sorted(layout.lineage.glob("*/*.parquet")):
        files[layout.rel(table)] = lineage_sha256(table)
    embeddings = _embedding_files(output, files)
    for folder in (layout.codebooks, *(layout.media_embeddings(m) for m in MEDIA_FOLDERS)):
        for f in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if f.is_file() and not f.name.startswith("."):
                files[layout.rel(f)] = file_sha256(f)
    record = {"recipe_sha256": index["recipe_sha256"], "inputs": inputs, "files": dict(sorted(files.items())),
              "splits": index["splits"]}
    models = _model_hashes(output, embeddings)
    if embeddings:
        record["embeddings"] = embeddings
    if models:
        record["models"] = models
    return {"version": hashlib.sha256(orjson.dumps(record, option=orjson.OPT_SORT_KEYS)).hexdigest(), **record}


def _embedding_files(output: Path, files: dict[str, str]) -> dict[str, Any] | None:
    """Add the sentence embeddings' files to ``files``; what they are, from ``embeddings/index.json``."""
    layout = OutputLayout(output)
    if not layout.embeddings_index.is_file():
        return None
    index = read_json(layout.embeddings_index)
    for entry in index.get("splits", {}).values():
        for part in entry.get("parts", []):
            files[layout.rel(layout.embeddings / part["path"])] = part["sha256"]
            table = layout.embeddings / part["table"]
            files[layout.rel(table)] = file_sha256(table) if table.is_file() else "missing"
    keys = ("model", "model_sha256", "pooling", "normalized", "dim", "dimensions", "dtype", "instruction", "prefix",
            "max_length", "long_texts", "layout", "split_by")
    return {**{k: index.get(k) for k in keys},
            "rows": {s: e.get("rows", 0) for s, e in index.get("splits", {}).items()}}


def _model_hashes(output: Path, embeddings: dict[str, Any] | None) -> dict[str, Any]:
    """Content hashes of the models behind the output's vectors: the embedding model, media encoders."""
    import yaml

    from corpusforge.models.fingerprint import model_sha256

    out: dict[str, Any] = {}
    if embeddings and embeddings.get("model_sha256"):
        out["embeddings.model"] = {"model": embeddings["model"], "sha256": embeddings["model_sha256"]}
    try:
        recipe = yaml.safe_load(OutputLayout(output).recipe.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        recipe = {}
    media = recipe.get("media") if isinstance(recipe, dict) else None
    for modality, path in sorted(((media or {}).get("encoders") or {}).items()):
        out[f"media.encoders.{modality}"] = {"model": path,
                                             "sha256": model_sha256(path, OutputLayout(output).model_hashes)}
    return out


def write_version(output: Path) -> dict[str, Any]:
    """Build and write ``version.json``; returns the record."""
    record = build_version(output)
    atomic_write_json(OutputLayout(output).version, record)
    return record


def load_version(output: Path) -> dict[str, Any]:
    path = OutputLayout(output).version
    if not path.is_file():
        raise CorpusforgeError(f"{path}: missing; only outputs of corpusforge run have a version record")
    return read_json(path)


def diff_versions(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """What changed from version record ``a`` to ``b``: recipe, inputs, files and totals per split."""
    ins_a = {(m["source"], m["key"]): m["hash"] for m in a["inputs"]}
    ins_b = {(m["source"], m["key"]): m["hash"] for m in b["inputs"]}

    def keyed(keys: set[tuple[str, str]]) -> list[str]:
        return [f"{s}:{k}" for s, k in sorted(keys)]

    fa, fb = a["files"], b["files"]
    splits = {}
    for split in sorted(set(a["splits"]) | set(b["splits"])):
        ta, tb = a["splits"].get(split, {}), b["splits"].get(split, {})
        delta = {k: tb.get(k, 0) - ta.get(k, 0) for k in sorted(set(ta) | set(tb)) if tb.get(k, 0) != ta.get(k, 0)}
        if delta:
            splits[split] = delta
    return {
        "same": a["version"] == b["version"],
        "versions": [a["version"], b["version"]],
        "recipe_changed": a["recipe_sha256"] != b["recipe_sha256"],
        "inputs": {"added": keyed(ins_b.keys() - ins_a.keys()), "removed": keyed(ins_a.keys() - ins_b.keys()),
                   "changed": keyed({k for k in ins_a.keys() & ins_b.keys() if ins_a[k] != ins_b[k]})},
        "files": {"added": sorted(fb.keys() - fa.keys()), "removed": sorted(fa.keys() - fb.keys()),
                  "changed": sorted(k for k in fa.keys() & fb.keys() if fa[k] != fb[k])},
        "splits": splits,
        "embeddings": _changed(a.get("embeddings") or {}, b.get("embeddings") or {}),
        "models": _changed(a.get("models") or {}, b.get("models") or {}),
    }


def _changed(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[Any]]:
    """Keys whose value differs between ``a`` and ``b``: key -> [before, after] (None where absent)."""
    return {k: [a.get(k), b.get(k)] for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def format_diff(d: dict[str, Any]) -> str:
    """``diff_versions``'s answer as lines for a terminal."""
    if d["same"]:
        return f"identical: version {d['versions'][0][:16]}"
    lines = [f"version {d['versions'][0][:16]} -> {d['versions'][1][:16]}"]
    if d["recipe_changed"]:
        lines.append("recipe: changed")
    for area in ("inputs", "files"):
        for kind in ("added", "removed", "changed"):
            if d[area][kind]:
                lines.append(f"{area} {kind} ({len(d[area][kind])}): {', '.join(d[area][kind][:10])}"
                             + (" ..." if len(d[area][kind]) > 10 else ""))
    for split, delta in d["splits"].items():
        lines.append(f"{split}: " + ", ".join(f"{k} {v:+,}" for k, v in delta.items()))
    for area in ("embeddings", "models"):
        for key, (before, after) in (d.get(area) or {}).items():
            lines.append(f"{area} {key}: {_short(before)} -> {_short(after)}")
    return "\n".join(lines)


def _short(v: Any) -> str:
    """A value for a diff line: hashes cut to 16 characters, dicts as compact JSON."""
    if isinstance(v, dict):
        return orjson.dumps({k: (x[:16] if k == "sha256" and isinstance(x, str) else x) for k, x in v.items()}).decode()
    if isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef" for c in v):
        return v[:16]
    return str(v)
