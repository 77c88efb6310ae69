"""Curate-only runs against the curation part of a shard run of the same recipe, on >= 100 MB.

    python benchmarks/curate_only.py CORPUS [--min-mb 100] [--task-mb 4] [--workers 1] [--repeat 2]
                                            [--formats jsonl.gz jsonl.zst parquet]

CORPUS is a file or folder a ``files`` source reads (e.g. ../shared/data/prose). Its paragraphs
are written as gzip JSONL, repeated (each repetition's texts prefixed with its number, so exact
dedup keeps them) until there are --min-mb MB of text in 16 files of equal size
(``benchmarks/pipeline.py::make_gzip_jsonl``). Then, interleaved, each in a fresh process and
output folder: a shard run (default steps, a tokenizer trained on 20 MB once beforehand and
loaded, sequence length 2048) and a curate-only run (``tokenizer: null``) per documents format.

Printed per run: every stage's seconds, and the comparison that matters: the curate-only run's
whole wall time against the shard run's curation stages (curate + dedup decide) and against its
whole wall time. A curate-only run has one stage a shard run does not (``documents``: read the
staged rows, drop the dedup removals, write the files), and none of the tokenizer and shards
stages. On a shared VM runs of the same work vary by 10-20%: compare the fastest of --repeat.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import make_gzip_jsonl  # noqa: E402

from corpusforge import load_recipe  # noqa: E402
from corpusforge.runner import run  # noqa: E402


def recipe(corpus: Path, task_mb: float, documents: str | None, tokenizer: str | None) -> dict:
    """The default recipe over ``corpus``: curate-only with ``documents``, else shards with ``tokenizer``."""
    r: dict = {"sources": [{"path": str(corpus)}], "sharding": {"sequence_length": 2048},
               "executor": {"task_bytes": int(task_mb * 1e6)}}
    if documents:
        r.update(tokenizer=None, output={"documents": documents})
    else:
        r["tokenizer"] = {"path": tokenizer} if tokenizer else {"vocab_size": 8000, "sample_bytes": 20_000_000}
    return r


def one(corpus: Path, out: Path, workers: int, task_mb: float, documents: str | None, tokenizer: str | None) -> None:
    """One run in this process; prints ``stage seconds`` lines, then the wall time."""
    t0 = time.perf_counter()
    stats = run(load_recipe(recipe(corpus, task_mb, documents, tokenizer)), out, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    for stage in stats["stages"]:
        print(f"{stage['name']} {stage['seconds']:.3f}")
    print(f"kept {stats['documents']['kept']}")
    print(f"wall {wall:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--min-mb", type=float, default=100.0)
    ap.add_argument("--task-mb", type=float, default=4.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--formats", nargs="+", default=["jsonl.gz", "jsonl.zst", "parquet"])
    ap.add_argument("--one", nargs=4, metavar=("OUT", "WORKERS", "DOCUMENTS", "TOKENIZER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        out, workers, documents, tokenizer = args.one
        one(args.corpus, Path(out), int(workers), args.task_mb, None if documents == "-" else documents,
            None if tokenizer == "-" else tokenizer)
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path, raw = make_gzip_jsonl(args.corpus, tmp, args.min_mb)
        print(f"corpus: {args.corpus} -> {raw / 1e6:.0f} MB of JSONL text in 16 gzip files; workers {args.workers}")

        def start(name: str, documents: str | None, tokenizer: str | None) -> dict[str, float]:
            cmd = [sys.executable, __file__, str(path), "--task-mb", str(args.task_mb), "--one", str(tmp / name),
                   str(args.workers), documents or "-", tokenizer or "-"]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode:
                raise SystemExit(f"run {name} failed:\n{res.stderr[-3000:]}")
            subprocess.run(["rm", "-rf", str(tmp / name)], check=True)
            return {k: float(v) for k, v in (line.split() for line in res.stdout.splitlines())}

        # The tokenizer is trained once and loaded by every shard run: no serial training stage in the timings.
        run(load_recipe(recipe(path, args.task_mb, None, None)), tmp / "train", workers=args.workers, progress=False)
        tok = tmp / "tokenizer.json"
        tok.write_bytes((tmp / "train" / "tokenizer.json").read_bytes())
        subprocess.run(["rm", "-rf", str(tmp / "train")], check=True)
        kinds = ["shards", *args.formats]
        runs: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
        for r in range(args.repeat):
            for kind in kinds:
                got = start(f"{kind}{r}", None if kind == "shards" else kind, str(tok) if kind == "shards" else None)
                runs[kind].append(got)
                stages = ", ".join(f"{k} {v:.1f}" for k, v in got.items() if k not in ("wall", "kept"))
                print(f"round {r + 1} {kind:<9} wall {got['wall']:6.1f} s  ({stages}; kept {got['kept']:,.0f})")
        curation = [s["curate"] + s.get("exact_dedup", 0.0) for s in runs["shards"]]
        print(f"\nshard run: wall {min(s['wall'] for s in runs['shards']):.1f} s fastest, curation stages (curate + "
              f"exact_dedup) {min(curation):.1f} s fastest, {statistics.median(curation):.1f} s median")
        for kind in args.formats:
            walls = [s["wall"] for s in runs[kind]]
            docs = [s["documents"] for s in runs[kind]]
            print(f"curate-only {kind:<9}: wall {min(walls):.1f} s fastest ({statistics.median(walls):.1f} median), "
                  f"of which documents stage {min(docs):.1f} s; wall / shard-run curation = "
                  f"{min(walls) / min(curation):.2f}, wall / shard-run wall = "
                  f"{min(walls) / min(s['wall'] for s in runs['shards']):.2f}")


if __name__ == "__main__":
    main()
