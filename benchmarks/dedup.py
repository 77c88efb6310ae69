"""Dedup benchmarks: signature throughput vs datasketch/rensa, clustering scale, planted-duplicate quality.

    python benchmarks/dedup.py ../shared/data [--sizes 10000,100000,1000000] [--skip-scale]

Signature throughput: one process, the same documents and the same shingles (our normalization,
word 5-grams), num_perm 128. "text->sig" includes normalization and shingling for every library
(rensa and datasketch need shingle strings, built in Python); "hash only" times just the
library call on prebuilt shingles. Documents: WikiText-2 paragraphs (short) and Gutenberg books
cut into 100 kB pieces (book-length). Scale: short generated documents (30 random words of a
5,000-word vocabulary, 10% planted copies) in 10 tasks; signing and clustering each run in a
fresh process; peak memory is /proc VmHWM (resource.getrusage's ru_maxrss where there is no /proc). Quality: held-out real text (WikiText-2 test + prose) with planted
near-duplicates and decoys; see ``quality``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from corpusforge.dedup.minhash import MinHashDedup  # noqa: E402
from corpusforge.dedup.shingles import normalize_words  # noqa: E402
from corpusforge.document import Document  # noqa: E402
from corpusforge.observe.stats import TaskContext, peak_rss_mb  # noqa: E402


def dedup_in_process(step, tasks: list[list[str]], stage_dir: Path) -> dict[int, dict[int, str]]:
    """The pipeline's calls for one corpus-wide step, in this process: sign, decide, finalize, removed."""
    step.bind(stage_dir)
    for t, texts in enumerate(tasks):
        docs = (Document(x, id=f"{t}-{i}", source="bench") for i, x in enumerate(texts))
        for _ in step(docs, TaskContext("curate", t, stage_dir)):
            pass
    for p in range(step.partitions()):
        step.decide(p, len(tasks))
    step.finalize(len(tasks))
    return {t: step.removed(t) for t in range(len(tasks))}


def corpus_docs(root: Path) -> tuple[list[str], list[str]]:
    wiki = []
    for name in ("valid.txt", "test.txt"):
        text = (root / "wikitext-2" / name).read_text(encoding="utf-8")
        wiki += [p.strip() for p in text.split("\n") if len(p.split()) >= 20]
    books = []
    for f in sorted((root / "prose").rglob("*.txt")):
        text = f.read_text(encoding="utf-8-sig")
        books += [text[i : i + 100_000] for i in range(0, len(text), 100_000)]
    return wiki, books


def _shingle_strings(texts: list[str], n: int = 5) -> list[list[str]]:
    out = []
    for t in texts:
        w = normalize_words(t)
        out.append([" ".join(w[i : i + n]) for i in range(max(1, len(w) - n + 1))] if w else [])
    return out


def signatures(texts: list[str], label: str) -> list[dict]:
    mb = sum(len(t.encode()) for t in texts) / 1e6
    rows = []

    def rec(name: str, seconds: float) -> None:
        rows.append({"docs": label, "method": name, "docs_per_s": round(len(texts) / seconds),
                     "mb_per_s": round(mb / seconds, 2)})

    for sig in ("one_permutation", "permutations"):
        step = MinHashDedup(signature=sig)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for i in range(0, len(texts), 2048):
                step.sign(texts[i : i + 2048])
            best = min(best, time.perf_counter() - t0)
        rec(f"corpusforge {sig} text->sig", best)
    import rensa
    from datasketch import MinHash

    t0 = time.perf_counter()
    sh = _shingle_strings(texts)
    shingling = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in sh:
        m = rensa.RMinHash(num_perm=128, seed=1)
        m.update(s)
        m.digest()
    rensa_s = time.perf_counter() - t0
    rec("rensa text->sig", shingling + rensa_s)
    rec("rensa hash only", rensa_s)
    enc = [[x.encode() for x in s] for s in sh]
    t0 = time.perf_counter()
    for s in enc:
        m = MinHash(num_perm=128)
        m.update_batch(s)
    ds = time.perf_counter() - t0
    rec("datasketch text->sig", shingling + ds)
    rec("datasketch hash only", ds)
    return rows


