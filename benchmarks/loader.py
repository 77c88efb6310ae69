"""Loader figures: tokens/s by DataLoader workers beside a plain torch DataLoader over a memory map,
shuffle quality beside a global permutation, time to first batch from S3 (moto) and on resume,
memory per worker.

    python benchmarks/loader.py OUTPUT_OR_CORPUS [--synthetic N] [--sequence-length 2048] [--batch-size 16]
        [--seconds 5] [--workers 0 2 4] [--quality-output OUT] [--no-s3]

OUTPUT_OR_CORPUS is a corpusforge output folder (with shard_index.json) or raw text, which is first
turned into shards (no curation steps, BPE vocab 8000). ``--synthetic N`` instead writes N random
samples with the real ShardWriter into OUTPUT_OR_CORPUS (a new folder). Token slots are counted
(samples x sequence_length), as a trainer consumes them, after one untimed epoch (page cache warm).

- ``tokens_per_s``: ``ShardDataset(...).loader(num_workers=w)`` (the default cross-shard shuffle,
  every tensor) and ``plain_memmap``: a stock ``torch.utils.data.DataLoader`` over one
  ``np.memmap`` of the same ``input_ids`` (``(samples, length)`` int32, random batches by a
  ``BatchSampler``), the ceiling of torch's own transfer; ``input_ids_only`` is ours with that
  one tensor, the like-for-like comparison.
- ``shuffle_quality``: ``corpusforge.loader.quality.shuffle_quality`` of each algorithm on
  ``--quality-output`` (an output of several source files; the default builds one from the
  Gutenberg books in shared/data). MosaicML Streaming's own shuffle is not run here: it needs
  its own 6 GB venv (torch 2.14.1 + torchvision), see docs/loader.md.
- ``s3``: the output uploaded to a moto S3 server on 127.0.0.1, then seconds from
  ``ShardIterator("s3://...")`` to its first batch, cold and resumed at 50 % of the epoch, with
  a cache of a quarter of the split.
- ``worker_memory_mb``: peak USS (pages of its own, not the shared shard maps) of each worker
  while a 2-worker loader reads, and the main process's RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from corpusforge import run
from corpusforge.loader import ShardDataset, ShardIterator
from corpusforge.loader.quality import shuffle_quality

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def loader_tokens_per_s(root: Path, workers: int, seconds: float, **kw: Any) -> float:
    loader = ShardDataset(root, infinite=True, **kw).loader(num_workers=workers)
    tokens, t0 = 0, None
    for i, batch in enumerate(loader):
        if i == 2 * max(1, workers):  # start the clock once the workers are up
            t0 = time.perf_counter()
        elif t0 is not None:
            tokens += batch["input_ids"].numel()
            if time.perf_counter() - t0 >= seconds:
                break
    return tokens / (time.perf_counter() - t0)


def plain_memmap_tokens_per_s(rows: Path, shape: tuple[int, int], workers: int, seconds: float,
                              batch_size: int) -> float:
    import torch
    from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler

    class Memmap(Dataset):
        def __init__(self) -> None:
            self.arr: np.ndarray | None = None

        def __len__(self) -> int:
            return shape[0]

        def __getitem__(self, idx: list[int]) -> torch.Tensor:
            if self.arr is None:
                self.arr = np.memmap(rows, dtype=np.int32, mode="r", shape=shape)
            return torch.from_numpy(self.arr[np.sort(idx)])

    ds = Memmap()
    sampler = BatchSampler(RandomSampler(ds, replacement=True, num_samples=10**9), batch_size, drop_last=True)
    loader = DataLoader(ds, sampler=sampler, batch_size=None, num_workers=workers,
                        prefetch_factor=2 if workers else None)
    tokens, t0 = 0, None
    for i, batch in enumerate(loader):
        if i == 2 * max(1, workers):
            t0 = time.perf_counter()
        elif t0 is not None:
            tokens += batch.numel()
            if time.perf_counter() - t0 >= seconds:
                break
    return tokens / (time.perf_counter() - t0)


def dump_input_ids(root: Path, dest: Path) -> tuple[int, int]:
    ds = ShardIterator(root, batch_size=4096, shuffle=False, drop_last=False, fields=["input_ids"], prefetch=0)
    with open(dest, "wb") as fh:
        for batch in ds:
            fh.write(np.ascontiguousarray(batch["input_ids"], dtype=np.int32).tobytes())
    return ds.num_samples, ds.sequence_length


def worker_memory(root: Path, seconds: float, **kw: Any) -> dict[str, Any]:
    import psutil

    me = psutil.Process()
    peaks: dict[int, float] = {}
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for child in me.children():
                with contextlib.suppress(psutil.Error):
                    peaks[child.pid] = max(peaks.get(child.pid, 0.0), child.memory_full_info().uss / 2**20)
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    loader_tokens_per_s(root, 2, seconds, **kw)
    stop.set()
    thread.join()
    return {"workers_peak_uss_mb": sorted(round(v, 1) for v in peaks.values()),
            "main_rss_mb": round(me.memory_info().rss / 2**20, 1)}


def s3_first_batch(root: Path, **kw: Any) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import os

    import fsspec

    from tests.ingest.test_s3 import moto_s3

    with moto_s3() as env, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(env)
        fsspec.filesystem("s3").clear_instance_cache()
        fs = fsspec.filesystem("s3")
        fs.mkdir("bench")
        fs.put(str(root) + "/", "bench/out/", recursive=True)
        local = ShardIterator(root, **kw)
        limit = sum(s["bytes"] for s in local.shards) // 4
        out: dict[str, Any] = {"cache_limit_bytes": limit}
        for name, position in (("cold", 0), ("resume_at_50pct", local.num_samples // 2)):
            t0 = time.perf_counter()
            ds = ShardIterator("s3://bench/out", cache_dir=Path(tmp) / name, cache_limit=limit, **kw)
            g = ds.global_batch_size
            ds.load_state_dict({**ds.state_dict(), "position": position // g * g})
            next(iter(ds))
            out[f"first_batch_s_{name}"] = round(time.perf_counter() - t0, 3)
            out[f"fetched_bytes_{name}"] = ds.store.fetched_bytes
        return out


def synthetic(root: Path, samples: int, length: int, shard_samples: int) -> None:
    from corpusforge.shards.index import finalize_shards
    from corpusforge.shards.writer import BYTES_PER_TOKEN, ShardWriter

    rng = np.random.default_rng(0)
    writer = ShardWriter(root / "_work" / "t000000", length, BYTES_PER_TOKEN * length * shard_samples, {})
    for start in range(0, samples, 1024):
        writer.add(rng.integers(16, 32_000, size=(min(1024, samples - start), length), dtype=np.int32))
    finalize_shards(root, [{"train": writer.close()}], ["train"], {"format": "safetensors", "sequence_length": length})


def books_output(dest: Path) -> Path:
    run({"sources": [{"path": str(DATA / "prose" / "gutenberg"), "text_unit": "paragraph"}], "steps": [],
         "tokenizer": {"vocab_size": 2000},
         "sharding": {"sequence_length": 128, "splits": {"train": 1.0}, "max_shard_bytes": 200_000}},
        output=str(dest), workers=1)  # fmt: skip
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--sequence-length", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2, 4])
    ap.add_argument("--synthetic", type=int, default=0, help="write this many random samples first")
    ap.add_argument("--shard-samples", type=int, default=256)
    ap.add_argument("--quality-output", default=None, help="an output of several source files (default: built)")
    ap.add_argument("--no-s3", action="store_true", help="skip the moto S3 figures")
    args = ap.parse_args()
    root = Path(args.path)
    tmp = Path(tempfile.mkdtemp(prefix="cf-bench-loader-"))
    if args.synthetic:
        synthetic(root, args.synthetic, args.sequence_length, args.shard_samples)
    elif not (root / "shard_index.json").exists():
        out = tmp / "out"
        run({"sources": [{"path": str(root), "text_unit": "paragraph"}], "steps": [],
             "tokenizer": {"vocab_size": 8000},
             "sharding": {"sequence_length": args.sequence_length, "splits": {"train": 1.0},
                          "max_shard_bytes": 4_000_000}}, output=str(out))  # fmt: skip
        root = out
    index = json.loads((root / "shard_index.json").read_text())
    kw = {"batch_size": args.batch_size, "seed": 0}
    for _ in ShardIterator(root, prefetch=0, **kw):  # one untimed epoch: page cache warm for every variant
        pass
    shape = dump_input_ids(root, tmp / "rows.i32")
    result: dict[str, Any] = {
        "shards": index["totals"]["shards"], "samples": index["totals"]["samples"],
        "sequence_length": index["sequence_length"], "batch_size": args.batch_size, "tokens_per_s": {},
    }  # fmt: skip
    for w in args.workers:
        result["tokens_per_s"][f"workers_{w}"] = {
            "corpusforge_all_tensors": round(loader_tokens_per_s(root, w, args.seconds, **kw)),
            "corpusforge_input_ids_only": round(loader_tokens_per_s(root, w, args.seconds, fields=["input_ids"], **kw)),
            "plain_memmap": round(plain_memmap_tokens_per_s(tmp / "rows.i32", shape, w, args.seconds,
                                                            args.batch_size)),
        }  # fmt: skip
    result["worker_memory_mb"] = worker_memory(root, args.seconds, **kw)
    quality_root = Path(args.quality_output) if args.quality_output else books_output(tmp / "books")
    result["shuffle_quality"] = {
        name: shuffle_quality(ShardIterator(quality_root, batch_size=16, **opts))
        for name, opts in (("py1br_default", {}), ("py1br_block_4096", {"shuffle_block_size": 4096}),
                           ("shard_block", {"shuffle_algo": "shard_block"}), ("unshuffled", {"shuffle": False}))
    }  # fmt: skip
    if not args.no_s3:
        result["s3"] = s3_first_batch(root, **kw)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
