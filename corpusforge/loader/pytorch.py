"""PyTorch side of the loader: an ``IterableDataset`` and a DataLoader that tracks consumption.

Imported only through ``corpusforge.loader.ShardDataset``, so NumPy/JAX users never need torch.
DataLoader workers each take every ``num_workers``-th rank batch; the DataLoader hands batches
out round-robin over workers, which restores the global order exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

try:
    import torch
    from torch.utils.data import DataLoader, IterableDataset, get_worker_info
except ImportError:
    raise ImportError("ShardDataset needs PyTorch: pip install 'corpusforge[torch]'") from None

from corpusforge.loader.dataset import ShardIterator


class ShardDataset(ShardIterator, IterableDataset):
    """``ShardIterator`` yielding dicts of torch tensors; use with ``ShardDataLoader``."""

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        if info is None:
            batches = self._iterate(0, 1, track=True)
        else:
            batches = self._iterate(info.id, info.num_workers, track=False)
        for batch in batches:
            yield {k: torch.from_numpy(v) for k, v in batch.items()}

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
        kwargs.setdefault("prefetch_factor", 2 if num_workers else None)
        super().__init__(dataset, batch_size=None, num_workers=num_workers, **kwargs)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:  # type: ignore[override]
        ds: ShardDataset = self.dataset  # type: ignore[assignment]
        if self.num_workers == 0:
            yield from super().__iter__()
            return
        epoch, start = ds._normalized()
        ds.epoch, ds.position = epoch, start
        ends = (end for end, span in ds.steps(ds.order(epoch), start) if span is not None)
        for batch in super().__iter__():
            ds.position = next(ends)
            yield batch
        ds.epoch, ds.position = epoch + 1, 0

    def state_dict(self) -> dict[str, Any]:
        return self.dataset.state_dict()  # type: ignore[attr-defined]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dataset.load_state_dict(state)  # type: ignore[attr-defined]
