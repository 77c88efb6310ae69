"""Agreement of corpusforge's heuristic filters with datatrove 0.10's filters, paper mode and compat mode.

Usage: python benchmarks/curate_agreement.py [DATA_DIR] [--datatrove-python PATH] [--per-source N]

datatrove runs in its own virtualenv, never the project's:

    python3 -m venv /work/peer-venvs/datatrove
    /work/peer-venvs/datatrove/bin/pip install "datatrove[processing]==0.10.*" "spacy>=3.7"

(spaCy is datatrove's English word tokenizer.) ``--nemo-python`` also compares the NeMo Curator
catalogue with NeMo Curator 1.4's own filters, loaded without its Ray-based package ``__init__``:

    python3 -m venv /work/peer-venvs/nemo
    /work/peer-venvs/nemo/bin/pip install --no-deps "nemo-curator==1.4.*"
    /work/peer-venvs/nemo/bin/pip install loguru regex beautifulsoup4 comment_parser sentencepiece numpy pandas
 This script writes the documents to a temporary
JSONL file, runs a small program under ``--datatrove-python`` (each datatrove filter on its own,
with its defaults) and compares keep/drop decisions per filter family with corpusforge's default
(paper) rules and with ``compat: datatrove``.

Documents come from two generators over DATA_DIR (default ../shared/data), both seeded and disjoint
from the tests: generator A (the one the compat mode was developed against) cuts real text into
shapes: paragraph windows, whole chapters, short excerpts, repeated paragraphs, bullet and
numbered lists, pipe tables, code files and tag-stripped web pages; generator B (held out: written
after compat mode was finished, never tuned on) builds other shapes from other cuts: line windows,
sentence soups, WARC response bodies, documents with navigation boilerplate, CRLF and tab
layouts, truncated texts, mixed prose+code, ellipsis-heavy dialogue and hashtag posts.
C4 is compared without bad words (datatrove's C4QualityFilter has none) and without line removal.
"""

from __future__ import annotations

import argparse
import gzip
import html
import json
import random
import re
import subprocess
import tempfile
from pathlib import Path

import yaml

from corpusforge.curate import compat as compat_words
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

