"""Every relative path in a recipe file resolves against the file's folder, wherever the run starts:
a recipe kept beside its data runs the same from any working directory."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from corpusforge.recipe import load_recipe
from tests.conftest import SHARED_DATA

PROSE = SHARED_DATA / "prose" / "tinyshakespeare.txt"


def _project(tmp_path: Path) -> Path:
    """``project/recipe.yaml`` with a JSONL file, a SQLite database and a url list beside it."""
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    lines = PROSE.read_text(encoding="utf-8").split("\n\n")[:40]
    (project / "data" / "a.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in lines[:20]))
    with sqlite3.connect(project / "rows.db") as db:
        db.execute("CREATE TABLE t (body TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [(t,) for t in lines[20:]])
    (project / "urls.txt").write_text("")
    return project


def test_source_paths_sqlite_urls_and_url_files_resolve_against_the_recipe_folder(tmp_path):
    project = _project(tmp_path)
    recipe = {"sources": [{"path": ["data/a.jsonl"]},
                          {"type": "sql", "name": "db", "url": "sqlite:///rows.db", "query": "SELECT body FROM t",
                           "text_field": "body"}],
              "steps": [], "tokenizer": {"vocab_size": 300}, "sharding": {"sequence_length": 64},
              "output": {"documents": "jsonl"}}
    (project / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = subprocess.run([sys.executable, "-m", "corpusforge.cli", "run", str(project / "recipe.yaml"),
                           "-o", "out", "-q", "-w", "1"], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    stats = json.loads((elsewhere / "out" / "stats.json").read_text())
    assert stats["documents"]["read"] == 40 and stats["documents"]["quarantined"] == 0


def test_every_path_key_of_a_recipe_file_is_resolved_and_urls_and_absolute_paths_are_kept(tmp_path):
    project = _project(tmp_path)
    (project / "tok").mkdir()
    recipe = {"sources": [{"path": "data/a.jsonl", "media_roots": ["pics", "s3://bucket/pics"]},
                          {"path": str(PROSE)},
                          {"type": "urls", "name": "web", "url_file": "urls.txt"},
                          {"type": "sql", "name": "db", "url": "sqlite:///rows.db", "query": "SELECT body AS text FROM t"},
                          {"type": "sql", "name": "mem", "url": "sqlite:///:memory:", "query": "SELECT 'x' AS text"}],
              "steps": [{"type": "minhash_dedup", "index_dir": "index"}],
              "tokenizer": {"vocab_size": 300}}
    (project / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    r = load_recipe(project / "recipe.yaml")
    s = r.sources
    assert s[0]["path"] == str(project / "data/a.jsonl")
    assert s[0]["media_roots"] == [str(project / "pics"), "s3://bucket/pics"]
    assert s[1]["path"] == str(PROSE)
    assert s[2]["url_file"] == str(project / "urls.txt")
    assert s[3]["url"] == f"sqlite:///{project / 'rows.db'}"
    assert s[4]["url"] == "sqlite:///:memory:"
    assert r.steps[0]["index_dir"] == str(project / "index")
