"""``ShardIterator``: batches of NumPy arrays from a corpusforge output, resumable exactly.

Sample order is ``EpochOrder`` (seed, epoch) and the only state is ``(epoch, position)``, the
number of samples of the epoch that all ranks together have consumed. Global step ``k`` covers a
fixed run of positions, so ranks and DataLoader workers only choose which steps and which slice
of a step they read: the global stream is the same for any number of ranks or workers at the same
global batch size. This class is the JAX / plain-NumPy entry point; ``ShardDataset`` adds PyTorch.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.loader.order import EpochOrder
from corpusforge.loader.reader import open_shard
from corpusforge.remote import is_url
from corpusforge.state import read_json
from corpusforge.tokenize.special import special_of_index

INDEX_NAME = "shard_index.json"
STATE_VERSION = 1
Span = tuple[int, int]


def _distributed_defaults() -> tuple[int, int]:
    """(rank, world_size) from torch.distributed when a process group is up, else (0, 1)."""
    torch = sys.modules.get("torch")  # never import torch just to ask
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ShardIterator:
    """Iterate one split of ``<path>/shard_index.json`` as dicts of ``(batch, length)`` arrays.

    ``batch_size`` is per rank (the global batch is ``batch_size * world_size``). With
    ``max_tokens`` batches are dynamic instead: consecutive samples while ``count * longest``
    stays within ``max_tokens``, trimmed to the longest sample. Each ``iter()`` is one epoch
    from the current position; ``state_dict`` / ``load_state_dict`` save and restore it.
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        batch_size: int = 8,
        max_tokens: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_block_size: int = 256,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        fields: list[str] | None = None,
        prefetch: int = 2,
        return_sample_ids: bool = False,
    ):
        if is_url(path):  # s3://... : the shards are copied to this machine's mirror of the output first
            from corpusforge.remote import local_copy, mirror_dir

            path = local_copy(str(path), mirror_dir(str(path)))
        self.root = Path(path)
        index = read_json(self.root / INDEX_NAME)
        self.shards = [s for s in index["shards"] if s["split"] == split]
        if not self.shards:
            have = sorted({s["split"] for s in index["shards"]})
            raise ValueError(f"{self.root}: split {split!r} has no shards; splits with shards: {have}")
        d_rank, d_world = _distributed_defaults()
        self.rank = d_rank if rank is None else rank
        self.world_size = d_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world_size {self.world_size}")
        if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
            raise ValueError("batch_size and max_tokens must be positive")
        self.split, self.seed, self.shuffle, self.block_size = split, seed, shuffle, shuffle_block_size
        self.batch_size, self.max_tokens, self.drop_last = batch_size, max_tokens, drop_last
        self.sizes = [int(s["samples"]) for s in self.shards]
        self.first_id = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.num_samples = int(sum(self.sizes))
        self.sequence_length = int(index["sequence_length"])
        self.derive = tuple(k for k in ("position_ids", "document_ids") if k in index.get("dtypes", {}))
        self.media_layout = index.get("media")  # multimodal runs: modality_mask of id-only formats
        self.special = special_of_index(index)  # the run's pad id and masked labels (id-only formats)
        self.fields = list(fields) if fields is not None else list(self._open(0))
        self.prefetch, self.return_sample_ids = prefetch, return_sample_ids
        self.epoch, self.position = 0, 0

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Where the consumer is: a handful of integers, valid for any worker or rank count."""
        epoch, position = self._normalized()
        return {
            "version": STATE_VERSION, "epoch": epoch, "position": position, "seed": self.seed,
            "split": self.split, "num_samples": self.num_samples, "shuffle": self.shuffle,
            "shuffle_block_size": self.block_size, "max_tokens": self.max_tokens,
            "global_batch_size": None if self.max_tokens else self.global_batch_size,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; the order settings must match, the worker/rank count may not."""
        mine = self.state_dict()
        for key in ("version", "seed", "split", "num_samples", "shuffle", "shuffle_block_size", "max_tokens",
                    "global_batch_size"):
            if state.get(key) != mine[key]:
                raise ValueError(f"loader state does not fit this dataset: {key} is {state.get(key)!r} "
                                 f"in the state but {mine[key]!r} here")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self.position = epoch, 0

    # -- order ---------------------------------------------------------------------------------------

    def order(self, epoch: int) -> EpochOrder:
        return EpochOrder(self.sizes, self.seed, epoch, self.shuffle, self.block_size)

    def _epoch_end(self) -> int:
        if self.max_tokens is None and self.drop_last:
            return self.num_samples // self.global_batch_size * self.global_batch_size
        return self.num_samples

    def _normalized(self) -> tuple[int, int]:
        """A position at (or past) the end of an epoch is the start of the next one."""
        if self.position >= self._epoch_end():
            return self.epoch + 1, 0
        return self.epoch, self.position

    def steps(self, order: EpochOrder, start: int) -> Iterator[tuple[int, Span | None]]:
        """Global steps from ``start``: (position after the step, this rank's span or None)."""
        end = self._epoch_end()
        if self.max_tokens is None:
            g, b = self.global_batch_size, self.batch_size
            if start % g:
                raise ValueError(f"position {start} is not at a step boundary of global batch size {g}")
            for k in range(start // g, -(-end // g)):
                lo = k * g + self.rank * b
                hi = min(lo + b, end)
                yield min((k + 1) * g, end), ((lo, hi) if lo < hi else None)
            return
        group: list[Span] = []
        for span in self._token_spans(order, start):
            group.append(span)
            if len(group) == self.world_size:
                yield span[1], group[self.rank]
                group = []
        if group and not self.drop_last:
            yield group[-1][1], (group[self.rank] if self.rank < len(group) else None)

    def _token_spans(self, order: EpochOrder, start: int) -> Iterator[Span]:
        """Greedy token-budget batches; greedy restarts identically at any batch boundary."""
        lo, count, longest = start, 0, 0
        for shard, rows in order.iter_segments(start, order.total):
            for n in self._lengths(shard)[rows].tolist():
                m = max(longest, n)
                if count and (count + 1) * m > self.max_tokens:
                    yield lo, lo + count
                    lo, count, m = lo + count, 0, n
                count, longest = count + 1, m
        if count:
            yield lo, lo + count

    def _lengths(self, shard: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_length_cache", {})
        if shard not in cache:
            t = self._open(shard)
            mask = t["attention_mask"] if "attention_mask" in t else t["input_ids"] != 0
            cache[shard] = np.count_nonzero(mask, axis=1)
        return cache[shard]

    # -- reading -------------------------------------------------------------------------------------

    def _open(self, shard: int) -> dict[str, np.ndarray]:
        cache: OrderedDict[int, dict[str, np.ndarray]] = self.__dict__.setdefault("_open_cache", OrderedDict())
        if shard in cache:
            cache.move_to_end(shard)
            return cache[shard]
        info = self.shards[shard]
        tensors = open_shard(self.root / info["path"], self.sequence_length, self.derive, self.media_layout,
                             self.special)
        n = len(next(iter(tensors.values())))
        if n != info["samples"]:
            raise ValueError(f"{info['path']}: holds {n} samples but the index says {info['samples']}")
        cache[shard] = tensors
        if len(cache) > 4:
            cache.popitem(last=False)
        return tensors

    def _read(self, segments: list[tuple[int, np.ndarray]]) -> dict[str, np.ndarray]:
        parts: dict[str, list[np.ndarray]] = {f: [] for f in self.fields}
        for shard, rows in segments:
            t = self._open(shard)
            for f in self.fields:
                parts[f].append(t[f][rows])
        batch = {f: p[0] if len(p) == 1 else np.concatenate(p) for f, p in parts.items()}
        if self.max_tokens is not None:
            longest = int(max(self._lengths(s)[r].max() for s, r in segments))
            batch = {f: (a[:, :longest] if a.ndim == 2 else a) for f, a in batch.items()}
        if self.return_sample_ids:
            batch["sample_id"] = np.concatenate([self.first_id[s] + r for s, r in segments])
        return batch

    def _iterate(self, worker: int, num_workers: int, track: bool) -> Iterator[dict[str, np.ndarray]]:
        epoch, start = self._normalized()
        order = self.order(epoch)

        def produce() -> Iterator[tuple[int, dict[str, np.ndarray]]]:
            for j, (end, span) in enumerate(self.steps(order, start)):
                if j % num_workers == worker and span is not None:
                    yield end, self._read(order.segments(*span))

        items = produce() if self.prefetch <= 0 else _prefetched(produce(), self.prefetch)
        for end, batch in items:
            if track:
                self.epoch, self.position = epoch, end
            yield batch
        if track:
            self.epoch, self.position = epoch + 1, 0

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self._iterate(0, 1, track=True)

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps and caches stay behind when a DataLoader worker receives a copy.
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}


def _prefetched(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """Run ``items`` in a thread up to ``depth`` ahead; order is unchanged, errors re-raised."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for x in items:
                if not put(x):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(exc)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    try:
        while True:
            x = q.get()
            if x is done:
                return
            if isinstance(x, BaseException):
                raise x
            yield x
    finally:
        stop.set()
        thread.join()
