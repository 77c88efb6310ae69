"""The command line as a user runs it: demo, init + run, validate, inspect."""

from __future__ import annotations

import subprocess
import sys

import orjson


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "corpusforge.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_demo_runs_every_stage_offline_and_validates(tmp_path):
    res = _cli("demo", "-o", str(tmp_path / "demo"), "-q")
    assert res.returncode == 0, res.stderr
    assert "demo done" in res.stderr and "validated" in res.stderr
    assert "data card:" in res.stderr and (tmp_path / "demo" / "README.md").read_text().startswith("---\n")
    assert "<svg" in (tmp_path / "demo" / "report.html").read_text()
    stats = orjson.loads((tmp_path / "demo" / "stats.json").read_bytes())
    assert [s["name"] for s in stats["stages"]] == ["curate", "exact_dedup", "tokenizer", "shards", "index"]
    assert stats["documents"]["kept"] > 200 and stats["tokens"] > 500_000
    assert set(stats["tokens_by_source"]) == {"python_docs", "python_stdlib", "python_stdlib_packages"}
    insp = _cli("inspect", str(tmp_path / "demo"), "-n", "1")
    assert insp.returncode == 0 and "<BOS>" in insp.stderr


def test_init_writes_a_recipe_that_run_accepts_unchanged(tmp_path):
    assert _cli("init", str(tmp_path / "r.yaml"), "-o", str(tmp_path / "out")).returncode == 0
    text = (tmp_path / "r.yaml").read_text()
    assert text.count("#") > 20  # commented
    res = _cli("run", str(tmp_path / "r.yaml"), "-q", "-w", "2")
    assert res.returncode == 0, res.stderr
    assert _cli("validate", str(tmp_path / "out")).returncode == 0


def test_run_with_an_invalid_recipe_exits_2_naming_the_field(tmp_path):
    (tmp_path / "r.yaml").write_text("sources:\n  - path: .\nsteps:\n  - type: nope\n")
    res = _cli("run", str(tmp_path / "r.yaml"))
    assert res.returncode == 2
    assert "steps[0].type: unknown step 'nope'" in res.stderr


def test_validate_of_a_folder_without_index_fails(tmp_path):
    res = _cli("validate", str(tmp_path))
    assert res.returncode == 1 and "shard_index.json" in res.stderr
