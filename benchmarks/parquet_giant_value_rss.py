"""Peak RSS of reading a Parquet file whose single row holds a 200 MB text (issue 19).

The files source refuses a document over ``max_document_bytes`` (8 MB by default). This measures
what reading such a file costs before it is refused: each reading runs in a fresh subprocess that
reads the file through ``FilesSource`` and reports VmHWM (``corpusforge.observe.stats.peak_rss_mb``)
and what was quarantined. Compare two checkouts by their import path:

    python benchmarks/parquet_giant_value_rss.py --pythonpath /work/main --pythonpath .

``--mb`` sets the value's size (default 200); the file is written once under ``--dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

MAKE = """
import sys
import pyarrow as pa, pyarrow.parquet as pq
n = int(sys.argv[2]) * 1024 * 1024
text = ("giant " * (n // 6 + 1))[:n]
pq.write_table(pa.table({"text": [text], "n": [1]}), sys.argv[1], compression="zstd")
"""

READ = """
import json, sys
from pathlib import Path
from corpusforge.observe.stats import TaskContext, peak_rss_mb
from corpusforge.sources.files import FilesSource
import corpusforge
before = peak_rss_mb()
src = FilesSource("giant", sys.argv[1])
ctx = TaskContext("curate", 0, Path(sys.argv[2]))
docs = sum(1 for t in src.plan(64 << 20) for _ in src.read(t, ctx))
print(json.dumps({"corpusforge": corpusforge.__file__, "documents": docs, "peak_rss_mb": peak_rss_mb(),
                  "rss_after_imports_mb": before, "quarantined": [q["reason"] for q in ctx.quarantined]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pythonpath", action="append", default=[], help="a checkout to measure (repeatable)")
    ap.add_argument("--mb", type=int, default=200, help="size of the single text value, MB")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the Parquet file is written")
    args = ap.parse_args()
    path = Path(args.dir) / f"giant_{args.mb}mb.parquet"
    if not path.exists():
        subprocess.run([sys.executable, "-c", MAKE, str(path), str(args.mb)], check=True)
    for checkout in args.pythonpath or ["."]:
        env = {**os.environ, "PYTHONPATH": str(Path(checkout).resolve())}
        with tempfile.TemporaryDirectory() as work:
            out = subprocess.run([sys.executable, "-c", READ, str(path), work], env=env, check=True, cwd=work,
                                 capture_output=True, text=True)
        print(json.dumps({"checkout": checkout, "file_bytes": path.stat().st_size, **json.loads(out.stdout)}))


if __name__ == "__main__":
    main()
