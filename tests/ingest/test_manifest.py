"""The manifest: re-running a recipe after inputs changed reprocesses only what changed."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from corpusforge import run
from corpusforge.sources.base import Part, TaskInput
from corpusforge.sources.manifest import _keep_slots


def _recipe(folder: Path) -> dict:
    return {
        "sources": [{"name": "docs", "path": str(folder), "incremental": True}],
        "steps": [],
        "tokenizer": {"vocab_size": 300},
        "sharding": {"sequence_length": 32},
        "executor": {"task_bytes": 1000},
        "output": {"documents": "jsonl"},
    }


def _paragraph(word: str) -> str:
    return " ".join(f"{word}{i}" for i in range(300)) + "\n"  # > task_bytes: one task per file


def _staged(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (out / "_work" / "curate").glob("*.parquet")}


def test_rerun_reprocesses_only_added_and_changed_files(tmp_path):
    folder, out = tmp_path / "in", tmp_path / "out"
    folder.mkdir()
    for name in ("b", "c", "d"):
        (folder / f"{name}.txt").write_text(_paragraph(name))
    run(_recipe(folder), output=str(out), workers=1)
    manifest = [orjson.loads(x) for x in (out / "manifest.jsonl").read_bytes().splitlines()]
    assert [Path(m["uri"]).name for m in manifest] == ["b.txt", "c.txt", "d.txt"]
    assert all(len(m["hash"]) == 32 and m["size"] == len(_paragraph("b")) for m in manifest)
    before = _staged(out)

    os.utime(folder / "b.txt", (1_900_000_000, 1_900_000_000))  # touched, content unchanged
    (folder / "c.txt").write_text(_paragraph("changed"))  # changed
    (folder / "a.txt").write_text(_paragraph("added"))  # added, sorts first
    stats = run(_recipe(folder), output=str(out), workers=1)

    after = _staged(out)
    rewritten = sorted(name for name, t in after.items() if before.get(name) != t)
    assert len(rewritten) == 2  # c's task and the new a's task; b and d are not read again
    plan = orjson.loads((out / "_state" / "plan.json").read_bytes())
    keys = [t["parts"][0]["key"] for t in plan]
    assert keys[0] == "b.txt" and keys[2] == "d.txt"  # unchanged tasks kept their index
    assert sorted(keys) == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert stats["documents"]["kept"] == 4
    texts = {orjson.loads(x)["text"].split()[0] for p in (out / "documents").glob("*.jsonl")
             for x in p.read_bytes().splitlines()}
    assert texts == {"added0", "b0", "changed0", "d0"}


def test_vanished_tasks_leave_no_holes_in_the_plan():
    def task(key: str) -> TaskInput:
        return TaskInput("s", (Part(f"/x/{key}", key, size=5, digest=key * 2),))

    previous = [task(k).to_dict() for k in ("a", "b", "c", "d")]
    order = _keep_slots(previous, [task("a"), task("c")])
    assert [t.parts[0].key for t in order] == ["a", "c"]
    order = _keep_slots(previous, [task("a"), task("b"), task("d"), task("e")])
    assert [t.parts[0].key for t in order] == ["a", "b", "e", "d"]
