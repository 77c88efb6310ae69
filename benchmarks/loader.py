"""Loader throughput (tokens/s, one process) and resume time at a late offset.

    python benchmarks/loader.py CORPUS_OR_OUTPUT [--sequence-length 2048] [--batch-size 16] [--seconds 5]

CORPUS_OR_OUTPUT is either a corpusforge output folder (with shard_index.json) or raw text,
which is first turned into shards (no curation steps, BPE vocab 8000). ``--synthetic N``
instead writes N random samples with the real ShardWriter into CORPUS_OR_OUTPUT (a new folder),
for a corpus larger than the test data. Token slots are counted
(samples x sequence_length), as a trainer consumes them, after one untimed epoch (warm page cache).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from corpusforge import run
from corpusforge.loader import ShardIterator


def throughput(root: Path, seconds: float, **kw) -> float:
    ds = ShardIterator(root, **kw)
    tokens, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for batch in ds:
            tokens += batch["input_ids"].size
            if time.perf_counter() - t0 >= seconds:
                break
    return tokens / (time.perf_counter() - t0)


def resume_seconds(root: Path, fraction: float, **kw) -> tuple[float, int]:
    ds = ShardIterator(root, **kw)
    g = ds.global_batch_size
    state = {**ds.state_dict(), "epoch": 7, "position": int(ds.num_samples * fraction) // g * g}
    t0 = time.perf_counter()
    fresh = ShardIterator(root, **kw)
    fresh.load_state_dict(state)
    next(iter(fresh))
    return time.perf_counter() - t0, state["position"]


def synthetic(root: Path, samples: int, length: int, shard_samples: int) -> None:
    from corpusforge.shards.index import finalize_shards
    from corpusforge.shards.writer import BYTES_PER_TOKEN, ShardWriter

    rng = np.random.default_rng(0)
    writer = ShardWriter(root / "_work" / "t000000", length, BYTES_PER_TOKEN * length * shard_samples, {})
    for start in range(0, samples, 1024):
        writer.add(rng.integers(16, 32_000, size=(min(1024, samples - start), length), dtype=np.int32))
    finalize_shards(root, [{"train": writer.close()}], ["train"], {"format": "safetensors", "sequence_length": length})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path")
    ap.add_argument("--sequence-length", type=int, default=2048)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--synthetic", type=int, default=0, help="write this many random samples first")
    ap.add_argument("--shard-samples", type=int, default=256)
    args = ap.parse_args()
    root = Path(args.path)
    if args.synthetic:
        synthetic(root, args.synthetic, args.sequence_length, args.shard_samples)
    elif not (root / "shard_index.json").exists():
        out = Path(tempfile.mkdtemp(prefix="cf-bench-loader-")) / "out"
        run({"sources": [{"path": str(root), "text_unit": "paragraph"}], "steps": [],
             "tokenizer": {"vocab_size": 8000},
             "sharding": {"sequence_length": args.sequence_length, "splits": {"train": 1.0},
                          "max_shard_bytes": 4_000_000}}, output=str(out))  # fmt: skip
        root = out
    index = json.loads((root / "shard_index.json").read_text())
    kw = {"batch_size": args.batch_size, "seed": 0}
    for _ in ShardIterator(root, prefetch=0, **kw):  # one untimed epoch: page cache warm for every variant
        pass
    result = {
        "shards": index["totals"]["shards"], "samples": index["totals"]["samples"],
        "sequence_length": index["sequence_length"], "batch_size": args.batch_size,
        "tokens_per_s_all_fields": round(throughput(root, args.seconds, **kw)),
        "tokens_per_s_input_ids_only": round(throughput(root, args.seconds, fields=["input_ids"], **kw)),
        "tokens_per_s_no_prefetch": round(throughput(root, args.seconds, prefetch=0, **kw)),
        "tokens_per_s_unshuffled": round(throughput(root, args.seconds, shuffle=False, **kw)),
    }  # fmt: skip
    for frac in (0.5, 0.99):
        secs, pos = resume_seconds(root, frac, **kw)
        result[f"resume_to_first_batch_s_at_{int(frac * 100)}pct"] = round(secs, 4)
        result[f"resume_position_at_{int(frac * 100)}pct"] = pos
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
