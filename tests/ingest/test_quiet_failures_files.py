"""Issue 23, the files source: crawl text (WET), filesystem oddities and text encodings are read
or quarantined with their path and reason, never dropped in silence or crashing the run."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml
from warcio.warcwriter import WARCWriter

from tests.conftest import REPO, SHARED_DATA
from tests.ingest.helpers import read_all

WIKI = (SHARED_DATA / "wikitext-2" / "test.txt").read_text("utf-8")
PAGES = [
    ("https://example.org/a", "en", "Robert Boulter is an English film , television and theatre actor .\n"),
    ("https://example.org/b", "fr,en", "Café crème à la française — déjà vu.\n"),
]


def _wet(gzip: bool = True) -> bytes:
    """A Common Crawl WET file as CC writes it: a warcinfo record, then one conversion record per page."""
    buf = io.BytesIO()
    writer = WARCWriter(buf, gzip=gzip)
    writer.write_record(writer.create_warcinfo_record("CC-MAIN-test.warc.wet.gz", {"software": "test"}))
    for i, (uri, lang, text) in enumerate(PAGES):
        headers = {"WARC-Refers-To": f"<urn:uuid:0000000{i}-aaaa-bbbb-cccc-dddddddddddd>",
                   "WARC-Date": "2024-01-02T03:04:05Z",
                   "WARC-Identified-Content-Language": lang}
        rec = writer.create_warc_record(uri, "conversion", payload=io.BytesIO(text.encode("utf-8")),
                                        warc_content_type="text/plain", warc_headers_dict=headers)
        writer.write_record(rec)
    return buf.getvalue()


def _cli_run(tmp_path: Path, src: Path, **source_options: object) -> tuple[subprocess.CompletedProcess, Path]:
    recipe = {"name": "quiet", "seed": 1, "sources": [{"path": str(src), **source_options}], "steps": [],
              "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 64, "splits": {"train": 1.0}},
              "output": {"documents": "parquet"}}
    path, out = tmp_path / "recipe.yaml", tmp_path / "out"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(path), "--output", str(out),
                           "--workers", "1", "--quiet"], capture_output=True, env=env, timeout=300)
    return proc, out


def _kept(out: Path) -> list[tuple[str, str]]:
    """``(source uri, text)`` of every document the run wrote, sorted."""
    from corpusforge.staging import read_documents

    return sorted((doc.source, doc.text) for part in (out / "documents").glob("*.parquet")
                  for doc in read_documents(part))


def _quarantined(out: Path) -> list[dict]:
    return [orjson.loads(line) for f in sorted((out / "quarantine").rglob("*.jsonl"))
            for line in f.read_bytes().splitlines()]


# -- Common Crawl WET -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CC-MAIN-x.warc.wet.gz", "part.wet.gz", "part.wet", "noext"])
def test_wet_conversion_records_are_documents_with_their_exact_text(tmp_path, name):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / name).write_bytes(_wet(gzip=name.endswith(".gz")))
    docs, quarantined = read_all(folder, tmp_path)
    assert quarantined == []
    assert [d.text for d in docs] == [text for _, _, text in PAGES]
    first = docs[0].metadata
    assert first["url"] == "https://example.org/a"
    assert first["warc_type"] == "conversion"
    assert first["warc_date"] == "2024-01-02T03:04:05Z"
    assert first["warc_refers_to"] == "<urn:uuid:00000000-aaaa-bbbb-cccc-dddddddddddd>"
    assert first["warc_identified_content_language"] == "en"
    assert first["warc_record_id"].startswith("<urn:uuid:")


def test_wet_through_the_cli_keeps_every_page_and_counts_the_skipped_warcinfo(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "CC-MAIN-x.warc.wet.gz").write_bytes(_wet())
    proc, out = _cli_run(tmp_path, folder)
    assert proc.returncode == 0, proc.stderr.decode()
    assert [t for _, t in _kept(out)] == sorted(text for _, _, text in PAGES)
    read = orjson.loads((out / "stats.json").read_bytes())["stages"][0]["steps"][0]
    assert read["counts"] == {"warc records skipped: warcinfo record": 1}


def test_skipped_warc_records_are_counted_by_reason(data, tmp_path):
    skipped: list[str] = []
    from corpusforge.extract.warc import read_warc

    with open(data / "warc" / "warcio" / "example.warc.gz", "rb") as fh:
        docs = list(read_warc(fh, "example.warc.gz", lambda *a: None, skipped=skipped.append))
    assert len(docs) == 1
    assert sorted(skipped) == ["request record", "request record", "revisit record", "warcinfo record",
                               "warcinfo record"]
