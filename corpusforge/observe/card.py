"""The data card: a Hugging Face dataset ``README.md`` (YAML front matter, then Markdown) for an output.

``write_card`` rebuilds ``README.md`` and ``report.html`` from what the output holds on disk
(``stats.json``, ``shard_index.json``, ``recipe.yaml``, ``documents/``, ``lineage/``), so the index
stage of a run and any command that later changes an output call the same function. The card has
no timestamp: the same output gives the same bytes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from corpusforge import layout as layout_names
from corpusforge.layout import OutputLayout
from corpusforge.observe.html_report import REPORT_NAME, render_report
from corpusforge.observe.summary import (
    OutputFacts,
    dedup_rows,
    load_facts,
    media_rows,
    ran_language_id,
    source_rows,
    split_names,
    split_rows,
    step_rows,
    tensor_dtypes,
)
from corpusforge.state import atomic_write_bytes, read_json

CARD_NAME = layout_names.CARD

# License ids the Hugging Face Hub accepts in ``license:``; anything else is ``other`` + ``license_name``.
HF_LICENSES = frozenset("""
apache-2.0 mit openrail openrail++ bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda cc
cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 cc-by-nc-sa-4.0
cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0 etalab-2.0 eupl-1.1
eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc h-research intel-research lppl-1.3c
ms-pl apple-ascl apple-amlr mpl-2.0 odc-by odbl openmdw-1.0 osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib
pddl lgpl-lr deepfloyd-if-license fair-noncommercial-research-license llama2 llama3 llama3.1 llama3.2
llama3.3 llama4 gemma unknown other
""".split())

# Hugging Face's size_categories buckets: (upper bound, label).
_SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                 (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (10**9, "100M<n<1B"),
                 (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))
_ISO_639 = re.compile(r"^[a-z]{2,3}$")


def size_category(n: int) -> str:
    """Hugging Face's ``size_categories`` bucket of ``n`` examples."""
    return next((label for bound, label in _SIZE_BUCKETS if n < bound), "n>1T")


def card_licenses(facts: OutputFacts) -> tuple[list[str], list[str]]:
    """``(license ids, license names)``: the recipe's ``card.license``, else every license the
    sources' metadata or the documents name; names not on the Hub's list become ``other``, and
    documents with no license at all add ``unknown``."""
    explicit = (facts.recipe.get("card") or {}).get("license")
    if explicit:
        found = [explicit]
    else:
        by_docs = facts.stats.get("licenses", {})
        found = list(dict.fromkeys([*(r["license"] for r in source_rows(facts) if r["license"]), *by_docs]))
        if not found or sum(by_docs.values()) < facts.stats["documents"]["kept"] and any(
                not r["license"] for r in source_rows(facts) if r["documents"]):
            found.append("unknown")
    ids = list(dict.fromkeys(x.lower() if x.lower() in HF_LICENSES else "other" for x in found))
    names = [x for x in found if x.lower() not in HF_LICENSES]
    return ids, names


def card_languages(facts: OutputFacts) -> list[str]:
    """ISO 639 codes ``language_id`` found in the shards' documents, most frequent first."""
    if not ran_language_id(facts.recipe):
        return []
    counts = facts.stats.get("languages", {})
    return [c for c, _ in sorted(counts.items(), key=lambda x: (-x[1], x[0])) if _ISO_639.match(c)]


def _shard_glob(facts: OutputFacts, split: str) -> str:
    path = next((s["path"] for s in facts.index["shards"] if s["split"] == split), f"{split}/shard_00000")
    name = Path(path).name
    return f"{split}/shard_*{name[name.index('.'):] if '.' in name else ''}"


# Shard formats 🤗 Datasets reads as a builder (its parquet module); the others (SafeTensors, npy,
# Megatron .bin/.idx) it has no reader for, so a config naming them breaks ``load_dataset(output)``.
_DATASETS_FORMATS = ("parquet",)


