"""The same recipe on a Ray cluster of 1 and of 2 nodes (one CPU each) on 127.0.0.1: seconds and speedup.

    python benchmarks/ray_scaling.py CORPUS [--min-mb 10] [--nodes 1 2] [--task-bytes 250000]   (needs ray, psutil)

CORPUS's paragraphs are repeated into --min-mb MB of gzip JSONL (as ``benchmarks/pipeline.py``
builds them), and the default steps plus ``minhash_dedup`` run with ``--executor ray`` on a
cluster started with the ``ray`` CLI for each size. Reported per size: wall seconds, CPU seconds
of the driver and of every process of the cluster (Ray's own daemons included, so the figure
holds on a machine that other work shares), the speedup over one node, the largest per-task peak
RSS of every stage, and whether the shards are byte-identical to the one-node run. Then, for
context, the local process pool with as many workers (wall seconds only: its workers' CPU time is
not collected).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_gzip_jsonl  # noqa: E402

from corpusforge.runner import run  # noqa: E402

RAY = Path(sys.executable).with_name("ray")
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ports(*names: str) -> list[str]:
    return [f"{n}={_free_port()}" for n in names]


class Cluster:
    """``nodes`` Ray nodes of one CPU each on loopback, stopped by their own processes only."""

    def __init__(self, nodes: int):
        self.temp_dir = tempfile.mkdtemp(prefix="cfb-", dir="/tmp")
        port = _free_port()
        self.address = f"127.0.0.1:{port}"
        agents = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--metrics-export-port",
                  "--runtime-env-agent-port")
        common = ["--num-cpus", "1", "--temp-dir", self.temp_dir, "--disable-usage-stats"]
        self._cli("start", "--head", "--port", str(port), "--include-dashboard=false",
                  *_ports("--dashboard-port"), *common, *_ports(*agents))
        for _ in range(nodes - 1):
            self._cli("start", "--address", self.address, *common, *_ports(*agents))

    @staticmethod
    def _cli(*args: str) -> None:
        subprocess.run([str(RAY), *args], env=ENV, check=True, capture_output=True, timeout=180)

    def processes(self) -> list[psutil.Process]:
        found = {}
        for p in psutil.process_iter(["cmdline"]):
            if any(self.temp_dir in a for a in (p.info["cmdline"] or [])):
                found[p.pid] = p
        for p in list(found.values()):
            try:
                found.update({c.pid: c for c in p.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        return list(found.values())

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.processes():
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def stop(self) -> None:
        procs = self.processes()
        for p in procs:
            try:
                p.terminate()
            except psutil.NoSuchProcess:
                pass
        for p in psutil.wait_procs(procs, timeout=3)[1]:
            p.kill()
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def shard_digests(out: Path) -> dict[str, str]:
    index = json.loads((out / "shard_index.json").read_text())
    return {s["path"]: s["sha256"] for s in index["shards"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--min-mb", type=float, default=10)
    ap.add_argument("--nodes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--task-bytes", type=int, default=250_000, help="input bytes per task (of the gzip files)")
    args = ap.parse_args()
    os.environ.update({k: v for k, v in ENV.items() if k.startswith("RAY_")})
    import ray

    from corpusforge import load_recipe

    with tempfile.TemporaryDirectory(prefix="cf-bench-ray-") as d:
        path, raw = make_gzip_jsonl(args.corpus, Path(d), args.min_mb)
        recipe = load_recipe({"sources": [{"path": str(path)}],
                              "steps": [{"type": "normalize"}, {"type": "quality_thresholds"},
                                        {"type": "exact_dedup"}, {"type": "minhash_dedup"}],
                              "tokenizer": {"vocab_size": 8000}, "executor": {"task_bytes": args.task_bytes}})
        rows, base, digests = [], None, None
        for n in args.nodes:
            cluster = Cluster(n)
            try:
                out = Path(d) / f"out_{n}"
                # Connected here, the job (and its worker processes) outlives the run, so their CPU
                # time can still be read afterwards.
                ray.init(address=cluster.address, logging_level="ERROR")
                cpu0, drv0, t0 = cluster.cpu_seconds(), time.process_time(), time.perf_counter()
                stats = run(recipe, str(out), progress=False, executor="ray")
                wall = time.perf_counter() - t0
                cpu = cluster.cpu_seconds() - cpu0 + time.process_time() - drv0
            finally:
                if ray.is_initialized():
                    ray.shutdown()
                cluster.stop()
            base = base or wall
            same = digests is None or shard_digests(out) == digests
            digests = digests or shard_digests(out)
            rows.append({
                "nodes": n, "input_mb": round(raw / 1e6, 1), "tasks": stats["input"]["tasks"],
                "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "speedup": round(base / wall, 2),
                "stage_s": {s["name"]: s["seconds"] for s in stats["stages"]},
                "task_peak_rss_mb": {s["name"]: s["peak_rss_mb"] for s in stats["stages"] if "peak_rss_mb" in s},
                "documents_kept": stats["documents"]["kept"], "shards_identical_to_first": same,
            })  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
        for n in args.nodes:  # context: the local process pool with as many workers, wall time only
            t0 = time.perf_counter()
            run(recipe, str(Path(d) / f"local_{n}"), workers=n, progress=False, executor="local")
            wall = time.perf_counter() - t0
            print(json.dumps({"local_workers": n, "wall_s": round(wall, 2),
                              "shards_identical_to_first": shard_digests(Path(d) / f"local_{n}") == digests}))
        print(f"machine: {os.cpu_count()} logical CPUs, load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
