"""The YAML example in docs/ingest.md runs; the html_extract step works inside a recipe."""

from __future__ import annotations

import re
from pathlib import Path

import orjson

from corpusforge import run
from tests.ingest.helpers import word_f1

REPO = Path(__file__).resolve().parents[2]
PAGE = "05844573ca7e1fba714d715bb11ca08c26e25328999c74a1cb3bc8a0e4399f0f"


def test_the_documented_recipe_runs(data, tmp_path):
    doc = (REPO / "docs" / "ingest.md").read_text()
    recipe = re.search(r"```yaml\n(name: mixed-documents.*?)```", doc, re.S).group(1)
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe.replace("../shared/data", str(data)))
    stats = run(str(path), output=str(tmp_path / "out"), workers=1)
    assert stats["documents"]["read"] == 7 + 41  # textract documents with text + the two dolma WARCs' pages
    assert stats["quarantine"] == {"legacy Office format": 2, "no text layer": 1}


def test_html_extract_step_turns_html_records_into_main_text(data, tmp_path):
    html = (data / "html" / "scrapinghub" / f"{PAGE}.html").read_text()
    (tmp_path / "pages.jsonl").write_bytes(orjson.dumps({"html": html, "url": "https://example.org/a"}) + b"\n"
                                           + orjson.dumps({"html": "<html><body></body></html>"}) + b"\n")
    stats = run({"sources": [{"path": str(tmp_path / "pages.jsonl"), "text_field": "html"}],
                 "steps": [{"type": "html_extract"}], "tokenizer": {"vocab_size": 300},
                 "sharding": {"sequence_length": 32}, "output": {"documents": "jsonl"}},
                output=str(tmp_path / "out"), workers=1)
    step = stats["stages"][0]["steps"][1]
    assert step["drops"] == {"no_main_text": 1} and step["docs_out"] == 1
    [doc] = [orjson.loads(x) for p in (tmp_path / "out" / "documents").glob("*.jsonl") for x in p.read_bytes().splitlines()]
    gold = (data / "html" / "scrapinghub" / f"{PAGE}.gold.txt").read_text()
    assert word_f1(doc["text"], gold) > 0.9
    assert doc["metadata"]["title"]
