"""One small real run shared by the card, report and tracking tests (built once per session)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest
import yaml

from corpusforge import run
from corpusforge.document import Document
from corpusforge.registry import STEPS
from tests.conftest import small_recipe

DOC = Path(__file__).resolve().parents[2] / "docs" / "observe.md"


def documented_section(name: str) -> dict:
    """The YAML block of docs/observe.md that starts with ``name:``, parsed."""
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
                 if b.startswith(f"{name}:"))
    return yaml.safe_load(block)[name]


# The duplicate source: its first 5 paragraphs three times, the next 10 twice (exact dedup: 20 removed).
TRIPLES, PAIRS = 5, 10


def _paragraphs_that_pass_curation(text: str, n: int) -> list[str]:
    """The first ``n`` distinct paragraphs that normalize and quality_thresholds keep unchanged."""
    normalize, quality = STEPS.get("normalize")(), STEPS.get("quality_thresholds")()
    found: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = " ".join(para.split())
        if len(para) < 400 or para in found:
            continue
        doc = normalize.map(Document(para, "x", "x"))
        if doc is not None and doc.text == para and quality.keep(doc) is None:
            found.append(para)
        if len(found) == n:
            return found
    raise AssertionError("not enough paragraphs")


@pytest.fixture(scope="session")
def card_output(tmp_path_factory, shared_data) -> Path:
    root = tmp_path_factory.mktemp("card")
    book = (shared_data / "prose" / "gutenberg" / "pg26184.txt").read_text(encoding="utf-8")
    paras = _paragraphs_that_pass_curation(book, TRIPLES + PAIRS)
    records = [p for p in paras[:TRIPLES] for _ in range(3)] + [p for p in paras[TRIPLES:] for _ in range(2)]
    dups = root / "dups.jsonl"
    dups.write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in records))
    recipe = small_recipe(
        [{"name": "gutenberg", "path": str(shared_data / "prose" / "gutenberg" / "pg1513.txt"),
          "text_unit": "paragraph", "metadata": {"license": "Public-Domain"}},
         {"name": "wikitext", "path": str(shared_data / "wikitext-2" / "valid.txt"), "text_unit": "paragraph",
          "metadata": {"license": "CC-BY-SA-3.0"}},
         {"name": "dups", "path": str(dups), "metadata": {"license": "Public-Domain"}}],
        steps=[{"type": "normalize"}, {"type": "language_id", "backend": "py3langid"},
               {"type": "quality_thresholds"}, {"type": "exact_dedup"}, {"type": "minhash_dedup"}],
        output={"documents": "parquet"}, card={"pretty_name": "Card test corpus"})
    run(recipe, output=str(root / "out"), workers=1, progress=False)
    return root / "out"
