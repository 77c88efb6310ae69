"""A folder mixing every supported format runs through corpusforge.run without a crash."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import orjson

from corpusforge import run

PICKS = {
    "page.html": "html/scrapinghub/05844573ca7e1fba714d715bb11ca08c26e25328999c74a1cb3bc8a0e4399f0f.html",
    "crazyones.pdf": "docs/pypdf/crazyones.pdf",
    "locked.pdf": "docs/pypdf/r6-user-password.pdf",
    "scan.pdf": "docs/markitdown/MEDRPT-2024-PAT-3847_medical_report_scan.pdf",
    "letter.docx": "docs/textract/raw_text.docx",
    "deck.pptx": "docs/textract/raw_text.pptx",
    "sheet.xlsx": "docs/markitdown/test.xlsx",
    "old.doc": "docs/textract/raw_text.doc",
    "old.xls": "docs/textract/raw_text.xls",
    "book.epub": "docs/textract/raw_text.epub",
    "note.odt": "docs/textract/raw_text.odt",
    "cat.jpg": "media/images/chelsea.jpg",
    "speech.flac": "media/audio/jfk.flac",
    "clip.mp4": "media/video/realshort.mp4",
    "crawl.warc.gz": "warc/warcio/example.warc.gz",
    "damaged.warc.gz": "warc/edge/clipped-truncated.warc.gz",
    "readme.txt": "wikitext-2/README",
}
WRITTEN = {
    "guide.md": "# Guide\n\nRead **this** first, then [the docs](http://x.org).\n",
    "api.rst": "API\n===\n\nCall :func:`run` to start.\n",
    "feed.xml": "<?xml version='1.0'?><feed><entry><title>Hello XML</title></entry></feed>",
    "tool.py": "#!/usr/bin/env python3\nprint('hello code')\n",
    "main.go": "package main\n\nfunc main() {}\n",
    "rows.csv": "title,body\nCSV title,CSV body text\n",
    "items.json": '[{"title": "JSON title", "body": "JSON body"}]',
    "lines.jsonl": '{"title": "JSONL title", "body": "JSONL body"}\n',
    "empty.txt": "",
}


def build_folder(data: Path, root: Path) -> set[str]:
    root.mkdir()
    for name, rel in PICKS.items():
        os.symlink(data / rel, root / name)
    for name, text in WRITTEN.items():
        (root / name).write_text(text)
    (root / "bad.txt").write_bytes(b"caf\xe9 latin-1, not UTF-8\n")
    (root / "notes.txt.gz").write_bytes(gzip.compress(b"compressed notes\n"))
    return {p.name for p in root.iterdir()}


def test_mixed_folder_every_file_is_extracted_or_quarantined(data, tmp_path):
    names = build_folder(data, tmp_path / "in")
    out = tmp_path / "out"
    stats = run(
        {
            "sources": [{"name": "mix", "path": str(tmp_path / "in"), "text_template": "{title}\n\n{body}"}],
            "steps": [],
            "tokenizer": {"vocab_size": 500},
            "sharding": {"sequence_length": 64},
            "output": {"documents": "jsonl"},
        },
        output=str(out),
        workers=1,
    )
    docs = [orjson.loads(line) for p in sorted((out / "documents").glob("*.jsonl")) for line in p.read_bytes().splitlines()]
    quarantined = [orjson.loads(line) for p in (out / "quarantine").rglob("*.jsonl") for line in p.read_bytes().splitlines()]
    seen_docs = {Path(d["source"]).name for d in docs}
    seen_quarantined = {Path(q["location"].split(" ")[0]).name for q in quarantined}
    assert seen_docs | seen_quarantined == names
    assert seen_quarantined == {"locked.pdf", "scan.pdf", "old.doc", "old.xls", "cat.jpg", "speech.flac",
                                "clip.mp4", "damaged.warc.gz", "empty.txt"}
    assert stats["quarantine"] == {
        "empty file": 1, "truncated WARC record": 1, "encrypted PDF": 1,
        "legacy Office format": 2, "media file": 3, "no text layer": 1,
    }
    formats = {Path(d["source"]).name: d["metadata"].get("format") for d in docs}
    assert formats["page.html"] == "html" and formats["crawl.warc.gz"] == "warc"
    assert formats["tool.py"] == "code" and formats["guide.md"] == "markdown"
    texts = {Path(d["source"]).name: d["text"] for d in docs}
    assert texts["rows.csv"] == "CSV title\n\nCSV body text"
    assert texts["lines.jsonl"] == "JSONL title\n\nJSONL body"
    assert texts["notes.txt.gz"] == "compressed notes\n"
    assert stats["documents"]["read"] == len(docs)
