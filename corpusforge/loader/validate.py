"""Check one epoch of the loader against the index: every sample read once, none skipped."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from corpusforge.loader.dataset import ShardIterator


def validate_epoch(ds: ShardIterator, epoch: int = 0, num_workers: int = 1) -> dict[str, Any]:
    """Read epoch ``epoch`` through every rank and worker of ``ds``'s layout and account for it.

    Returns counts: ``duplicates`` (reads beyond what the epoch's positions hold, padding aside),
    ``skipped`` (samples never read, beyond the ``dropped_tail`` that ``drop_last`` leaves out),
    ``padded`` (repeats that filled the last step), ``batches_per_rank`` (equal on every rank),
    and, when the whole epoch was read, whether the non-padding tokens equal the index's
    ``tokens``; ``ok`` sums it up. ``num_workers=0`` reads as one worker does.
    """
    num_workers = max(1, num_workers)
    seen = np.zeros(ds.num_samples, dtype=np.int64)
    tokens, padded, kept, batches = 0, 0, 0, []
    pad_ids: list[np.ndarray] = []
    for rank in range(ds.world_size):
        view = copy.copy(ds)
        view.rank, view.return_sample_ids, view.prefetch, view.infinite = rank, True, 0, False
        view.epoch, view.position = epoch, 0
        count = 0
        for worker in range(num_workers):
            for batch in view._iterate(worker, num_workers, track=False):
                np.add.at(seen, batch["sample_id"], 1)
                count += 1
                if "attention_mask" in batch:
                    tokens += int(np.count_nonzero(batch["attention_mask"]))
        batches.append(count)
        for end, (lo, hi) in view.steps(epoch, 0):
            kept = max(kept, end)
            if hi > ds.epoch_samples:
                pad_lo = max(lo, ds.epoch_samples)
                padded += hi - pad_lo
                pad_ids.append(view.sample_ids(epoch, pad_lo, hi))
    cover = np.bincount(ds.sample_ids(epoch, 0, kept), minlength=ds.num_samples)
    dropped_tail = ds.epoch_samples - kept
    duplicates = int(np.sum(np.maximum(seen - cover, 0))) - padded
    skipped = int(np.sum(np.maximum(cover - seen, 0)))
    if "attention_mask" in ds.fields and pad_ids:
        tokens -= sum(int(np.count_nonzero(ds[int(i)]["attention_mask"])) for i in np.concatenate(pad_ids))
    index_tokens = int(sum(s["tokens"] for s in ds.shards))
    whole = (dropped_tail == 0 and ds.epoch_samples == ds.num_samples and ds.blend is None
             and "attention_mask" in ds.fields)
    tokens_match = tokens == index_tokens if whole else None
    return {
        "samples": ds.num_samples, "read": int(seen.sum()), "duplicates": duplicates, "skipped": skipped,
        "dropped_tail": dropped_tail, "padded": padded, "batches_per_rank": batches, "tokens": tokens,
        "index_tokens": index_tokens, "tokens_match": tokens_match,
        "ok": duplicates == 0 and skipped == 0 and tokens_match is not False and len(set(batches)) == 1,
    }  # fmt: skip