def _lineage_splits(facts: OutputFacts, splits: list[str]) -> list[str]:
    return [s for s in splits if any(OutputLayout(facts.output).lineage_split(s).glob("*.parquet"))]


def _named_configs(facts: OutputFacts) -> dict[str, list[dict[str, str]]]:
    """The data files of each table the output has that 🤗 Datasets can read, in the order the
    default is chosen by: ``shards`` (Parquet shards), ``documents``, ``lineage``."""
    splits = [s for s in split_names(facts) if facts.index["splits"][s].get("shards")]
    named: dict[str, list[dict[str, str]]] = {}
    if facts.index.get("format", "safetensors") in _DATASETS_FORMATS and splits:
        named["shards"] = [{"split": s, "path": _shard_glob(facts, s)} for s in splits]
    if facts.document_files:
        suffix = Path(facts.document_files[0]).suffix
        named["documents"] = [{"split": "train", "path": f"{layout_names.DOCUMENTS}/*{suffix}"}]
    lineage = _lineage_splits(facts, splits)
    if lineage:
        named["lineage"] = [{"split": s, "path": f"{layout_names.LINEAGE}/{s}/*.parquet"} for s in lineage]
    return named


def default_config(facts: OutputFacts) -> str:
    """What ``load_dataset(output)`` gives: ``shards`` (token rows, Parquet shards), else
    ``documents`` (text rows, when ``output.documents`` wrote them), else ``lineage`` (the only
    table of a SafeTensors/npy/Megatron output that 🤗 Datasets can read), else ``none``."""
    return next(iter(_named_configs(facts)), "none")


def dataset_configs(facts: OutputFacts) -> list[dict[str, Any]]:
    """The card's ``configs``: ``default`` (see ``default_config``), then each of ``shards``,
    ``documents`` and ``lineage`` the output has, by name; every one names only files 🤗 Datasets
    can read. Documents are one table (each row's split is in its ``metadata``), so they load as
    the single split ``train``."""
    named = _named_configs(facts)
    if not named:
        return []
    configs = [{"config_name": "default", "data_files": next(iter(named.values()))}]
    return configs + [{"config_name": name, "data_files": files} for name, files in named.items()]


def front_matter(facts: OutputFacts) -> dict[str, Any]:
    """The YAML header the Hub reads: license, languages, size, task, configs and splits."""
    card = facts.recipe.get("card") or {}
    ids, names = card_licenses(facts)
    meta: dict[str, Any] = {"pretty_name": card.get("pretty_name") or facts.stats.get("recipe", "corpusforge")}
    meta["license"] = ids[0] if len(ids) == 1 else ids
    if names:
        meta["license_name"] = ", ".join(names)
    languages = card_languages(facts)
    if languages:
        meta["language"] = languages
    meta["size_categories"] = [size_category(facts.stats["documents"]["kept"])]
    meta["task_categories"] = ["text-generation"]
    meta["tags"] = ["corpusforge", "pretraining", facts.index.get("format", "safetensors")]
    configs = dataset_configs(facts)
    if configs:
        meta["configs"] = configs
    if configs and configs[1]["config_name"] == "shards":  # the default is the first named config
        # 🤗 Datasets checks these against what it reads (features, rows per split), so they are
        # given only where the default config is the shards they describe.
        splits = [f["split"] for f in configs[0]["data_files"]]
        meta["dataset_info"] = {
            "features": [{"name": k, "sequence": v} for k, v in tensor_dtypes(facts.index)],
            "splits": [{"name": s, "num_bytes": facts.index["splits"][s]["bytes"],
                        "num_examples": facts.index["splits"][s]["samples"]} for s in splits],
        }
    return meta


