"""1 -> 2 worker scaling of the default recipe on ~100 MB of text in 8 gzip files, at default task sizes.

    python benchmarks/scaling.py [--corpus ../shared/data/prose] [--min-mb 100] [--files 8] [--repeat 2]

The corpus is ``benchmarks/pipeline.py``'s generator (CORPUS's paragraphs as JSONL, numbered so
exact dedup keeps them, cut at equal bytes into ``--files`` gzip files). Every run is the
default recipe (normalize, quality thresholds, exact dedup, BPE trained on the sample, shards)
with no executor section: tasks come from ``task_bytes``' default on decompressed bytes. One- and
two-worker runs alternate, each in a fresh process and output folder, so a noisy neighbour hits
both alike; printed: each run's seconds per stage, the task count, and the scaling of the fastest
and of the median runs. On a shared machine, rerun when it is quiet (target: >= 1.8x).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_gzip_jsonl  # noqa: E402

CHILD = """
import json, sys, time
from corpusforge import run
if __name__ == "__main__":
    t0 = time.perf_counter()
    stats = run(json.loads(sys.argv[1]), output=sys.argv[2], workers=int(sys.argv[3]), progress=False)
    print(json.dumps({"seconds": time.perf_counter() - t0, "tasks": stats["stages"][0]["tasks"],
                      "stages": {s["name"]: s["seconds"] for s in stats["stages"]}, "tokens": stats["tokens"]}))
"""


def one_run(corpus: Path, tmp: Path, workers: int, k: int) -> dict:
    script = tmp / "child.py"
    script.write_text(CHILD)
    recipe = {"sources": [{"path": str(corpus)}], "tokenizer": {"vocab_size": 8000}}
    out = tmp / f"out_{workers}_{k}"
    proc = subprocess.run([sys.executable, str(script), json.dumps(recipe), str(out), str(workers)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "prose")
    ap.add_argument("--min-mb", type=float, default=100)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        corpus, raw = make_gzip_jsonl(args.corpus, tmp, args.min_mb, files=args.files)
        gz = sum(p.stat().st_size for p in corpus.iterdir())
        print(f"corpus: {raw / 1e6:.1f} MB JSONL in {args.files} gzip files ({gz / 1e6:.1f} MB)", flush=True)
        times: dict[int, list[float]] = {1: [], 2: []}
        for k in range(args.repeat):
            for workers in (1, 2):
                r = one_run(corpus, tmp, workers, k)
                times[workers].append(r["seconds"])
                print(f"workers {workers}  {r['seconds']:6.1f} s  {r['tasks']} tasks  "
                      + "  ".join(f"{n} {s:.1f}" for n, s in r["stages"].items()), flush=True)
        best = min(times[1]) / min(times[2])
        med = statistics.median(times[1]) / statistics.median(times[2])
        print(f"scaling 1 -> 2 workers: {best:.2f}x fastest, {med:.2f}x medians")
        print(json.dumps({"input_mb": round(raw / 1e6, 1), "gzip_mb": round(gz / 1e6, 1), "times": times,
                          "scaling_fastest": round(best, 3), "scaling_median": round(med, 3)}))


if __name__ == "__main__":
    main()
