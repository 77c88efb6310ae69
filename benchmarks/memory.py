"""Peak memory of a whole run against corpus size: streaming means it must stay flat.

    python benchmarks/memory.py CORPUS [--sizes 10 20 40] [--workers 1]

For every size, CORPUS's paragraphs are repeated into that many MB of gzip JSONL (as
``benchmarks/pipeline.py`` builds them: unique prefixes, so exact dedup keeps everything), and the
default recipe (normalize, quality, exact dedup, BPE, shards) runs in a fresh process. Reported:
the peak resident memory (VmHWM) of the driver (which trains the tokenizer) and the largest peak of
any process that ran a task (``peak_rss_mb`` per stage in stats.json).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_gzip_jsonl  # noqa: E402

CHILD = """
import json, resource, sys
from corpusforge import run
stats = run(json.loads(sys.argv[1]), output=sys.argv[2], workers=int(sys.argv[3]), progress=False)
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
tasks = {s["name"]: s["peak_rss_mb"] for s in stats["stages"] if "peak_rss_mb" in s}
print(json.dumps({"driver_mb": hwm / 1024, "task_mb": max(tasks.values()), "by_stage": tasks,
                  "documents": stats["documents"]["kept"], "tokens": stats["tokens"]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--sizes", type=float, nargs="+", default=[10, 20, 40])
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    rows = []
    for mb in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            path, raw = make_gzip_jsonl(args.corpus, Path(tmp), mb)
            recipe = {"sources": [{"path": str(path)}], "tokenizer": {"vocab_size": 8000},
                      "sharding": {"sequence_length": 2048}, "executor": {"task_bytes": 8_000_000}}
            proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(recipe), str(Path(tmp) / "out"),
                                   str(args.workers)], capture_output=True, text=True, check=True)
            row = {"input_mb": round(raw / 1e6, 1), **json.loads(proc.stdout.strip().splitlines()[-1])}
            rows.append(row)
            print(f"{row['input_mb']:8.1f} MB JSONL  {row['documents']:>9,} docs  driver peak {row['driver_mb']:6.0f} MB"
                  f"  task peak {row['task_mb']:6.0f} MB  {row['by_stage']}", flush=True)
    print(json.dumps({"workers": args.workers, "runs": rows,
                      "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
