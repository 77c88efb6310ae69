"""Shard formats side by side: the same recipe written in each registered format, then read back.

    python benchmarks/shard_formats.py [CORPUS] [--formats safetensors npy parquet megatron webdataset]
        [--sequence-length 2048] [--out DIR]

CORPUS defaults to the Gutenberg books in shared/data (no curation steps, BPE vocab 8000, one
split). Per format: ``run_s`` (the whole run, tokenizer training included, one worker),
``bytes`` of shards (``shard_index.json`` totals) and their ratio to the first format's,
``tokens`` and ``samples`` (equal in every format: the rows are the same), and ``epoch_read_s``,
one unshuffled ``ShardIterator`` epoch at batch size 8 with the page cache warm. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from corpusforge import run
from corpusforge.loader import ShardIterator

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "prose" / "gutenberg"


def measure(corpus: Path, fmt: str, sequence_length: int, out: Path) -> dict[str, float]:
    """One format's figures on ``corpus`` (the run writes ``out``)."""
    t = time.perf_counter()
    run({"sources": [{"path": str(corpus)}], "steps": [], "tokenizer": {"vocab_size": 8000},
         "sharding": {"sequence_length": sequence_length, "splits": {"train": 1.0}, "format": fmt}},
        output=str(out), workers=1)
    run_s = time.perf_counter() - t
    totals = json.loads((out / "shard_index.json").read_text())["totals"]
    for _ in ShardIterator(out, batch_size=8, shuffle=False, drop_last=False):  # warm the page cache
        pass
    t = time.perf_counter()
    read = sum(len(b["input_ids"]) for b in ShardIterator(out, batch_size=8, shuffle=False, drop_last=False))
    assert read == totals["samples"]
    return {"run_s": round(run_s, 1), "bytes": totals["bytes"], "tokens": totals["tokens"],
            "samples": totals["samples"], "epoch_read_s": round(time.perf_counter() - t, 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus", nargs="?", type=Path, default=DATA)
    p.add_argument("--formats", nargs="+", default=["safetensors", "npy", "parquet", "megatron", "webdataset"])
    p.add_argument("--sequence-length", type=int, default=2048)
    p.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="cf-formats-") as tmp:
        root = args.out or Path(tmp)
        figures = {fmt: measure(args.corpus, fmt, args.sequence_length, root / fmt) for fmt in args.formats}
    base = figures[args.formats[0]]["bytes"]
    for f in figures.values():
        f["bytes_ratio"] = round(f["bytes"] / base, 3)
    print(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