def _n(v: Any) -> str:
    return "" if v is None else f"{v:,}" if isinstance(v, int) else str(v)


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _cell(v: Any) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def render_card(facts: OutputFacts) -> str:
    """The whole ``README.md``: front matter, then sources, steps, dedup, tokens, tokenizer, schema, loading."""
    if facts.index.get("format") == "documents":
        return render_documents_card(facts)
    st, idx = facts.stats, facts.index
    card = facts.recipe.get("card") or {}
    meta = front_matter(facts)
    docs = st["documents"]
    totals = idx.get("totals", {})
    parts = ["---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---", f"# {meta['pretty_name']}"]
    if card.get("description"):
        parts.append(card["description"])
    parts.append(
        f"Built by corpusforge from recipe `{st.get('recipe')}` "
        f"(sha256 `{st.get('recipe_sha256', '')[:16]}…`, seed {idx.get('seed', 0)}): {docs['read']:,} documents "
        f"read, {docs['quarantined']:,} quarantined, {docs['kept']:,} kept; {totals.get('tokens', 0):,} tokens in "
        f"{totals.get('samples', 0):,} samples of {idx.get('sequence_length')} tokens, {totals.get('shards', 0):,} "
        f"{idx.get('format')} shards. Plots: [`{REPORT_NAME}`]({REPORT_NAME}); every number: `{layout_names.STATS}`.")

    parts.append("## Sources")
    parts.append(_table(["source", "type", "location", "license", "input bytes", "documents read",
                         "documents in shards", "tokens", "token share"],
                        [[r["name"], r["type"], f"`{r['uri']}`", r["license"] or "", _n(r["bytes"]),
                          _n(r["documents_read"]), _n(r["documents"]), _n(r["tokens"]), _pct(r["share"])]
                         for r in source_rows(facts)]))

    parts.extend(_steps_section(st, "Documents into and out of every step in order; a deduplication step is "
                                "counted where its removals happen."))

    media = media_rows(st)
    if media:
        parts.append("## Media")
        parts.append("Media items that fail to decode (truncated, random bytes, decompression bombs) are set "
                     "aside under `quarantine/` and counted here; see docs/media.md for how spans are packed.")
        parts.append(_table(["what", "count"], [[k, _n(v)] for k, v in media]))

    dedup = dedup_rows(st)
    if dedup:
        parts.append("## Deduplication")
        parts.append(_table(["stage", "documents", "removed", "rate", "clusters", "cluster sizes (size: clusters)"],
                            [[r["stage"], _n(r["documents"]), _n(r["removed"]), _pct(r["rate"]), _n(r["clusters"]),
                              ", ".join(f"{k}: {v:,}" for k, v in list(r["cluster_sizes"].items())[:12])
                              + (" …" if len(r["cluster_sizes"]) > 12 else "")] for r in dedup]))

    parts.append("## Tokens")
    parts.append(_table(["split", "documents", "tokens", "samples", "shards", "bytes"],
                        [[r["split"], _n(r["documents"]), _n(r["tokens"]), _n(r["samples"]), _n(r["shards"]),
                          _n(r["bytes"])] for r in split_rows(facts)]))
    parts.append("Tokens per source are in the sources table; a document's tokens count its `<BOS>` and `<EOS>`.")
    langs = st.get("languages", {})
    if langs and ran_language_id(facts.recipe):
        parts.append("## Languages")
        parts.append(_table(["language", "documents", "share"],
                            [[k, _n(v), _pct(v / max(1, sum(langs.values())))]
                             for k, v in sorted(langs.items(), key=lambda x: (-x[1], x[0]))[:30]]))

    embeddings = _embeddings_section(facts)
    if embeddings:
        parts.append("## Embeddings")
        parts.append(embeddings)
    parts.append("## Tokenizer")
    parts.append(_tokenizer_section(facts))
    parts.append("## Shard schema")
    parts.append(_schema_section(facts))
    parts.append("## How to load")
    parts.append(_load_section(facts))
    files = [f"`{layout_names.RECIPE}` (the recipe, to rerun: `corpusforge run {layout_names.RECIPE}`)", f"`{layout_names.STATS}`",
             f"`{layout_names.INDEX}` (every shard: split, path, samples, tokens, sha256)", f"`{layout_names.VERSION}`"]
    if facts.has_lineage:
        files.append("`lineage/` (which documents each shard row holds: `corpusforge trace`)")
    if facts.document_files:
        files.append(f"`documents/` ({len(facts.document_files)} files: the curated documents with their split)")
    if OutputLayout(facts.output).embeddings_index.is_file():
        files.append("`embeddings/` (a vector per curated document, per split, with its text: `index.json` lists them)")
    parts.append("## Files\n\n" + "\n".join(f"- {f}" for f in files))
    return "\n\n".join(parts) + "\n"


