"""How close the loader's shuffle comes to a true global permutation, in two numbers.

- ``single_source_batches``: the share of global batches whose rows all come from one source
  file (lineage's ``source_uri`` of each row's first document; the shard, where an output has no
  lineage). A global permutation over many files gives about 0.
- ``neighbour_distance``: the mean distance, in the split's own order and as a fraction of its
  size, between samples read one after the other. A global permutation gives about 1/3 (the mean
  gap of two uniform draws); reading in order gives about 0.

``shuffle_quality`` measures one epoch of a loader and, beside it, a global permutation of the
same split batched the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from corpusforge.layout import OutputLayout
from corpusforge.loader.dataset import ShardIterator


def sample_sources(ds: ShardIterator, by: str = "source") -> np.ndarray:
    """A source number for every sample of ``ds``'s split: by ``source`` file (lineage) or ``shard``."""
    shard_of = np.repeat(np.arange(len(ds.sizes)), ds.sizes)
    if by == "shard":
        return shard_of
    lay = OutputLayout(ds.root)
    lineage = lay.lineage_split(ds.split)
    if by != "source" or ds.store.root is None or not lineage.is_dir():
        raise ValueError(f"{ds.root}: no lineage/{ds.split} to find sources in; measure by='shard'")
    import pyarrow.parquet as pq

    out = np.full(ds.num_samples, -1, np.int64)
    names: dict[str, int] = {}
    for k, info in enumerate(ds.shards):
        path = lay.lineage_table(ds.split, info["path"])
        table = pq.read_table(path, columns=["row", "token_start", "source_uri"]).to_pydict()
        first: dict[int, tuple[int, str]] = {}
        for row, start, uri in zip(table["row"], table["token_start"], table["source_uri"], strict=True):
            if row not in first or start < first[row][0]:
                first[row] = (start, uri)
        for row, (_, uri) in first.items():
            out[ds.first_id[k] + row] = names.setdefault(uri, len(names))
    return out


def stream_quality(ids: np.ndarray, sources: np.ndarray, batch: int) -> dict[str, float]:
    """The two measures of a stream of sample ids read ``batch`` at a time."""
    n = len(ids) // batch * batch
    per_batch = sources[ids[:n]].reshape(-1, batch)
    single = float(np.mean(np.all(per_batch == per_batch[:, :1], axis=1))) if n else 0.0
    gaps = np.abs(np.diff(ids.astype(np.int64)))
    return {"single_source_batches": round(single, 4),
            "neighbour_distance": round(float(gaps.mean() / len(sources)) if len(gaps) else 0.0, 4)}


def shuffle_quality(ds: ShardIterator, epoch: int = 0, by: str = "source") -> dict[str, Any]:
    """The measures for epoch ``epoch`` of ``ds`` (its global batches) and for a global permutation."""
    sources = sample_sources(ds, by)
    g = ds.global_batch_size
    stop = ds.epoch_samples // g * g if ds.drop_last else ds.epoch_samples
    ids = ds.sample_ids(epoch, 0, stop)
    perm = np.random.default_rng(ds.seed).permutation(ds.num_samples)[: len(ids)]
    return {"by": by, "sources": int(len(np.unique(sources))), "global_batch_size": g,
            "loader": stream_quality(ids, sources, g), "global_permutation": stream_quality(perm, sources, g)}
