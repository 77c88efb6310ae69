import json
import re
from pathlib import Path

import yaml

from corpusforge import run
from corpusforge.inspect import decoded_samples

from .conftest import DATA

DOC = Path(__file__).resolve().parents[2] / "docs" / "loader.md"


def test_the_documented_recipe_runs(tmp_path):
    block = re.search(r"```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    recipe = yaml.safe_load(block)
    recipe["sources"][0]["path"] = str(DATA / "prose" / "gutenberg" / "pg26184.txt")
    run(recipe, output=str(tmp_path / "out"), workers=1)
    index = json.loads((tmp_path / "out" / "shard_index.json").read_text())
    assert index["tokenizer"]["path"] == "tokenizer.model" and index["packing"] == "pad" and index["shuffled"]
    assert all(s["path"].endswith(".safetensors.zst") and s["samples"] <= 1024 for s in index["shards"])


def test_the_documented_validate_and_inspect_example_runs(tmp_path, monkeypatch, capsys):
    text = DOC.read_text()
    recipe = yaml.safe_load(re.search(r"```yaml\n(.*?)```", text, re.S).group(1))
    recipe["sources"][0]["path"] = str(DATA / "prose" / "gutenberg" / "pg26184.txt")
    recipe["sharding"]["format"], recipe["sharding"]["compression"] = "npy", "lz4"
    run(recipe, output=str(tmp_path / "out"), workers=1)
    example = re.search(r"### Shard formats and how they are checked.*?```python\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(DOC), "exec"), {})
    shown = capsys.readouterr().out.splitlines()
    assert [line[:28] for line in shown] == ["train/shard_00000.npy.lz4 0 ", "train/shard_00000.npy.lz4 1 "]
    texts = [t for _, _, t in decoded_samples(tmp_path / "out", "train", 20)]  # SentencePiece: specials shown
    assert sum(t.count("<BOS>") for t in texts) > 5 and all("\ufffd" not in t for t in texts)


def test_the_documented_loader_snippets_run(shards, tmp_path, monkeypatch):
    text = DOC.read_text()
    (tmp_path / "out").symlink_to(shards)
    monkeypatch.chdir(tmp_path)
    for heading in ("### Equal work on every rank", "### Shuffle quality", "### Validation"):
        block = re.search(re.escape(heading) + r".*?```python\n(.*?)```", text, re.S).group(1)
        exec(compile(block, str(DOC), "exec"), {})
