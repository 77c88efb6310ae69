"""Sentence-embedding throughput on CPU (or GPU): embeddings/s per batch size, wall and CPU seconds.

Usage: python benchmarks/embeddings.py [--model DIR] [--docs 256] [--batch-sizes 1,8,32,64,128]
       [--max-length 256] [--threads N] [--device cpu]

Input: the first ``docs`` cleaned WikiText-2 paragraphs of 100-2000 MiniLM tokens (the recipe's own
steps on ../shared/data/wikitext-2/valid.txt). Model: the bundled all-MiniLM-L6-v2 unless ``--model``.
One warm-up batch, then one timed ``SentenceEncoder.encode`` per batch size. CPU seconds are the
process's user+system time (all of torch's threads), so they stay meaningful on a loaded machine;
wall seconds are not. Prints one tab-separated line per batch size.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from corpusforge.curate.token_length import TokenLength
from corpusforge.curate.wikitext import WikitextClean, WikitextParagraphs
from corpusforge.document import Document
from corpusforge.models.embeddings import SentenceEncoder
from corpusforge.observe.stats import TaskContext

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "wikitext-2" / "valid.txt"


def paragraphs(n: int) -> list[str]:
    """The first ``n`` paragraphs the WikiText-2 recipe keeps."""
    ctx = TaskContext("bench", 0, Path("/tmp"))
    docs = iter([Document(DATA.read_text(encoding="utf-8"), "valid", str(DATA))])
    kept = TokenLength(min_tokens=100, max_tokens=2000)(WikitextClean()(WikitextParagraphs()(docs, ctx), ctx), ctx)
    return [d.text for _, d in zip(range(n), kept, strict=False)]


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--docs", type=int, default=256)
    ap.add_argument("--batch-sizes", default="1,8,32,64,128")
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    texts = paragraphs(args.docs)
    enc = SentenceEncoder(args.model, max_length=args.max_length, device=args.device)
    tokens = sum(min(n + 2, enc.max_length) for n in enc.count_tokens(texts))
    print(f"model={enc.model_path} pooling={enc.pooling} dim={enc.dim} max_length={enc.max_length} "
          f"device={enc.device} threads={torch.get_num_threads()} docs={len(texts)} tokens={tokens}")
    print("batch_size\twall_s\tcpu_s\temb_per_wall_s\temb_per_cpu_s\ttokens_per_cpu_s")
    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        enc.batch_size = bs
        enc.encode(texts[:bs])  # warm-up
        w0, c0 = time.perf_counter(), cpu_seconds()
        enc.encode(texts)
        wall, cpu = time.perf_counter() - w0, cpu_seconds() - c0
        print(f"{bs}\t{wall:.2f}\t{cpu:.2f}\t{len(texts) / wall:.1f}\t{len(texts) / cpu:.1f}\t{tokens / cpu:.0f}")


if __name__ == "__main__":
    main()
