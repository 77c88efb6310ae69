"""PyTorch side of the loader: an ``IterableDataset`` and a DataLoader that tracks consumption.

Imported only through ``corpusforge.loader.ShardDataset``, so NumPy/JAX users never need torch.
DataLoader workers each take every ``num_workers``-th rank batch; the DataLoader hands batches
out round-robin over workers, which restores the global order exactly.

Resume under the loaders trainers build: ``ShardDataLoader`` (and Lightning, which saves any
loader's ``state_dict``) counts consumed batches itself; a stock ``DataLoader`` with workers
cannot tell its dataset what was consumed (workers read ahead), so its consumer passes the count,
``ds.state_dict(batches=N)``, as MosaicML Streaming takes ``num_samples``; HF ``Trainer`` and
``accelerate.skip_first_batches`` replay the epoch's first batches, which the fixed order makes
exact. Asking a dataset that workers read for a plain ``state_dict()`` is an error, not epoch 0.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import numpy as np

try:
    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info
except ImportError:
    raise ImportError("ShardDataset needs PyTorch: pip install 'corpusforge[torch]'") from None

from corpusforge.loader.dataset import ShardIterator


class ShardDataset(ShardIterator, IterableDataset):
    """``ShardIterator`` yielding dicts of torch tensors; use with ``ShardDataLoader``.

    ``yield_samples=True`` yields one sample at a time (the rank's batches in order), for
    loaders that batch themselves (HF ``Trainer``: ``per_device_train_batch_size`` must equal
    ``batch_size``); ``len()`` then counts samples.
    """

    def __init__(self, *args: Any, yield_samples: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if yield_samples and self.max_tokens is not None:
            raise ValueError("yield_samples needs fixed batches; it cannot be combined with max_tokens")
        self.yield_samples = yield_samples
        self.tracked_by_loader = False
        # Set by DataLoader workers (shared memory, inherited): the main process then knows that
        # its own position says nothing about what was consumed.
        self._read_by_workers = multiprocessing.RawValue("b", 0)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        if info is None:
            batches = self._iterate(0, 1, track=True)
        else:
            self._read_by_workers.value = 1
            batches = self._iterate(info.id, info.num_workers, track=False)
        for batch in batches:
            tensors = {k: torch.from_numpy(v) for k, v in batch.items()}
            if self.yield_samples:
                for i in range(len(next(iter(tensors.values())))):
                    yield {k: v[i] for k, v in tensors.items()}
            else:
                yield tensors

    def __len__(self) -> int:
        if not self.yield_samples or self.infinite:
            return super().__len__()
        S, g, b, W = self.epoch_samples, self.global_batch_size, self.batch_size, self.world_size
        full, tail = divmod(S, g)
        if self.drop_last or not tail:
            return full * b
        if self.pad_last:
            return (full + 1) * b
        q, extra = divmod(tail, W)
        return full * b + max(1, q + (self.rank < extra))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        return {k: torch.from_numpy(np.array(v)) for k, v in super().__getitem__(i).items()}  # a copy: maps are read-only

    def state_dict(self, batches: int | None = None) -> dict[str, Any]:
        if batches is None and self._read_by_workers.value and not self.tracked_by_loader:
            raise RuntimeError("DataLoader workers read this dataset, so its own position is not what was consumed: "
                               "pass the batches taken since the epoch began, ds.state_dict(batches=N), or iterate "
                               "ds.loader() (ShardDataLoader), which counts them")
        return super().state_dict(batches)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._read_by_workers.value = 0

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        self._read_by_workers.value = 0

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if multiprocessing.context.get_spawning_popen() is None:  # a shared value travels only to workers
            state["_read_by_workers"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._read_by_workers is None:
            self._read_by_workers = multiprocessing.RawValue("b", 0)

    def loader(self, num_workers: int = 0, **kwargs: Any) -> ShardDataLoader:
        return ShardDataLoader(self, num_workers=num_workers, **kwargs)


class ShardDataLoader(DataLoader):
    """A DataLoader over a ``ShardDataset`` whose ``state_dict`` is what the trainer consumed.

    Workers read ahead, so only the main process knows how many batches were taken; it advances
    the dataset's position by one global step per batch. ``persistent_workers`` is refused: a
    worker must start from the position of the epoch it serves.
    """

    def __init__(self, dataset: ShardDataset, num_workers: int = 0, **kwargs: Any):
        if kwargs.get("persistent_workers"):
            raise ValueError("ShardDataLoader does not support persistent_workers")
        if dataset.yield_samples:
            raise ValueError("ShardDataLoader batches nothing itself: build the ShardDataset without yield_samples")
        kwargs.setdefault("prefetch_factor", 2 if num_workers else None)
        dataset.tracked_by_loader = True
        super().__init__(dataset, batch_size=None, num_workers=num_workers, **kwargs)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:  # type: ignore[override]
        ds: ShardDataset = self.dataset  # type: ignore[assignment]
        if self.num_workers == 0:
            yield from super().__iter__()
            return
        last = ds._normalized()[0]
        marks = ((epoch, end) for epoch, start in ds._epochs() for end, _ in ds.steps(epoch, start))
        for batch in super().__iter__():
            last, ds.position = next(marks)
            ds.epoch = last
            yield batch
        ds.epoch, ds.position = last + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()  # type: ignore[attr-defined]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)  # type: ignore[attr-defined]
