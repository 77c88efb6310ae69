"""One recipe through every way corpusforge runs: the local pool, Ray (2 nodes on loopback), Spark
(``local[2]``) and a ``plan`` + ``run-task`` fan-out (every task its own process, two at a time, as a
scheduler with two slots would run them). Wall seconds, overhead per task against the local pool,
and whether the shards are byte-identical to the local run.

    python benchmarks/executors.py CORPUS [--min-mb 100] [--task-bytes 4000000] [--only local spark]

CORPUS's paragraphs are repeated into --min-mb MB of gzip JSONL (``benchmarks/pipeline.py``); the
steps are normalize, quality_thresholds and exact_dedup. Needs ray, pyspark (and Java 17) and psutil.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_gzip_jsonl  # noqa: E402
from ray_scaling import ENV, Cluster, shard_digests  # noqa: E402

from corpusforge.recipe import load_recipe  # noqa: E402
from corpusforge.runner import run  # noqa: E402

CLI = [sys.executable, "-m", "corpusforge.cli"]


def fan_out(recipe: Path, out: Path, slots: int) -> None:
    """``plan``, then every task of every stage as its own ``run-task`` process, ``slots`` at a time."""
    schedule = json.loads(subprocess.run([*CLI, "plan", str(recipe), "-o", str(out), "--json"], check=True,
                                         capture_output=True, text=True).stdout)

    def one(stage: str, task: int) -> None:
        subprocess.run([*CLI, "run-task", str(recipe), "-o", str(out), "--stage", stage, "--task", str(task), "-q"],
                       check=True, capture_output=True)

    with ThreadPoolExecutor(slots) as pool:
        for s in schedule["stages"]:
            list(pool.map(lambda t, name=s["name"]: one(name, t), range(s["tasks"])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--min-mb", type=float, default=100)
    ap.add_argument("--task-bytes", type=int, default=4_000_000, help="input bytes per task (of the gzip files)")
    ap.add_argument("--only", nargs="+", default=["local", "ray", "spark", "run-task"])
    args = ap.parse_args()
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("RAY_")})
    with tempfile.TemporaryDirectory(prefix="cf-bench-exec-") as d:
        path, raw = make_gzip_jsonl(args.corpus, Path(d), args.min_mb)
        doc = {"sources": [{"path": str(path)}],
               "steps": [{"type": "normalize"}, {"type": "quality_thresholds"}, {"type": "exact_dedup"}],
               "tokenizer": {"vocab_size": 8000}, "executor": {"task_bytes": args.task_bytes}}
        recipe = Path(d) / "recipe.yaml"
        recipe.write_text(yaml.safe_dump(doc))
        parsed = load_recipe(doc)
        base = digests = None
        for kind in ["local", *[k for k in args.only if k != "local"]]:
            out = Path(d) / f"out_{kind}"
            t0 = time.perf_counter()
            if kind == "local":
                stats = run(parsed, str(out), workers=2, progress=False)
            elif kind == "ray":
                cluster = Cluster(2)
                try:
                    stats = run(parsed, str(out), progress=False, executor="ray", address=cluster.address)
                finally:
                    cluster.stop()
            elif kind == "spark":
                stats = run(parsed, str(out), progress=False, executor="spark", address="local[2]")
            else:
                fan_out(recipe, out, 2)
                stats = json.loads((out / "stats.json").read_text())
            wall = time.perf_counter() - t0
            tasks = sum(s["tasks"] for s in stats["stages"])
            base = base or wall
            digests = digests or shard_digests(out)
            print(json.dumps({"executor": kind, "input_mb": round(raw / 1e6, 1), "tasks": tasks,
                              "wall_s": round(wall, 2), "vs_local": round(wall / base, 2),
                              "overhead_per_task_s": round((wall - base) / tasks, 3),
                              "shards_identical_to_local": shard_digests(out) == digests}), flush=True)
        print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