def _embeddings_section(facts: OutputFacts) -> str | None:
    """What the sentence embeddings are: model and its hash, pooling, dim, dtype, count per split, files."""
    path = OutputLayout(facts.output).embeddings_index
    if not path.is_file():
        return None
    idx = read_json(path)
    splits = idx.get("splits", {})
    rows = [["model", f"`{idx.get('model')}`" + (f" (content sha256 `{idx['model_sha256'][:16]}…`)"
                                                 if idx.get("model_sha256") else "")],
            ["pooling", f"`{idx.get('pooling')}`" + (", L2-normalised" if idx.get("normalized") else ", not normalised")],
            ["dimensions", _n(idx.get("dim")) + (" (Matryoshka truncation)" if idx.get("dimensions") else "")],
            ["stored dtype", f"`{idx.get('dtype')}`"],
            ["vectors", ", ".join(f"{s} {_n(e.get('rows', 0))}" for s, e in splits.items())
             + f" ({_n(sum(e.get('rows', 0) for e in splits.values()))} in all)"]]
    if idx.get("max_length"):
        over = idx.get("over_window") or 0
        how = "embedded window by window and mean-pooled" if idx.get("long_texts") == "chunk" else "cut to it"
        rows.append(["window", f"{_n(idx['max_length'])} tokens; {_n(over)} texts were longer ({how})"])
    if idx.get("instruction") or idx.get("prefix"):
        rows.append(["input", f"instruction `{idx.get('instruction')}`" if idx.get("instruction")
                     else f"prefix `{idx.get('prefix')}`"])
    if idx.get("split_by"):
        rows.append(["splits", f"by `{idx['split_by']}` (a group's documents in one split), ratios "
                     + ", ".join(f"{k} {v:g}" for k, v in (idx.get("split_ratios") or {}).items())])
    first = next(iter(splits.values()), {}).get("parts", [{}])
    files = f"`embeddings/{first[0].get('table', '')}` + `embeddings/{first[0].get('path', '')}`" if first else ""
    return (_table(["", ""], rows) + f"\n\nRow i of a matrix embeds row i of its table (text_id, text, token_count, "
            f"char_count, metadata), e.g. {files}. Read them with `corpusforge.embeddings.dataset.EmbeddingDataset"
            f"(\".\", split=\"{next(iter(splits), 'train')}\")`.")


