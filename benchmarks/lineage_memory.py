"""Peak memory of lineage finalisation against the number of lineage rows: it must stay flat.

    python benchmarks/lineage_memory.py [--tasks 50] [--rows 100000] [--shard-rows 10000]
        [--modes in_order shuffled] [--pythonpath OTHER_CHECKOUT]

Writes ``--tasks`` task lineage files of ``--rows`` rows each (two pieces per shard row, row groups
of ``ROW_GROUP_ROWS`` as ``TaskLineage`` writes them), then calls ``finalize_lineage`` on them in a
fresh process per mode, with final shards of ``--shard-rows`` rows. Reported: the process's peak
resident memory (VmHWM) before the call (imports, and the shuffle permutation) and after it, the
most Arrow buffer memory held at once (VmHWM also counts allocator and thread-pool overhead), and a
sha256 over every lineage file written, so that two checkouts (``--pythonpath``, e.g. a ``git
archive`` of an older commit) can be compared for memory and for identical bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

CHILD = """
import hashlib, json, sys, time
from pathlib import Path
import numpy as np
import pyarrow as pa

def hwm():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024

from corpusforge.observe.lineage import finalize_lineage
from corpusforge.shards.shuffle import shuffle_order
work, output, mode, n_tasks, task_rows, shard_rows = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], *map(int, sys.argv[4:])
total = n_tasks * task_rows
shards = [{"split": "train", "path": f"train/shard_{k:05d}.safetensors", "samples": min(shard_rows, total - lo)}
          for k, lo in enumerate(range(0, total, shard_rows))]
order = {"train": shuffle_order(7, total)} if mode == "shuffled" else None
before = hwm()
t0 = time.perf_counter()
finalize_lineage(output, work, n_tasks, {"train": [task_rows] * n_tasks}, {"shards": shards}, order)
seconds = time.perf_counter() - t0
digest = hashlib.sha256()
for f in sorted((output / "lineage" / "train").glob("*.parquet")):
    digest.update(f.read_bytes())
print(json.dumps({"before_mb": before, "peak_mb": hwm(), "arrow_peak_mb": pa.default_memory_pool().max_memory() / 2**20,
                  "seconds": seconds, "shards": len(shards),
                  "sha256": digest.hexdigest()}))
"""

SCHEMA = pa.schema([
    ("row", pa.int64()), ("token_start", pa.int32()), ("token_end", pa.int32()), ("doc_id", pa.string()),
    ("source_name", pa.string()), ("source_uri", pa.string()), ("offset", pa.int64()),
    ("modified_by", pa.list_(pa.string())),
])  # observe.lineage._TASK_SCHEMA, spelled out so that an older checkout reads the same files


def write_tasks(work: Path, n_tasks: int, rows: int, row_group: int) -> None:
    """``n_tasks`` lineage files of ``rows`` pieces: two per shard row, as a concat packer places them."""
    rng = np.random.default_rng(0)
    steps = pa.array([[], ["normalize"], ["normalize", "pii"]], pa.list_(pa.string()))
    folder = work / "lineage" / "train"
    folder.mkdir(parents=True)
    for t in range(n_tasks):
        i = np.arange(rows, dtype=np.int64)
        doc = pc.cast(pa.array(i // 3 + t * rows), pa.string())
        table = pa.table([
            pa.array(i // 2), pa.array((i % 2 * 1000).astype(np.int32)), pa.array((i % 2 * 1000 + 1000).astype(np.int32)),
            pc.binary_join_element_wise("doc-", doc, ""), pa.array(np.array(["web", "books", "code"])[i % 3]),
            pc.binary_join_element_wise(f"s3://corpus/raw/part_{t:05d}.jsonl.gz#", doc, ""),
            pa.array(i * 517), steps.take(pa.array(rng.integers(0, 3, rows))),
        ], schema=SCHEMA)  # fmt: skip
        with pq.ParquetWriter(folder / f"t{t:06d}.parquet", SCHEMA, compression="zstd") as w:
            w.write_table(table, row_group_size=row_group)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--rows", type=int, default=100_000, help="lineage rows per task (even)")
    ap.add_argument("--shard-rows", type=int, default=10_000, help="sample rows per final shard")
    ap.add_argument("--row-group", type=int, default=1 << 16, help="rows per task file row group")
    ap.add_argument("--modes", nargs="+", default=["in_order", "shuffled"], choices=["in_order", "shuffled"])
    ap.add_argument("--pythonpath", help="import corpusforge from here (another checkout) in the measured process")
    args = ap.parse_args()
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.pythonpath, env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "_work"
        t0 = time.perf_counter()
        write_tasks(work, args.tasks, args.rows, args.row_group)
        print(f"{args.tasks} tasks x {args.rows:,} lineage rows = {args.tasks * args.rows:,} rows, "
              f"{sum(f.stat().st_size for f in work.rglob('*.parquet')) / 1e6:.0f} MB of task files, "
              f"written in {time.perf_counter() - t0:.1f} s", flush=True)
        for mode in args.modes:
            out = Path(tmp) / mode
            proc = subprocess.run([sys.executable, "-c", CHILD, str(work), str(out), mode, str(args.tasks),
                                   str(args.rows // 2), str(args.shard_rows)],
                                  capture_output=True, text=True, env=env, cwd=tmp, check=True)  # cwd: not this checkout first on sys.path
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{mode:>9}: {r['shards']} shards in {r['seconds']:5.1f} s  peak {r['peak_mb']:6.0f} MB "
                  f"(before the call {r['before_mb']:4.0f} MB: +{r['peak_mb'] - r['before_mb']:.0f} MB; "
                  f"Arrow buffers at most {r['arrow_peak_mb']:.0f} MB)  "
                  f"sha256 {r['sha256'][:16]}", flush=True)


if __name__ == "__main__":
    main()
