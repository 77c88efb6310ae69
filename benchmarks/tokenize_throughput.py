"""Encode throughput of the shard stage (tokenize + pack + write) vs raw ``encode_batch``.

    python benchmarks/tokenize_throughput.py CORPUS [--min-mb 40] [--type bpe] [--vocab 32000] [--workers N]
    python benchmarks/tokenize_throughput.py ../shared/data/prose --min-mb 12 --foreign   # issue 18
    python benchmarks/tokenize_throughput.py CORPUS --tokenizer path/to/tokenizer.json     # yours

Runs the pipeline on CORPUS (no curation steps, one split); with ``--min-mb`` on a JSONL copy of
its paragraphs repeated to at least that many MB, each repetition prefixed with its number (as
``benchmarks/pipeline.py`` does), so the per-run fixed costs (index, data card, version, fsyncs)
are amortised as on a real corpus. Then, ``--repeat`` times, interleaved (best kept):

- ``raw``: ``HFEncoder.encode_batch`` (the library's ``encode_batch_fast``, which skips offsets)
  over exactly the texts the shard stage encodes, in the same batches of ``encode_batch_bytes``,
  ids as Python lists;
- ``raw_chunk``: the same with calls of ``ENCODE_CHUNK_CHARS`` characters, the size the stage's
  ``encode_flat`` hands the library (faster than 2 MB calls on prose). ``stage_vs_raw_cpu`` divides
  by the faster of the two, so the stage is never compared with a slow baseline;
- ``lib`` and ``lib_chunk`` (HF tokenizers only): the same two batchings through the library's plain
  ``Tokenizer.encode_batch`` (offsets computed), the call a user or a peer pipeline makes and the
  one issue 6's bar names: ``stage_vs_encode_batch_cpu``. The ``encode_batch_fast`` ratio is the
  stricter of the two and is printed beside it;
- ``stage``: the shard stage's own work, ``ShardsStage.run_task`` of every task in this process
  (read staged documents, encode, pack, write shards and lineage); ``stage_vs_raw_cpu`` is the
  stricter form of the issue-6 bar (>= 0.95);
- ``run``: a whole ``run()`` with only the shard and index stages left to do, so it adds the index
  stage, stats, data card and version record (``run_vs_raw_cpu``), with one worker, in this process.

``--workers`` only sets how the corpus is curated and the tokenizer trained before the timings.

A foreign tokenizer (``--tokenizer PATH``, or ``--foreign``: a GPT-2 style byte-level BPE with only
``<|endoftext|>``, trained here on the corpus's first ``--train-mb``) is loaded as ``tokenizer.path``.
Then ``own`` times that tokenizer's own ``Tokenizer.from_file(PATH).encode_batch`` (no special
tokens added) and ``flat`` the run's ``encode_flat`` (the shard stage's encoding: text kept as text,
int32 ids), in the same batches: ``flat_vs_own_encode_batch_cpu`` is issue 18's bar (>= 0.95).

CPU seconds (``time.process_time``: every thread of this process) are the figures to trust on a
shared machine; wall seconds are printed beside them. ``RAYON_NUM_THREADS=1`` measures one core.
A last run of only the shard stage in a fresh process (``workers=1``) gives its peak memory.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pipeline import make_gzip_jsonl  # noqa: E402

from corpusforge import load_recipe, run  # noqa: E402
from corpusforge.observe.stats import TaskContext  # noqa: E402
from corpusforge.pipeline import Pipeline, Stage  # noqa: E402
from corpusforge.stages.shards import ShardsStage  # noqa: E402
from corpusforge.staging import read_documents  # noqa: E402
from corpusforge.tokenize.encoder import ENCODE_CHUNK_CHARS, encode_flat, load_encoder, resolve_path  # noqa: E402

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


def batches(texts: list[str], batch_bytes: int) -> list[list[str]]:
    """``texts`` cut as the shard stage cuts them: a batch closes once it holds ``batch_bytes`` characters."""
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for t in texts:
        cur.append(t)
        size += len(t)
        if size >= batch_bytes:
            out.append(cur)
            cur, size = [], 0
    return out + ([cur] if cur else [])


def gpt2_style(source: dict, out: Path, vocab: int, sample_chars: int) -> Path:
    """A byte-level BPE whose only special token is ``<|endoftext|>`` (GPT-2's layout), trained on
    the first ``sample_chars`` of ``source``, saved as ``out/gpt2/tokenizer.json``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from corpusforge.config import build
    from corpusforge.registry import SOURCES
    from corpusforge.tokenize.manifest import source_texts

    texts = source_texts([(build(SOURCES, {"type": "files", "name": "sample", **source}, "source"), None)], out,
                         sample_chars)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    (out / "gpt2").mkdir()
    tok.save(str(out / "gpt2" / "tokenizer.json"))
    return out / "gpt2" / "tokenizer.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("--min-mb", type=float, default=None, help="repeat the corpus to at least this many MB")
    ap.add_argument("--train-mb", type=float, default=8.0, help="tokenizer training sample (tokenizer.sample_bytes)")
    ap.add_argument("--type", default="bpe")
    ap.add_argument("--vocab", type=int, default=32_000)
    ap.add_argument("--workers", type=int, default=None, help="workers of the first, untimed run")
    ap.add_argument("--unit", default="paragraph", choices=["file", "line", "paragraph"])
    ap.add_argument("--sequence-length", type=int, default=2048)
    ap.add_argument("--encode-batch-bytes", type=int, default=2_000_000)
    ap.add_argument("--task-mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tokenizer", default=None, help="a tokenizer file or folder to load (tokenizer.path)")
    ap.add_argument("--foreign", action="store_true", help="train a GPT-2 style BPE here and load it by path")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="cf-bench-tok-"))
    try:
        source = {"path": args.corpus, "text_unit": args.unit}
        if args.min_mb:
            path, _ = make_gzip_jsonl(Path(args.corpus), out, args.min_mb)
            source = {"path": str(path)}
        recipe = {
            "sources": [source],
            "steps": [],
            "tokenizer": {"type": args.type, "vocab_size": args.vocab, "sample_bytes": int(args.train_mb * 1e6)},
            "sharding": {"sequence_length": args.sequence_length, "splits": {"train": 1.0},
                         "encode_batch_bytes": args.encode_batch_bytes},
            "executor": {"task_bytes": int(args.task_mb * 1e6)},
        }
        if args.foreign:
            args.tokenizer = str(gpt2_style(source, out, args.vocab, int(args.train_mb * 1e6)))
        if args.tokenizer:
            recipe["tokenizer"] = {"path": args.tokenizer}
        work = out / "run"
        stats = run(recipe, output=str(work), workers=args.workers, progress=False)
        texts = [d.text for p in sorted((work / "_work" / "curate").glob("task_*.parquet")) for d in read_documents(p)]
        mb = sum(len(t.encode()) for t in texts) / 1e6
        chunks = batches(texts, args.encode_batch_bytes)
        small = batches(texts, ENCODE_CHUNK_CHARS)
        enc = load_encoder(work / json.loads((work / "shard_index.json").read_text())["tokenizer"]["path"])
        pipe = Pipeline(load_recipe(recipe), work)
        lib = getattr(enc, "tok", None)  # the tokenizers.Tokenizer; SentencePiece has no plain/fast pair
        best = {f"{name}_{unit}": float("inf") for unit in ("s", "cpu")
                for name in ("raw", "raw_chunk", "lib", "lib_chunk", "stage", "run", "own", "flat")}
        own = None
        if args.tokenizer and resolve_path(args.tokenizer).suffix != ".model":
            from tokenizers import Tokenizer

            own = Tokenizer.from_file(str(resolve_path(args.tokenizer)))

        def keep(name: str, t0: float, c0: float) -> None:
            best[f"{name}_s"] = min(best[f"{name}_s"], time.perf_counter() - t0)
            best[f"{name}_cpu"] = min(best[f"{name}_cpu"], time.process_time() - c0)

        # Interleaved, so a busy machine hurts all three alike.
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            for chunk in chunks:
                enc.encode_batch(chunk)
            keep("raw", t0, c0)
            t0, c0 = time.perf_counter(), time.process_time()
            for chunk in small:
                enc.encode_batch(chunk)
            keep("raw_chunk", t0, c0)
            for name, cut in (("lib", chunks), ("lib_chunk", small)) if lib is not None else ():
                t0, c0 = time.perf_counter(), time.process_time()
                for chunk in cut:
                    [e.ids for e in lib.encode_batch(chunk, add_special_tokens=False)]
                keep(name, t0, c0)
            if own is not None:
                t0, c0 = time.perf_counter(), time.process_time()
                for chunk in chunks:
                    [e.ids for e in own.encode_batch(chunk, add_special_tokens=False)]
                keep("own", t0, c0)
                t0, c0 = time.perf_counter(), time.process_time()
                for chunk in chunks:
                    encode_flat(enc, chunk)
                keep("flat", t0, c0)
            t0, c0 = time.perf_counter(), time.process_time()
            for task in range(len(pipe.plan)):
                ctx = TaskContext("shards", task, work, pipe.recipe.seed, pipe.recipe.output.audit)
                ShardsStage().run_task(pipe, Stage("shards", "shards", len(pipe.plan)), task, ctx)
                ctx.flush()
            keep("stage", t0, c0)
            clear_shard_stage(work)
            t0, c0 = time.perf_counter(), time.process_time()
            stats = run(recipe, output=str(work), workers=1, progress=False)  # in this process: its CPU counts
            keep("run", t0, c0)
        # Peak memory: the shard stage alone, all tasks in one fresh process.
        clear_shard_stage(work)
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(recipe), str(work)],
                              capture_output=True, text=True, check=True)
        peak_mb = int(proc.stdout.split()[-1]) / 1024
        raw_cpu, raw_s = min(best["raw_cpu"], best["raw_chunk_cpu"]), min(best["raw_s"], best["raw_chunk_s"])
        lib_cpu = min(best["lib_cpu"], best["lib_chunk_cpu"])
        against_lib = {} if lib is None else {
            "library_encode_batch_cpu_s": round(lib_cpu, 3),
            "stage_vs_encode_batch_cpu": round(lib_cpu / best["stage_cpu"], 3),
            "run_vs_encode_batch_cpu": round(lib_cpu / best["run_cpu"], 3),
        }
        if own is not None:
            against_lib.update({"tokenizer_path": args.tokenizer, "own_encode_batch_cpu_s": round(best["own_cpu"], 3),
                                "encode_flat_cpu_s": round(best["flat_cpu"], 3),
                                "flat_vs_own_encode_batch_cpu": round(best["own_cpu"] / best["flat_cpu"], 3),
                                "stage_vs_own_encode_batch_cpu": round(best["own_cpu"] / best["stage_cpu"], 3)})
        print(json.dumps({
            "corpus": args.corpus, "min_mb": args.min_mb, "documents": len(texts), "text_mb": round(mb, 2),
            "tokens": stats["tokens"], "tokenizer": args.type, "vocab": args.vocab, "tasks": stats["input"]["tasks"],
            "workers": args.workers, "encode_batch_bytes": args.encode_batch_bytes, "repeat": args.repeat,
            "encode_batch_fast_cpu_s": round(best["raw_cpu"], 3),
            "encode_batch_fast_chunked_cpu_s": round(best["raw_chunk_cpu"], 3),
            "shard_stage_cpu_s": round(best["stage_cpu"], 3),
            "whole_run_cpu_s": round(best["run_cpu"], 3),
            "stage_vs_raw_cpu": round(raw_cpu / best["stage_cpu"], 3),
            "run_vs_raw_cpu": round(raw_cpu / best["run_cpu"], 3),
            **against_lib,
            "encode_batch_fast_mb_s": round(mb / raw_s, 2),
            "shard_stage_mb_s": round(mb / best["stage_s"], 2),
            "whole_run_mb_s": round(mb / best["run_s"], 2),
            "stage_vs_raw_wall": round(raw_s / best["stage_s"], 3),
            "shard_stage_peak_rss_mb_one_process": round(peak_mb, 1),
            "self_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }, indent=2))  # fmt: skip
    finally:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
