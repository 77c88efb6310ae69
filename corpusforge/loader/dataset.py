"""``ShardIterator``: batches of NumPy arrays from a corpusforge output, resumable exactly.

Sample order is ``EpochOrder`` (seed, pass) and the only state is ``(epoch, position)``, the
number of samples of the epoch that all ranks together have consumed. Global step ``k`` covers a
fixed run of positions, so ranks and DataLoader workers only choose which steps and which slice
of a step they read: the global stream is the same for any number of ranks or workers at the same
global batch size. Every rank reads every step (equal work, so collectives never wait on a rank
that ran out). Positions at or past the epoch's length ``S`` are padding: they repeat position
``p - S``. This class is the JAX / plain-NumPy entry point; ``ShardDataset`` adds PyTorch.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge.loader.blend import Blend
from corpusforge.loader.order import ALGORITHMS, DEFAULT_BLOCK, EpochOrder
from corpusforge.loader.reader import open_shard
from corpusforge.loader.store import INDEX_NAME, ShardStore, shard_files
from corpusforge.shards.formats import format_class, format_names
from corpusforge.tokenize.special import special_of_index

STATE_VERSION = 1
Span = tuple[int, int]
__all__ = ["INDEX_NAME", "ShardIterator"]


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
    from the current position (all of them with ``infinite``); ``state_dict`` /
    ``load_state_dict`` save and restore it. ``path`` may be a URL (``s3://``, ``gs://``,
    ``hf://``, ``https://``, ``file://``): shards are then streamed through a bounded cache.
    """

    def __init__(
        self,
        path: str | Path | Mapping[str | Path, float],
        split: str = "train",
        batch_size: int = 8,
        max_tokens: int | None = None,
        seed: int = 0,
        shuffle: bool = True,
        shuffle_block_size: int | None = None,
        drop_last: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        fields: list[str] | None = None,
        prefetch: int = 2,
        return_sample_ids: bool = False,
        shuffle_algo: str = "py1br",
        pad_last: bool = False,
        samples_per_epoch: int | None = None,
        infinite: bool = False,
        verify_checksums: bool = False,
        cache_dir: str | Path | None = None,
        cache_limit: int | None = None,
        prefetch_shards: int = 2,
    ):
        blended = isinstance(path, Mapping)
        sources = list(path.items()) if isinstance(path, Mapping) else [(path, 1.0)]
        self.stores = [ShardStore(p, cache_dir and Path(cache_dir) / str(i) if blended else cache_dir, cache_limit,
                                  prefetch_shards) for i, (p, _) in enumerate(sources)]
        self.store = self.stores[0]
        self.root = self.store.root if self.store.root is not None else Path(str(sources[0][0]))
        where = self.store.describe()
        self.shards, self.shard_source, self.source_shards, index = [], [], [], {}
        for i, store in enumerate(self.stores):
            here = store.read_index()
            index = index or here  # the first output's tensors and layout stand for all
            fmt = format_class(here.get("format", "safetensors"))
            if not fmt.loader_readable:  # a write-only format: fail here, not in a worker mid-epoch
                readable = [n for n in format_names() if format_class(n).loader_readable]
                raise ValueError(f"{store.describe()}: shard format {fmt.name!r} is write-only (loader_readable is "
                                 f"False); the loader reads {', '.join(readable)}")
            mine = [s for s in here["shards"] if s["split"] == split]
            if not mine:
                have = sorted({s["split"] for s in here["shards"]})
                raise ValueError(f"{store.describe()}: split {split!r} has no shards; splits with shards: {have}")
            if int(here["sequence_length"]) != int(index["sequence_length"]):
                raise ValueError(f"{store.describe()}: sequence_length {here['sequence_length']} differs from "
                                 f"{index['sequence_length']} of {where}; blended outputs must share it")
            self.sequence_length = int(index["sequence_length"])
            self.source_shards.append(list(range(len(self.shards), len(self.shards) + len(mine))))
            self.shards += mine
            self.shard_source += [i] * len(mine)
        self.source_samples = [sum(int(self.shards[k]["samples"]) for k in ks) for ks in self.source_shards]
        self.blend_weights = [float(w) for _, w in sources] if blended else None
        self.blend = Blend(self.blend_weights, seed) if self.blend_weights else None
        d_rank, d_world = _distributed_defaults()
        self.rank = d_rank if rank is None else rank
        self.world_size = d_world if world_size is None else world_size
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside world_size {self.world_size}")
        if batch_size < 1 or (max_tokens is not None and max_tokens < 1):
            raise ValueError("batch_size and max_tokens must be positive")
        if shuffle_algo not in ALGORITHMS:
            raise ValueError(f"unknown shuffle_algo {shuffle_algo!r}; known: {', '.join(ALGORITHMS)}")
        self.split, self.seed, self.shuffle, self.algo = split, seed, shuffle, shuffle_algo
        self.block_size = DEFAULT_BLOCK[shuffle_algo] if shuffle_block_size is None else shuffle_block_size
        self.batch_size, self.max_tokens, self.drop_last, self.pad_last = batch_size, max_tokens, drop_last, pad_last
        self.sizes = [int(s["samples"]) for s in self.shards]
        self.first_id = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.num_samples = int(sum(self.sizes))
        if samples_per_epoch is not None and samples_per_epoch < 1:
            raise ValueError(f"samples_per_epoch must be positive, got {samples_per_epoch}")
        self.epoch_samples = samples_per_epoch or self.num_samples
        self.samples_per_epoch, self.infinite, self.verify_checksums = samples_per_epoch, infinite, verify_checksums
        if max_tokens is None and drop_last and self.epoch_samples < self.global_batch_size:
            raise ValueError(f"{where}: split {split!r} has {self.epoch_samples} samples per epoch, fewer than one "
                             f"global batch of {self.global_batch_size} (batch_size {batch_size} x world_size "
                             f"{self.world_size}): drop_last would give no batches; lower batch_size or pass "
                             "drop_last=False")
        self.derive = tuple(k for k in ("position_ids", "document_ids") if k in index.get("dtypes", {}))
        self.media_layout = index.get("media")  # multimodal runs: modality_mask of id-only formats
        self.special = special_of_index(index)  # the run's pad id and masked labels (id-only formats)
        self.fields = list(fields) if fields is not None else list(self._open(0))
        self.prefetch, self.return_sample_ids = prefetch, return_sample_ids
        self.epoch, self.position = 0, 0
        # Shards one block of the shuffle touches at most, kept open together (memory maps: no copy).
        per_block = -(-self.block_size * 5 // 4 * len(self.sizes) // self.num_samples) + 2
        self.open_limit = max(4, min(len(self.shards), per_block))
        if cache_limit is not None and self.store.root is None:  # open shards cannot be evicted
            fit = cache_limit // max(int(s.get("bytes") or 1) for s in self.shards)
            self.open_limit = max(1, min(self.open_limit, fit - 1))
            if shuffle_block_size is None and shuffle_algo == "py1br":
                # A block's shards are consecutive in the epoch's shard order: let two blocks fit the cache.
                self.block_size = max(1, (fit - 1) // 2) * max(1, self.num_samples // len(self.sizes))

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.world_size

    # -- state -------------------------------------------------------------------------------------

    def state_dict(self, batches: int | None = None) -> dict[str, Any]:
        """Where the consumer is: a handful of integers, valid for any worker or rank count.

        ``batches``: the state after that many more batches of this rank from the current
        position, for a consumer that counts them itself (a stock ``DataLoader`` with workers).
        """
        epoch, position = self._normalized()
        left = batches or 0
        while left:
            if self.max_tokens is None:  # fixed steps: no need to walk them
                g, room = self.global_batch_size, self.epoch_samples - position
                take = min(left, room // g if self.drop_last else -(-room // g))
                position, left = min(position + take * g, self.epoch_samples), left - take
            else:
                for end, _ in islice(self.steps(epoch, position), left):
                    position, left = end, left - 1
            if self._epoch_done(position):
                epoch, position = epoch + 1, 0
            if not self.infinite:  # one iter() is one epoch: a count past its end stops there
                break
        return {
            "version": STATE_VERSION, "epoch": epoch, "position": position, "seed": self.seed,
            "split": self.split, "num_samples": self.num_samples, "shuffle": self.shuffle,
            "shuffle_algo": self.algo, "shuffle_block_size": self.block_size, "max_tokens": self.max_tokens,
            "samples_per_epoch": self.epoch_samples, "blend_weights": self.blend_weights,
            "global_batch_size": None if self.max_tokens else self.global_batch_size,
        }  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``; the order settings must match, the worker/rank count and the
        global batch size (ramp-up) may not (token-budget batching must keep ``max_tokens``)."""
        mine = self.state_dict()
        state = {"shuffle_algo": "shard_block", "samples_per_epoch": state.get("num_samples"), "blend_weights": None,
                 **state}  # written before these settings existed
        for key in ("version", "seed", "split", "num_samples", "shuffle", "shuffle_algo", "shuffle_block_size",
                    "max_tokens", "samples_per_epoch", "blend_weights"):
            if state.get(key) != mine[key]:
                raise ValueError(f"loader state does not fit this dataset: {key} is {state.get(key)!r} "
                                 f"in the state but {mine[key]!r} here")
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

    def set_epoch(self, epoch: int) -> None:
        """Start epoch ``epoch`` from its first sample (the hook trainers call between epochs)."""
        self.epoch, self.position = epoch, 0

    # -- order ---------------------------------------------------------------------------------------

    def order(self, data_pass: int, source: int = 0) -> EpochOrder:
        """The sample order of one pass over a source's split (an epoch is a pass unless
        ``samples_per_epoch`` or a blend say otherwise)."""
        cache = self.__dict__.setdefault("_order_cache", {})
        if (source, data_pass) not in cache:
            for key in [k for k in cache if k[0] == source]:
                del cache[key]
            sizes = [self.sizes[k] for k in self.source_shards[source]]
            seed = self.seed if source == 0 else self.seed + 7919 * source  # each source its own shuffle
            cache[source, data_pass] = EpochOrder(sizes, seed, data_pass, self.shuffle, self.block_size, self.algo)
        return cache[source, data_pass]

    def _stream(self, source: int, t: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row) of indices ``[t, t + n)`` of one source's stream of passes."""
        N = self.source_samples[source]
        first = self.source_shards[source][0]
        shards, rows = [], []
        while n:
            data_pass, off = divmod(t, N)
            take = min(n, N - off)
            sh, r = self.order(data_pass, source).locate(off, off + take)
            shards.append(sh + first)
            rows.append(r)
            t, n = t + take, n - take
        return np.concatenate(shards), np.concatenate(rows)

    def _locate(self, epoch: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(shard, row) of epoch positions ``[lo, hi)``; positions past the epoch wrap to its start."""
        S = self.epoch_samples
        shards, rows = [], []
        pos = lo
        while pos < hi:
            p = pos % S
            take = min(hi - pos, S - p)
            t = epoch * S + p  # index in the stream: passes laid end to end (or the blend of sources)
            if self.blend is None:
                sh, r = self._stream(0, t, take)
            else:
                src, k = self.blend.assign(t, t + take)
                sh, r = np.empty(take, np.int64), np.empty(take, np.int64)
                for s in np.unique(src).tolist():
                    at = np.flatnonzero(src == s)  # a source's indices run consecutively inside a range
                    sh[at], r[at] = self._stream(s, int(k[at[0]]), len(at))
            shards.append(sh)
            rows.append(r)
            pos += take
        if not shards:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(shards), np.concatenate(rows)

    def sample_ids(self, epoch: int, lo: int, hi: int) -> np.ndarray:
        """Split sample numbers (shard order, then row) of epoch positions ``[lo, hi)``."""
        shards, rows = self._locate(epoch, lo, hi)
        return self.first_id[shards] + rows

    def _epoch_done(self, position: int) -> bool:
        if self.max_tokens is None and self.drop_last:
            return self.epoch_samples - position < self.global_batch_size
        return position >= self.epoch_samples

    def _normalized(self) -> tuple[int, int]:
        """A position at (or past) the end of an epoch is the start of the next one."""
        if self._epoch_done(self.position):
            return self.epoch + 1, 0
        return self.epoch, self.position

    def steps(self, epoch: int, start: int) -> Iterator[tuple[int, Span]]:
        """Global steps from ``start``: (position after the step, this rank's span of positions).

        The last, partial step (``drop_last=False``) is cut evenly across ranks, or with
        ``pad_last`` filled to a full global batch; either way every rank gets a batch, a rank
        left without samples repeating ones from the start of the epoch.
        """
        S, W, r = self.epoch_samples, self.world_size, self.rank
        if self.max_tokens is not None:
            yield from self._token_steps(epoch, start)
            return
        g, b = self.global_batch_size, self.batch_size
        pos = start
        while not self._epoch_done(pos):
            take = min(g, S - pos)
            if take == g or self.pad_last:
                span = (pos + r * b, pos + r * b + b)
            else:
                q, extra = divmod(take, W)
                if q == 0 and r >= extra:
                    span = (S + r - extra, S + r - extra + 1)  # padding: a sample from the epoch start
                else:
                    lo = pos + r * q + min(r, extra)
                    span = (lo, lo + q + (r < extra))
            pos += take
            yield pos, span

    def _token_steps(self, epoch: int, start: int) -> Iterator[tuple[int, Span]]:
        S, W = self.epoch_samples, self.world_size
        group: list[Span] = []
        for span in self._token_spans(epoch, start):
            group.append(span)
            if len(group) == W:
                yield span[1], group[self.rank]
                group = []
        if group and not self.drop_last:
            firsts = list(islice(self._token_spans(epoch, 0), W))
            pad = [(lo + S, hi + S) for lo, hi in firsts]
            filled = group + [pad[i % len(pad)] for i in range(W - len(group))]
            yield group[-1][1], filled[self.rank]

    def _token_spans(self, epoch: int, start: int) -> Iterator[Span]:
        """Greedy token-budget batches; greedy restarts identically at any batch boundary."""
        assert self.max_tokens is not None
        lo, count, longest = start, 0, 0
        for at in range(start, self.epoch_samples, 1 << 14):
            shards, rows = self._locate(epoch, at, min(self.epoch_samples, at + (1 << 14)))
            lengths = np.empty(len(rows), np.int64)
            for s in np.unique(shards).tolist():
                mask = shards == s
                lengths[mask] = self._lengths(s)[rows[mask]]
            for n in lengths.tolist():
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
            cache[shard] = np.count_nonzero(mask, axis=1).astype(np.int32)  # 4 bytes a sample, kept per shard
        return cache[shard]

    # -- sizes and random access -----------------------------------------------------------------

    def __len__(self) -> int:
        """Batches this rank reads per epoch (the same on every rank)."""
        if self.max_tokens is not None:
            raise TypeError("len() of a max_tokens loader is not known before reading its epoch")
        if self.infinite:
            raise TypeError("an infinite loader has no len(); len() of one epoch is that of infinite=False")
        g, S = self.global_batch_size, self.epoch_samples
        return S // g if self.drop_last else -(-S // g)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i`` of the split (shard order, then row), as arrays of shape ``(length,)``."""
        if not -self.num_samples <= i < self.num_samples:
            raise IndexError(f"sample {i} is outside the {self.num_samples} samples of split {self.split!r}")
        i %= self.num_samples
        shard = int(np.searchsorted(self.first_id, i, side="right")) - 1
        t = self._open(shard)
        return {f: _widen(t[f][i - int(self.first_id[shard])]) for f in self.fields}

    # -- reading -------------------------------------------------------------------------------------

    def _open(self, shard: int) -> dict[str, np.ndarray]:
        cache: OrderedDict[int, dict[str, np.ndarray]] = self.__dict__.setdefault("_open_cache", OrderedDict())
        if shard in cache:
            cache.move_to_end(shard)
            return cache[shard]
        info = self.shards[shard]
        store = self.stores[self.shard_source[shard]]
        path = store.path(info)
        if self.verify_checksums:
            self._verify(info, path, store.describe())
        try:
            tensors = open_shard(path, self.sequence_length, self.derive, self.media_layout, self.special)
        except FileNotFoundError:
            raise FileNotFoundError(f"{store.describe()}: shard {info['path']} listed in the index is missing") from None
        tensors = {k: np.asarray(v) for k, v in tensors.items()}  # plain views: np.memmap indexing is slow
        n = len(next(iter(tensors.values())))
        if n != info["samples"]:
            raise ValueError(f"{info['path']}: holds {n} samples but the index says {info['samples']}")
        cache[shard] = tensors
        while len(cache) > getattr(self, "open_limit", 4):
            old, _ = cache.popitem(last=False)
            self.stores[self.shard_source[old]].release(self.shards[old])
        return tensors

    def _verify(self, info: dict[str, Any], path: Path, where: str) -> None:
        """sha256 of each of the shard's files against the index, once per process."""
        from corpusforge.state import file_sha256

        done = self.__dict__.setdefault("_verified_cache", set())
        if (where, info["path"]) in done:
            return
        expected = [info.get("sha256"), *(s.get("sha256") for s in info.get("sidecars", []))]
        for name, want in zip(shard_files(info), expected, strict=True):
            local = path.parent / Path(name).name
            if want and file_sha256(local) != want:
                raise ValueError(f"{where}: {name} does not match its sha256 in the index "
                                 "(corrupt or changed since the run)")
        done.add((where, info["path"]))

    def _read(self, epoch: int, span: Span) -> dict[str, np.ndarray]:
        shards, rows = self._locate(epoch, *span)
        batch: dict[str, np.ndarray] = {}
        for s in np.unique(shards).tolist():
            t = self._open(s)
            mask = shards == s
            for f in self.fields:
                part = t[f][rows[mask]]
                if f not in batch:
                    batch[f] = np.empty((len(rows), *part.shape[1:]), dtype=_wide_dtype(part.dtype))
                batch[f][mask] = part
        if self.max_tokens is not None:
            longest = int(max(self._lengths(s)[rows[shards == s]].max() for s in np.unique(shards).tolist()))
            batch = {f: (a[:, :longest] if a.ndim == 2 else a) for f, a in batch.items()}
        if self.return_sample_ids:
            batch["sample_id"] = self.first_id[shards] + rows
        return batch

    def _epochs(self) -> Iterator[tuple[int, int]]:
        """(epoch, start position) of each epoch this ``iter()`` reads: one, or all with ``infinite``."""
        epoch, start = self._normalized()
        while True:
            yield epoch, start
            if not self.infinite:
                return
            epoch, start = epoch + 1, 0

    def _iterate(self, worker: int, num_workers: int, track: bool) -> Iterator[dict[str, np.ndarray]]:
        def produce() -> Iterator[tuple[int, int, dict[str, np.ndarray]]]:
            j = 0  # global step count from the start position, across epochs: the DataLoader's round-robin
            for epoch, start in self._epochs():
                any_step = False
                for end, span in self.steps(epoch, start):
                    any_step, j = True, j + 1
                    if (j - 1) % num_workers == worker:
                        if any(store.root is None for store in self.stores):
                            self._prefetch_ahead(epoch, span)
                        yield epoch, end, self._read(epoch, span)
                if not any_step and start == 0:
                    raise ValueError(f"{self.store.describe()}: split {self.split!r} gives no batch in an epoch: "
                                     f"its {self.epoch_samples} samples fill fewer than world_size "
                                     f"{self.world_size} token-budget batches; pass drop_last=False")

        items = produce() if self.prefetch <= 0 else _prefetched(produce(), self.prefetch)
        epoch = self._normalized()[0]
        for epoch, end, batch in items:
            if track:
                self.epoch, self.position = epoch, end
            yield batch
        if track:
            self.epoch, self.position = epoch + 1, 0

    def _prefetch_ahead(self, epoch: int, span: Span) -> None:
        """Streaming: ask the store for the shards of the samples after this batch."""
        shards, _ = self._locate(epoch, span[1], span[1] + 4 * self.global_batch_size)
        _, first = np.unique(shards, return_index=True)
        for k in shards[np.sort(first)][: self.store.prefetch].tolist():
            self.stores[self.shard_source[k]].ahead([self.shards[k]])

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return self._iterate(0, 1, track=True)

    def __getstate__(self) -> dict[str, Any]:
        # Memory maps and caches stay behind when a DataLoader worker receives a copy.
        return {k: v for k, v in self.__dict__.items() if not k.endswith("_cache")}


def _wide_dtype(dtype: np.dtype) -> np.dtype:
    """uint16 token storage is read as int32, the dtype every consumer (torch included) takes."""
    return np.dtype(np.int32) if dtype == np.uint16 else dtype


def _widen(a: np.ndarray) -> np.ndarray:
    return a.astype(np.int32) if a.dtype == np.uint16 else a


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
