"""Agreement of corpusforge's heuristic filters with datatrove's implementation of the same rules.

Usage: python benchmarks/curate_agreement.py [DATA_DIR] [--datatrove-python PATH] [--per-source N]

DATA_DIR defaults to ../shared/data next to the repository. Documents (seeded, held out from the
tests): windows of 1-60 paragraphs from the Project Gutenberg books and tiny Shakespeare, WikiText-2
articles, the Scrapinghub gold article bodies, the trafilatura and Scrapinghub HTML pages with their
tags stripped crudely (messy web text), and source files from the code corpus. datatrove runs in
its own virtualenv (never the project's): this script writes the documents to a temporary JSONL
file, runs a small program under ``--datatrove-python`` and compares keep/drop decisions per filter.

C4 is compared without the bad-words rule (datatrove's C4BadWordsFilter downloads its list) and
without line removal (the decision only).
"""

from __future__ import annotations

import argparse
import html
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

from corpusforge.curate.c4 import C4Quality
from corpusforge.curate.fineweb import FineWebQuality
from corpusforge.curate.gopher import GopherQuality, GopherRepetition
from corpusforge.document import Document

REPO = Path(__file__).resolve().parents[1]

PEER = r'''
import json, sys
from datatrove.data import Document
from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                        GopherRepetitionFilter)
from datatrove.utils.text import PUNCTUATION_SET, split_into_words


class GopherAlphaOverWords(GopherQualityFilter):
    """datatrove's Gopher quality with the 80%-alphabetic rule over words, not punctuation tokens."""

    def __init__(self):
        super().__init__(max_non_alpha_words_ratio=0)

    def filter(self, doc):
        r = super().filter(doc)
        if r is not True:
            return r
        words = [w for w in split_into_words(doc.text, self.language) if any(c not in PUNCTUATION_SET for c in w)]
        if sum(any(c.isalpha() for c in w) for w in words) / len(words) < 0.8:
            return False, "gopher_below_alpha_threshold"
        return True


filters = {"gopher_quality": GopherQualityFilter(), "gopher_quality_alpha_over_words": GopherAlphaOverWords(), "gopher_repetition": GopherRepetitionFilter(),
           "c4_quality": C4QualityFilter(), "fineweb_quality": FineWebQualityFilter()}
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    row = {}
    for name, f in filters.items():
        doc = Document(text=rec["text"], id=rec["id"])
        try:
            r = f.filter(doc)
        except ZeroDivisionError:
            r = (False, "ZeroDivisionError")
        row[name] = None if r is True else (r[1] if isinstance(r, tuple) else "dropped")
    out.append(row)
json.dump(out, open(sys.argv[2], "w"))
'''

_TAG = re.compile(r"<(script|style|noscript)\b.*?</\1>|<!--.*?-->", re.S | re.I)
_ANY_TAG = re.compile(r"<[^>]+>")
_BLOCK = re.compile(r"</?(p|div|br|li|h\d|tr|td|section|article|header|footer|ul|ol|table)\b[^>]*>", re.I)


def strip_html(raw: str) -> str:
    text = _TAG.sub(" ", raw)
    text = _BLOCK.sub("\n", text)
    text = html.unescape(_ANY_TAG.sub(" ", text))
    lines = [" ".join(ln.split()) for ln in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def windows(text: str, rng: random.Random, k: int, sep: str = "\n\n") -> list[str]:
    paras = [p for p in text.split(sep) if p.strip()]
    out = []
    for _ in range(k):
        i = rng.randrange(len(paras))
        out.append(sep.join(paras[i : i + rng.randint(1, 60)]))
    return out


def build_documents(data: Path, per_source: int, seed: int = 1234) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    docs: list[tuple[str, str]] = []
    for p in sorted((data / "prose" / "gutenberg").glob("*.txt")):
        text = p.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        docs += [("gutenberg", t) for t in windows(text, rng, per_source)]
    shakes = (data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    docs += [("shakespeare", t) for t in windows(shakes, rng, per_source)]
    for split in ("valid.txt", "test.txt"):
        wiki = (data / "wikitext-2" / split).read_text(encoding="utf-8")
        articles = re.split(r"\n (?== [^=])", wiki)
        docs += [("wikitext", a.strip()) for a in articles if a.strip()]
    for p in sorted((data / "html" / "scrapinghub").glob("*.gold.txt")):
        docs.append(("gold", p.read_text(encoding="utf-8")))
    for p in sorted((data / "html").rglob("*.html")):
        docs.append(("html", strip_html(p.read_text(encoding="utf-8", errors="replace"))))
    with open(data / "code" / "code.jsonl", encoding="utf-8") as f:
        code = [json.loads(line)["text"] for line in f]
    docs += [("code", t) for t in rng.sample(code, min(per_source, len(code)))]
    return [(src, t) for src, t in docs if t.strip()]


def ours() -> dict[str, object]:
    return {
        "gopher_quality": GopherQuality(),
        "gopher_quality_alpha_over_words": GopherQuality(),
        "gopher_repetition": GopherRepetition(),
        "c4_quality": C4Quality(bad_words=None, remove_lines=False),
        "fineweb_quality": FineWebQuality(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", default=REPO.parent / "shared" / "data")
    ap.add_argument("--datatrove-python", default="/work/venvs/datatrove/bin/python")
    ap.add_argument("--per-source", type=int, default=60, help="windows per book / code files sampled")
    ap.add_argument("--show", type=int, default=3, help="disagreements to print per filter")
    args = ap.parse_args()
    docs = build_documents(args.data, args.per_source)
    filters = ours()
    mine = []
    for i, (_, text) in enumerate(docs):
        row = {}
        for name, f in filters.items():
            row[name] = f.keep(Document(text, id=str(i), source="bench"))
        mine.append(row)
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = Path(tmp) / "docs.jsonl", Path(tmp) / "out.json"
        with open(inp, "w", encoding="utf-8") as f:
            for i, (_, text) in enumerate(docs):
                f.write(json.dumps({"id": str(i), "text": text}) + "\n")
        prog = Path(tmp) / "peer.py"
        prog.write_text(PEER)
        subprocess.run([args.datatrove_python, str(prog), str(inp), str(outp)], check=True)
        peer = json.loads(outp.read_text())
    sources = sorted({s for s, _ in docs})
    print(f"{len(docs)} documents: " + ", ".join(f"{s} {sum(1 for x, _ in docs if x == s)}" for s in sources))
    print(f"{'filter':32s} {'agree':>8s} {'both keep':>9s} {'both drop':>9s} {'only ours':>9s} {'only dt':>8s}")
    for name in filters:
        a = [(m[name] is None, p[name] is None) for m, p in zip(mine, peer, strict=True)]
        agree = sum(x == y for x, y in a) / len(a)
        print(
            f"{name:32s} {agree:8.2%} {sum(x and y for x, y in a):9d} {sum(not x and not y for x, y in a):9d}"
            f" {sum(not x and y for x, y in a):9d} {sum(x and not y for x, y in a):8d}"
        )
        shown = 0
        for i, (m, p) in enumerate(zip(mine, peer, strict=True)):
            if (m[name] is None) != (p[name] is None) and shown < args.show:
                shown += 1
                print(f"    doc {i} ({docs[i][0]}): ours={m[name]} datatrove={p[name]} {docs[i][1][:80]!r}")


if __name__ == "__main__":
    main()
