from __future__ import annotations

from pathlib import Path

import pytest

from corpusforge import run
from corpusforge.staging import read_documents

from .helpers import write_jsonl

MENU = "Home | News | Sport | Weather | Contact us"
LICENSE = "This text is licensed under CC BY-SA 3.0; see the site for details."


def _recipe(folder: Path, steps: list[dict]) -> dict:
    return {"sources": [{"path": str(folder)}], "steps": steps, "tokenizer": {"vocab_size": 500},
            "sharding": {"sequence_length": 64, "splits": {"train": 1.0}},
            "output": {"documents": "jsonl"}}


def _texts(out: Path) -> list[str]:
    return [d.text for p in sorted((out / "documents").glob("*.jsonl")) for d in read_documents(p)]


def test_lines_repeated_in_enough_documents_are_removed(wiki_paragraphs, tmp_path):
    p = wiki_paragraphs
    records = [{"text": f"{MENU}\n{p[i]}\n{LICENSE}"} for i in range(3)]
    records.append({"text": f"{p[3]}\n{LICENSE}"})
    records.append({"text": f"{MENU}\n   {MENU.upper()}  "})  # only boilerplate: dropped
    write_jsonl(tmp_path / "in" / "a.jsonl", records)
    steps = [{"type": "line_dedup", "min_repeats": 3}, {"type": "remove_repeated_lines"}]
    stats = run(_recipe(tmp_path / "in", steps), output=str(tmp_path / "out"), workers=1, progress=False)
    assert _texts(tmp_path / "out") == [p[0], p[1], p[2], p[3]]
    curate = next(s for s in stats["stages"] if s["name"] == "curate_1")
    mapper = curate["steps"][-1]
    assert mapper["modified"] == 4 and mapper["drops"] == {"only_repeated_lines": 1}


def test_lines_below_min_repeats_stay(wiki_paragraphs, tmp_path):
    p = wiki_paragraphs
    records = [{"text": f"{MENU}\n{p[0]}"}, {"text": f"{MENU}\n{p[1]}"}]
    write_jsonl(tmp_path / "in" / "a.jsonl", records)
    steps = [{"type": "line_dedup", "min_repeats": 3}, {"type": "remove_repeated_lines"}]
    run(_recipe(tmp_path / "in", steps), output=str(tmp_path / "out"), workers=1, progress=False)
    assert _texts(tmp_path / "out") == [r["text"] for r in records]


def test_paragraph_unit_removes_repeated_paragraphs(wiki_paragraphs, tmp_path):
    p = wiki_paragraphs
    disclaimer = "The views expressed here are the author's own.\nThey do not reflect the publisher."
    records = [{"text": f"{p[i]}\n\n{disclaimer}"} for i in range(4)]
    write_jsonl(tmp_path / "in" / "a.jsonl", records)
    steps = [{"type": "line_dedup", "unit": "paragraph", "min_repeats": 4}, {"type": "remove_repeated_lines"}]
    run(_recipe(tmp_path / "in", steps), output=str(tmp_path / "out"), workers=1, progress=False)
    assert _texts(tmp_path / "out") == p[:4]


def test_min_repeats_below_two_is_rejected():
    from corpusforge.dedup.lines import LineDedup

    with pytest.raises(ValueError, match="min_repeats"):
        LineDedup(min_repeats=1)
