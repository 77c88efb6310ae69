"""Splits by group (``sharding.split_by``): every document whose metadata shares a value (a WikiText
article's ``title``) goes to one split, and the splits hold ``sharding.splits`` of the documents.

Hashing each group to a split, as ``split_of`` hashes ids, would put a 60-article corpus's 10%
splits off by several points; so groups are dealt out in a seeded order, each to a split that still
lacks at least its size (chosen by the group's hash, weighted by what each lacks), else to the one
that lacks most. The assignment is a pure function of the final documents, the ratios and the
seed; each process computes it once from the staged metadata and keeps it in ``_work/splits/``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow.parquet as pq
import xxhash

from corpusforge.layout import OutputLayout
from corpusforge.state import atomic_write_json, read_json

if TYPE_CHECKING:
    from corpusforge.pipeline import Pipeline

Splitter = Callable[[str, dict[str, Any]], str]
_CACHE: dict[str, dict[str, str]] = {}


def group_key(meta: dict[str, Any], key: str) -> str:
    """The group a document's metadata puts it in (its ``key`` value; missing is the group "")."""
    value = meta.get(key)
    return "" if value is None else str(value)


def balanced_assignment(sizes: dict[str, int], ratios: dict[str, float], seed: int) -> dict[str, str]:
    """Group -> split, the splits' document counts as close to ``ratios`` as whole groups allow."""
    names = list(ratios)
    total = sum(sizes.values())
    target = {s: ratios[s] * total for s in names}
    have = dict.fromkeys(names, 0)
    out: dict[str, str] = {}
    s64 = seed & 0xFFFFFFFFFFFFFFFF
    for g in sorted(sizes, key=lambda g: (xxhash.xxh3_64_intdigest(g.encode(), seed=s64), g)):
        n = sizes[g]
        lack = {s: target[s] - have[s] for s in names}
        pool = [s for s in names if lack[s] >= n] or [max(names, key=lambda s: lack[s])]
        weights = [max(lack[s], 0.0) for s in pool]
        u = xxhash.xxh3_64_intdigest(g.encode(), seed=(s64 + 3) & 0xFFFFFFFFFFFFFFFF) / 2.0**64 * sum(weights)
        pick = pool[-1]
        for s, w in zip(pool, weights, strict=True):
            if u < w:
                pick = s
                break
            u -= w
        out[g] = pick
        have[pick] += n
    return out


def _final_metadata(pipe: Pipeline, task: int) -> list[str]:
    """The metadata JSON of ``task``'s final documents (the rows the shard stage keeps)."""
    k = len(pipe.boundaries) - 1
    if not pipe.boundaries or pipe.segments[k + 1]:
        path, removed = pipe.staged_path(k + 1, task), {}
    else:
        path, removed = pipe.staged_path(k, task), pipe.boundaries[k].removed(task)
    table = pq.read_table(path, columns=["id", "metadata"])
    ids, metas = table["id"].to_pylist(), table["metadata"].to_pylist()
    return [m or "{}" for r, (i, m) in enumerate(zip(ids, metas, strict=True))
            if r not in removed and i not in pipe.erased]


def group_assignment(pipe: Pipeline) -> dict[str, str]:
    """Group -> split for ``pipe``'s final documents, computed once and kept in ``_work/splits/``."""
    cfg = pipe.recipe.sharding
    key = hashlib.sha256(orjson.dumps([pipe.fingerprint, [t.identity() for t in pipe.plan], sorted(pipe.erased)])
                         ).hexdigest()[:24]
    if key in _CACHE:
        return _CACHE[key]
    path = OutputLayout(pipe.output).group_split(str(cfg.split_by), key)
    try:
        assignment = read_json(path)["groups"]
    except (OSError, ValueError, KeyError, TypeError):
        sizes: Counter[str] = Counter()
        for task in range(len(pipe.plan)):
            for m in _final_metadata(pipe, task):
                sizes[group_key(orjson.loads(m), str(cfg.split_by))] += 1
        assignment = balanced_assignment(dict(sizes), cfg.splits, pipe.recipe.seed)
        atomic_write_json(path, {"split_by": cfg.split_by, "seed": pipe.recipe.seed, "ratios": cfg.splits,
                                 "groups": assignment})
    _CACHE.clear()
    _CACHE[key] = assignment
    return assignment


def splitter(pipe: Pipeline) -> Splitter:
    """``(doc_id, metadata) -> split`` as the recipe asks: by ``sharding.split_by`` group, else by id."""
    from corpusforge.splits import split_of, split_thresholds

    cfg = pipe.recipe.sharding
    names = list(cfg.splits)
    if cfg.split_by is None or len(names) == 1:
        cuts, seed = split_thresholds(cfg.splits), pipe.recipe.seed
        return lambda doc_id, meta: split_of(doc_id, seed, names, cuts)
    assignment, by = group_assignment(pipe), cfg.split_by
    return lambda doc_id, meta: assignment.get(group_key(meta, by), names[0])
