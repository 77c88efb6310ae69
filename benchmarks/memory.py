"""Peak memory per stage: flat in corpus size, and bounded per document.

    python benchmarks/memory.py CORPUS [--sizes 10 20 40] [--workers 1] [--minhash] [--documents]
    python benchmarks/memory.py CORPUS --giant [--giant-mb 50 500] [--limit-gb 8]

Corpus mode: for every size, CORPUS's paragraphs are repeated into that many MB of gzip JSONL (as
``benchmarks/pipeline.py`` builds them: unique prefixes, so exact dedup keeps everything), and the
default recipe (normalize, quality, exact dedup, BPE, shards; ``--minhash`` adds MinHash dedup,
``--documents`` writes ``output.documents``) runs in a fresh process. Reported: each stage's peak
resident memory (``peak_rss_mb`` in stats.json: every task's own peak, the largest of the stage;
the tokenizer stage runs in the driver).

Giant mode: one folder holds CORPUS's text files as whole documents beside single-line documents
of each ``--giant-mb`` size, as a JSONL record and as a ``.txt`` read whole (``text_unit: file``),
and the default recipe runs under ``RLIMIT_AS`` of ``--limit-gb``. Every giant is quarantined by
``max_document_bytes`` (8 MB by default) without being held; the good documents are kept.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_gzip_jsonl  # noqa: E402

CHILD = """
import json, resource, sys
limit = int(sys.argv[4])
if limit:
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from corpusforge import run
if __name__ == "__main__":
    stats = run(json.loads(sys.argv[1]), output=sys.argv[2], workers=int(sys.argv[3]), progress=False)
    stages = {s["name"]: s["peak_rss_mb"] for s in stats["stages"] if "peak_rss_mb" in s}
    print(json.dumps({"task_mb": max(stages.values()), "by_stage": stages, "documents": stats["documents"],
                      "tokens": stats["tokens"]}))
"""


def run_child(recipe: dict, out: Path, workers: int, limit: int = 0) -> dict:
    """The default recipe's figures from a fresh process (``limit``: its address-space cap in bytes)."""
    script = out.parent / "child.py"
    script.write_text(CHILD)
    proc = subprocess.run([sys.executable, str(script), json.dumps(recipe), str(out), str(workers), str(limit)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"run failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def giant_folder(corpus: Path, dest: Path, sizes_mb: list[float]) -> Path:
    """CORPUS's ``*.txt`` files plus, per size, a one-line JSONL record and a one-line .txt of that many MB."""
    folder = dest / "giants"
    folder.mkdir()
    texts = sorted(corpus.rglob("*.txt"))
    for p in texts:
        (folder / p.name).write_bytes(p.read_bytes())
    seed = b" ".join(p.read_bytes().replace(b"\n", b" ").replace(b"\\", b" ").replace(b'"', b"'") for p in texts)
    for mb in sizes_mb:
        n = int(mb * 1e6)
        with open(folder / f"giant_{mb:g}mb.jsonl", "wb") as jl, open(folder / f"giant_{mb:g}mb.txt", "wb") as tx:
            jl.write(b'{"text": "')
            left = n
            while left > 0:
                piece = seed[:left]
                jl.write(piece)
                tx.write(piece)
                left -= len(piece)
            jl.write(b'"}\n')
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--sizes", type=float, nargs="+", default=[10, 20, 40])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--minhash", action="store_true", help="add minhash_dedup to the default steps")
    ap.add_argument("--documents", action="store_true", help="also write output.documents (parquet)")
    ap.add_argument("--giant", action="store_true", help="giant single-line documents instead of corpus sizes")
    ap.add_argument("--giant-mb", type=float, nargs="+", default=[50, 500])
    ap.add_argument("--limit-gb", type=float, default=8, help="giant mode: RLIMIT_AS of the run")
    args = ap.parse_args()
    steps = [{"type": "normalize"}, {"type": "quality_thresholds"}, {"type": "exact_dedup"}]
    if args.minhash:
        steps.append({"type": "minhash_dedup"})
    base = {"steps": steps, "tokenizer": {"vocab_size": 8000}, "sharding": {"sequence_length": 2048},
            "output": {"documents": "parquet" if args.documents else "none"}}
    if args.giant:
        with tempfile.TemporaryDirectory() as tmp:
            folder = giant_folder(args.corpus, Path(tmp), args.giant_mb)
            recipe = {**base, "sources": [{"path": str(folder)}], "max_quarantine_fraction": 0.9}
            row = run_child(recipe, Path(tmp) / "out", args.workers, int(args.limit_gb * (1 << 30)))
            print(f"giants {args.giant_mb} MB under RLIMIT_AS {args.limit_gb:g} GB: task peak {row['task_mb']:.0f} MB "
                  f"{row['by_stage']}  documents {row['documents']}", flush=True)
            print(json.dumps({"workers": args.workers, "giant": row}))
        return
    rows = []
    for mb in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path, raw = make_gzip_jsonl(args.corpus, Path(tmp), mb)
            row = {"input_mb": round(raw / 1e6, 1), **run_child({**base, "sources": [{"path": str(path)}]},
                                                                Path(tmp) / "out", args.workers)}
            rows.append(row)
            print(f"{row['input_mb']:8.1f} MB JSONL  {row['documents']['kept']:>9,} docs  task peak {row['task_mb']:6.0f} MB"
                  f"  {row['by_stage']}", flush=True)
    print(json.dumps({"workers": args.workers, "runs": rows}))


if __name__ == "__main__":
    main()
