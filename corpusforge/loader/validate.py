"""Check one epoch of the loader against the index: every sample read once, none skipped."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from corpusforge.loader.dataset import ShardIterator


def validate_epoch(ds: ShardIterator, epoch: int = 0, num_workers: int = 1) -> dict[str, Any]:
    """Read epoch ``epoch`` through every rank and worker of ``ds``'s layout and account for it.

    Returns counts: ``duplicates`` (reads beyond the first), ``skipped`` (samples never read,
    beyond the ``dropped_tail`` that ``drop_last`` leaves out), and, when the whole epoch was
    read, whether the non-padding tokens equal the index's ``tokens``; ``ok`` sums it up.
    """
    seen = np.zeros(ds.num_samples, dtype=np.int64)
    tokens = 0
    for rank in range(ds.world_size):
        view = copy.copy(ds)
        view.rank, view.return_sample_ids, view.prefetch = rank, True, 0
        view.epoch, view.position = epoch, 0
        for worker in range(num_workers):
            for batch in view._iterate(worker, num_workers, track=False):
                np.add.at(seen, batch["sample_id"], 1)
                if "attention_mask" in batch:
                    tokens += int(np.count_nonzero(batch["attention_mask"]))
    ends = [end for end, _ in ds.steps(ds.order(epoch), 0)]
    dropped_tail = ds.num_samples - (ends[-1] if ends else 0)
    duplicates = int(np.sum(np.maximum(seen - 1, 0)))
    skipped = int(np.count_nonzero(seen == 0)) - dropped_tail
    index_tokens = int(sum(s["tokens"] for s in ds.shards))
    tokens_match = tokens == index_tokens if dropped_tail == 0 and "attention_mask" in ds.fields else None
    return {
        "samples": ds.num_samples, "read": int(seen.sum()), "duplicates": duplicates, "skipped": skipped,
        "dropped_tail": dropped_tail, "tokens": tokens, "index_tokens": index_tokens,
        "tokens_match": tokens_match, "ok": duplicates == 0 and skipped == 0 and tokens_match is not False,
    }  # fmt: skip
