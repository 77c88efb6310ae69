"""Extraction quality against reference texts.

HTML: mean word-level F1 of the extracted main text against the gold article body, over every
``<id>.html`` with an ``<id>.gold.txt`` beside it (html/scrapinghub has 20).
Documents: for every file with ``<file>.expected.txt`` or ``<stem>.expected.md``, the word-level
F1 and the order-aware similarity (difflib ratio over word sequences, Markdown markup removed
from the reference) of the extracted text.

    python benchmarks/extract_eval.py ../shared/data
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import time
from collections import Counter
from pathlib import Path

from corpusforge.extract.base import ExtractionError
from corpusforge.extract.detect import HEAD_BYTES, sniff
from corpusforge.extract.formats import ExtractOptions, extract_document
from corpusforge.extract.html import extract_html
from corpusforge.extract.markup import markdown_to_text

_WORD = re.compile(r"\w+", re.U)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_f1(pred: str, gold: str) -> float:
    p, g = Counter(words(pred)), Counter(words(gold))
    overlap = sum((p & g).values())
    if not overlap:
        return 0.0
    precision, recall = overlap / sum(p.values()), overlap / sum(g.values())
    return 2 * precision * recall / (precision + recall)


def sequence_similarity(pred: str, gold: str) -> float:
    return difflib.SequenceMatcher(None, words(pred), words(gold), autojunk=False).ratio()


def eval_html(folder: Path) -> list[tuple[str, float]]:
    rows = []
    for gold_path in sorted(folder.glob("*.gold.txt")):
        html_path = gold_path.with_name(gold_path.name.replace(".gold.txt", ".html"))
        try:
            text = extract_html(html_path.read_bytes()).text
        except ExtractionError:
            text = ""
        rows.append((html_path.name, word_f1(text, gold_path.read_text(encoding="utf-8"))))
    return rows


def _reference(path: Path) -> Path | None:
    for cand in (path.with_name(path.name + ".expected.txt"), path.with_name(path.name + ".expected.md"),
                 path.with_name(path.stem + ".expected.md")):
        if cand.exists():
            return cand
    return None


def eval_docs(folder: Path, password: str | None) -> list[tuple[str, str, float, float]]:
    rows = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or ".expected." in path.name:
            continue
        ref = _reference(path)
        if ref is None:
            continue
        gold = ref.read_text(encoding="utf-8")
        if ref.suffix == ".md":
            gold = markdown_to_text(gold)
        data = path.read_bytes()
        kind = sniff(data[:HEAD_BYTES], path.name, data)
        try:
            text = extract_document(data, kind, path.name, ExtractOptions(pdf_password=password)).text
            status = "extracted"
        except ExtractionError as exc:
            text, status = "", f"quarantined: {exc}"
        rows.append((str(path.relative_to(folder)), status, word_f1(text, gold), sequence_similarity(text, gold)))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="the shared data folder (holding html/scrapinghub and docs)")
    ap.add_argument("--pdf-password", default=None)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    html = eval_html(args.data / "html" / "scrapinghub")
    t_html = time.perf_counter() - t0
    for name, f1 in html:
        print(f"html  {f1:.3f}  {name[:24]}")
    mean = sum(f for _, f in html) / max(1, len(html))
    print(f"HTML word F1: mean {mean:.3f} over {len(html)} pages ({t_html:.1f}s, "
          f"min {min((f for _, f in html), default=0):.3f})")
    docs = eval_docs(args.data / "docs", args.pdf_password)
    print()
    for name, status, f1, sim in docs:
        print(f"doc  F1 {f1:.3f}  sim {sim:.3f}  {name}  [{status[:60]}]")
    layered = [(f1, sim) for _, status, f1, sim in docs if status == "extracted"]
    if layered:
        print(f"documents with a text layer: {len(layered)}; mean word F1 {sum(f for f, _ in layered) / len(layered):.3f}; "
              f"mean similarity {sum(s for _, s in layered) / len(layered):.3f}; "
              f"min similarity {min(s for _, s in layered):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