def whole_dedup(texts: list[str], label: str) -> dict:
    mb = sum(len(t.encode()) for t in texts) / 1e6
    tasks = [texts[i::4] for i in range(4)]
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        removed = dedup_in_process(MinHashDedup(), tasks, Path(d))
        s = time.perf_counter() - t0
    return {"docs": label, "whole_minhash_dedup_mb_per_s": round(mb / s, 2), "seconds": round(s, 2),
            "removed": sum(len(r) for r in removed.values())}


def scale_sign(n: int, folder: Path) -> dict:
    """Sign n short generated documents in 10 tasks into ``folder`` (a fresh process: own peak RSS).

    Documents: 30 random words of a 5,000-word vocabulary; 10% are copies of a random earlier
    document, half of them exact and half with the last word changed (5-gram Jaccard 25/27), never copies of copies.
    """
    rng = np.random.default_rng(n)
    vocab = np.array([f"w{i}" for i in range(5000)])
    base = rng.integers(0, 5000, size=(n, 30))
    dup = np.flatnonzero(rng.random(n) < 0.1)
    dup = dup[dup > 0]
    originals = np.setdiff1d(np.arange(n), dup)
    base[dup] = base[originals[rng.integers(0, np.searchsorted(originals, dup))]]
    edit = dup[: len(dup) // 2]
    base[edit, -1] = rng.integers(0, 5000, size=len(edit))
    texts = [" ".join(vocab[row]) for row in base]
    del base
    step = MinHashDedup()
    step.bind(folder)
    t0 = time.perf_counter()
    per = (n + 9) // 10
    for t in range(10):
        docs = (Document(x, id=f"{t}-{i}", source="gen") for i, x in enumerate(texts[t * per : (t + 1) * per]))
        for _ in step(docs, TaskContext("curate", t, folder)):
            pass
    return {"documents": n, "planted": int(len(dup)), "sign_seconds": round(time.perf_counter() - t0, 2),
            "sign_peak_rss_mb": peak_rss_mb()}


def scale_cluster(folder: Path) -> dict:
    """Decide every band partition and finalize over ``folder``'s signatures (a fresh process)."""
    step = MinHashDedup()
    step.bind(folder)
    t0 = time.perf_counter()
    pairs = sum(step.decide(p, 10)["verified_pairs"] for p in range(step.partitions()))
    fin = step.finalize(10)
    return {"cluster_seconds": round(time.perf_counter() - t0, 2), "verified_pairs": pairs,
            "clusters": fin["clusters"], "removed": fin["removed"],
            "cluster_peak_rss_mb": peak_rss_mb()}


def _jaccard(a: str, b: str) -> float:
    def sh(t: str) -> set:
        w = normalize_words(t)
        return {tuple(w[i : i + 5]) for i in range(len(w) - 4)}

    x, y = sh(a), sh(b)
    return len(x & y) / max(1, len(x | y))


def quality(root: Path, threshold: float) -> dict:
    """Planted near-duplicates of held-out real text; recall on J >= 0.85, false removals."""
    rnd = random.Random(5)
    text = (root / "wikitext-2" / "test.txt").read_text(encoding="utf-8")
    bases = [p.strip() for p in text.split("\n") if len(p.split()) >= 80 and not p.strip().startswith("=")]
    for f in sorted((root / "prose" / "gutenberg").glob("*.txt")):
        words = f.read_text(encoding="utf-8-sig").split()
        bases += [" ".join(words[i : i + 300]) for i in range(0, len(words) - 300, 3000)]
    rnd.shuffle(bases)
    n_orig = len(bases) // 2
    originals, spare = bases[:n_orig], bases[n_orig:]

    def reformat(t: str) -> str:
        w = t.split()
        lines = [" ".join(w[i : i + 12]) for i in range(0, len(w), 12)]
        return "\n".join(lines).upper().replace(" , ", ", ").replace(" . ", ". ")

    def wrap(t: str) -> str:
        return f"Home | About | Contact\n{t}\nCopyright 2024. All rights reserved."

    def edit(t: str) -> str:
        w = t.split()
        for _ in range(max(1, len(w) // 200)):
            i = rnd.randrange(len(w))
            w[i] = rnd.choice(["the", "a", "which", "however", "moreover"])
        return " ".join(w)

    def truncate(t: str) -> str:
        w = t.split()
        return " ".join(w[: int(len(w) * rnd.uniform(0.9, 0.97))])

    kinds = {"copy": lambda t: t, "reformatted": reformat, "boilerplate": wrap, "edited": edit, "truncated": truncate}
    docs: list[str] = list(originals)  # originals first: earliest source order keeps them
    must_survive = list(range(n_orig))
    planted: list[tuple[int, int, str, float]] = []
    for i, t in enumerate(originals):
        kind = list(kinds)[i % len(kinds)]
        d = kinds[kind](t)
        planted.append((len(docs), i, kind, _jaccard(t, d)))
        docs.append(d)
    decoys = 0
    for j, other in enumerate(spare):
        t = originals[j % n_orig]
        w, o = t.split(), other.split()
        if j % 3 == 0:  # shares a prefix (first 30%) then goes its own way
            d = " ".join(w[: len(w) * 3 // 10] + o[: len(w) * 7 // 10])
        elif j % 3 == 1:  # shares two thirds of its text (Jaccard ~0.5 to the original)
            d = " ".join(w[: 2 * len(w) // 3] + o[: len(w) // 3])
        else:  # shares a third of its text
            d = " ".join(o[: len(w) * 2 // 3] + w[len(w) // 3 : 2 * len(w) // 3])
        must_survive.append(len(docs))
        docs.append(d)
        decoys += 1
    cut = [0, len(docs) // 3, 2 * len(docs) // 3, len(docs)]
    tasks = [docs[cut[i] : cut[i + 1]] for i in range(3)]  # contiguous: source order = list order

    def removed_set(step) -> set[int]:
        with tempfile.TemporaryDirectory() as d:
            rem = dedup_in_process(step, tasks, Path(d))
        return {cut[t] + row for t, rows in rem.items() for row in rows}

    out = {"originals": n_orig, "planted": len(planted), "decoys": decoys}
    from corpusforge.dedup.simhash import SimHashDedup

    variants = (("minhash", MinHashDedup(threshold=threshold)),
                ("minhash verify=none", MinHashDedup(threshold=threshold, verify="none")),
                ("minhash fn_weight=0.5", MinHashDedup(threshold=threshold, fp_weight=0.5, fn_weight=0.5)),
                ("simhash k=3", SimHashDedup()), ("simhash k=6", SimHashDedup(max_distance=6)))
    for name, step in variants:
        rem = removed_set(step)
        hard = [p for p in planted if p[3] >= 0.85]
        found = [p for p in hard if p[0] in rem]
        by_kind = {}
        for k in kinds:
            ks = [p for p in planted if p[2] == k]
            by_kind[k] = {"n": len(ks), "removed": sum(p[0] in rem for p in ks),
                          "median_jaccard": round(float(np.median([p[3] for p in ks])), 3)}
        false = [i for i in must_survive if i in rem]
        decoy_j = [_jaccard(docs[i], originals[(i - 2 * n_orig) % n_orig]) for i in false if i >= 2 * n_orig]
        out[name] = {"false_removed_decoy_jaccards": [round(x, 3) for x in decoy_j],
                     "recall_j_ge_0.85": round(len(found) / max(1, len(hard)), 4), "n_j_ge_0.85": len(hard),
                     "false_removal_rate": round(len(false) / len(must_survive), 5), "by_kind": by_kind}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="folder with wikitext-2/ and prose/ (e.g. ../shared/data)")
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--skip-scale", action="store_true")
    ap.add_argument("--scale-sign", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--scale-cluster", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scale_sign:
        print(json.dumps(scale_sign(args.scale_sign, args.folder)))
        return
    if args.scale_cluster:
        print(json.dumps(scale_cluster(args.folder)))
        return
    wiki, books = corpus_docs(args.data)
    report: dict = {"signatures": signatures(wiki, "wikitext paragraphs") + signatures(books, "books 100kB")}
    report["whole_dedup"] = [whole_dedup(books, "books 100kB"), whole_dedup(wiki, "wikitext paragraphs")]
    report["quality"] = {str(t): quality(args.data, t) for t in (0.8, 0.85)}
    if not args.skip_scale:
        report["scale"] = []
        for n in map(int, args.sizes.split(",")):
            with tempfile.TemporaryDirectory() as d:
                cmd = [sys.executable, __file__, str(args.data), "--folder", d]
                a = subprocess.run(cmd + ["--scale-sign", str(n)], capture_output=True, text=True, check=True)
                b = subprocess.run(cmd + ["--scale-cluster"], capture_output=True, text=True, check=True)
            report["scale"].append({**json.loads(a.stdout), **json.loads(b.stdout)})
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