filters = {"gopher_quality": GopherQualityFilter(), "gopher_repetition": GopherRepetitionFilter(),
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

NEMO_PEER = r'''
import importlib.util, json, sys, types, warnings
from pathlib import Path

warnings.simplefilter("ignore")
# Load NeMo Curator's filter modules without its package __init__ (which starts Ray machinery).
root = Path(importlib.util.find_spec("nemo_curator").submodule_search_locations[0])
for pkg in ["nemo_curator", "nemo_curator.stages", "nemo_curator.stages.text", "nemo_curator.stages.text.filters",
            "nemo_curator.stages.text.filters.heuristic", "nemo_curator.stages.text.filters.heuristic.code",
            "nemo_curator.stages.text.filters.heuristic.repetition", "nemo_curator.stages.text.utils"]:
    m = types.ModuleType(pkg)
    m.__path__ = [str(root.joinpath(*pkg.split(".")[1:]))]
    sys.modules[pkg] = m
from nemo_curator.stages.text.filters.heuristic import string as S
from nemo_curator.stages.text.filters.heuristic.repetition import repetition as R
from nemo_curator.stages.text.filters.heuristic.code import code as C

TEXT = {
    "word_count": S.WordCountFilter(), "boilerplate_string": S.BoilerPlateStringFilter(),
    "mean_word_length": S.MeanWordLengthFilter(), "symbols_to_words": S.SymbolsToWordsFilter(),
    "numbers": S.NumbersFilter(), "urls": S.UrlsFilter(), "bullets": S.BulletsFilter(),
    "white_space": S.WhiteSpaceFilter(), "parentheses": S.ParenthesesFilter(), "long_word": S.LongWordFilter(),
    "punctuation": S.PunctuationFilter(), "ellipsis": S.EllipsisFilter(),
    "common_english_words": S.CommonEnglishWordsFilter(), "words_without_alphabets": S.WordsWithoutAlphabetsFilter(),
    "pornographic_urls": S.PornographicUrlsFilter(), "non_alpha_numeric": S.NonAlphaNumericFilter(),
    "substring": S.SubstringFilter("the", "any"),
    "repeated_lines": R.RepeatedLinesFilter(), "repeated_paragraphs": R.RepeatedParagraphsFilter(),
    "repeated_lines_by_char": R.RepeatedLinesByCharFilter(),
    "repeated_paragraphs_by_char": R.RepeatedParagraphsByCharFilter(),
    "repeating_top_ngrams": R.RepeatingTopNGramsFilter(), "repeating_top_4grams": R.RepeatingTopNGramsFilter(4, 0.16),
    "repeating_duplicate_ngrams": R.RepeatingDuplicateNGramsFilter(),
    "repeating_duplicate_5grams": R.RepeatingDuplicateNGramsFilter(5, 0.15),
}
CODE = {
    "comment_ratio": C.PythonCommentToCodeFilter(), "lines_of_code": C.NumberOfLinesOfCodeFilter(),
    "xml_header": C.XMLHeaderFilter(), "alpha": C.AlphaFilter(), "html_boilerplate": C.HTMLBoilerplateFilter(),
}
out = []
for line in open(sys.argv[1], encoding="utf-8"):
    rec = json.loads(line)
    filters = TEXT if rec["kind"] == "text" else CODE
    row = {}
    for name, f in filters.items():
        if name == "comment_ratio" and rec.get("language") != "python":
            continue
        try:
            row[name] = bool(f.keep_document(f.score_document(rec["text"])))
        except (ZeroDivisionError, ValueError):
            row[name] = "error"
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



FAMILIES = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality")


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", " ".join(text.split())) if len(s) > 1]


def gutenberg(data: Path) -> dict[str, str]:
    return {
        p.stem: p.read_text(encoding="utf-8-sig").replace("\r\n", "\n")
        for p in sorted((data / "prose" / "gutenberg").glob("*.txt"))
    }


def wiki_articles(data: Path) -> list[str]:
    out = []
    for split in ("valid.txt", "test.txt"):
        wiki = (data / "wikitext-2" / split).read_text(encoding="utf-8")
        out += [a.strip() for a in re.split(r"\n (?== [^=])", wiki) if a.strip()]
    return out


def code_files(data: Path) -> list[str]:
    with open(data / "code" / "code.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def web_pages(data: Path) -> list[str]:
    return [strip_html(p.read_text(encoding="utf-8", errors="replace")) for p in sorted((data / "html").rglob("*.html"))]


def generator_a(data: Path, per_source: int, seed: int = 1234) -> list[tuple[str, str]]:
    """Shapes the compat mode was developed against."""
    rng = random.Random(seed)
    docs: list[tuple[str, str]] = []
    books = gutenberg(data)
    shakes = (data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    for text in [*books.values(), shakes]:
        paras = paragraphs(text)
        for _ in range(per_source):
            i = rng.randrange(len(paras))
            docs.append(("paragraphs", "\n\n".join(paras[i : i + rng.randint(1, 60)])))
        for _ in range(per_source // 6):
            i = rng.randrange(len(paras))
            docs.append(("excerpt", paras[i][: rng.randint(40, 600)]))
        for _ in range(per_source // 6):
            i = rng.randrange(len(paras))
            block = paras[i : i + rng.randint(2, 8)]
            reps = [rng.choice(block) for _ in range(rng.randint(1, 6))]
            mixed = block + reps
            rng.shuffle(mixed)
            docs.append(("repeated_paragraphs", "\n\n".join(mixed)))
    for text in books.values():
        chapters = [c for c in re.split(r"\n(?=CHAPTER|Chapter|Letter \d)", text) if len(c) > 500]
        docs += [("chapter", c.strip()) for c in rng.sample(chapters, min(4, len(chapters)))]
    sents = [s for t in books.values() for s in sentences(t[20000:200000])]
    for _ in range(per_source):
        k = rng.randint(3, 40)
        start = rng.randrange(len(sents) - k)
        marker = rng.choice(["- ", "• ", "* ", "1. ", ""])
        items = [(f"{j + 1}. " if marker == "1. " else marker) + s for j, s in enumerate(sents[start : start + k])]
        docs.append(("list", "\n".join(items)))
    wiki = wiki_articles(data)
    docs += [("wikitext", a) for a in wiki]
    for a in rng.sample(wiki, min(per_source, len(wiki))):
        nums = re.findall(r"\b\d[\d,.]*\b", a)[:60] or ["0"]
        words = [w for w in a.split() if w.isalpha()][:60] or ["x"]
        rows = [" | ".join([rng.choice(words), rng.choice(nums), rng.choice(nums)]) for _ in range(rng.randint(3, 30))]
        head = rng.choice(["", "Name | Value | Change\n--- | --- | ---\n"])
        text = head + "\n".join(f"| {r} |" for r in rows)
        if rng.random() < 0.5:
            text = "\n\n".join(paragraphs(a)[:3]) + "\n\n" + text
        docs.append(("table", text))
    for p in sorted((data / "html" / "scrapinghub").glob("*.gold.txt")):
        docs.append(("web_gold", p.read_text(encoding="utf-8")))
    docs += [("web", t) for t in web_pages(data)]
    docs += [("code", t) for t in rng.sample(code_files(data), min(per_source, 393))]
    return [(s, t) for s, t in docs if t.strip()]


def warc_bodies(data: Path) -> list[str]:
    """Text of the HTML responses in the sample WARC files (tags stripped)."""
    out = []
    for p in sorted((data / "warc").rglob("*.warc*")):
        raw = p.read_bytes()
        if p.suffix == ".gz":
            try:
                raw = gzip.decompress(raw)
            except (OSError, EOFError):
                continue
        for rec in raw.split(b"WARC/1.")[1:]:
            if b"WARC-Type: response" not in rec[:2000] or b"text/html" not in rec[:4000]:
                continue
            text = strip_html(rec.decode("utf-8", errors="replace").split("\r\n\r\n", 2)[-1])
            if len(text) > 200:
                out.append(text)
    return out


def generator_b(data: Path, per_source: int, seed: int = 20_261_206) -> list[tuple[str, str]]:
    """Held-out shapes (never tuned on): other cuts of the same corpora and other sources."""
    rng = random.Random(seed)
    docs: list[tuple[str, str]] = []
    books = gutenberg(data)
    shakes = (data / "prose" / "tinyshakespeare.txt").read_text(encoding="utf-8")
    for text in [*books.values(), shakes]:
        lines = text.splitlines()
        for _ in range(per_source // 2):
            i = rng.randrange(len(lines))
            docs.append(("line_window", "\n".join(lines[i : i + rng.randint(5, 400)])))
        for _ in range(per_source // 6):
            i = rng.randrange(len(text))
            docs.append(("truncated", text[i : i + rng.randint(200, 20000)]))
    sents = [s for t in books.values() for s in sentences(t)]
    for _ in range(per_source):
        picked = rng.sample(sents, rng.randint(2, 80))
        sep = rng.choice([" ", "\n", "\n\n"])
        docs.append(("sentence_soup", sep.join(picked)))
    for _ in range(per_source // 3):
        lines = [rng.choice(sents) for _ in range(rng.randint(3, 30))]
        text = "\n".join(rng.choice(["", "...", "…"]) + ln.rstrip(".!?") + rng.choice(["...", "…", ".", "?"]) for ln in lines)
        docs.append(("ellipsis_dialogue", text))
    for _ in range(per_source // 3):
        words = rng.choice(sents).split()
        tags = " ".join("#" + rng.choice(words).strip(".,;:!?\"'").lower() for _ in range(rng.randint(1, 12)))
        docs.append(("hashtag_post", " ".join(rng.sample(sents, rng.randint(1, 6))) + "\n" + tags))
    nav = ["Home", "About us", "Contact", "Privacy Policy", "Terms of Use", "Log in", "Subscribe", "Share this page"]
    gold = [p.read_text(encoding="utf-8") for p in sorted((data / "html" / "scrapinghub").glob("*.gold.txt"))]
    for g in gold:
        top = "\n".join(rng.sample(nav, rng.randint(2, 6)))
        bottom = "\n".join(rng.sample(nav, rng.randint(2, 6))) + "\nThis site uses cookies to improve your visit."
        docs.append(("web_boilerplate", f"{top}\n\n{g}\n\n{bottom}"))
        docs.append(("crlf_tabs", g.replace("\n", "\r\n").replace("  ", "\t")))
    docs += [("warc", t) for t in warc_bodies(data)]
    code = code_files(data)
    wiki = wiki_articles(data)
    for _ in range(per_source // 2):
        a = rng.choice(wiki)
        c = rng.choice(code)[:3000]
        docs.append(("prose_and_code", "\n\n".join(paragraphs(a)[: rng.randint(1, 6)]) + "\n\n" + c))
    for a in rng.sample(wiki, min(per_source, len(wiki))):
        sec = re.split(r"\n = = ", a)
        docs.append(("wiki_section", rng.choice(sec).strip()))
    for p in sorted((data / "docs").rglob("*.expected.*")):
        docs.append(("office_text", p.read_text(encoding="utf-8", errors="replace")))
    for t in rng.sample(code, min(per_source // 2, len(code))):
        lines = t.splitlines()
        docs.append(("code_excerpt", "\n".join(lines[: rng.randint(3, 80)])))
    return [(s, t) for s, t in docs if t.strip()]


def corpusforge_filters(compat: str | None) -> dict[str, object]:
    return {
        "gopher_quality": GopherQuality(compat=compat),
        "gopher_repetition": GopherRepetition(compat=compat),
        "c4_quality": C4Quality(bad_words=None, remove_lines=False, compat=compat),
        "fineweb_quality": FineWebQuality(compat=compat),
    }


def decide(docs: list[tuple[str, str]], compat: str | None) -> list[dict[str, str | None]]:
    filters = corpusforge_filters(compat)
    rows = []
    for i, (_, text) in enumerate(docs):
        rows.append({name: f.keep(Document(text, id=str(i), source="bench")) for name, f in filters.items()})
    return rows


def run_peer(python: str, docs: list[tuple[str, str]]) -> list[dict[str, str | None]]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = Path(tmp) / "docs.jsonl", Path(tmp) / "out.json"
        with open(inp, "w", encoding="utf-8") as f:
            for i, (_, text) in enumerate(docs):
                f.write(json.dumps({"id": str(i), "text": text}) + "\n")
        prog = Path(tmp) / "peer.py"
        prog.write_text(PEER)
        subprocess.run([python, str(prog), str(inp), str(outp)], check=True)
        return json.loads(outp.read_text())


def report(title: str, docs: list[tuple[str, str]], peer: list[dict], show: int) -> dict[str, dict[str, float]]:
    shapes = sorted({s for s, _ in docs})
    print(f"\n## {title}: {len(docs)} documents (" + ", ".join(f"{s} {sum(1 for x, _ in docs if x == s)}" for s in shapes) + ")")
    print(f"{'filter':20s} {'mode':10s} {'agree':>8s} {'both keep':>9s} {'both drop':>9s} {'only ours':>9s} {'only dt':>8s}")
    out: dict[str, dict[str, float]] = {}
    for compat in (None, "datatrove"):
        mine = decide(docs, compat)
        mode = compat or "paper"
        for name in FAMILIES:
            a = [(m[name] is None, p[name] is None) for m, p in zip(mine, peer, strict=True)]
            agree = sum(x == y for x, y in a) / len(a)
            out.setdefault(name, {})[mode] = agree
            print(
                f"{name:20s} {mode:10s} {agree:8.2%} {sum(x and y for x, y in a):9d} {sum(not x and not y for x, y in a):9d}"
                f" {sum(not x and y for x, y in a):9d} {sum(x and not y for x, y in a):8d}"
            )
            shown = 0
            for i, (m, p) in enumerate(zip(mine, peer, strict=True)):
                if (m[name] is None) != (p[name] is None) and shown < show and (compat or show > 1):
                    shown += 1
                    print(f"    doc {i} ({docs[i][0]}): ours={m[name]} datatrove={p[name]} {docs[i][1][:70]!r}")
    return out


NEMO_STEPS: dict[str, tuple[str, dict]] = {
    "substring": ("substring", {"substring": "the", "position": "any"}),
    "repeating_top_4grams": ("repeating_top_ngrams", {"n": 4, "max_repeating_ngram_ratio": 0.16}),
    "repeating_duplicate_5grams": ("repeating_duplicate_ngrams", {"n": 5, "max_repeating_duplicate_ngram_ratio": 0.15}),
}


def nemo_report(python: str, data: Path, per_source: int) -> None:
    """Decisions of the NeMo Curator catalogue against NeMo Curator's own filters (each with its defaults)."""
    from corpusforge.registry import STEPS, load_builtins

    load_builtins()
    texts = [("text", None, t) for _, t in generator_a(data, per_source) + generator_b(data, per_source)]
    with open(data / "code" / "code.jsonl", encoding="utf-8") as f:
        code = [("code", r["language"], r["text"]) for r in map(json.loads, f)]
    pages = [("code", "html", p.read_text(encoding="utf-8", errors="replace")) for p in sorted((data / "html").rglob("*.html"))]
    docs = texts + code + pages
    with tempfile.TemporaryDirectory() as tmp:
        inp, outp = Path(tmp) / "docs.jsonl", Path(tmp) / "out.json"
        with open(inp, "w", encoding="utf-8") as f:
            for kind, lang, text in docs:
                f.write(json.dumps({"kind": kind, "language": lang, "text": text}) + "\n")
        prog = Path(tmp) / "nemo_peer.py"
        prog.write_text(NEMO_PEER)
        subprocess.run([python, str(prog), str(inp), str(outp)], check=True)
        peer = json.loads(outp.read_text())
    print(f"\n## NeMo Curator catalogue: {len(texts)} texts (generators A and B), {len(code)} source files, {len(pages)} HTML pages")
    print(f"{'filter':28s} {'docs':>5s} {'agree':>8s} {'only ours drop':>14s} {'only nemo drop':>14s} {'nemo raised':>11s}")
    names = list(dict.fromkeys(k for row in peer for k in row))
    for name in names:
        step_name, kwargs = NEMO_STEPS.get(name, (name, {}))
        step = STEPS.get(step_name)(**kwargs)
        pairs, raised = [], 0
        for (_, _, text), row in zip(docs, peer, strict=True):
            if name not in row:
                continue
            ours = step.keep(Document(text, id="n", source="bench")) is None
            if row[name] == "error":
                raised += 1
                pairs.append((ours, False))  # NeMo cannot score it; ours drops it as empty
            else:
                pairs.append((ours, row[name]))
        agree = sum(a == b for a, b in pairs) / len(pairs)
        print(
            f"{name:28s} {len(pairs):5d} {agree:8.2%} {sum(not a and b for a, b in pairs):14d}"
            f" {sum(a and not b for a, b in pairs):14d} {raised:11d}"
        )


def check_docs(python: str) -> None:
    """datatrove's own decision on each documented difference must be the documented one."""
    text = (REPO / "docs" / "curate.md").read_text(encoding="utf-8")
    section = text[text.index("## Paper, datatrove and corpusforge: where they differ") :]
    examples = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))
    peer = run_peer(python, [("docs", e["text"]) for e in examples])
    wrong = 0
    for e, p in zip(examples, peer, strict=True):
        dt_keeps = p[e["filter"]] is None
        ok = dt_keeps == (e["datatrove"] == "keep")
        wrong += not ok
        print(f"{'ok   ' if ok else 'WRONG'} {e['filter']:18s} datatrove={p[e['filter']]} documented={e['datatrove']}: {e['point']}")
    print(f"{len(examples) - wrong}/{len(examples)} documented datatrove decisions confirmed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, nargs="?", default=REPO.parent / "shared" / "data")
    ap.add_argument("--datatrove-python", default="/work/peer-venvs/datatrove/bin/python")
    ap.add_argument("--per-source", type=int, default=60, help="documents per shape and source (about)")
    ap.add_argument("--show", type=int, default=3, help="disagreements to print per filter")
    ap.add_argument("--check-docs", action="store_true", help="only check docs/curate.md's examples against datatrove")
    ap.add_argument("--nemo-python", help="also compare the NeMo Curator catalogue with NeMo Curator in this venv")
    ap.add_argument("--skip-datatrove", action="store_true", help="skip the datatrove comparison")
    args = ap.parse_args()
    compat_words.word_spans("warm up")  # load spaCy once, outside the loops
    if args.check_docs:
        check_docs(args.datatrove_python)
        return
    if not args.skip_datatrove:
        for title, gen in (("generator A (developed against)", generator_a), ("generator B (held out)", generator_b)):
            docs = gen(args.data, args.per_source)
            report(title, docs, run_peer(args.datatrove_python, docs), args.show)
    if args.nemo_python:
        nemo_report(args.nemo_python, args.data, args.per_source)


if __name__ == "__main__":
    main()
