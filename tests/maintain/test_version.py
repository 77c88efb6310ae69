"""Version records: equal for equal builds, and ``corpusforge diff`` names what changed."""

from __future__ import annotations

import json

import orjson
from click.testing import CliRunner

from corpusforge import run
from corpusforge.cli import main as cli
from corpusforge.maintain.version import build_version, load_version
from tests.conftest import small_recipe


def _sources(shared_data, *names):
    return [{"name": n.removesuffix(".txt"), "path": str(shared_data / "prose" / "gutenberg" / n), "text_unit": "paragraph"}
            for n in names]


def test_the_same_build_in_two_folders_has_one_version_and_diff_says_identical(tmp_path, shared_data):
    recipe = small_recipe(_sources(shared_data, "pg26184.txt"))
    run(recipe, output=str(tmp_path / "a"), workers=1)
    run(recipe, output=str(tmp_path / "b"), workers=1)
    a = load_version(tmp_path / "a")
    assert a == load_version(tmp_path / "b") == build_version(tmp_path / "a")
    index = orjson.loads((tmp_path / "a" / "shard_index.json").read_bytes())
    assert {s["path"]: s["sha256"] for s in index["shards"]}.items() <= a["files"].items()
    assert "tokenizer.json" in a["files"] and any(f.startswith("lineage/") for f in a["files"])
    assert a["inputs"] == [{"source": "pg26184", "key": "pg26184.txt", "hash": a["inputs"][0]["hash"], "size": 73270}]
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "a"), str(tmp_path / "b")])
    assert result.exit_code == 0 and result.output.startswith(f"identical: version {a['version'][:16]}")


def test_diff_names_the_added_input_the_recipe_change_and_the_token_delta(tmp_path, shared_data):
    run(small_recipe(_sources(shared_data, "pg26184.txt")), output=str(tmp_path / "a"), workers=1)
    run(small_recipe(_sources(shared_data, "pg26184.txt", "pg1513.txt")), output=str(tmp_path / "b"), workers=1)
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "a"), str(tmp_path / "b"), "--json"])
    assert result.exit_code == 1, result.output
    d = json.loads(result.output)
    a, b = load_version(tmp_path / "a"), load_version(tmp_path / "b")
    assert d["recipe_changed"] is True and d["same"] is False
    assert d["inputs"] == {"added": ["pg1513:pg1513.txt"], "removed": [], "changed": []}
    assert "tokenizer.json" in d["files"]["changed"]
    assert d["splits"]["train"]["tokens"] == b["splits"]["train"]["tokens"] - a["splits"]["train"]["tokens"] > 0
    text = CliRunner().invoke(cli, ["diff", str(tmp_path / "a"), str(tmp_path / "b")]).output
    assert "recipe: changed" in text and "inputs added (1): pg1513:pg1513.txt" in text


def test_diff_of_a_folder_without_a_version_record_says_so(tmp_path):
    (tmp_path / "x").mkdir()
    result = CliRunner().invoke(cli, ["diff", str(tmp_path / "x"), str(tmp_path / "x")])
    assert result.exit_code == 2 and "version.json: missing" in result.output
