"""Encode throughput of the shard stage (tokenize + pack + write) vs raw ``encode_batch``.

    python benchmarks/tokenize_throughput.py CORPUS [--type bpe] [--vocab 32000] [--workers N] [--unit paragraph]

Runs the pipeline on CORPUS (no curation steps, one split), then times one raw
``encode_batch`` call over exactly the documents the shard stage encoded, in this process with
all cores; both are timed ``--repeat`` times, interleaved, and the best is kept. A last run of only the shard stage in a fresh process (``workers=1``) gives its
peak resident memory. Wall seconds and CPU seconds (``time.process_time``: every thread of this
process, so a loaded shared machine does not count against either) are both reported; the CPU
figure of the shard run covers the whole ``run()`` call (the finished stages are skipped).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpusforge import run
from corpusforge.staging import read_documents
from corpusforge.tokenize.encoder import load_encoder

# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
CHILD = """
import json, sys
from corpusforge import run
run(json.loads(sys.argv[1]), output=sys.argv[2], workers=1)
print(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")))
"""


def clear_shard_stage(out: Path) -> None:
    """Forget the shard and index stages' completion records, so the next run redoes only them."""
    shutil.rmtree(out / "_state" / "shards")
    shutil.rmtree(out / "_state" / "index", ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--type", default="bpe")
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--unit", default="paragraph", choices=["file", "line", "paragraph"])
    ap.add_argument("--sequence-length", type=int, default=2048)
    ap.add_argument("--encode-batch-bytes", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    recipe = {
        "sources": [{"path": args.corpus, "text_unit": args.unit}],
        "steps": [],
        "tokenizer": {"type": args.type, "vocab_size": args.vocab},
        "sharding": {"sequence_length": args.sequence_length, "splits": {"train": 1.0},
                     "encode_batch_bytes": args.encode_batch_bytes},
        "executor": {"task_bytes": 4_000_000},
    }
    out = Path(tempfile.mkdtemp(prefix="cf-bench-tok-"))
    try:
        stats = run(recipe, output=str(out), workers=args.workers)
        texts = [d.text for p in sorted((out / "_work" / "curate").glob("task_*.parquet")) for d in read_documents(p)]
        mb = sum(len(t.encode()) for t in texts) / 1e6
        enc = load_encoder(out / json.loads((out / "shard_index.json").read_text())["tokenizer"]["path"])
        # Best of --repeat for both, interleaved, so a busy machine hurts both alike.
        raw_s = shard_s = raw_cpu = shard_cpu = float("inf")
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            enc.encode_batch(texts)
            raw_s, raw_cpu = min(raw_s, time.perf_counter() - t0), min(raw_cpu, time.process_time() - c0)
            clear_shard_stage(out)
            c0 = time.process_time()
            stats = run(recipe, output=str(out), workers=args.workers, progress=False)
            shard_cpu = min(shard_cpu, time.process_time() - c0)
            shard_s = min(shard_s, next(s["seconds"] for s in stats["stages"] if s["name"] == "shards"))
        # Peak memory: the shard stage alone, all tasks in one fresh process.
        clear_shard_stage(out)
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(recipe), str(out)],
                              capture_output=True, text=True, check=True)
        peak_mb = int(proc.stdout.split()[-1]) / 1024
        print(json.dumps({
            "corpus": args.corpus, "documents": len(texts), "text_mb": round(mb, 2), "tokens": stats["tokens"],
            "tokenizer": args.type, "vocab": args.vocab, "tasks": stats["input"]["tasks"],
            "workers": args.workers, "encode_batch_bytes": args.encode_batch_bytes, "raw_encode_batch_mb_s": round(mb / raw_s, 2),
            "shard_stage_mb_s": round(mb / shard_s, 2), "shard_vs_raw": round(raw_s / shard_s, 3),
            "raw_encode_batch_cpu_s": round(raw_cpu, 3), "shard_run_cpu_s": round(shard_cpu, 3),
            "shard_vs_raw_cpu": round(raw_cpu / shard_cpu, 3),
            "shard_stage_peak_rss_mb_one_process": round(peak_mb, 1),
            "self_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }, indent=2))  # fmt: skip
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
