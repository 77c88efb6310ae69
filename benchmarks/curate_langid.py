"""Accuracy and speed of the language-ID backends on real multilingual web text.

Usage: python benchmarks/curate_langid.py [DATA_DIR] [--backends fasttext_lite,py3langid,lingua]

Labelled documents: the 45 HTML pages under DATA_DIR/html, labelled by their ``<html lang>``
attribute (or, where a page has none, by its site: see ``UNLABELLED``). Text: the gold article body
for the Scrapinghub pages, the page with its tags stripped crudely for the trafilatura pages.
Accuracy is reported per document and per paragraph (lines of at least 100 characters, at most 40
per page, each labelled with its page's language). Speed is MB of UTF-8 per CPU-second (one core) over
the Project Gutenberg books: whole books at once (``max_chars: null``), and in document bytes per
second when only the first 10,000 characters are read (the step's default ``max_chars``).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from curate_agreement import strip_html  # noqa: E402

from corpusforge.curate.langid import load_predictor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# Pages without a lang attribute, labelled from their site (and checked by reading them).
UNLABELLED = {
    "05844573ca7e1fba714d715bb11ca08c26e25328999c74a1cb3bc8a0e4399f0f": "en",  # ctpost.com
    "11ea381ad92b5448cf66eae62f52ac565361a244c8881615fc6a7bb523cc0c32": "pt",  # autoracing.com.br
    "blog.python.org": "en",
    "chineselyrics4u.com.zhineng": "zh",
    "die-partei.net.luebeck": "de",
    "gregoryszorc.com.python3": "en",
    "hundeverein-kreisunna.de": "de",
    "iloveponysmag.com.barbour": "de",
    "phys.org.tool": "en",
}
_LANG = re.compile(r"<html[^>]*\blang=\"([A-Za-z]+)", re.I)


def labelled(data: Path) -> list[tuple[str, str]]:
    out = []
    for p in sorted((data / "html").rglob("*.html")):
        raw = p.read_text(encoding="utf-8", errors="replace")
        m = _LANG.search(raw)
        lang = m.group(1).lower() if m else UNLABELLED[p.stem]
        gold = p.with_name(p.stem + ".gold.txt")
        text = gold.read_text(encoding="utf-8") if gold.exists() else strip_html(raw)
        out.append((lang, text))
    return out


def paragraphs(docs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out = []
    for lang, text in docs:
        lines = [ln.strip() for ln in text.splitlines() if len(ln.strip()) >= 100]
        out += [(lang, ln) for ln in lines[:40]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", default=REPO.parent / "shared" / "data")
    ap.add_argument("--backends", default="fasttext_lite,py3langid,lingua")
    args = ap.parse_args()
    docs = labelled(args.data)
    paras = paragraphs(docs)
    books = [p.read_text(encoding="utf-8-sig") for p in sorted((args.data / "prose" / "gutenberg").glob("*.txt"))]
    mb_books = sum(len(b.encode()) for b in books) / 1e6
    print(f"documents: {len(docs)} {dict(Counter(lang for lang, _ in docs))}")
    print(f"paragraphs: {len(paras)} {dict(Counter(lang for lang, _ in paras))}")
    print(f"{'backend':14s} {'load s':>7s} {'doc acc':>8s} {'para acc':>9s} {'MB/s whole':>11s} {'doc MB/s (cap 10k)':>19s}")
    for name in args.backends.split(","):
        t0 = time.process_time()
        predict = load_predictor(name)  # type: ignore[arg-type]
        load = time.process_time() - t0
        doc_acc = sum(predict(t)[0] == lang for lang, t in docs) / len(docs)
        wrong = [(lang, predict(t)[0]) for lang, t in paras if predict(t)[0] != lang]
        para_acc = 1 - len(wrong) / len(paras)
        t0 = time.process_time()
        for b in books:
            predict(b)
        whole = mb_books / (time.process_time() - t0)
        # With max_chars=10000 (the step's default) only the head of each book is read; this is the
        # throughput in document bytes, which is what the pipeline sees.
        t0 = time.process_time()
        for _ in range(5):
            for b in books:
                predict(b[:10_000])
        capped = 5 * mb_books / (time.process_time() - t0)
        print(f"{name:14s} {load:7.2f} {doc_acc:8.2%} {para_acc:9.2%} {whole:11.2f} {capped:19.2f}")
        print(f"    paragraph errors (gold, predicted): {dict(Counter(wrong).most_common(6))}")


if __name__ == "__main__":
    main()
