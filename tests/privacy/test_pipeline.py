"""The privacy steps through the real pipeline, from a recipe dict, with the audit log on."""

import json
from pathlib import Path

import orjson
import pytest
import zstandard

from corpusforge import run

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

DOCS = [
    "Dear team, please email maria.rossi@example.it or call +39 06 6982 1234. "
    "My codice fiscale is RSSMRA85T10A562S and my card 4111 1111 1111 1111.",
    "Nothing personal in this document at all, only a few words about the weather and the sea.",
    "Deploy with AWS key AKIAIOSFODNN7EXAMPLQ and DB_PASSWORD=Tr0ub4dor&3xyz please.",
]


def _write_input(folder: Path) -> None:
    folder.mkdir()
    (folder / "docs.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in DOCS), encoding="utf-8")


def _recipe(folder: Path, steps: list[dict]) -> dict:
    return {"sources": [{"path": str(folder)}], "steps": steps, "tokenizer": {"vocab_size": 300},
            "sharding": {"sequence_length": 32}, "output": {"audit": True, "documents": "jsonl"}}


def _curate_steps(stats: dict) -> dict[str, dict]:
    stage = next(s for s in stats["stages"] if s["name"] == "curate")
    return {s["name"]: s for s in stage["steps"]}


def test_pipeline_redacts_and_counts_per_category(tmp_path):
    _write_input(tmp_path / "in")
    stats = run(_recipe(tmp_path / "in", [{"type": "pii"}, {"type": "secrets"}]), output=str(tmp_path / "out"), workers=1)
    steps = _curate_steps(stats)
    assert steps["pii"]["counts"] == {"credit_card": 1, "email": 1, "national_id": 1, "phone": 1}
    assert steps["secrets"]["counts"] == {"assigned_secret": 1, "aws_access_key": 1}
    out = [json.loads(line) for line in (tmp_path / "out" / "documents" / "part_000000.jsonl").open()]
    assert [d["text"] for d in out] == [
        "Dear team, please email <EMAIL> or call <PHONE>. My codice fiscale is <NATIONAL_ID> and my card <CREDIT_CARD>.",
        DOCS[1],
        "Deploy with AWS key <SECRET> and DB_PASSWORD=<SECRET> please.",
    ]


def test_audit_log_holds_each_redaction_with_reason_and_score(tmp_path):
    _write_input(tmp_path / "in")
    run(_recipe(tmp_path / "in", [{"type": "pii"}, {"type": "secrets"}]), output=str(tmp_path / "out"), workers=1)
    raw = (tmp_path / "out" / "audit" / "curate" / "task_000000.jsonl.zst").read_bytes()
    recs = [orjson.loads(line) for line in zstandard.ZstdDecompressor().decompress(raw).splitlines() if line]
    assert [(r["step"], r["action"], r["reason"], r["score"], r["offset"]) for r in recs] == [
        ("pii", "modified", "pii:credit_card,email,national_id,phone", 4.0, 0),
        ("secrets", "modified", "secret:assigned_secret,aws_access_key", 2.0, 258),  # byte offset of line 3
    ]
    assert all(r["source"].endswith("docs.jsonl") and len(r["doc_id"]) == 16 for r in recs)


def test_pii_drop_mode_and_license_policy_in_one_recipe(tmp_path):
    folder = tmp_path / "code"
    folder.mkdir()
    rows = [
        {"text": "# SPDX-License-Identifier: GPL-3.0-only\nprint('copyleft code here')\n"},
        {"text": "# SPDX-License-Identifier: MIT\nprint('permissive code here')\n"},
        {"text": "# SPDX-License-Identifier: MIT\n# author: dev@example.com\nprint('has an email')\n"},
    ]
    (folder / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    steps = [{"type": "code_license", "allow_copyleft": False}, {"type": "pii", "mode": "drop"}]
    stats = run(_recipe(folder, steps), output=str(tmp_path / "out"), workers=1)
    got = _curate_steps(stats)
    assert got["code_license"]["drops"] == {"license:copyleft": 1}
    assert got["pii"]["drops"] == {"pii:email": 1}
    out = [json.loads(line) for line in (tmp_path / "out" / "documents" / "part_000000.jsonl").open()]
    assert [d["metadata"]["license_detected"]["spdx"] for d in out] == ["MIT"]


def test_yaml_example_in_the_docs_runs(tmp_path, monkeypatch):
    import re

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "privacy.md").read_text(encoding="utf-8")
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", doc, re.S).group(1))
    _write_input(tmp_path / "in")
    recipe["sources"][0]["path"] = str(tmp_path / "in")
    stats = run(recipe, output=str(tmp_path / "out"), workers=1)
    steps = _curate_steps(stats)
    assert [s for s in steps if s in ("code_license", "secrets", "pii")] == ["code_license", "secrets", "pii"]
    out = [json.loads(line) for line in (tmp_path / "out" / "documents" / "part_000000.jsonl").open()]
    assert "<IT_CODICE_FISCALE>" in out[0]["text"] and "<SECRET>" in out[2]["text"]


def test_recipe_regions_read_national_numbers_of_documents_without_a_language(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "docs.jsonl").write_text(json.dumps({"text": "Kontor 32 15 67 89 i dag, og mere tekst her."}) + "\n",
                                       encoding="utf-8")
    out = {}
    for name, regions in (("plain", None), ("dk", ["DK"])):
        step = {"type": "pii"} if regions is None else {"type": "pii", "regions": regions}
        run(_recipe(folder, [step]), output=str(tmp_path / name), workers=1)
        out[name] = [json.loads(line)["text"] for line in (tmp_path / name / "documents" / "part_000000.jsonl").open()]
    assert out == {"plain": ["Kontor 32 15 67 89 i dag, og mere tekst her."],
                   "dk": ["Kontor <PHONE> i dag, og mere tekst her."]}


def test_unknown_region_in_a_recipe_is_refused_with_its_name(tmp_path):
    _write_input(tmp_path / "in")
    with pytest.raises(Exception, match="unknown regions \\['XX'\\]"):
        run(_recipe(tmp_path / "in", [{"type": "pii", "regions": ["XX"]}]), output=str(tmp_path / "out"), workers=1)
