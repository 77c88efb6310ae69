"""Spine benchmark: reader MB/s on gzip JSONL, and per-stage / end-to-end MB/s and docs/s.

    python benchmarks/pipeline.py CORPUS [--workers 1 2] [--min-mb 100]

CORPUS is a file or folder any ``files`` source reads. For the reader figure a gzip JSONL copy
of the corpus (repeated until it holds at least --min-mb of text) is written to a temp folder.
Each worker count runs in a fresh process, as ``corpusforge run`` would: a run in this process would
inherit the Rust thread pools sized by the previous run (one worker caps them to one thread).
"""

from __future__ import annotations

import argparse
import gzip
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

from corpusforge import load_recipe
from corpusforge.observe.stats import TaskContext
from corpusforge.runner import run


def make_gzip_jsonl(corpus: Path, dest: Path, min_mb: float, files: int = 16) -> tuple[Path, int]:
    """Paragraphs of the corpus as JSONL, repeated to at least ``min_mb`` MB in ``files`` gzip files
    of equal size.

    Each repetition prefixes its texts with its number, so exact dedup does not remove them and
    every stage works on the full volume; several files give the executor tasks to spread.
    """
    recipe = load_recipe({"sources": [{"path": str(corpus), "text_unit": "paragraph"}], "steps": []})
    src = recipe.build_sources()[0]
    ctx = TaskContext("bench", 0, dest)
    lines = [orjson.dumps({"text": d.text}) + b"\n" for t in src.plan(1 << 40) for d in src.read(t, ctx)]
    blob = b"".join(lines)
    reps = max(1, int(min_mb * 1e6 // max(1, len(blob))) + 1)
    path = dest / "corpus"
    path.mkdir()
    handles = [gzip.open(path / f"part_{k:03d}.jsonl.gz", "wb", compresslevel=6) for k in range(files)]
    # Every file gets a 1/files slice of every repetition, so the files (tasks) are of equal size and
    # the benchmark measures the executor rather than the generator's leftover repetitions.
    cuts = [len(lines) * k // files for k in range(files + 1)]
    slices = [b"".join(lines[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    for i in range(reps):
        for fh, part in zip(handles, slices, strict=True):
            fh.write(part.replace(b'{"text":"', b'{"text":"%d ' % i))
    for fh in handles:
        fh.close()
    return path, len(blob) * reps


def bench_reader(path: Path, raw_bytes: int, repeats: int = 3) -> None:
    """Reader against gzip + orjson alone, best of ``repeats``, in wall and CPU seconds (CPU seconds
    stay comparable when other processes share the machine)."""
    recipe = load_recipe({"sources": [{"path": str(path)}], "steps": []})
    src = recipe.build_sources()[0]
    ctx = TaskContext("bench", 0, path.parent)
    tasks = src.plan(1 << 40)

    def ours() -> int:
        return sum(1 for task in tasks for _ in src.read(task, ctx))

    def baseline() -> int:
        n = 0
        for f in sorted(path.glob("*.gz")):
            with gzip.open(f, "rb") as fh:
                for line in fh:
                    orjson.loads(line)
                    n += 1
        return n

    mb = raw_bytes / 1e6
    for name, fn in (("reader  gzip JSONL -> Documents", ours), ("baseline gzip.open + orjson.loads", baseline)):
        wall, cpu, n = float("inf"), float("inf"), 0
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            n = fn()
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
        print(f"{name}: {mb / wall:7.1f} MB/s wall, {mb / cpu:7.1f} MB/CPU-s, {n / cpu:,.0f} docs/CPU-s "
              f"({mb:.0f} MB uncompressed, one core, best of {repeats})")


def bench_pipeline(path: Path, workers: int, out: Path, task_mb: float) -> float:
    recipe = load_recipe({
        "sources": [{"path": str(path)}],
        "tokenizer": {"vocab_size": 8000, "sample_bytes": 20_000_000},
        "sharding": {"sequence_length": 2048},
        "executor": {"task_bytes": int(task_mb * 1e6)},
    })
    t0 = time.perf_counter()
    stats = run(recipe, out, workers=workers, progress=False)
    wall = time.perf_counter() - t0
    tasks = next(s["tasks"] for s in stats["stages"] if s["name"] == "curate")
    print(f"\npipeline, {workers} worker(s): {wall:.1f} s wall, end to end "
          f"{stats['input']['bytes'] / 1e6 / wall:.1f} MB/s (compressed input), {tasks} input tasks")
    for stage in stats["stages"]:
        line = f"  {stage['name']:<12} {stage['seconds']:7.2f} s"
        steps = stage.get("steps") or []
        if steps:
            first = steps[0]
            mb = max(first["chars_in"], first["chars_out"]) / 1e6
            line += f"  {mb / stage['seconds']:7.1f} MB/s  {first['docs_out'] / stage['seconds']:10,.0f} docs/s"
            for s in steps:
                if s["seconds"] > 0:
                    line += f" | {s['name']} {max(s['chars_in'], s['chars_out']) / 1e6 / s['seconds']:.1f} MB/s/core"
        print(line)
    print(f"  peak RSS of the driver so far: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--min-mb", type=float, default=100.0)
    ap.add_argument("--task-mb", type=float, default=4.0, help="executor.task_bytes in MB (compressed input)")
    ap.add_argument("--one", nargs=2, metavar=("WORKERS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # one pipeline run in this fresh process; the wall time goes to stdout's last line
        print(bench_pipeline(args.corpus, int(args.one[0]), Path(args.one[1]), args.task_mb))
        return
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        path, raw = make_gzip_jsonl(args.corpus, tmp, args.min_mb)
        gz = sum(f.stat().st_size for f in path.glob("*.gz"))
        print(f"corpus: {args.corpus} -> {gz / 1e6:.0f} MB gzip, {raw / 1e6:.0f} MB JSONL; cores {os.cpu_count()}")
        bench_reader(path, raw)
        walls = {}
        for w in args.workers:
            cmd = [sys.executable, __file__, str(path), "--task-mb", str(args.task_mb), "--one", str(w), str(tmp / f"out{w}")]
            lines = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.splitlines()
            print("\n".join(lines[:-1]))
            walls[w] = float(lines[-1])
        if 1 in walls and 2 in walls:
            print(f"\nscaling 1 -> 2 workers: {walls[1] / walls[2]:.2f}x")


if __name__ == "__main__":
    main()
