"""Throughput of the heuristic-filter chain, in MB/s per core.

Usage: python benchmarks/curate.py CORPUS_PATH [--steps gopher_repetition,gopher_quality,...]
       [--mode filter|annotate] [--repeat 5] [--compat datatrove]

Every ``*.txt`` file under CORPUS_PATH (or the file itself) is one document (book-length for
Project Gutenberg texts). The chain runs in one process on one core, ``repeat`` times; the best
time is reported, in MB of UTF-8 input per CPU-second. Every step sees every document (a dropped document is not taken out of the
chain) and ``annotate`` mode measures every signal (no early exit): the worst case. Filters run
through ``keep``, mappers (e.g. ``normalize``, ``pii``) through ``map``, corpus-wide dedup steps
through the per-document work of the curate stage (``sign``: MinHash/SimHash signatures). The
issue's whole chain: ``--steps gopher_repetition,gopher_quality,c4_quality,fineweb_quality,pii,minhash_dedup``.
``--compat datatrove`` runs the steps that take it in datatrove-compatible mode (spaCy words).
The NeMo Curator catalogue: ``--steps word_count,symbols_to_words,...`` (any registered names).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from corpusforge.document import Document
from corpusforge.registry import STEPS
from corpusforge.step import Filter

CHAIN = "gopher_repetition,gopher_quality,c4_quality,fineweb_quality"


def load(path: Path) -> list[str]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.txt"))
    return [p.read_text(encoding="utf-8", errors="replace") for p in files]


def _per_document(step: object):
    """The call that does ``step``'s work on one document."""
    if isinstance(step, Filter):
        return step.keep
    if hasattr(step, "sign"):
        return lambda doc: step.sign([doc.text])
    return step.map


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--steps", default=CHAIN)
    ap.add_argument("--mode", default="annotate", choices=["filter", "annotate"])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--compat", default=None, choices=["datatrove"])
    args = ap.parse_args()
    texts = load(args.corpus)
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
    names = args.steps.split(",")
    best = float("inf")
    per_step: dict[str, float] = {}
    for _ in range(args.repeat):
        steps = []
        for n in names:
            params = STEPS.get(n).__init__.__code__.co_varnames
            kw: dict[str, object] = {"mode": args.mode} if "mode" in params else {}
            if args.compat and "compat" in params:
                kw["compat"] = args.compat
            if n == "c4_quality":
                kw["remove_lines"] = False  # keep the text identical for the steps after it
            steps.append(STEPS.get(n)(**kw))
        calls = [_per_document(step) for step in steps]
        docs = [Document(t, id=str(i), source="bench") for i, t in enumerate(texts)]
        t0 = time.process_time()
        times = dict.fromkeys(names, 0.0)
        for doc in docs:
            for n, call in zip(names, calls, strict=True):
                s0 = time.process_time()
                call(doc)
                times[n] += time.process_time() - s0
        elapsed = time.process_time() - t0
        if elapsed < best:
            best, per_step = elapsed, times
    print(f"input: {args.corpus} ({len(texts)} documents, {mb:.2f} MB)")
    print(f"chain ({args.mode}{', compat ' + args.compat if args.compat else ''}): {' + '.join(names)}")
    for n, t in per_step.items():
        print(f"  {n:20s} {t:7.3f} s  {mb / t if t else float('inf'):8.2f} MB/s")
    print(f"total {best:.3f} s  ->  {mb / best:.2f} MB/s per core")


if __name__ == "__main__":
    main()