def render_documents_card(facts: OutputFacts) -> str:
    """The card of a curate-only output: its documents (no tokenizer, no shards), sources, steps, dedup."""
    st, idx = facts.stats, facts.index
    card = facts.recipe.get("card") or {}
    ids, names = card_licenses(facts)
    meta: dict[str, Any] = {"pretty_name": card.get("pretty_name") or st.get("recipe", "corpusforge"),
                            "license": ids[0] if len(ids) == 1 else ids}
    if names:
        meta["license_name"] = ", ".join(names)
    if card_languages(facts):
        meta["language"] = card_languages(facts)
    meta["size_categories"] = [size_category(st["documents"]["kept"])]
    meta["task_categories"] = ["text-generation"]
    meta["tags"] = ["corpusforge", "pretraining", "curated-documents"]
    fmt = idx.get("documents_format", "jsonl")
    files = [{"split": "train", "path": f"{layout_names.DOCUMENTS}/*.{fmt}"}]
    meta["configs"] = [{"config_name": "default", "data_files": files},
                       {"config_name": "documents", "data_files": [dict(f) for f in files]}]
    docs, totals = st["documents"], idx.get("totals", {})
    parts = ["---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---", f"# {meta['pretty_name']}"]
    if card.get("description"):
        parts.append(card["description"])
    parts.append(
        f"Curated by corpusforge from recipe `{st.get('recipe')}` (sha256 `{st.get('recipe_sha256', '')[:16]}…`, "
        f"seed {idx.get('seed', 0)}), curate-only (no tokenizer, no shards): {docs['read']:,} documents read, "
        f"{docs['quarantined']:,} quarantined, {docs['kept']:,} kept in {totals.get('parts', 0):,} `{fmt}` files "
        f"({totals.get('bytes', 0):,} bytes). Plots: [`{REPORT_NAME}`]({REPORT_NAME}); every number: `{layout_names.STATS}`.")
    parts.append("## Sources")
    parts.append(_table(["source", "type", "location", "license", "input bytes", "documents read", "documents kept"],
                        [[r["name"], r["type"], f"`{r['uri']}`", r["license"] or "", _n(r["bytes"]),
                          _n(r["documents_read"]), _n(r["documents"])] for r in source_rows(facts)]))
    parts.extend(_steps_section(st))
    dedup = dedup_rows(st)
    if dedup:
        parts.append("## Deduplication")
        parts.append(_table(["stage", "documents", "removed", "rate"],
                            [[r["stage"], _n(r["documents"]), _n(r["removed"]), _pct(r["rate"])] for r in dedup]))
    parts.append("## Documents")
    splits = idx.get("splits", {})
    order = [s for s in idx.get("split_ratios", {}) if s in splits] + sorted(set(splits) - set(idx.get("split_ratios", {})))
    parts.append(_table(["split", "documents"], [[s, _n(splits[s]["documents"])] for s in order]))
    parts.append("Every line (row) holds `id`, `text`, `source` (the input it was read from), `offset` (its line, "
                 "row or byte offset there) and `metadata` (each document's split under `split`).")
    parts.append("## How to load\n\n```python\nfrom datasets import load_dataset\n\n"
                 f"docs = load_dataset(\"{'parquet' if fmt == 'parquet' else 'json'}\", "
                 f"data_files=\"{layout_names.DOCUMENTS}/*.{fmt}\", split=\"train\")\n```\n\n"
                 "To tokenize them later: a recipe with a `corpusforge` source over this folder (docs/recipe.md).")
    files_list = [f"`{layout_names.RECIPE}`", f"`{layout_names.STATS}`",
                  f"`{layout_names.DOCUMENTS_INDEX}` (every part: documents, bytes, sha256)", f"`{layout_names.VERSION}`",
                  f"`{layout_names.DOCUMENTS_LINEAGE}/` (part and row of every document: `corpusforge trace`)"]
    parts.append("## Files\n\n" + "\n".join(f"- {f}" for f in files_list))
    return "\n\n".join(parts) + "\n"


def _tokenizer_section(facts: OutputFacts) -> str:
    tok = facts.index.get("tokenizer", {})
    cfg = facts.recipe.get("tokenizer") or {}
    kind = f"loaded from `{cfg['path']}`" if cfg.get("path") else f"`{cfg.get('type', 'bpe')}`, trained on the curated text"
    special = facts.index.get("special_ids", {}).get("tokens") or {t: i for i, t in enumerate(tok.get("special_tokens", []))}
    rows = [["type", kind], ["file", f"`{tok.get('path', '')}` (sha256 `{tok.get('sha256', '')[:16]}…`)"],
            ["vocabulary size", _n(tok.get("vocab_size"))],
            ["special tokens", ", ".join(f"`{t}`={i}" for t, i in sorted(special.items(), key=lambda kv: kv[1]))]]
    if cfg.get("extra_special_tokens"):
        rows.append(["extra special tokens", ", ".join(f"`{t}`" for t in cfg["extra_special_tokens"])])
    return _table(["", ""], rows)


