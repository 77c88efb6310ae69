"""kill -9 five times at random moments in a ~30 MB run with 2 workers, then resume: same bytes?

    python benchmarks/kill_resume.py [--corpus ../shared/data/prose] [--min-mb 30] [--kills 5] [--seed 0]

Builds ``benchmarks/pipeline.py``'s corpus (gzip JSONL, 8 files), runs the default recipe once
uninterrupted, then runs it again into another folder through the command line, killing the whole
process group (driver, forkserver, workers) with SIGKILL ``--kills`` times, each after a new task
finished and a random 0-1 s later (``tests/spine/test_crash_resume.py::kill_and_resume``, which
the test runs on a smaller corpus), and lets a last run finish. Prints when each kill came and
whether every shard and the index are byte-identical to the uninterrupted run's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from pipeline import make_gzip_jsonl  # noqa: E402

from corpusforge import run  # noqa: E402
from tests.spine.test_crash_resume import kill_and_resume, shard_bytes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "data" / "prose")
    ap.add_argument("--min-mb", type=float, default=30)
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        corpus, raw = make_gzip_jsonl(args.corpus, tmp, args.min_mb, files=8)
        recipe = {"sources": [{"path": str(corpus)}], "tokenizer": {"vocab_size": 8000}}
        t0 = time.perf_counter()
        run(recipe, output=str(tmp / "ref"), workers=2, progress=False)
        print(f"{raw / 1e6:.1f} MB JSONL: uninterrupted run {time.perf_counter() - t0:.1f} s", flush=True)
        path = tmp / "recipe.yaml"
        path.write_text(yaml.safe_dump(recipe))
        t0 = time.perf_counter()
        moments = kill_and_resume(path, tmp / "killed", args.kills, workers=2, seed=args.seed, timeout=1800)
        same = shard_bytes(tmp / "killed") == shard_bytes(tmp / "ref")
        print(f"killed at {moments} s into each run; all runs {time.perf_counter() - t0:.1f} s; "
              f"shards and index byte-identical: {same}")
        if not same:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
