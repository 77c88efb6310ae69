"""A small registry of well-known text datasets, and ``collect``: one dataset to shards in one call.

Behind ``corpusforge datasets`` (``list_datasets`` / ``format_catalog``) and
``corpusforge collect NAME [--output DIR] [--max-samples N] [--preset P]`` (``collect``).
Entries say where a dataset lives on the HuggingFace hub, which config and split to read, how
its text is built and under which license it is distributed; check the dataset card before use.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Any

from corpusforge.errors import RecipeError


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    hf_id: str
    config: str | None
    split: str
    text_field: str
    license: str
    description: str
    text_template: str | None = None


CATALOG: dict[str, CatalogEntry] = {e.name: e for e in [
    CatalogEntry("wikipedia", "wikimedia/wikipedia", "20231101.en", "train", "text", "CC-BY-SA-3.0 AND GFDL",
                 "English Wikipedia articles, cleaned (one article per row)"),
    CatalogEntry("c4", "allenai/c4", "en", "train", "text", "ODC-BY-1.0",
                 "Colossal Clean Crawled Corpus, English web text (Raffel et al. 2020)"),
    CatalogEntry("redpajama", "togethercomputer/RedPajama-Data-1T-Sample", None, "train", "text",
                 "per subset (Common Crawl, C4, GitHub, arXiv, books, Wikipedia, StackExchange)",
                 "1B-token sample of RedPajama-1T, the open LLaMA training-data reproduction"),
    CatalogEntry("openwebtext", "Skylion007/openwebtext", None, "train", "text", "CC0-1.0",
                 "Open reproduction of WebText (Reddit-linked web pages)"),
    CatalogEntry("bookcorpus", "bookcorpus/bookcorpus", None, "train", "text", "unknown (see the dataset card)",
                 "Sentences of ~11k unpublished books (Zhu et al. 2015)"),
    CatalogEntry("wikitext", "Salesforce/wikitext", "wikitext-103-raw-v1", "train", "text", "CC-BY-SA-3.0",
                 "WikiText-103, Good and Featured Wikipedia articles (Merity et al. 2016)"),
    CatalogEntry("dolly", "databricks/databricks-dolly-15k", None, "train", "response", "CC-BY-SA-3.0",
                 "15k human-written instruction/response pairs",
                 "{instruction}\n\n{context}\n\n{response}"),
    CatalogEntry("the_stack", "bigcode/the-stack-dedup", None, "train", "content",
                 "per file (permissive licenses only); gated: accept the terms on the hub and set HF_TOKEN",
                 "Deduplicated permissively licensed source code in 300+ languages"),
]}


def list_datasets() -> list[dict[str, Any]]:
    """Every catalog entry as a plain dict, sorted by name."""
    return [asdict(CATALOG[k]) for k in sorted(CATALOG)]


def format_catalog() -> str:
    """A plain-text table for ``corpusforge datasets``."""
    rows = [("name", "huggingface id", "config", "text", "license")]
    for e in (CATALOG[k] for k in sorted(CATALOG)):
        rows.append((e.name, e.hf_id, e.config or "-", e.text_template and "template" or e.text_field,
                     e.license.split(";")[0]))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows)


def entry(name: str) -> CatalogEntry:
    if name not in CATALOG:
        close = difflib.get_close_matches(name, CATALOG, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise RecipeError(f"dataset {name!r} is not in the catalog{hint} Known: {', '.join(sorted(CATALOG))}")
    return CATALOG[name]


def collect_recipe(name: str, max_samples: int | None = None, preset: str | None = None,
                   local_path: str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The recipe ``collect`` runs: the catalog dataset (or its local copy) as an hf_dataset source."""
    e = entry(name)
    source: dict[str, Any] = {"type": "hf_dataset", "name": e.name, "split": e.split}
    if local_path:
        source["path"] = local_path
    else:
        source["dataset"] = e.hf_id
        if e.config:
            source["config"] = e.config
    if e.text_template:
        source["text_template"] = e.text_template
    else:
        source["text_field"] = e.text_field
    if max_samples is not None:
        source["max_records"] = max_samples
    source["metadata"] = {"dataset": e.name, "license": e.license}
    recipe: dict[str, Any] = {"name": f"collect-{e.name}", "sources": [source]}
    if preset:
        recipe["preset"] = preset
    for key, value in (overrides or {}).items():
        recipe[key] = value
    return recipe


def collect(name: str, output: str, max_samples: int | None = None, preset: str | None = None,
            local_path: str | None = None, workers: int | None = None,
            overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the catalog dataset ``name`` into ``output``; returns the run's stats."""
    from corpusforge import run

    return run(collect_recipe(name, max_samples, preset, local_path, overrides), output=output, workers=workers)