def _schema_section(facts: OutputFacts) -> str:
    idx = facts.index
    sharding = facts.recipe.get("sharding") or {}
    length = idx.get("sequence_length")
    rows = [[f"`{name}`", dtype, f"(samples, {length})"] for name, dtype in tensor_dtypes(idx)]
    lines = [_table(["tensor", "dtype", "shape"], rows), "",
             f"Format `{idx.get('format')}`, compression `{sharding.get('compression', 'none')}`, packing "
             f"`{idx.get('packing', 'concat')}`, {'shuffled' if idx.get('shuffled') else 'in source order'}. "
             "`labels` equal `input_ids` (unshifted), -100 on padding and special tokens; `modality_mask` "
             "is 0 for text."]
    return "\n".join(lines)


def _load_section(facts: OutputFacts) -> str:
    split = next(iter(split_names(facts)), "train")
    text = ("With `pip install corpusforge`, from this folder:\n\n```python\n"
            "from corpusforge.loader import ShardIterator\n\n"
            f"batches = ShardIterator(\".\", split=\"{split}\", batch_size=8, seed=0)\n"
            "batch = next(iter(batches))  # dict of (8, sequence_length) NumPy arrays\n"
            "print({name: array.shape for name, array in batch.items()})\n```\n\n"
            "PyTorch: `corpusforge.loader.ShardDataset` / `ShardDataLoader` take the same arguments; "
            "`state_dict()` resumes exactly.")
    default = default_config(facts)
    if default == "none":
        return text
    what = {"shards": "the token rows, one per sample, per split",
            "documents": "the curated documents (text and metadata, each row's split in `metadata`) as split "
                         "`train`",
            "lineage": "the lineage lines (which document spans each shard row holds) per split; for token rows "
                       "write Parquet shards (`sharding.format: parquet`), for text `output.documents: parquet`"}
    # The folder's own path, not ".": 🤗 Datasets names the dataset after the path's last part.
    lines = ["import os", "", "from datasets import load_dataset", "",
             f"dataset = load_dataset(os.getcwd())  # this folder: the {default}"]
    if facts.document_files:
        lines.append("docs = load_dataset(os.getcwd(), \"documents\", split=\"train\")")
    text += (f"\n\nWith 🤗 Datasets (`pip install datasets`), from this folder: `load_dataset(path)` gives "
             f"{what[default]}.\n\n```python\n" + "\n".join(lines) + "\n```")
    return text


def _write_if_changed(path: Path, data: bytes) -> None:
    # A resumed run that had nothing left to do leaves every file as it was, the card included.
    if not (path.is_file() and path.read_bytes() == data):
        atomic_write_bytes(path, data)


def write_card(output_dir: str | Path) -> Path:
    """Write ``README.md`` and ``report.html`` of a finished output from its files; returns the card's path."""
    facts = load_facts(output_dir)
    layout = OutputLayout(output_dir)
    path = layout.card
    _write_if_changed(path, render_card(facts).encode("utf-8"))
    _write_if_changed(layout.report, render_report(facts).encode("utf-8"))
    return path


def _steps_section(st: dict[str, Any], intro: str | None = None) -> list[str]:
    """The card's "Processing steps": every step's documents in and out, then what was quarantined."""
    parts = ["## Processing steps", *([intro] if intro else [])]
    parts.append(_table(["step", "stage", "docs in", "docs out", "dropped", "drop rate", "reasons", "modified"],
                        [[f"`{r['step']}`", r["stage"], _n(r["docs_in"]), _n(r["docs_out"]), _n(r["dropped"]),
                          _pct(r["drop_rate"]), ", ".join(f"{k} {v:,}" for k, v in r["drops"].items()),
                          _n(r["modified"])] for r in step_rows(st)]))
    if st.get("quarantine"):
        parts.append("Quarantined (unreadable input, set aside with its location under `quarantine/`): "
                     + ", ".join(f"{k} {v:,}" for k, v in st["quarantine"].items()) + ".")
    return parts
